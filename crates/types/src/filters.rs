//! The Docker `filters` query parameter (moby `api/types/filters`) and the matching rules the
//! list endpoints apply to it (moby `daemon/cluster/filters.go`, SwarmKit's control API, moby
//! `daemon/network/filter.go`). It parses, validates and answers "does this value match"; the
//! list handlers decide which field of an object each key is matched against.
//!
//! A filter is a set of values per key. Within one key the values are alternatives (OR); the
//! keys together must all match (AND). `label`-style keys are the exception: every listed
//! label must be present (AND).
//!
//! # Keys each list endpoint accepts, and how they match
//!
//! | endpoint | key | matches |
//! |---|---|---|
//! | `GET /services` | `id` | prefix of the service ID |
//! | | `name` | prefix of the service name (case-sensitive) |
//! | | `label` | service labels: `k` present, or `k=v` equal |
//! | | `mode` | exactly `replicated`, `global`, `replicated-job` or `global-job` |
//! | | `runtime` | exactly the task runtime (`container` by default) |
//! | `GET /tasks` | `id` | prefix of the task ID |
//! | | `name` | prefix of the task name `SERVICE.SLOT.TASKID` (global: `SERVICE.NODEID.TASKID`) |
//! | | `label` | labels of the task's **service** |
//! | | `service` | exactly the service ID, after resolving each value as a service ID, name or ID prefix |
//! | | `node` | exactly the node ID, after resolving each value as a node ID, hostname or ID prefix |
//! | | `desired-state` | desired state, case-insensitive (`running`, `shutdown`, `accepted`, …) |
//! | | `_up-to-date` | any value: only tasks whose spec matches the service's current spec |
//! | | `runtime` | exactly the task runtime (`container` and `""` by default) |
//! | `GET /nodes` | `id` | prefix of the node ID |
//! | | `name` | prefix of the node's hostname (`Description.Hostname`) |
//! | | `label` | **engine** labels (`Description.Engine.Labels`) |
//! | | `node.label` | node labels (`Spec.Labels`) |
//! | | `role` | `manager` or `worker`, case-insensitive |
//! | | `membership` | `accepted` or `pending`, case-insensitive |
//! | `GET /secrets` | `id`, `name`, `label` | ID prefix, name prefix, labels |
//! | | `names` | exactly the name |
//! | `GET /configs` | `id`, `name`, `label` | ID prefix, name prefix, labels |
//! | `GET /networks` | `id`, `name` | exact, or an (unanchored) regular expression match ([`Filters::match_regex`]) |
//! | | `driver`, `scope` | exactly |
//! | | `label` | network labels |
//! | | `dangling` | `true`/`1` only unused networks, `false`/`0` only used ones |
//! | | `type` | `builtin` (bridge, host, none, default) or `custom` |
//!
//! An unknown key is refused: "invalid filter 'KEY'".

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::swarm::{NodeRole, TaskState};

/// Keys accepted by `GET /services`.
pub const SERVICE_FILTERS: &[&str] = &["id", "label", "mode", "name", "runtime"];
/// Keys accepted by `GET /tasks`.
pub const TASK_FILTERS: &[&str] = &[
    "desired-state",
    "id",
    "label",
    "name",
    "node",
    "service",
    "_up-to-date",
    "runtime",
];
/// Keys accepted by `GET /nodes`.
pub const NODE_FILTERS: &[&str] = &["id", "label", "membership", "name", "node.label", "role"];
/// Keys accepted by `GET /secrets`.
pub const SECRET_FILTERS: &[&str] = &["id", "label", "name", "names"];
/// Keys accepted by `GET /configs`.
pub const CONFIG_FILTERS: &[&str] = &["id", "label", "name"];
/// Keys accepted by `GET /networks`.
pub const NETWORK_FILTERS: &[&str] =
    &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// A filter the request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The `filters` parameter is neither `{"k":{"v":true}}` nor `{"k":["v"]}`.
    #[error("invalid filter: {0}")]
    Malformed(String),
    /// A key this endpoint does not know.
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    /// A key with a value it cannot take.
    #[error("invalid filter '{key}={value}'")]
    InvalidValue { key: String, value: String },
    /// A value outside a key's closed set, worded like Docker ("Invalid role filter: 'x'").
    #[error("Invalid {key} filter: '{value}'")]
    UnknownValue { key: String, value: String },
}

/// The parsed `filters` parameter: for each key, the set of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// No filters: everything matches.
    pub fn new() -> Self {
        Filters::default()
    }

    /// Parses the (URL-decoded) `filters` query value. Accepts the current form
    /// `{"name":{"web":true}}`, the legacy form `{"name":["web"]}` and the empty string.
    /// Like Docker, a value listed with `false` still counts as listed.
    pub fn parse(text: &str) -> Result<Filters, FilterError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Filters::new());
        }
        let raw: BTreeMap<String, RawValues> = serde_json::from_str(text)
            .map_err(|e| FilterError::Malformed(format!("{text}: {e}")))?;
        let fields = raw
            .into_iter()
            .map(|(key, values)| {
                let values = match values {
                    RawValues::Set(set) => set.into_keys().collect(),
                    RawValues::List(list) => list.into_iter().collect(),
                    RawValues::Null => BTreeSet::new(),
                };
                (key, values)
            })
            .collect();
        Ok(Filters { fields })
    }

    /// Adds one value to a key (what the CLI's `--filter key=value` does).
    pub fn add(&mut self, key: &str, value: &str) {
        self.fields
            .entry(key.to_string())
            .or_default()
            .insert(value.to_string());
    }

    /// Builder form of [`Filters::add`].
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.add(key, value);
        self
    }

    /// Removes one value; the key goes when its last value does.
    pub fn remove(&mut self, key: &str, value: &str) {
        if let Some(values) = self.fields.get_mut(key) {
            values.remove(value);
            if values.is_empty() {
                self.fields.remove(key);
            }
        }
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The keys present, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Refuses any key not in `accepted` (use the `*_FILTERS` consts).
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(FilterError::UnknownKey(key.clone())),
            None => Ok(()),
        }
    }

    /// The values of a key, sorted; empty if the key is absent.
    pub fn get(&self, key: &str) -> Vec<String> {
        self.fields
            .get(key)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the key is present (even with no values).
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn values(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.fields.get(key).filter(|v| !v.is_empty())
    }

    /// `true` if the key has no values, or one of them equals `value`.
    pub fn match_exact(&self, key: &str, value: &str) -> bool {
        self.values(key).is_none_or(|values| values.contains(value))
    }

    /// `true` if the key has no values, or `value` starts with one of them.
    pub fn match_prefix(&self, key: &str, value: &str) -> bool {
        self.values(key)
            .is_none_or(|values| values.iter().any(|p| value.starts_with(p.as_str())))
    }

    /// The `id` key against an object ID: prefix match (services, tasks, nodes, configs,
    /// secrets).
    pub fn match_id_prefix(&self, id: &str) -> bool {
        self.match_prefix("id", id)
    }

    /// The `name` key against an object's name: prefix match, case-sensitive (services, tasks,
    /// nodes by hostname, configs, secrets).
    pub fn match_name_prefix(&self, name: &str) -> bool {
        self.match_prefix("name", name)
    }

    /// Docker's `Match` (networks' `id` and `name`): `true` if the key has no values, or one
    /// of them equals `value` or, read as a regular expression, matches somewhere in it.
    /// A value that is not a valid expression only matches exactly.
    pub fn match_regex(&self, key: &str, value: &str) -> bool {
        self.values(key).is_none_or(|values| {
            values.iter().any(|v| {
                v == value
                    || regex::Regex::new(v)
                        .map(|re| re.is_match(value))
                        .unwrap_or(false)
            })
        })
    }

    /// A label-style key (`label`, `node.label`) against a set of labels: every value must
    /// match, `k` by the key being present, `k=v` by the label being equal to `v`. `true` if
    /// the key has no values.
    pub fn match_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(values) = self.values(key) else {
            return true;
        };
        values.iter().all(|v| match v.split_once('=') {
            Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
            None => labels.contains_key(v.as_str()),
        })
    }

    /// Docker's `GetBoolOrDefault`: `default` if the key is absent; `true`/`1` or
    /// `false`/`0` otherwise, and an error when the values are missing or contradict.
    pub fn get_bool_or_default(&self, key: &str, default: bool) -> Result<bool, FilterError> {
        let Some(values) = self.fields.get(key) else {
            return Ok(default);
        };
        let is_true = values.contains("1") || values.contains("true");
        let is_false = values.contains("0") || values.contains("false");
        if is_true == is_false {
            return Err(FilterError::InvalidValue {
                key: key.to_string(),
                value: self.get(key).join(","),
            });
        }
        Ok(is_true)
    }

    /// The `desired-state` key of `GET /tasks` as states ("Invalid desired-state filter: 'x'"
    /// for an unknown one; empty values are ignored like Docker does).
    pub fn desired_states(&self) -> Result<Vec<TaskState>, FilterError> {
        self.parse_each("desired-state", TaskState::parse)
    }

    /// The `role` key of `GET /nodes` as roles ("Invalid role filter: 'x'").
    pub fn roles(&self) -> Result<Vec<NodeRole>, FilterError> {
        self.parse_each("role", NodeRole::parse)
    }

    fn parse_each<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, FilterError> {
        let mut out = Vec::new();
        for value in self
            .fields
            .get(key)
            .into_iter()
            .flatten()
            .filter(|v| !v.is_empty())
        {
            match parse(value) {
                Some(v) => out.push(v),
                None => {
                    return Err(FilterError::UnknownValue {
                        key: key.to_string(),
                        value: value.clone(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The current JSON form, `{"key":{"value":true}}` (`{}` when empty).
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string())
    }
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum RawValues {
    Set(BTreeMap<String, bool>),
    List(Vec<String>),
    Null,
}

impl std::str::FromStr for Filters {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, FilterError> {
        Filters::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_current_and_legacy_forms() {
        let current =
            Filters::parse(r#"{"name":{"web":true,"api":true},"label":{"x=y":true}}"#).unwrap();
        let legacy = Filters::parse(r#"{"name":["web","api"],"label":["x=y"]}"#).unwrap();
        assert_eq!(current, legacy);
        assert_eq!(current.get("name"), vec!["api", "web"]);
        assert!(current.contains("label"));
        assert!(!current.contains("id"));
        assert!(current.get("id").is_empty());
        assert!(Filters::parse("").unwrap().is_empty());
        assert!(Filters::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert!(matches!(
            Filters::parse("name=web"),
            Err(FilterError::Malformed(_))
        ));
        assert!(Filters::parse(r#"{"name":"web"}"#).is_err());
        assert!(Filters::parse(r#"["web"]"#).is_err());
    }

    #[test]
    fn unknown_keys_fail_validation_with_dockers_message() {
        let f = Filters::parse(r#"{"nmae":{"web":true}}"#).unwrap();
        let err = f.validate(SERVICE_FILTERS).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'nmae'");
        let f = Filters::parse(r#"{"desired-state":["running"],"_up-to-date":["true"]}"#).unwrap();
        assert!(f.validate(TASK_FILTERS).is_ok());
        assert!(f.validate(NODE_FILTERS).is_err());
    }

    #[test]
    fn labels_match_by_presence_or_value_and_all_must_match() {
        let l = labels(&[("com.docker.stack.namespace", "app"), ("tier", "web")]);
        let f = Filters::new().with("label", "com.docker.stack.namespace=app");
        assert!(f.match_labels("label", &l));
        let f = Filters::new().with("label", "tier");
        assert!(f.match_labels("label", &l));
        let f = Filters::new().with("label", "tier=db");
        assert!(!f.match_labels("label", &l));
        let f = Filters::new()
            .with("label", "tier")
            .with("label", "missing");
        assert!(!f.match_labels("label", &l));
        let f = Filters::new().with("label", "x=");
        assert!(!f.match_labels("label", &l));
        assert!(
            f.match_labels("node.label", &l),
            "an absent key matches everything"
        );
        assert!(Filters::new()
            .with("label", "x=")
            .match_labels("label", &labels(&[("x", "")])));
    }

    #[test]
    fn ids_and_names_match_by_prefix_and_others_exactly() {
        let f = Filters::new().with("id", "9mnp").with("name", "web");
        assert!(f.match_id_prefix("9mnpnzenvg8p8tdbtq4wvbkcz"));
        assert!(!f.match_id_prefix("abc"));
        assert!(f.match_name_prefix("web-frontend"));
        assert!(!f.match_name_prefix("Web"));
        let f = Filters::new().with("mode", "global");
        assert!(f.match_exact("mode", "global"));
        assert!(!f.match_exact("mode", "global-job"));
        assert!(f.match_exact("driver", "anything"));
    }

    #[test]
    fn network_names_match_exactly_or_by_regex() {
        let f = Filters::new().with("name", "app_");
        assert!(f.match_regex("name", "app_default"));
        assert!(f.match_regex("name", "myapp_default"));
        assert!(!f.match_regex("name", "ingress"));
        let f = Filters::new().with("name", "^ingress$");
        assert!(f.match_regex("name", "ingress"));
        let f = Filters::new().with("name", "(");
        assert!(f.match_regex("name", "("));
        assert!(!f.match_regex("name", "x"));
    }

    #[test]
    fn typed_values_and_booleans() {
        let f = Filters::parse(r#"{"desired-state":{"Running":true,"accepted":true}}"#).unwrap();
        assert_eq!(
            f.desired_states().unwrap(),
            vec![TaskState::Running, TaskState::Accepted]
        );
        let f = Filters::new().with("desired-state", "sleeping");
        assert_eq!(
            f.desired_states().unwrap_err().to_string(),
            "Invalid desired-state filter: 'sleeping'"
        );
        let f = Filters::new().with("role", "MANAGER");
        assert_eq!(f.roles().unwrap(), vec![NodeRole::Manager]);
        let f = Filters::new().with("dangling", "true");
        assert_eq!(f.get_bool_or_default("dangling", false), Ok(true));
        assert_eq!(
            Filters::new().get_bool_or_default("dangling", false),
            Ok(false)
        );
        let f = Filters::new()
            .with("dangling", "true")
            .with("dangling", "0");
        assert!(f.get_bool_or_default("dangling", false).is_err());
    }

    #[test]
    fn serializes_to_the_current_form() {
        let f = Filters::new().with("label", "a=b").with("name", "web");
        assert_eq!(f.to_json(), r#"{"label":{"a=b":true},"name":{"web":true}}"#);
        assert_eq!(Filters::parse(&f.to_json()).unwrap(), f);
    }
}
