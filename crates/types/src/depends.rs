//! Compose's `depends_on` as the managers honour it: a service label that names, for each
//! service this one depends on, the condition it must reach before this service's tasks are
//! scheduled. `shoal stack deploy` writes it from the Compose file; the scheduler reads it
//! (`shoal_manager::dependencies`). The label is shoal's own, so the rest of the spec stays
//! what `docker stack deploy` sends.
//!
//! Format: `NAME:CONDITION[:optional][:restart]` entries separated by commas, e.g.
//! `todo_db:service_healthy,todo_migrate:service_completed_successfully`. `NAME` is the
//! dependency's full service name; `optional` is Compose's `required: false` (a dependency
//! that does not exist does not hold the service back); `restart` is Compose's
//! `restart: true` (a stack deploy that updates the dependency restarts this service too,
//! its new tasks held until the dependency's new ones reach the condition).

use std::fmt;

/// The service label that carries a service's dependencies.
pub const LABEL: &str = "io.shoal.depends-on";

/// What a dependency must reach before its dependents' tasks are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// Its current-spec tasks run (a job: one has run).
    Started,
    /// Its current-spec tasks run, healthy when they have a health check (an agent reports a
    /// task with a health check running only once it is healthy).
    Healthy,
    /// Its tasks exited with 0 (a job: every completion).
    CompletedSuccessfully,
}

impl Condition {
    pub fn parse(text: &str) -> Option<Condition> {
        match text {
            "service_started" => Some(Condition::Started),
            "service_healthy" => Some(Condition::Healthy),
            "service_completed_successfully" => Some(Condition::CompletedSuccessfully),
            _ => None,
        }
    }

    /// The word Compose uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dependency of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The full service name of the dependency.
    pub service: String,
    pub condition: Condition,
    /// `false` for Compose's `required: false`.
    pub required: bool,
    /// Compose's `restart: true`.
    pub restart: bool,
}

/// The label's value for `deps`.
pub fn encode(deps: &[Dependency]) -> String {
    deps.iter()
        .map(|d| {
            let mut s = format!("{}:{}", d.service, d.condition);
            if !d.required {
                s.push_str(":optional");
            }
            if d.restart {
                s.push_str(":restart");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads the label's value; the error says which entry is wrong and how it should look.
pub fn decode(value: &str) -> Result<Vec<Dependency>, String> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            format!(
                "label {LABEL}: invalid entry {entry:?}: expected SERVICE:CONDITION[:optional][:restart], \
                 CONDITION one of service_started, service_healthy, service_completed_successfully"
            )
        };
        let mut parts = entry.split(':');
        let service = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
        let condition = parts.next().and_then(Condition::parse).ok_or_else(bad)?;
        let (mut required, mut restart) = (true, false);
        for flag in parts {
            match flag {
                "optional" if required => required = false,
                "restart" if !restart => restart = true,
                _ => return Err(bad()),
            }
        }
        out.push(Dependency {
            service: service.to_string(),
            condition,
            required,
            restart,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_round_trips_and_bad_entries_are_named() {
        let deps = vec![
            Dependency {
                service: "todo_db".into(),
                condition: Condition::Healthy,
                required: true,
                restart: true,
            },
            Dependency {
                service: "todo_cache".into(),
                condition: Condition::Started,
                required: false,
                restart: false,
            },
        ];
        let text = encode(&deps);
        assert_eq!(
            text,
            "todo_db:service_healthy:restart,todo_cache:service_started:optional"
        );
        assert_eq!(
            decode("a:service_started:restart:optional").unwrap()[0],
            Dependency {
                service: "a".into(),
                condition: Condition::Started,
                required: false,
                restart: true,
            }
        );
        assert_eq!(decode(&text).unwrap(), deps);
        assert_eq!(decode("").unwrap(), vec![]);
        for bad in [
            "db",
            "db:healthy",
            ":service_started",
            "db:service_started:maybe",
            "db:service_started:restart:restart",
        ] {
            let err = decode(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
