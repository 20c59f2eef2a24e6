//! A service's environment: its `env_file`s (relative to the Compose file's folder, read in
//! order) then `environment:`, a later value winning; a name without a value takes it from
//! the project's environment, or is passed as a bare name.

use std::collections::BTreeMap;

use super::read::{entries, field, fields, opt_text, Entries};
use crate::yaml::{Node, Pos, Value};
use crate::{Error, Project};

/// The container's `Env` (`KEY=VALUE` or a bare `KEY`), sorted.
pub(super) fn environment(
    e: Entries<'_>,
    what: &str,
    project: &Project,
) -> Result<Vec<String>, Error> {
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    let lookup = |k: &str, v: Option<String>| -> Option<String> {
        match v {
            Some(v) if !v.is_empty() => Some(v),
            other => project.env.get(k).cloned().or(other),
        }
    };
    if let Some(files) = field(e, "env_file") {
        for f in files_list(files, &format!("{what}.env_file"))? {
            let (path, pos) = f;
            let full = project.working_dir.join(&path);
            let content = std::fs::read_to_string(&full).map_err(|source| Error::ReadAt {
                pos: pos.clone(),
                path: full.display().to_string(),
                source,
            })?;
            for line in content.lines() {
                let line = line.trim_start();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match line.split_once('=') {
                    Some((k, v)) => {
                        if k.chars().any(char::is_whitespace) {
                            return Err(Error::at(
                                &pos,
                                format!("{}: variable {k:?} contains whitespaces", full.display()),
                            ));
                        }
                        let v = lookup(k, Some(v.to_string()));
                        env.insert(k.to_string(), v);
                    }
                    None => {
                        // A bare name takes its value from the environment, or is left out.
                        let k = line.trim_end();
                        if let Some(v) = project.env.get(k) {
                            env.insert(k.to_string(), Some(v.clone()));
                        }
                    }
                }
            }
        }
    }
    if let Some(n) = field(e, "environment") {
        for (k, v) in entries(n, &format!("{what}.environment"))? {
            let key = k.as_str().unwrap_or_default().to_string();
            let value = match &v.value {
                Value::Null => None,
                Value::Scalar { text, .. } => Some(text.clone()),
                _ => {
                    return Err(Error::at(
                        &v.pos,
                        format!(
                            "{what}.environment.{key} must be a string, not {}",
                            v.kind()
                        ),
                    ))
                }
            };
            let value = lookup(&key, value);
            env.insert(key, value);
        }
    }
    let mut out: Vec<String> = env
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect();
    out.sort();
    Ok(out)
}

/// `env_file`: one path, or a list of paths or of `{path, required, format}` mappings; each
/// path with where it is written.
fn files_list(node: &Node, what: &str) -> Result<Vec<(String, Pos)>, Error> {
    match &node.value {
        Value::Scalar { text, .. } => Ok(vec![(text.clone(), node.pos.clone())]),
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Scalar { text, .. } => Ok((text.clone(), i.pos.clone())),
                Value::Map(_) => {
                    let e = fields(i, what, &["path", "required", "format"])?;
                    let path = opt_text(e, "path", what)?.ok_or_else(|| {
                        Error::at(&i.pos, format!("{what}: an env file needs a path"))
                    })?;
                    Ok((path, i.pos.clone()))
                }
                _ => Err(Error::at(&i.pos, format!("{what} entries must be paths"))),
            })
            .collect(),
        _ => Err(Error::at(
            &node.pos,
            format!("{what} must be a path or a list of paths"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::read::entries;
    use crate::convert::testing::{message, node, project};

    fn env(
        service: &str,
        dir: &std::path::Path,
        vars: &[(&str, &str)],
    ) -> Result<Vec<String>, Error> {
        let p = project("services: {}\n", dir, vars);
        let n = node(service);
        environment(entries(&n, "services.web")?, "services.web", &p)
    }

    #[test]
    fn env_files_come_first_environment_wins_and_bare_names_take_the_project_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.env"),
            "A=1\n# comment\nB=2\nFROM_ENV\nUNSET\nC=\n",
        )
        .unwrap();
        let got = env(
            "{env_file: [a.env], environment: {B: \"3\", BARE: ~, C: ~}}",
            dir.path(),
            &[("FROM_ENV", "e"), ("C", "c")],
        )
        .unwrap();
        assert_eq!(got, ["A=1", "B=3", "BARE", "C=c", "FROM_ENV=e"]);
        let got = env("{env_file: [{path: a.env}]}", dir.path(), &[]).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn a_missing_or_malformed_env_file_is_refused_at_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.env"), "B = 2\n").unwrap();
        assert_eq!(
            message(env("{env_file: bad.env}", dir.path(), &[])),
            format!(
                "t.yml:1:15: {}: variable \"B \" contains whitespaces",
                dir.path().join("bad.env").display()
            )
        );
        assert!(
            message(env("{env_file: [gone.env]}", dir.path(), &[])).starts_with(&format!(
                "t.yml:1:16: cannot read {}",
                dir.path().join("gone.env").display()
            ))
        );
        assert_eq!(
            message(env("{env_file: [{required: true}]}", dir.path(), &[])),
            "t.yml:1:16: services.web.env_file: an env file needs a path"
        );
    }
}
