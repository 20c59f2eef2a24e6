//! Compose's `depends_on`, which Swarm ignores, read for `stack deploy --order`: each service's
//! dependencies with their condition and position, checked (every name a service of the file,
//! no cycle), and arranged in waves — each service in the first wave after all it depends on.
//! The managers honour it from a label on each dependent service ([`label_services`], format
//! in `shoal_types::depends`); `--order` also deploys in waves, waiting on the client.

use std::collections::{BTreeMap, BTreeSet};

use crate::yaml::{Node, Pos};
use crate::{Error, Project};

/// What a dependency must reach before its dependent is deployed (the managers read the same
/// conditions from a service's label).
pub use shoal_types::depends::Condition;

/// One entry of a service's `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The service depended on, by its name in the file.
    pub service: String,
    pub condition: Condition,
    /// `required: false`: deploy goes on (with a warning) when it is missing or fails.
    pub required: bool,
    /// `restart: true`: a deploy that updates the dependency restarts this service too.
    pub restart: bool,
    /// Where the entry is written.
    pub pos: Pos,
}

/// The stack's services in deploy order, with what each waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    /// Dependencies by service name (every service of the file, maybe with none).
    pub dependencies: BTreeMap<String, Vec<Dependency>>,
    /// Services by wave: a service comes in the first wave after all its dependencies.
    pub waves: Vec<Vec<String>>,
    /// Things the user should know (optional dependencies not in the file).
    pub warnings: Vec<String>,
}

/// Whether any service of the project has a `depends_on`.
pub fn has_depends_on(project: &Project) -> bool {
    services(&project.root).any(|(_, node)| node.get("depends_on").is_some())
}

/// Drops `depends_on` from the loader's "Ignoring unsupported options" warning, for a deploy
/// that honours it; other warnings are kept as they are.
pub fn honoured_warnings(warnings: &[String]) -> Vec<String> {
    const PREFIX: &str = "Ignoring unsupported options: ";
    warnings
        .iter()
        .filter_map(|w| match w.strip_prefix(PREFIX) {
            Some(list) => {
                let rest: Vec<&str> = list.split(", ").filter(|k| *k != "depends_on").collect();
                (!rest.is_empty()).then(|| format!("{PREFIX}{}", rest.join(", ")))
            }
            None => Some(w.clone()),
        })
        .collect()
}

fn services(root: &Node) -> impl Iterator<Item = (&Node, &Node)> {
    root.get("services")
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k, v))
}

/// Reads every service's `depends_on` (a list of names or a mapping of names to
/// `condition`/`required`/`restart`), checks the names and looks for a cycle, and orders
/// the services in waves.
pub fn order(project: &Project) -> Result<Order, Error> {
    let mut out = Order::default();
    let names: BTreeSet<String> = services(&project.root)
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect();
    for (key, node) in services(&project.root) {
        let name = key.as_str().unwrap_or_default().to_string();
        let mut deps = Vec::new();
        if let Some(value) = node.get("depends_on") {
            for dep in read(&name, value)? {
                if names.contains(&dep.service) {
                    deps.push(dep);
                } else if dep.required {
                    return Err(Error::at(
                        &dep.pos,
                        format!(
                            "service {name} depends on {:?}, which is not a service of this stack (services: {})",
                            dep.service,
                            names.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                } else {
                    out.warnings.push(format!(
                        "{}: service {name}: optional dependency {:?} is not a service of this stack; ignored",
                        dep.pos, dep.service
                    ));
                }
            }
        }
        out.dependencies.insert(name, deps);
    }
    if let Some(cycle) = find_cycle(&out.dependencies) {
        return Err(cycle);
    }
    out.waves = waves(&out.dependencies);
    Ok(out)
}

/// One service's `depends_on`, in either form.
fn read(name: &str, value: &Node) -> Result<Vec<Dependency>, Error> {
    let path = format!("services.{name}.depends_on");
    if value.is_null() {
        return Ok(Vec::new());
    }
    if let Some(items) = value.as_seq() {
        let mut deps: Vec<Dependency> = Vec::new();
        for item in items {
            let Some(service) = item.as_str() else {
                return Err(Error::at(
                    &item.pos,
                    format!("{path} entries must be service names, not {}", item.kind()),
                ));
            };
            if deps.iter().any(|d| d.service == service) {
                continue;
            }
            deps.push(Dependency {
                service: service.to_string(),
                condition: Condition::Started,
                required: true,
                restart: false,
                pos: item.pos.clone(),
            });
        }
        return Ok(deps);
    }
    let Some(entries) = value.as_map() else {
        return Err(Error::at(
            &value.pos,
            format!(
                "{path} must be a list of service names or a mapping, not {}",
                value.kind()
            ),
        ));
    };
    let mut deps = Vec::new();
    for (key, options) in entries {
        let service = key.as_str().unwrap_or_default().to_string();
        let here = format!("{path}.{service}");
        let mut dep = Dependency {
            service,
            condition: Condition::Started,
            required: true,
            restart: false,
            pos: key.pos.clone(),
        };
        let fields = match (&options.value, options.as_map()) {
            (_, Some(fields)) => fields,
            (crate::yaml::Value::Null, _) => &[][..],
            _ => {
                return Err(Error::at(
                    &options.pos,
                    format!("{here} must be a mapping, not {}", options.kind()),
                ))
            }
        };
        for (field, v) in fields {
            match field.as_str().unwrap_or_default() {
                "condition" => {
                    let text = v.as_str().unwrap_or_default();
                    dep.condition = Condition::parse(text).ok_or_else(|| {
                        Error::at(
                            &v.pos,
                            format!("{here}.condition: unknown condition {text:?} (expected service_started, service_healthy or service_completed_successfully)"),
                        )
                    })?;
                }
                "required" => {
                    dep.required = boolean(v, &format!("{here}.required"))?;
                }
                "restart" => {
                    dep.restart = boolean(v, &format!("{here}.restart"))?;
                }
                other => {
                    return Err(Error::at(
                        &field.pos,
                        format!(
                        "{here}: unknown key {other:?} (expected condition, required or restart)"
                    ),
                    ))
                }
            }
        }
        deps.push(dep);
    }
    Ok(deps)
}

fn boolean(node: &Node, what: &str) -> Result<bool, Error> {
    node.as_bool()
        .ok_or_else(|| Error::at(&node.pos, format!("{what} must be true or false")))
}

/// The first cycle found, as an error at the entry that closes it: `a -> b -> a`.
fn find_cycle(deps: &BTreeMap<String, Vec<Dependency>>) -> Option<Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = deps.keys().map(|k| (k.as_str(), Mark::New)).collect();
    // Iterative depth-first search: no input can overflow the stack.
    for start in deps.keys() {
        if marks.get(start.as_str()) != Some(&Mark::New) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        marks.insert(start, Mark::Open);
        while let Some((node, next)) = path.last().copied() {
            let edges = deps.get(node).map(Vec::as_slice).unwrap_or_default();
            let Some(edge) = edges.get(next) else {
                marks.insert(node, Mark::Done);
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let target = edge.service.as_str();
            match marks.get(target).copied().unwrap_or(Mark::Done) {
                Mark::New => {
                    marks.insert(target, Mark::Open);
                    path.push((target, 0));
                }
                Mark::Open => {
                    let from = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let mut names: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                    names.push(target);
                    return Some(Error::at(
                        &edge.pos,
                        format!("depends_on cycle: {}", names.join(" -> ")),
                    ));
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// Services by wave, for a graph without cycles: wave 0 depends on nothing, wave n on
/// services of earlier waves only. Names are sorted within a wave.
fn waves(deps: &BTreeMap<String, Vec<Dependency>>) -> Vec<Vec<String>> {
    let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waves: Vec<Vec<String>> = Vec::new();
    while wave_of.len() < deps.len() {
        let mut this = Vec::new();
        for (name, edges) in deps {
            if wave_of.contains_key(name.as_str()) {
                continue;
            }
            if edges
                .iter()
                .all(|e| wave_of.contains_key(e.service.as_str()))
            {
                this.push(name.clone());
            }
        }
        if this.is_empty() {
            // Only reachable with a cycle, which `order` refuses before.
            break;
        }
        for name in &this {
            wave_of.insert(
                deps.get_key_value(name)
                    .map(|(k, _)| k.as_str())
                    .unwrap_or(""),
                waves.len(),
            );
        }
        waves.push(this);
    }
    waves
}

/// Labels every service of `stack` that has dependencies with them (`shoal_types::depends`),
/// by their full names in the stack's namespace, so that the managers hold its tasks until
/// the dependencies reach their conditions.
pub fn label_services(order: &Order, stack: &mut crate::convert::Stack) {
    for (name, deps) in &order.dependencies {
        let Some(spec) = stack.services.get_mut(name) else {
            continue;
        };
        if deps.is_empty() {
            continue;
        }
        let deps: Vec<shoal_types::depends::Dependency> = deps
            .iter()
            .map(|d| shoal_types::depends::Dependency {
                service: crate::convert::scoped(&stack.namespace, &d.service),
                condition: d.condition,
                required: d.required,
                restart: d.restart,
            })
            .collect();
        spec.labels.insert(
            shoal_types::depends::LABEL.to_string(),
            shoal_types::depends::encode(&deps),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> Project {
        let source = crate::Source {
            name: "stack.yml".into(),
            text: text.into(),
        };
        crate::load_sources(&[source], std::path::Path::new("."), BTreeMap::new()).unwrap()
    }

    #[test]
    fn both_forms_give_conditions_and_waves() {
        let p = project(
            "services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on:\n      db:\n        condition: service_healthy\n      migrate:\n        condition: service_completed_successfully\n  db:\n    image: x\n  migrate:\n    image: x\n  cache:\n    image: x\n",
        );
        let o = order(&p).unwrap();
        assert_eq!(
            o.waves,
            vec![
                vec!["cache".to_string(), "db".into(), "migrate".into()],
                vec!["api".into()],
                vec!["web".into()],
            ]
        );
        let api = &o.dependencies["api"];
        assert_eq!(api[0].condition, Condition::Healthy);
        assert_eq!(api[1].condition, Condition::CompletedSuccessfully);
        assert_eq!(o.dependencies["web"][0].condition, Condition::Started);
        assert_eq!(o.dependencies["web"][0].pos.to_string(), "stack.yml:4:18");
    }

    #[test]
    fn a_cycle_is_refused_naming_it_and_where() {
        let p = project(
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      - a\n",
        );
        let err = order(&p).unwrap_err().to_string();
        assert_eq!(err, "stack.yml:8:9: depends_on cycle: a -> b -> a");
        let p = project("services:\n  a:\n    image: x\n    depends_on: [a]\n");
        let err = order(&p).unwrap_err().to_string();
        assert_eq!(err, "stack.yml:4:18: depends_on cycle: a -> a");
    }

    #[test]
    fn an_unknown_service_is_refused_unless_optional() {
        let p = project("services:\n  a:\n    image: x\n    depends_on: [nope]\n");
        let err = order(&p).unwrap_err().to_string();
        assert!(
            err.starts_with("stack.yml:4:18: service a depends on \"nope\""),
            "{err}"
        );
        let p = project(
            "services:\n  a:\n    image: x\n    depends_on:\n      nope:\n        required: false\n        restart: true\n",
        );
        let o = order(&p).unwrap();
        assert_eq!(o.waves, vec![vec!["a".to_string()]]);
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        let p = project(
            "services:\n  a:\n    image: x\n    depends_on:\n      db:\n        restart: true\n  db:\n    image: x\n",
        );
        let o = order(&p).unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert!(o.dependencies["a"][0].restart);
    }

    #[test]
    fn bad_values_are_errors_with_positions() {
        for (text, want) in [
            (
                "depends_on: db",
                "stack.yml:4:17: services.a.depends_on must be",
            ),
            (
                "depends_on:\n      db:\n        condition: later",
                "stack.yml:6:20: services.a.depends_on.db.condition: unknown condition",
            ),
            (
                "depends_on:\n      db:\n        wait: 1",
                "stack.yml:6:9: services.a.depends_on.db: unknown key",
            ),
            (
                "depends_on: [[db]]",
                "stack.yml:4:18: services.a.depends_on entries",
            ),
        ] {
            let p = project(&format!(
                "services:\n  a:\n    image: x\n    {text}\n  db:\n    image: x\n"
            ));
            let err = order(&p).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn the_ignored_warning_loses_depends_on_only() {
        let w = vec![
            "Ignoring unsupported options: build, depends_on".to_string(),
            "Ignoring unsupported options: depends_on".to_string(),
            "other".to_string(),
        ];
        assert_eq!(
            honoured_warnings(&w),
            vec![
                "Ignoring unsupported options: build".to_string(),
                "other".into()
            ]
        );
    }
}
