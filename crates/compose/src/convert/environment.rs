//! A service's environment: its `env_file`s (relative to the Compose file's folder, read in
//! order) then `environment:`, a later value winning; a name without a value takes it from
//! the project's environment, or is passed as a bare name.
//!
//! An env file is read as `docker stack deploy` reads it (docker run's `--env-file`: `KEY=VALUE`
//! taken literally, no quotes, no interpolation), which is also the Compose specification's
//! `format: raw`. A file marked `required: false` that does not exist is skipped.

use std::collections::BTreeMap;

use super::read::{entries, field, fields, opt_bool, opt_text, Entries};
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
        for file in files_list(files, &format!("{what}.env_file"))? {
            let EnvFile {
                path,
                pos,
                required,
                raw,
            } = file;
            let full = project.working_dir.join(&path);
            let content = match std::fs::read_to_string(&full) {
                Ok(content) => content,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::ReadAt {
                        pos: pos.clone(),
                        path: full.display().to_string(),
                        source,
                    })
                }
            };
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
                        // `format: raw` keeps an empty value empty; docker stack deploy
                        // fills it from the environment, as for `environment:`.
                        let v = if raw {
                            Some(v.to_string())
                        } else {
                            lookup(k, Some(v.to_string()))
                        };
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

/// One entry of `env_file`.
struct EnvFile {
    path: String,
    /// Where the entry is written.
    pos: Pos,
    /// `required: false`: a missing file is skipped.
    required: bool,
    /// `format: raw`: values are taken as written, even empty ones.
    raw: bool,
}

impl EnvFile {
    fn new(path: String, pos: Pos) -> EnvFile {
        EnvFile {
            path,
            pos,
            required: true,
            raw: false,
        }
    }
}

/// `env_file`: one path, or a list of paths or of `{path, required, format}` mappings.
fn files_list(node: &Node, what: &str) -> Result<Vec<EnvFile>, Error> {
    match &node.value {
        Value::Scalar { text, .. } => Ok(vec![EnvFile::new(text.clone(), node.pos.clone())]),
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Scalar { text, .. } => Ok(EnvFile::new(text.clone(), i.pos.clone())),
                Value::Map(_) => {
                    let e = fields(i, what, &["path", "required", "format"])?;
                    let path = opt_text(e, "path", what)?.ok_or_else(|| {
                        Error::at(&i.pos, format!("{what}: an env file needs a path"))
                    })?;
                    let mut file = EnvFile::new(path, i.pos.clone());
                    file.required = opt_bool(e, "required", what)?.unwrap_or(true);
                    file.raw = env_file_format(field(e, "format"), what)?;
                    Ok(file)
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

/// An env file's `format:`: whether it is `raw`. The default (absent or empty) is read the
/// same way; other formats (plugins of docker compose) are refused.
fn env_file_format(node: Option<&Node>, what: &str) -> Result<bool, Error> {
    let Some(node) = node else {
        return Ok(false);
    };
    match node.as_str() {
        Some("raw") => Ok(true),
        Some("") => Ok(false),
        _ => Err(Error::at(
            &node.pos,
            format!(
                "{what}.format: unsupported env_file format {} (shoal reads env files as docker stack deploy does, the format \"raw\"; use format: raw or leave it out)",
                super::read::shown(node)
            ),
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
    fn a_missing_env_file_not_required_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.env"), "A=1\n").unwrap();
        let got = env(
            "{env_file: [{path: gone.env, required: false}, {path: a.env, required: false}]}",
            dir.path(),
            &[],
        )
        .unwrap();
        assert_eq!(got, ["A=1"]);
        assert!(message(env(
            "{env_file: [{path: gone.env, required: true}]}",
            dir.path(),
            &[]
        ))
        .starts_with("t.yml:1:16: cannot read"));
        assert_eq!(
            message(env(
                "{env_file: [{path: a.env, required: maybe}]}",
                dir.path(),
                &[]
            )),
            "t.yml:1:40: services.web.env_file.required must be a boolean (true or false), not \"maybe\""
        );
    }

    #[test]
    fn the_raw_env_file_format_takes_values_as_written_and_other_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.env"), "Q=\"quoted\" 'x'\nI=${C}\nC=\n").unwrap();
        let got = env(
            "{env_file: [{path: a.env, format: raw}]}",
            dir.path(),
            &[("C", "c")],
        )
        .unwrap();
        assert_eq!(got, ["C=", "I=${C}", "Q=\"quoted\" 'x'"]);
        assert_eq!(
            message(env(
                "{env_file: [{path: a.env, format: dotenv}]}",
                dir.path(),
                &[]
            )),
            "t.yml:1:38: services.web.env_file.format: unsupported env_file format \"dotenv\" (shoal reads env files as docker stack deploy does, the format \"raw\"; use format: raw or leave it out)"
        );
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
