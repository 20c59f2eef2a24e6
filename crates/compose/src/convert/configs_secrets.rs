//! Configs and secrets: the top-level `configs:` and `secrets:` (data read from a file, given
//! as `content:` or taken from an `environment:` variable; external ones resolved to their
//! names), each service's references to them (target file, uid, gid, mode), and the specs of
//! those the stack creates.

use std::collections::BTreeMap;

use shoal_types::swarm::{
    ConfigReference, ConfigReferenceFileTarget, ConfigSpec, ContainerSpec, Driver, SecretReference,
    SecretReferenceFileTarget, SecretSpec, ServiceSpec,
};

use super::read::{
    entries, external, external_name, field, fields, opt_integer, opt_string_map, opt_text, text,
    text_or_empty, Entries,
};
use super::{place, scoped, with_namespace, Ctx, Positions};
use crate::yaml::{Node, Pos, Value};
use crate::{Error, Project};

/// Configs and secrets are declared, read and referred to alike; this says which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Config,
    Secret,
}

impl Kind {
    /// The top-level section, and the service key that refers to them.
    fn section(self) -> &'static str {
        match self {
            Kind::Config => "configs",
            Kind::Secret => "secrets",
        }
    }

    /// The word for one, in messages and positions.
    fn noun(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Secret => "secret",
        }
    }
}

/// One entry of the top-level `configs:` or `secrets:`.
#[derive(Debug, Clone, Default)]
pub(super) struct FileObjectDef {
    /// Where it is declared (its key under `configs:` or `secrets:`).
    pub(super) pos: Option<Pos>,
    pub(super) external: bool,
    pub(super) name: Option<String>,
    pub(super) data: Vec<u8>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) driver: String,
    pub(super) driver_opts: BTreeMap<String, String>,
    pub(super) template_driver: String,
}

/// The top-level configs or secrets, their data read (files relative to the project's folder,
/// variables from its environment).
pub(super) fn load_file_objects(
    root: &Node,
    of: Kind,
    project: &Project,
) -> Result<BTreeMap<String, FileObjectDef>, Error> {
    let section_name = of.section();
    let kind = of.noun();
    let mut out = BTreeMap::new();
    let Some(section) = root.get(section_name) else {
        return Ok(out);
    };
    for (key, node) in entries(section, section_name)? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("{section_name}.{name}");
        let e = fields(
            node,
            &what,
            &[
                "file",
                "external",
                "labels",
                "name",
                "driver",
                "driver_opts",
                "template_driver",
                "content",
                "environment",
            ],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = FileObjectDef {
            pos: Some(key.pos.clone()),
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            template_driver: text_or_empty(e, "template_driver", &what)?,
            ..Default::default()
        };
        def.labels = opt_string_map(e, "labels", &what)?.unwrap_or_default();
        def.driver_opts = opt_string_map(e, "driver_opts", &what)?.unwrap_or_default();
        let file = field(e, "file");
        if ext {
            def.name = Some(external_name(kind, key, ext_name, def.name)?);
        } else if !def.driver.is_empty() {
            if let Some(f) = file {
                return Err(Error::at(
                    &f.pos,
                    format!("{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"),
                ));
            }
        } else if let Some(f) = file {
            let path = text(f, &format!("{what}.file"))?;
            let full = project.working_dir.join(&path);
            def.data = std::fs::read(&full).map_err(|source| Error::ReadAt {
                pos: f.pos.clone(),
                path: full.display().to_string(),
                source,
            })?;
        } else if let Some(c) = field(e, "content") {
            def.data = text(c, &format!("{what}.content"))?.into_bytes();
        } else if let Some(v) = field(e, "environment") {
            let var = text(v, &format!("{what}.environment"))?;
            def.data = project
                .env
                .get(&var)
                .ok_or_else(|| {
                    Error::at(
                        &v.pos,
                        format!("{kind} {name}: variable {var:?} is not set"),
                    )
                })?
                .clone()
                .into_bytes();
        } else {
            return Err(Error::at(
                &key.pos,
                format!("{kind} {name:?} needs `file:` (or `external: true`)"),
            ));
        }
        out.insert(name, def);
    }
    Ok(out)
}

impl Ctx<'_> {
    /// A service's references to configs or secrets: their names in the cluster and the file
    /// each becomes in the container, sorted by name.
    fn file_refs(
        &self,
        e: Entries<'_>,
        of: Kind,
        what: &str,
    ) -> Result<Vec<(String, ConfigReferenceFileTarget)>, Error> {
        let key = of.section();
        let Some(list) = field(e, key) else {
            return Ok(Vec::new());
        };
        let kw = format!("{what}.{key}");
        let defs = match of {
            Kind::Config => &self.configs,
            Kind::Secret => &self.secrets,
        };
        let kind = of.noun();
        let items = list.as_seq().ok_or_else(|| {
            Error::at(
                &list.pos,
                format!("{kw} must be a list, not {}", list.kind()),
            )
        })?;
        let mut out = Vec::new();
        for item in items {
            let (source, target, uid, gid, mode) = match &item.value {
                Value::Scalar { text, .. } => (
                    text.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    None,
                ),
                Value::Map(_) => {
                    let ie = fields(item, &kw, &["source", "target", "uid", "gid", "mode"])?;
                    let source = opt_text(ie, "source", &kw)?.ok_or_else(|| {
                        Error::at(
                            &item.pos,
                            format!("{kw}: a {kind} reference needs a source"),
                        )
                    })?;
                    let mode = opt_integer(ie, "mode", &kw)?;
                    (
                        source,
                        text_or_empty(ie, "target", &kw)?,
                        text_or_empty(ie, "uid", &kw)?,
                        text_or_empty(ie, "gid", &kw)?,
                        mode,
                    )
                }
                _ => {
                    return Err(Error::at(
                        &item.pos,
                        format!(
                            "{kw} entries must be names or mappings, not {}",
                            item.kind()
                        ),
                    ))
                }
            };
            let def = defs.get(&source).ok_or_else(|| {
                Error::at(
                    &item.pos,
                    format!("undefined {kind} {source:?} (declare it under the top-level {key})"),
                )
            })?;
            let name = def.name.clone().unwrap_or_else(|| scoped(self.ns, &source));
            let file = ConfigReferenceFileTarget {
                name: if target.is_empty() {
                    source.clone()
                } else {
                    target
                },
                uid: if uid.is_empty() { "0".into() } else { uid },
                gid: if gid.is_empty() { "0".into() } else { gid },
                mode: u32::try_from(mode.unwrap_or(0o444))
                    .map_err(|_| Error::at(&item.pos, format!("{kw}: invalid file mode")))?,
            };
            out.push((name, file));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A service's `secrets:` as secret references (by name: the deploy finds the IDs).
    pub(super) fn secret_refs(
        &self,
        e: Entries<'_>,
        what: &str,
    ) -> Result<Vec<SecretReference>, Error> {
        Ok(self
            .file_refs(e, Kind::Secret, what)?
            .into_iter()
            .map(|(name, f)| SecretReference {
                file: Some(SecretReferenceFileTarget {
                    name: f.name,
                    uid: f.uid,
                    gid: f.gid,
                    mode: f.mode,
                }),
                secret_id: String::new(),
                secret_name: name,
            })
            .collect())
    }

    /// A service's `configs:` as config references (by name).
    pub(super) fn config_refs(
        &self,
        e: Entries<'_>,
        what: &str,
    ) -> Result<Vec<ConfigReference>, Error> {
        Ok(self
            .file_refs(e, Kind::Config, what)?
            .into_iter()
            .map(|(name, f)| ConfigReference {
                file: Some(f),
                runtime: None,
                config_id: String::new(),
                config_name: name,
            })
            .collect())
    }

    /// The secrets the stack creates and the external ones its services use (external ones
    /// no service uses are left out), with where each is declared.
    pub(super) fn stack_secrets(
        &self,
        services: &BTreeMap<String, ServiceSpec>,
        positions: &mut Positions,
    ) -> (Vec<SecretSpec>, Vec<String>) {
        let used = |name: &str| {
            containers(services).any(|c| c.secrets.iter().any(|r| r.secret_name == name))
        };
        let (own, external) = self.split_external(&self.secrets, Kind::Secret, used, positions);
        let specs = own
            .into_iter()
            .map(|(name, def)| SecretSpec {
                name,
                labels: with_namespace(self.ns, def.labels.clone()),
                data: Some(def.data.clone()),
                driver: (!def.driver.is_empty()).then(|| Driver {
                    name: def.driver.clone(),
                    options: def.driver_opts.clone(),
                }),
                templating: templating(def),
            })
            .collect();
        (specs, external)
    }

    /// The configs the stack creates and the external ones its services use.
    pub(super) fn stack_configs(
        &self,
        services: &BTreeMap<String, ServiceSpec>,
        positions: &mut Positions,
    ) -> (Vec<ConfigSpec>, Vec<String>) {
        let used = |name: &str| {
            containers(services).any(|c| c.configs.iter().any(|r| r.config_name == name))
        };
        let (own, external) = self.split_external(&self.configs, Kind::Config, used, positions);
        let specs = own
            .into_iter()
            .map(|(name, def)| ConfigSpec {
                name,
                labels: with_namespace(self.ns, def.labels.clone()),
                data: def.data.clone(),
                templating: templating(def),
            })
            .collect();
        (specs, external)
    }

    /// The objects of `defs` by their names in the cluster: those the stack owns, and the
    /// names of the external ones `used` says a service refers to. Each is placed.
    fn split_external<'d>(
        &self,
        defs: &'d BTreeMap<String, FileObjectDef>,
        of: Kind,
        used: impl Fn(&str) -> bool,
        positions: &mut Positions,
    ) -> (Vec<(String, &'d FileObjectDef)>, Vec<String>) {
        let mut own = Vec::new();
        let mut external = Vec::new();
        for (key, def) in defs {
            let name = def.name.clone().unwrap_or_else(|| scoped(self.ns, key));
            place(positions, of.noun(), &name, &def.pos);
            if !def.external {
                own.push((name, def));
            } else if used(&name) {
                external.push(name);
            }
        }
        (own, external)
    }
}

fn containers(services: &BTreeMap<String, ServiceSpec>) -> impl Iterator<Item = &ContainerSpec> {
    services
        .values()
        .filter_map(|spec| spec.task_template.container_spec.as_ref())
}

fn templating(def: &FileObjectDef) -> Option<Driver> {
    (!def.template_driver.is_empty()).then(|| Driver {
        name: def.template_driver.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::read::entries;
    use crate::convert::testing::{message, node, project};

    const FILE: &str = "configs:
  app: {file: ./app.conf, labels: {c: \"1\"}, template_driver: golang}
  inline: {content: hello}
  extconf: {external: true}
secrets:
  pw: {file: pw.txt}
  fromenv: {environment: SECRET_VAR}
  extsec: {external: true, name: real-secret}
  unusedext: {external: true}
  drv: {driver: vault, driver_opts: {a: b}}
";

    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.conf"), "conf").unwrap();
        std::fs::write(dir.path().join("pw.txt"), "s3cret").unwrap();
        dir
    }

    #[test]
    fn data_comes_from_a_file_content_or_a_variable() {
        let dir = files();
        let p = project(FILE, dir.path(), &[("SECRET_VAR", "sv")]);
        let configs = load_file_objects(&p.root, Kind::Config, &p).unwrap();
        assert_eq!(configs["app"].data, b"conf");
        assert_eq!(configs["inline"].data, b"hello");
        assert_eq!(configs["extconf"].name.as_deref(), Some("extconf"));
        let secrets = load_file_objects(&p.root, Kind::Secret, &p).unwrap();
        assert_eq!(secrets["pw"].data, b"s3cret");
        assert_eq!(secrets["fromenv"].data, b"sv");
        assert!(secrets["drv"].data.is_empty());
    }

    #[test]
    fn a_config_or_secret_without_data_or_with_conflicting_keys_is_refused() {
        let dir = files();
        let refuse = |text: &str, kind: Kind| {
            let p = project(text, dir.path(), &[]);
            message(load_file_objects(&p.root, kind, &p))
        };
        assert_eq!(
            refuse("secrets:\n  s: {labels: {a: b}}\n", Kind::Secret),
            "t.yml:2:3: secret \"s\" needs `file:` (or `external: true`)"
        );
        assert_eq!(
            refuse("secrets:\n  s: {environment: NOPE}\n", Kind::Secret),
            "t.yml:2:20: secret s: variable \"NOPE\" is not set"
        );
        assert_eq!(
            refuse("configs:\n  c: {driver: x, file: a}\n", Kind::Config),
            "t.yml:2:24: config c: config.driver and config.file conflict; only use config.driver"
        );
        assert!(
            refuse("configs:\n  c: {file: gone.conf}\n", Kind::Config).starts_with(&format!(
                "t.yml:2:13: cannot read {}",
                dir.path().join("gone.conf").display()
            ))
        );
    }

    #[test]
    fn references_default_to_the_source_name_root_and_mode_0444() {
        let dir = files();
        let p = project(FILE, dir.path(), &[("SECRET_VAR", "sv")]);
        let ctx = Ctx::new(&p, "app").unwrap();
        let n = node("{configs: [app, {source: inline, target: /etc/i, uid: \"1\", gid: \"2\", mode: 0440}], secrets: [extsec]}");
        let e = entries(&n, "s").unwrap();
        let configs = ctx.config_refs(e, "services.web").unwrap();
        let seen: Vec<_> = configs
            .iter()
            .map(|r| {
                let f = r.file.as_ref().unwrap();
                (
                    r.config_name.as_str(),
                    f.name.as_str(),
                    f.uid.as_str(),
                    f.gid.as_str(),
                    f.mode,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("app_app", "app", "0", "0", 0o444),
                ("app_inline", "/etc/i", "1", "2", 0o440)
            ]
        );
        let secrets = ctx.secret_refs(e, "services.web").unwrap();
        assert_eq!(secrets[0].secret_name, "real-secret");
        let n = node("{secrets: [nope]}");
        assert_eq!(
            message(ctx.secret_refs(entries(&n, "s").unwrap(), "services.web")),
            "t.yml:1:15: undefined secret \"nope\" (declare it under the top-level secrets)"
        );
    }

    #[test]
    fn the_stack_creates_its_own_objects_and_lists_the_external_ones_in_use() {
        let dir = files();
        let p = project(
            &format!("{FILE}services:\n  web: {{image: x, secrets: [extsec], configs: [app]}}\n"),
            dir.path(),
            &[("SECRET_VAR", "sv")],
        );
        let stack = crate::convert(&p, "app").unwrap();
        let ctx = Ctx::new(&p, "app").unwrap();
        let mut positions = Positions::new();
        let (secrets, external) = ctx.stack_secrets(&stack.services, &mut positions);
        let names: Vec<_> = secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["app_drv", "app_fromenv", "app_pw"]);
        assert_eq!(external, ["real-secret"]);
        assert_eq!(secrets[0].driver.as_ref().unwrap().name, "vault");
        assert_eq!(
            positions[&("secret".to_string(), "unusedext".to_string())],
            "t.yml:9:3"
        );
        let (configs, external) = ctx.stack_configs(&stack.services, &mut positions);
        assert_eq!(configs[0].name, "app_app");
        assert_eq!(configs[0].templating.as_ref().unwrap().name, "golang");
        assert!(external.is_empty(), "extconf is not used");
    }
}
