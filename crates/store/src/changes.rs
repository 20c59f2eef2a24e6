//! Docker's cluster events (`docker events`, scope `swarm`) derived from what applying
//! commands changed: the one place that turns the state's change notices ([`Event`]: kind,
//! action, ID) into the messages Swarm emits (moby `daemon/events.go`), with the old and new
//! values of an update.
//!
//! It keeps, per node, service, secret, config and network, the few values an event reports
//! ([`Seen`]), so that an update can say what changed and a removal can still name what was
//! removed. It reads the state after the commands were applied and never changes it; apply
//! (`state.rs`) knows nothing of it.
//!
//! Times are Swarm's: the object's `CreatedAt` for a create, its `UpdatedAt` for an update
//! (both chosen by the proposer, so every manager reports the same), and the time it is seen
//! here for a removal.

use crate::error::Kind;
use crate::state::{Event, EventAction, State};
use chrono::{DateTime, Utc};
use shoal_types::events::{Actor, Message, SWARM_SCOPE};
use shoal_types::swarm::{Node, Service};
use std::collections::{BTreeMap, HashMap};

/// What an event about one object can report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Node {
        name: String,
        availability: &'static str,
        role: &'static str,
        state: &'static str,
        /// `(leader, reachability)` of a manager.
        manager: Option<(bool, &'static str)>,
    },
    Service {
        name: String,
        image: String,
        /// Replicated services only.
        replicas: Option<u64>,
        update_state: Option<&'static str>,
    },
    /// Secrets, configs and networks report only their name.
    Named(String),
}

impl Seen {
    fn name(&self) -> &str {
        match self {
            Seen::Node { name, .. } | Seen::Service { name, .. } | Seen::Named(name) => name,
        }
    }
}

fn node_seen(n: &Node) -> Seen {
    Seen::Node {
        name: if n.spec.name.is_empty() {
            n.description.hostname.clone()
        } else {
            n.spec.name.clone()
        },
        availability: n.spec.availability.as_str(),
        role: n.spec.role.as_str(),
        state: n.status.state.as_str(),
        manager: n
            .manager_status
            .as_ref()
            .map(|m| (m.leader, m.reachability.as_str())),
    }
}

fn service_seen(s: &Service) -> Seen {
    Seen::Service {
        name: s.spec.name.clone(),
        image: s
            .spec
            .task_template
            .container_spec
            .as_ref()
            .map(|c| c.image.clone())
            .unwrap_or_default(),
        replicas: s
            .spec
            .mode
            .replicated
            .as_ref()
            .map(|r| r.replicas.unwrap_or(1)),
        update_state: s.update_status.as_ref().map(|u| u.state.as_str()),
    }
}

/// What to report of the object `(kind, id)` as the state has it now, with its creation and
/// last update times.
struct Looked {
    seen: Seen,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

fn look(state: &State, kind: Kind, id: &str) -> Option<Looked> {
    let looked = |seen, created, updated| Looked {
        seen,
        created,
        updated,
    };
    match kind {
        Kind::Node => state
            .nodes
            .get(id)
            .map(|n| looked(node_seen(n), n.created_at, n.updated_at)),
        Kind::Service => state
            .services
            .get(id)
            .map(|s| looked(service_seen(s), s.created_at, s.updated_at)),
        Kind::Secret => state
            .secrets
            .get(id)
            .map(|s| looked(Seen::Named(s.spec.name.clone()), s.created_at, s.updated_at)),
        Kind::Config => state
            .configs
            .get(id)
            .map(|c| looked(Seen::Named(c.spec.name.clone()), c.created_at, c.updated_at)),
        Kind::Network => state
            .networks
            .get(id)
            .map(|n| looked(Seen::Named(n.spec.name.clone()), n.created_at, n.updated_at)),
        Kind::Cluster | Kind::Task | Kind::Stack => None,
    }
}

fn type_of(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Node => Some("node"),
        Kind::Service => Some("service"),
        Kind::Secret => Some("secret"),
        Kind::Config => Some("config"),
        Kind::Network => Some("network"),
        Kind::Cluster | Kind::Task | Kind::Stack => None,
    }
}

/// `old` → `new` as Swarm's update attributes (`state.old`, `state.new`, …).
fn changes(old: &Seen, new: &Seen, attributes: &mut BTreeMap<String, String>) {
    let mut changed = |key: &str, o: String, n: String| {
        if o != n {
            attributes.insert(format!("{key}.old"), o);
            attributes.insert(format!("{key}.new"), n);
        }
    };
    match (old, new) {
        (
            Seen::Node {
                availability: oa,
                role: or,
                state: os,
                manager: om,
                ..
            },
            Seen::Node {
                availability: na,
                role: nr,
                state: ns,
                manager: nm,
                ..
            },
        ) => {
            changed("availability", oa.to_string(), na.to_string());
            changed("role", or.to_string(), nr.to_string());
            changed("state", os.to_string(), ns.to_string());
            if let (Some((ol, orch)), Some((nl, nrch))) = (om, nm) {
                changed("leader", ol.to_string(), nl.to_string());
                changed("reachability", orch.to_string(), nrch.to_string());
            }
        }
        (
            Seen::Service {
                image: oi,
                replicas: orep,
                update_state: ou,
                ..
            },
            Seen::Service {
                image: ni,
                replicas: nrep,
                update_state: nu,
                ..
            },
        ) => {
            changed("image", oi.clone(), ni.clone());
            if let (Some(o), Some(n)) = (orep, nrep) {
                changed("replicas", o.to_string(), n.to_string());
            }
            match (ou, nu) {
                (None, Some(n)) => {
                    attributes.insert("updatestate.new".into(), n.to_string());
                }
                (Some(o), Some(n)) => changed("updatestate", o.to_string(), n.to_string()),
                _ => {}
            }
        }
        _ => {}
    }
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(0)
}

/// Turns change notices into Docker events, remembering what each object looked like.
#[derive(Debug, Default)]
pub struct Observer {
    seen: HashMap<(Kind, String), Seen>,
}

impl Observer {
    /// Starts from the objects the state holds now (at start, or after a snapshot was
    /// installed): their later updates report changes from these values.
    pub fn new(state: &State) -> Observer {
        let mut seen = HashMap::new();
        let ids = |kind: Kind| -> Vec<String> {
            match kind {
                Kind::Node => state.nodes.iter().map(|o| o.id.clone()).collect(),
                Kind::Service => state.services.iter().map(|o| o.id.clone()).collect(),
                Kind::Secret => state.secrets.iter().map(|o| o.id.clone()).collect(),
                Kind::Config => state.configs.iter().map(|o| o.id.clone()).collect(),
                Kind::Network => state.networks.iter().map(|o| o.id.clone()).collect(),
                Kind::Cluster | Kind::Task | Kind::Stack => Vec::new(),
            }
        };
        for kind in [
            Kind::Node,
            Kind::Service,
            Kind::Secret,
            Kind::Config,
            Kind::Network,
        ] {
            for id in ids(kind) {
                if let Some(l) = look(state, kind, &id) {
                    seen.insert((kind, id), l.seen);
                }
            }
        }
        Observer { seen }
    }

    /// The Docker events for `events`, which the commands just applied to `state` recorded,
    /// in order. `now` stamps removals.
    pub fn observe(&mut self, state: &State, events: &[Event], now: DateTime<Utc>) -> Vec<Message> {
        let mut out = Vec::new();
        for e in events {
            let Some(typ) = type_of(e.kind) else {
                continue;
            };
            let key = (e.kind, e.id.clone());
            let mut attributes = BTreeMap::new();
            let (action, time) = match e.action {
                EventAction::Create | EventAction::Update => {
                    // An object created and removed by the same batch is gone already: its
                    // removal reports it.
                    let Some(Looked {
                        seen: new,
                        created,
                        updated,
                    }) = look(state, e.kind, &e.id)
                    else {
                        continue;
                    };
                    attributes.insert("name".to_string(), new.name().to_string());
                    let old = self.seen.insert(key, new.clone());
                    if e.action == EventAction::Create {
                        ("create", created)
                    } else {
                        if let Some(old) = old {
                            changes(&old, &new, &mut attributes);
                        }
                        ("update", updated)
                    }
                }
                EventAction::Remove => {
                    let old = self.seen.remove(&key);
                    let name = old
                        .as_ref()
                        .map(|s| s.name().to_string())
                        .unwrap_or_default();
                    attributes.insert("name".to_string(), name);
                    ("remove", now)
                }
            };
            let time_nano = nanos(time);
            out.push(Message {
                typ: typ.to_string(),
                action: action.to_string(),
                actor: Actor {
                    id: e.id.clone(),
                    attributes,
                },
                scope: SWARM_SCOPE.to_string(),
                time: time_nano.div_euclid(1_000_000_000),
                time_nano,
                ..Message::default()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{
        ManagerStatus, NodeAvailability, NodeState, Reachability, ReplicatedService, UpdateState,
        UpdateStatus,
    };

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn notice(kind: Kind, action: EventAction, id: &str) -> Event {
        Event {
            kind,
            action,
            id: id.into(),
            index: 1,
        }
    }

    fn service(id: &str, replicas: u64, image: &str) -> Service {
        let mut s = Service {
            id: id.into(),
            created_at: at(10),
            updated_at: at(20),
            ..Service::default()
        };
        s.spec.name = "web".into();
        s.spec.mode.replicated = Some(ReplicatedService {
            replicas: Some(replicas),
        });
        s.spec.task_template.container_spec = Some(shoal_types::swarm::ContainerSpec {
            image: image.into(),
            ..Default::default()
        });
        s
    }

    #[test]
    fn a_service_update_reports_replicas_image_and_update_state_old_and_new() {
        let mut state = State::default();
        state.services.insert(service("s1", 1, "nginx:1"));
        let mut obs = Observer::default();
        let created = obs.observe(
            &state,
            &[notice(Kind::Service, EventAction::Create, "s1")],
            at(99),
        );
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].action, "create");
        assert_eq!(created[0].typ, "service");
        assert_eq!(created[0].scope, "swarm");
        assert_eq!(created[0].time, 10);
        assert_eq!(created[0].actor.attributes["name"], "web");

        let mut s = service("s1", 3, "nginx:2");
        s.update_status = Some(UpdateStatus {
            state: UpdateState::Updating,
            ..Default::default()
        });
        state.services.insert(s);
        let updated = obs.observe(
            &state,
            &[notice(Kind::Service, EventAction::Update, "s1")],
            at(99),
        );
        let a = &updated[0].actor.attributes;
        assert_eq!(updated[0].time, 20);
        assert_eq!(a["replicas.old"], "1");
        assert_eq!(a["replicas.new"], "3");
        assert_eq!(a["image.old"], "nginx:1");
        assert_eq!(a["image.new"], "nginx:2");
        assert_eq!(a["updatestate.new"], "updating");
        assert!(!a.contains_key("updatestate.old"));

        state.services.remove("s1");
        let removed = obs.observe(
            &state,
            &[notice(Kind::Service, EventAction::Remove, "s1")],
            at(99),
        );
        assert_eq!(removed[0].action, "remove");
        assert_eq!(removed[0].time, 99);
        assert_eq!(removed[0].actor.attributes["name"], "web");
    }

    #[test]
    fn a_node_update_reports_what_changed_only() {
        let mut state = State::default();
        let mut n = Node {
            id: "n1".into(),
            ..Node::default()
        };
        n.description.hostname = "host-a".into();
        n.status.state = NodeState::Ready;
        n.manager_status = Some(ManagerStatus {
            leader: true,
            reachability: Reachability::Reachable,
            addr: String::new(),
        });
        state.nodes.insert(n.clone());
        let mut obs = Observer::new(&state);
        n.spec.availability = NodeAvailability::Drain;
        n.manager_status.as_mut().unwrap().leader = false;
        state.nodes.insert(n);
        let ev = obs.observe(
            &state,
            &[notice(Kind::Node, EventAction::Update, "n1")],
            at(1),
        );
        let a = &ev[0].actor.attributes;
        assert_eq!(a["name"], "host-a");
        assert_eq!(a["availability.old"], "active");
        assert_eq!(a["availability.new"], "drain");
        assert_eq!(a["leader.old"], "true");
        assert_eq!(a["leader.new"], "false");
        assert!(!a.contains_key("state.old"));
        assert!(!a.contains_key("role.old"));
    }

    #[test]
    fn tasks_and_the_cluster_make_no_events_and_vanished_creations_are_skipped() {
        let state = State::default();
        let mut obs = Observer::default();
        let ev = obs.observe(
            &state,
            &[
                notice(Kind::Task, EventAction::Create, "t1"),
                notice(Kind::Cluster, EventAction::Update, "c"),
                notice(Kind::Secret, EventAction::Create, "gone"),
            ],
            at(1),
        );
        assert!(ev.is_empty());
    }
}
