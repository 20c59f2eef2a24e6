//! The Compose side of `stack deploy`: read one or more Compose files (3.x or the unversioned
//! Compose spec), substitute variables, merge the files, validate every key, and convert the
//! result into the swarm specs the docker CLI would send (networks, configs, secrets, services).
//! Every error names `file:line:col`. This crate does no I/O beyond reading the Compose files,
//! `.env`, `env_file`s and the files of configs and secrets; talking to a cluster is the CLI's job.

#![forbid(unsafe_code)]

pub mod convert;
pub mod depends;
pub mod interpolate;
pub mod merge;
pub mod shell;
pub mod units;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use convert::{convert, NetworkCreate, Stack};
use yaml::{Node, Pos, Value};

/// A Compose file that could not be loaded or converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML itself is malformed.
    #[error("{pos}: {msg}")]
    Syntax { pos: Pos, msg: String },
    /// The same key twice in one mapping.
    #[error("{pos}: duplicate key {key:?} (first defined at {first})")]
    DuplicateKey { pos: Pos, key: String, first: Pos },
    /// Well-formed YAML that is not a valid Compose file (or uses a value that cannot work).
    #[error("{pos}: {msg}")]
    Invalid { pos: Pos, msg: String },
    /// A file named by the Compose file (or the Compose file itself) cannot be read.
    #[error("{pos}: cannot read {path}: {source}")]
    ReadAt {
        pos: Pos,
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// No file given.
    #[error("Specify a Compose file (with --compose-file)")]
    NoFile,
}

impl Error {
    pub(crate) fn at(pos: &Pos, msg: impl Into<String>) -> Error {
        Error::Invalid {
            pos: pos.clone(),
            msg: msg.into(),
        }
    }
}

/// One Compose file's name (as the user wrote it, used in positions) and text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Compose files loaded, interpolated and merged, ready to convert.
#[derive(Debug, Clone)]
pub struct Project {
    /// The merged document.
    pub root: Node,
    /// The folder of the first file: relative paths (configs, secrets, binds, env files)
    /// resolve against it.
    pub working_dir: PathBuf,
    /// The variables (environment over `.env`), also used for `environment: [NAME]`.
    pub env: BTreeMap<String, String>,
    /// Things the user should know: unset variables, ignored keys.
    pub warnings: Vec<String>,
    /// The files as given (before interpolation).
    pub sources: Vec<Source>,
    /// The variables the files used that have a value: what a stack stores of its
    /// environment (not the whole environment, which may hold unrelated credentials).
    pub used_env: BTreeMap<String, String>,
}

impl Project {
    /// The top-level `name:` of the merged files (Compose's project name), if any.
    pub fn name(&self) -> Option<&str> {
        self.root
            .get("name")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
    }
}

/// Reads the Compose files at `paths` (the first one's folder is the working directory and
/// may hold a `.env`), with the process environment `env`.
pub fn load_files(paths: &[PathBuf], env: &BTreeMap<String, String>) -> Result<Project, Error> {
    load_files_with_env_files(paths, env, &[])
}

/// [`load_files`] with Compose's `--env-file`s: when any are given they replace the `.env`
/// next to the first file, later files overriding earlier ones; the environment still wins.
pub fn load_files_with_env_files(
    paths: &[PathBuf],
    env: &BTreeMap<String, String>,
    env_files: &[PathBuf],
) -> Result<Project, Error> {
    let first = paths.first().ok_or(Error::NoFile)?;
    let working_dir = std::path::absolute(first)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut sources = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        sources.push(Source {
            name: path.display().to_string(),
            text,
        });
    }
    let mut vars = BTreeMap::new();
    if env_files.is_empty() {
        if let Ok(text) = std::fs::read_to_string(working_dir.join(".env")) {
            vars = interpolate::parse_env_file(&text);
        }
    }
    for file in env_files {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.display().to_string(),
            source,
        })?;
        vars.extend(interpolate::parse_env_file(&text));
    }
    // The environment wins over `.env`.
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    load_sources(&sources, &working_dir, vars)
}

/// Loads Compose texts: parse, interpolate with `vars`, check the top level, merge in order.
pub fn load_sources(
    sources: &[Source],
    working_dir: &Path,
    vars: BTreeMap<String, String>,
) -> Result<Project, Error> {
    if sources.is_empty() {
        return Err(Error::NoFile);
    }
    let mut warnings = Vec::new();
    let mut missing = std::collections::BTreeSet::new();
    let mut merged: Option<Node> = None;
    let used = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let lookup = |name: &str| {
        used.borrow_mut().insert(name.to_string());
        vars.get(name).cloned()
    };
    for source in sources {
        let mut doc = yaml::parse(&source.name, &source.text)?;
        if doc.as_map().is_none() {
            return Err(Error::at(
                &doc.pos,
                format!("top-level object must be a mapping, not {}", doc.kind()),
            ));
        }
        let mut v = interpolate::Vars::new(&lookup);
        interpolate::interpolate(&mut doc, &mut v)?;
        missing.extend(v.missing);
        check_top_level(&doc)?;
        merge::normalize(&mut doc)?;
        merged = Some(match merged {
            None => doc,
            Some(base) => merge::merge_documents(base, doc),
        });
    }
    for name in missing {
        warnings.push(format!(
            "The {name:?} variable is not set. Defaulting to a blank string."
        ));
    }
    let root = merged.unwrap_or_else(|| Node::new(Pos::new(&"".into(), 1, 1), Value::Null));
    warnings.extend(convert::unsupported_warnings(&root));
    let used_env = used
        .into_inner()
        .into_iter()
        .filter_map(|name| vars.get(&name).map(|v| (name, v.clone())))
        .collect();
    Ok(Project {
        root,
        working_dir: working_dir.to_path_buf(),
        env: vars,
        warnings,
        sources: sources.to_vec(),
        used_env,
    })
}

const TOP_LEVEL: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

fn check_top_level(doc: &Node) -> Result<(), Error> {
    for (key, value) in doc.as_map().unwrap_or_default() {
        let name = key.as_str().unwrap_or_default();
        if name.starts_with("x-") {
            continue;
        }
        if !TOP_LEVEL.contains(&name) {
            return Err(Error::at(
                &key.pos,
                format!(
                    "unknown top-level key {name:?} (expected one of: {})",
                    TOP_LEVEL.join(", ")
                ),
            ));
        }
        match name {
            "version" | "name" => {
                if value.as_str().is_none() {
                    return Err(Error::at(
                        &value.pos,
                        format!("{name} must be a string, not {}", value.kind()),
                    ));
                }
                if name == "version" {
                    let v = value.as_str().unwrap_or_default();
                    if !(v.starts_with('3') || v.starts_with('2')) {
                        return Err(Error::at(
                            &value.pos,
                            format!("unsupported Compose file version {v:?}: use 3.x or leave version out"),
                        ));
                    }
                }
            }
            "include" => {
                return Err(Error::at(
                    &key.pos,
                    "include is not supported by stack deploy: pass each file with -c",
                ))
            }
            _ => {
                if !(value.is_null() || value.as_map().is_some()) {
                    return Err(Error::at(
                        &value.pos,
                        format!("{name} must be a mapping, not {}", value.kind()),
                    ));
                }
            }
        }
    }
    Ok(())
}
