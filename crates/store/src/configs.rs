//! Configs and secrets: unique names, only labels change after creation, and no removal while a service uses them.

use crate::error::{Kind, StoreError};
use crate::state::*;
use chrono::{DateTime, Utc};
use shoal_types::swarm::*;

type Result<T> = std::result::Result<T, StoreError>;

impl State {
    pub(crate) fn create_config(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        config: &Config,
    ) -> Result<Option<String>> {
        self.cluster()?;
        if self.configs.name_taken(&config.spec.name, None) {
            return Err(StoreError::NameConflict {
                kind: Kind::Config,
                name: config.spec.name.clone(),
            });
        }
        let mut c = config.clone();
        stamp_new(
            &mut c.version,
            &mut c.created_at,
            &mut c.updated_at,
            index,
            at,
        );
        let id = c.id.clone();
        self.configs.insert(c);
        self.event(Kind::Config, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    pub(crate) fn update_config(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        sent: u64,
        spec: &ConfigSpec,
    ) -> Result<Option<String>> {
        let c = self
            .configs
            .get(id)
            .ok_or_else(|| not_found(Kind::Config, id))?;
        check_version(Kind::Config, id, &c.version, sent)?;
        if c.spec.name != spec.name || c.spec.data != spec.data {
            return Err(StoreError::Invalid(
                "only updates to Labels are allowed".into(),
            ));
        }
        let mut c = c.clone();
        c.spec.labels = spec.labels.clone();
        stamp(&mut c.version, &mut c.updated_at, index, at);
        self.configs.insert(c);
        self.event(Kind::Config, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn remove_config(&mut self, index: u64, id: &str) -> Result<Option<String>> {
        let c = self
            .configs
            .get(id)
            .ok_or_else(|| not_found(Kind::Config, id))?;
        let users = self.services_using(|s| {
            s.task_template
                .container_spec
                .as_ref()
                .is_some_and(|cs| cs.configs.iter().any(|r| r.config_id == *id))
        });
        if !users.is_empty() {
            return Err(StoreError::InUse {
                kind: Kind::Config,
                name: c.spec.name.clone(),
                services: users,
            });
        }
        self.configs.remove(id);
        self.event(Kind::Config, EventAction::Remove, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn create_secret(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        secret: &Secret,
    ) -> Result<Option<String>> {
        self.cluster()?;
        if self.secrets.name_taken(&secret.spec.name, None) {
            return Err(StoreError::NameConflict {
                kind: Kind::Secret,
                name: secret.spec.name.clone(),
            });
        }
        let mut s = secret.clone();
        stamp_new(
            &mut s.version,
            &mut s.created_at,
            &mut s.updated_at,
            index,
            at,
        );
        let id = s.id.clone();
        self.secrets.insert(s);
        self.event(Kind::Secret, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    pub(crate) fn update_secret(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        sent: u64,
        spec: &SecretSpec,
    ) -> Result<Option<String>> {
        let s = self
            .secrets
            .get(id)
            .ok_or_else(|| not_found(Kind::Secret, id))?;
        check_version(Kind::Secret, id, &s.version, sent)?;
        if s.spec.name != spec.name || spec.data.as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(StoreError::Invalid(
                "only updates to Labels are allowed".into(),
            ));
        }
        let mut s = s.clone();
        s.spec.labels = spec.labels.clone();
        stamp(&mut s.version, &mut s.updated_at, index, at);
        self.secrets.insert(s);
        self.event(Kind::Secret, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn remove_secret(&mut self, index: u64, id: &str) -> Result<Option<String>> {
        let s = self
            .secrets
            .get(id)
            .ok_or_else(|| not_found(Kind::Secret, id))?;
        let users = self.services_using(|sp| {
            sp.task_template
                .container_spec
                .as_ref()
                .is_some_and(|cs| cs.secrets.iter().any(|r| r.secret_id == *id))
        });
        if !users.is_empty() {
            return Err(StoreError::InUse {
                kind: Kind::Secret,
                name: s.spec.name.clone(),
                services: users,
            });
        }
        self.secrets.remove(id);
        self.event(Kind::Secret, EventAction::Remove, id, index);
        Ok(Some(id.to_string()))
    }
}
