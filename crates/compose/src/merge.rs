//! Several `-c` files become one document, the way docker's loader merges them: a service in a
//! later file is merged key by key into the same service of an earlier one (scalars override,
//! mappings merge, most lists append; `ports` merge by published port, `volumes` by target,
//! `secrets` and `configs` by source, `command` and `entrypoint` are replaced); networks,
//! volumes, secrets and configs of a later file replace those of the same name.
//! Before merging, each file's list-or-mapping keys (`environment`, `labels`, service
//! `networks`, ...) are brought to one shape, so that a list in one file merges with a mapping
//! in the other.

use crate::units;
use crate::yaml::{Node, Value};
use crate::Error;

/// Keys of a service whose value may be a list of `KEY=VALUE` or a mapping; made a mapping.
/// `true` when a bare `KEY` means null (environment) rather than "" (labels).
const LIST_OR_MAP: &[(&str, bool)] =
    &[("environment", true), ("labels", false), ("sysctls", false)];

/// Brings one file's list-or-mapping keys to mappings (and `extra_hosts` to a list).
pub fn normalize(doc: &mut Node) -> Result<(), Error> {
    let Value::Map(entries) = &mut doc.value else {
        return Ok(());
    };
    for (key, section) in entries.iter_mut() {
        let section_name = key.as_str().unwrap_or_default().to_string();
        let Value::Map(objects) = &mut section.value else {
            continue;
        };
        for (name, object) in objects.iter_mut() {
            let name = name.as_str().unwrap_or_default().to_string();
            let Value::Map(fields) = &mut object.value else {
                continue;
            };
            let path = format!("{section_name}.{name}");
            for (field, value) in fields.iter_mut() {
                let field = field.as_str().unwrap_or_default();
                let here = format!("{path}.{field}");
                if section_name == "services" {
                    if let Some((_, allow_null)) = LIST_OR_MAP.iter().find(|(k, _)| *k == field) {
                        list_to_map(value, &here, *allow_null)?;
                    } else if field == "networks" {
                        names_to_map(value, &here)?;
                    } else if field == "extra_hosts" {
                        hosts_to_list(value, &here)?;
                    } else if field == "deploy" {
                        if let Value::Map(deploy) = &mut value.value {
                            for (k, v) in deploy.iter_mut() {
                                if k.as_str() == Some("labels") {
                                    list_to_map(v, &format!("{here}.labels"), false)?;
                                }
                            }
                        }
                    }
                } else if field == "labels" {
                    list_to_map(value, &here, false)?;
                }
            }
        }
    }
    Ok(())
}

fn list_to_map(node: &mut Node, path: &str, allow_null: bool) -> Result<(), Error> {
    match &node.value {
        Value::Map(_) | Value::Null => Ok(()),
        Value::Seq(items) => {
            let mut entries: Vec<(Node, Node)> = Vec::new();
            for item in items {
                let Some(text) = item.as_str() else {
                    return Err(Error::at(
                        &item.pos,
                        format!("{path} entries must be strings, not {}", item.kind()),
                    ));
                };
                let (k, v) = match text.split_once('=') {
                    Some((k, v)) => (k, Node::scalar(item.pos.clone(), v)),
                    None if allow_null => (text, Node::new(item.pos.clone(), Value::Null)),
                    None => (text, Node::scalar(item.pos.clone(), "")),
                };
                let key = Node::scalar(item.pos.clone(), k);
                // A later entry of the same name wins, as in docker.
                entries.retain(|(e, _)| e.as_str() != Some(k));
                entries.push((key, v));
            }
            node.value = Value::Map(entries);
            Ok(())
        }
        Value::Scalar { .. } => Err(Error::at(
            &node.pos,
            format!("{path} must be a mapping or a list, not a scalar"),
        )),
    }
}

fn names_to_map(node: &mut Node, path: &str) -> Result<(), Error> {
    match &node.value {
        Value::Map(_) | Value::Null => Ok(()),
        Value::Seq(items) => {
            let mut entries = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return Err(Error::at(
                        &item.pos,
                        format!("{path} entries must be network names, not {}", item.kind()),
                    ));
                };
                entries.push((
                    Node::scalar(item.pos.clone(), name),
                    Node::new(item.pos.clone(), Value::Null),
                ));
            }
            node.value = Value::Map(entries);
            Ok(())
        }
        Value::Scalar { .. } => Err(Error::at(
            &node.pos,
            format!("{path} must be a list or a mapping of networks, not a scalar"),
        )),
    }
}

fn hosts_to_list(node: &mut Node, path: &str) -> Result<(), Error> {
    match &node.value {
        Value::Seq(_) | Value::Null => Ok(()),
        Value::Map(entries) => {
            let mut hosts: Vec<Node> = Vec::new();
            for (host, ip) in entries {
                let ip = match &ip.value {
                    Value::Scalar { text, .. } => text.clone(),
                    Value::Seq(ips) => {
                        // `host: [ip1, ip2]` adds one line per address.
                        for one in ips {
                            hosts.push(Node::scalar(
                                one.pos.clone(),
                                format!(
                                    "{}:{}",
                                    host.as_str().unwrap_or_default(),
                                    one.as_str().unwrap_or_default()
                                ),
                            ));
                        }
                        continue;
                    }
                    _ => {
                        return Err(Error::at(
                            &ip.pos,
                            format!(
                                "{path}.{} must be an address",
                                host.as_str().unwrap_or_default()
                            ),
                        ))
                    }
                };
                hosts.push(Node::scalar(
                    host.pos.clone(),
                    format!("{}:{ip}", host.as_str().unwrap_or_default()),
                ));
            }
            hosts.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            node.value = Value::Seq(hosts);
            Ok(())
        }
        Value::Scalar { .. } => Err(Error::at(
            &node.pos,
            format!("{path} must be a list or a mapping, not a scalar"),
        )),
    }
}

/// Merges `over` (a later file) into `base`.
pub fn merge_documents(mut base: Node, over: Node) -> Node {
    let Value::Map(over_entries) = over.value else {
        return base;
    };
    let Value::Map(base_entries) = &mut base.value else {
        return base;
    };
    for (key, value) in over_entries {
        let name = key.as_str().unwrap_or_default().to_string();
        let existing = base_entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(&name));
        match existing {
            None => base_entries.push((key, value)),
            Some((_, base_value)) => match name.as_str() {
                "services" => merge_named(base_value, value, true),
                "networks" | "volumes" | "secrets" | "configs" => {
                    merge_named(base_value, value, false)
                }
                _ => {
                    if !value.is_null() {
                        *base_value = value;
                    }
                }
            },
        }
    }
    base
}

/// Merges two mappings of named objects; services merge deeply, other objects are replaced.
fn merge_named(base: &mut Node, over: Node, deep: bool) {
    let Value::Map(over_entries) = over.value else {
        return;
    };
    if base.is_null() {
        base.value = Value::Map(Vec::new());
    }
    let Value::Map(base_entries) = &mut base.value else {
        return;
    };
    for (key, value) in over_entries {
        match base_entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == key.as_str())
        {
            None => base_entries.push((key, value)),
            Some((_, b)) if deep => merge_value(b, value, ""),
            Some((_, b)) => *b = value,
        }
    }
}

fn merge_value(base: &mut Node, over: Node, key: &str) {
    if over.is_null() {
        return;
    }
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, v) in o {
                let name = k.as_str().unwrap_or_default().to_string();
                match b.iter_mut().find(|(bk, _)| bk.as_str() == Some(&name)) {
                    None => b.push((k, v)),
                    Some((_, bv)) => merge_value(bv, v, &name),
                }
            }
        }
        (Value::Seq(b), Value::Seq(o)) => match key {
            "command" | "entrypoint" | "test" => {
                if !o.is_empty() {
                    *b = o;
                }
            }
            "ports" | "volumes" | "secrets" | "configs" => {
                let key_of = |n: &Node| item_key(key, n);
                for item in o {
                    let k = key_of(&item);
                    match b.iter().position(|e| key_of(e) == k) {
                        Some(i) => b[i] = item,
                        None => b.push(item),
                    }
                }
                b.sort_by_key(|n| key_of(n));
            }
            _ => b.extend(o),
        },
        (_, value) => {
            base.value = value;
            base.pos = over.pos;
        }
    }
}

/// The key by which docker merges list items: a port's published port, a volume's target,
/// a secret's or config's source.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ItemKey {
    Number(u64),
    Text(String),
}

fn item_key(list: &str, item: &Node) -> ItemKey {
    let text = |field: &str| -> String {
        match item.get(field).and_then(Node::as_str) {
            Some(s) => s.to_string(),
            None => String::new(),
        }
    };
    match list {
        "ports" => {
            let published = if item.as_map().is_some() {
                text("published").parse().unwrap_or(0)
            } else {
                item.as_str()
                    .and_then(|s| units::parse_port_spec(s).ok())
                    .and_then(|ports| ports.first().map(|p| u64::from(p.published_port)))
                    .unwrap_or(0)
            };
            ItemKey::Number(published)
        }
        "volumes" => ItemKey::Text(if item.as_map().is_some() {
            text("target")
        } else {
            item.as_str()
                .map(|s| units::parse_volume_spec(s).target)
                .unwrap_or_default()
        }),
        _ => ItemKey::Text(match item.as_str() {
            Some(s) => s.to_string(),
            None => text("source"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn merged(a: &str, b: &str) -> Node {
        let mut a = parse("a.yml", a).unwrap();
        let mut b = parse("b.yml", b).unwrap();
        normalize(&mut a).unwrap();
        normalize(&mut b).unwrap();
        merge_documents(a, b)
    }

    #[test]
    fn later_files_override_service_keys_and_add_new_ones() {
        let doc = merged(
            "services:\n  web:\n    image: a\n    environment: [A=1, B=2]\n",
            "services:\n  web:\n    image: b\n    environment:\n      B: 3\n    deploy:\n      replicas: 2\n  db:\n    image: pg\n",
        );
        let web = doc.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").and_then(Node::as_str), Some("b"));
        assert_eq!(web.get("image").unwrap().pos.to_string(), "b.yml:3:12");
        let env = web.get("environment").unwrap();
        assert_eq!(env.get("A").and_then(Node::as_str), Some("1"));
        assert_eq!(env.get("B").and_then(Node::as_str), Some("3"));
        assert!(web.get("deploy").is_some());
        assert!(doc.get("services").unwrap().get("db").is_some());
    }

    #[test]
    fn ports_merge_by_published_port_and_volumes_by_target() {
        let doc = merged(
            "services:\n  web:\n    image: a\n    ports: ['8080:80', '9000:90']\n    volumes: ['data:/data', '/etc:/host']\n",
            "services:\n  web:\n    ports: ['8080:81']\n    volumes: ['other:/data']\n",
        );
        let web = doc.get("services").unwrap().get("web").unwrap();
        let ports: Vec<&str> = web
            .get("ports")
            .unwrap()
            .as_seq()
            .unwrap()
            .iter()
            .filter_map(Node::as_str)
            .collect();
        assert_eq!(ports, ["8080:81", "9000:90"]);
        let volumes: Vec<&str> = web
            .get("volumes")
            .unwrap()
            .as_seq()
            .unwrap()
            .iter()
            .filter_map(Node::as_str)
            .collect();
        assert_eq!(volumes, ["other:/data", "/etc:/host"]);
    }

    #[test]
    fn commands_are_replaced_and_other_lists_append() {
        let doc = merged(
            "services:\n  web:\n    command: [a, b]\n    dns: [1.1.1.1]\n",
            "services:\n  web:\n    command: [c]\n    dns: [8.8.8.8]\n",
        );
        let web = doc.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("command").unwrap().as_seq().unwrap().len(), 1);
        assert_eq!(web.get("dns").unwrap().as_seq().unwrap().len(), 2);
    }

    #[test]
    fn top_level_objects_of_a_later_file_replace_earlier_ones() {
        let doc = merged(
            "networks:\n  n:\n    driver: overlay\n    attachable: true\n",
            "networks:\n  n:\n    external: true\n",
        );
        let n = doc.get("networks").unwrap().get("n").unwrap();
        assert!(n.get("attachable").is_none());
    }
}
