//! Which nodes may run a task: availability, placement constraints (`node.labels.zone==east`)
//! and the presence of a container engine.

use shoal_types::swarm::{Node, NodeAvailability, NodeState, Platform};

/// One `key==value` or `key!=value` placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    key: String,
    equal: bool,
    value: String,
}

impl Constraint {
    /// Parses a constraint; `None` when it has no operator (the control API refuses those
    /// before they are stored).
    pub fn parse(s: &str) -> Option<Self> {
        let (key, value, equal) = if let Some((k, v)) = s.split_once("==") {
            (k, v, true)
        } else if let Some((k, v)) = s.split_once("!=") {
            (k, v, false)
        } else {
            return None;
        };
        Some(Constraint {
            key: key.trim().to_string(),
            equal,
            value: value.trim().to_string(),
        })
    }

    /// Whether `node` satisfies the constraint. As in Swarm, values compare without regard to
    /// case, and a label the node does not have satisfies only `!=`.
    pub fn matches(&self, node: &Node) -> bool {
        let key = self.key.to_ascii_lowercase();
        let have: Option<&str> = match key.as_str() {
            "node.id" => Some(&node.id),
            "node.hostname" => Some(&node.description.hostname),
            "node.role" => Some(node.spec.role.as_str()),
            "node.platform.os" => Some(&node.description.platform.os),
            "node.platform.arch" => Some(&node.description.platform.architecture),
            _ => {
                if let Some(label) = self.key.strip_prefix("node.labels.") {
                    node.spec.labels.get(label).map(String::as_str)
                } else if let Some(label) = self.key.strip_prefix("engine.labels.") {
                    node.description
                        .engine
                        .labels
                        .get(label)
                        .map(String::as_str)
                } else {
                    None
                }
            }
        };
        let same = have.is_some_and(|h| h.eq_ignore_ascii_case(&self.value));
        same == self.equal
    }
}

/// Whether all of `constraints` hold on `node`; a constraint that cannot be parsed fails.
pub fn satisfies(node: &Node, constraints: &[String]) -> bool {
    constraints
        .iter()
        .all(|c| Constraint::parse(c).is_some_and(|c| c.matches(node)))
}

/// Swarm's platform filter: whether the node's OS and architecture are among `platforms`
/// (those of the image, which the CLI sends in `Placement.Platforms`). An empty list, and
/// an empty OS or architecture in an entry, accept any; `x86_64` is `amd64` and `aarch64`
/// is `arm64`.
pub fn supports_platform(node: &Node, platforms: &[Platform]) -> bool {
    fn arch(a: &str) -> &str {
        match a {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
    }
    let have = &node.description.platform;
    platforms.is_empty()
        || platforms.iter().any(|p| {
            (p.architecture.is_empty() || arch(&p.architecture) == arch(&have.architecture))
                && (p.os.is_empty() || p.os == have.os)
        })
}

/// Why a node cannot take new tasks, in Swarm's words, or `None` when it can.
pub fn unavailable(node: &Node) -> Option<&'static str> {
    if node.status.state != NodeState::Ready || node.spec.availability != NodeAvailability::Active {
        return Some("not available for new tasks");
    }
    if node.description.engine.engine_version.is_empty() {
        return Some("without a container engine");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::NodeRole;

    fn node() -> Node {
        let mut n = Node {
            id: "n1".into(),
            ..Default::default()
        };
        n.description.hostname = "alpha".into();
        n.description.platform.os = "linux".into();
        n.description.platform.architecture = "x86_64".into();
        n.spec.role = NodeRole::Worker;
        n.spec.labels.insert("zone".into(), "East".into());
        n.description
            .engine
            .labels
            .insert("disk".into(), "ssd".into());
        n
    }

    #[test]
    fn constraints_match_like_swarm() {
        let n = node();
        for (c, want) in [
            ("node.id==n1", true),
            ("node.hostname == alpha", true),
            ("node.hostname!=alpha", false),
            ("node.role==worker", true),
            ("node.role==manager", false),
            ("node.platform.os==linux", true),
            ("node.labels.zone==east", true),
            ("node.labels.zone!=east", false),
            ("node.labels.rack==1", false),
            ("node.labels.rack!=1", true),
            ("engine.labels.disk==ssd", true),
            ("node.role", false),
        ] {
            assert_eq!(satisfies(&n, &[c.to_string()]), want, "{c}");
        }
    }

    #[test]
    fn nodes_without_engine_or_not_active_take_no_tasks() {
        let mut n = node();
        n.status.state = NodeState::Ready;
        assert!(unavailable(&n).is_some());
        n.description.engine.engine_version = "20.10.24".into();
        assert!(unavailable(&n).is_none());
        n.spec.availability = NodeAvailability::Drain;
        assert!(unavailable(&n).is_some());
    }
}
