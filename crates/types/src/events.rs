//! Docker's event messages (moby `api/types/events`) and the rules `GET /events` filters them
//! by (moby `daemon/events/filter.go`). Data and pure rules only: where events come from and
//! how they are streamed is the store's (`shoal_store::changes`) and the API's business.
//!
//! | key | matches |
//! |---|---|
//! | `type` | exactly the event's `Type` (`service`, `node`, `secret`, `config`, `network`, `container`, …) |
//! | `event` | exactly the `Action`, or its part before `: ` (`health_status` matches `health_status: healthy`) |
//! | `scope` | exactly `local` or `swarm` |
//! | `container`, `service`, `node`, `secret`, `config`, `network`, `image`, `volume`, `plugin`, `daemon` | events of that type only, whose actor ID or `name` attribute starts with a value |
//! | `label` | the actor's attributes: `k` present, or `k=v` equal (all must match) |
//!
//! As in Docker, a key for one type (`service=web`) keeps only that type's events.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::filters::{FilterError, Filters};

/// Keys accepted by `GET /events`.
pub const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Keys that name objects of one event type.
const TYPE_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "volume",
];

/// `scope` of events about objects of the replicated state.
pub const SWARM_SCOPE: &str = "swarm";
/// `scope` of events from a node's engine.
pub const LOCAL_SCOPE: &str = "local";

/// One event, as `GET /events` streams it (one JSON object per line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// Deprecated fields the engine still sends for container events.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// What an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Checks the `filters` of `GET /events`: known keys, and a `scope` of `local` or `swarm`.
pub fn validate(f: &Filters) -> Result<(), FilterError> {
    f.validate(EVENT_FILTERS)?;
    for scope in f.get("scope") {
        if scope != LOCAL_SCOPE && scope != SWARM_SCOPE {
            return Err(FilterError::Malformed(format!(
                "invalid scope '{scope}': only local and swarm are valid"
            )));
        }
    }
    Ok(())
}

/// Whether the event passes every filter.
pub fn matches(f: &Filters, m: &Message) -> bool {
    let action_matches = {
        let values = f.get("event");
        values.is_empty()
            || values.iter().any(|v| {
                m.action == *v
                    || m.action
                        .split_once(": ")
                        .is_some_and(|(head, _)| head == v.as_str())
            })
    };
    action_matches
        && f.match_exact("type", &m.typ)
        && f.match_exact("scope", &m.scope)
        && TYPE_KEYS.iter().all(|key| names_actor(f, key, m))
        && f.match_labels("label", &m.actor.attributes)
}

/// A type key (`service=web`): no values, or an event of that type whose actor's ID or
/// `name` starts with one of them.
fn names_actor(f: &Filters, key: &str, m: &Message) -> bool {
    let values = f.get(key);
    if values.is_empty() {
        return true;
    }
    if m.typ != key {
        return false;
    }
    let name = m.actor.attributes.get("name").map(String::as_str);
    values.iter().any(|v| {
        m.actor.id.starts_with(v.as_str()) || name.is_some_and(|n| n.starts_with(v.as_str()))
    })
}

/// `since`/`until` of `GET /events` as the CLI sends them: Unix seconds with an optional
/// fraction (`1700000000.123456789`), or RFC 3339. Returns nanoseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "invalid time '{text}': expected Unix seconds (with an optional fraction) or RFC 3339"
        )
    };
    if text.contains('-') && text.contains('T') {
        return chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(bad);
    }
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_event(name: &str, action: &str) -> Message {
        Message {
            typ: "service".into(),
            action: action.into(),
            actor: Actor {
                id: "abc123".into(),
                attributes: BTreeMap::from([("name".into(), name.into())]),
            },
            scope: SWARM_SCOPE.into(),
            ..Message::default()
        }
    }

    #[test]
    fn a_type_key_keeps_only_that_types_events_whose_id_or_name_starts_with_a_value() {
        let f = Filters::new().with("service", "we");
        assert!(matches(&f, &service_event("web", "create")));
        assert!(!matches(&f, &service_event("db", "create")));
        let by_id = Filters::new().with("service", "abc");
        assert!(matches(&by_id, &service_event("db", "create")));
        let mut node = service_event("web", "update");
        node.typ = "node".into();
        assert!(!matches(&f, &node));
    }

    #[test]
    fn event_matches_the_action_or_its_head() {
        let mut health = service_event("web", "health_status: healthy");
        health.typ = "container".into();
        assert!(matches(
            &Filters::new().with("event", "health_status"),
            &health
        ));
        assert!(!matches(&Filters::new().with("event", "die"), &health));
        assert!(matches(
            &Filters::new()
                .with("event", "create")
                .with("event", "remove"),
            &service_event("web", "remove")
        ));
    }

    #[test]
    fn type_scope_and_label_filters() {
        let e = service_event("web", "create");
        assert!(matches(&Filters::new().with("type", "service"), &e));
        assert!(!matches(&Filters::new().with("type", "node"), &e));
        assert!(matches(&Filters::new().with("scope", "swarm"), &e));
        assert!(!matches(&Filters::new().with("scope", "local"), &e));
        assert!(matches(&Filters::new().with("label", "name=web"), &e));
        assert!(!matches(&Filters::new().with("label", "name=db"), &e));
    }

    #[test]
    fn unknown_keys_and_scopes_are_refused() {
        assert!(validate(&Filters::new().with("colour", "red")).is_err());
        assert!(validate(&Filters::new().with("scope", "global")).is_err());
        assert!(validate(&Filters::new().with("scope", "swarm").with("type", "node")).is_ok());
    }

    #[test]
    fn times_parse_as_the_cli_sends_them() {
        assert_eq!(parse_time("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("12.5").unwrap(), 12_500_000_000);
        assert_eq!(parse_time("1.000000001").unwrap(), 1_000_000_001);
        assert_eq!(parse_time("1970-01-01T00:00:02Z").unwrap(), 2_000_000_000);
        assert!(parse_time("soon").is_err());
        assert!(parse_time("1.x").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }
}
