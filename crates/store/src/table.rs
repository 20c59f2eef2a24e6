//! A table of one kind of object: by ID, with a unique-name index, and Docker's rules for
//! resolving what a user typed (full ID, then exact name, then unique ID prefix).

use crate::error::{Kind, StoreError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};

/// What the store needs to know about every object it keeps.
pub trait Object: Clone {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

#[derive(Debug, Clone)]
pub struct Table<T: Object> {
    by_id: BTreeMap<String, T>,
    by_name: HashMap<String, String>,
}

impl<T: Object> Default for Table<T> {
    fn default() -> Self {
        Self {
            by_id: BTreeMap::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T: Object> Table<T> {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.by_id.get_mut(id)
    }

    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_id.values()
    }

    /// Inserts or replaces an object. The caller has checked that its name is free.
    pub fn insert(&mut self, obj: T) {
        if let Some(old) = self.by_id.get(obj.id()) {
            if old.name() != obj.name() {
                self.by_name.remove(old.name());
            }
        }
        if !obj.name().is_empty() {
            self.by_name
                .insert(obj.name().to_string(), obj.id().to_string());
        }
        self.by_id.insert(obj.id().to_string(), obj);
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        let obj = self.by_id.remove(id)?;
        if self.by_name.get(obj.name()).map(String::as_str) == Some(id) {
            self.by_name.remove(obj.name());
        }
        Some(obj)
    }

    /// Is `name` used by an object other than `except_id`?
    pub fn name_taken(&self, name: &str, except_id: Option<&str>) -> bool {
        match self.by_name.get(name) {
            Some(id) => Some(id.as_str()) != except_id,
            None => false,
        }
    }

    /// Resolves what a user typed, as Docker does: full ID, exact name, then unique ID prefix.
    pub fn resolve(&self, key: &str) -> Result<&T, StoreError> {
        if let Some(o) = self.by_id.get(key) {
            return Ok(o);
        }
        if let Some(o) = self.by_name(key) {
            return Ok(o);
        }
        let not_found = || StoreError::NotFound {
            kind: T::KIND,
            key: key.to_string(),
        };
        if key.is_empty() {
            return Err(not_found());
        }
        let mut matches = self
            .by_id
            .range(key.to_string()..)
            .take_while(|(id, _)| id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((_, o)), None) => Ok(o),
            (None, _) => Err(not_found()),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous {
                kind: T::KIND,
                key: key.to_string(),
                count: 2 + matches.count(),
            }),
        }
    }
}

impl<T: Object + Serialize> Serialize for Table<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.by_id.values())
    }
}

impl<'de, T: Object + Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        let mut t = Table::default();
        for o in items {
            t.insert(o);
        }
        Ok(t)
    }
}
