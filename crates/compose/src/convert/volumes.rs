//! Volumes: the top-level `volumes:` (checked, external ones resolved to their names) and each
//! service's `volumes:` (short `SOURCE:TARGET[:MODE]` strings and the long form) as the
//! container's mounts — named volumes scoped to the stack with their driver, binds resolved
//! against the Compose file's folder, tmpfs with its size and mode. Bind options a Swarm
//! service cannot honour (`selinux`, `create_host_path: true`) are warned about where written.

use std::collections::BTreeMap;
use std::path::Path;

use shoal_types::swarm::{BindOptions, Driver, Mount, MountType, TmpfsOptions, VolumeOptions};

use super::read::{
    entries, external, external_name, field, fields, integer, opt_bool, opt_string_map, opt_text,
    size, text_or_empty, Entries,
};
use super::{scoped, with_namespace, Ctx};
use crate::yaml::{Node, Value};
use crate::{units, Error};

/// One entry of the top-level `volumes:`.
#[derive(Debug, Clone, Default)]
pub(super) struct VolumeDef {
    pub(super) external: bool,
    pub(super) name: Option<String>,
    pub(super) driver: String,
    pub(super) driver_opts: Option<BTreeMap<String, String>>,
    pub(super) labels: BTreeMap<String, String>,
}

/// The top-level volumes by their key in the file; an external one takes no driver,
/// driver options or labels.
pub(super) fn load_volumes(root: &Node) -> Result<BTreeMap<String, VolumeDef>, Error> {
    let mut out = BTreeMap::new();
    let Some(section) = root.get("volumes") else {
        return Ok(out);
    };
    for (key, node) in entries(section, "volumes")? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("volumes.{name}");
        let e = fields(
            node,
            &what,
            &["driver", "driver_opts", "external", "labels", "name"],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = VolumeDef {
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            ..Default::default()
        };
        def.driver_opts = opt_string_map(e, "driver_opts", &what)?;
        def.labels = opt_string_map(e, "labels", &what)?.unwrap_or_default();
        if ext {
            for (k, set) in [
                ("driver", !def.driver.is_empty()),
                ("driver_opts", def.driver_opts.is_some()),
                ("labels", !def.labels.is_empty()),
            ] {
                if set {
                    return Err(Error::at(
                        &key.pos,
                        format!("conflicting parameters \"external\" and {k:?} specified for volume {name:?}"),
                    ));
                }
            }
            def.name = Some(external_name("volume", key, ext_name, def.name)?);
        }
        out.insert(name, def);
    }
    Ok(out)
}

/// The warning for key `key` of a bind mount's options `be` (at `bw`), which Swarm cannot
/// honour, saying `why`.
fn ignored_bind_key(be: Entries<'_>, key: &str, bw: &str, why: &str) -> String {
    let pos = be
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(k, _)| k.pos.to_string())
        .unwrap_or_default();
    format!("{pos}: ignoring {bw}.{key}: {why}")
}

/// A file mode as the Compose specification takes it: a number as YAML reads it (`0o1777`,
/// `01777` octal, else decimal), or a string of octal digits (`"1777"`, `"0o1777"`).
fn file_mode(node: &Node, what: &str) -> Result<u32, Error> {
    let value = match &node.value {
        Value::Scalar { text, quoted: true } => {
            let digits = text.strip_prefix("0o").unwrap_or(text);
            i64::from_str_radix(digits, 8).map_err(|_| {
                Error::at(
                    &node.pos,
                    format!("{what} must be an octal file mode (like \"1777\"), not {text:?}"),
                )
            })?
        }
        _ => integer(node, what)?,
    };
    u32::try_from(value)
        .map_err(|_| Error::at(&node.pos, format!("{what}: invalid file mode {value}")))
}

impl Ctx<'_> {
    /// A service's `volumes:` as the container's mounts, in the order written.
    pub(super) fn mounts(&mut self, e: Entries<'_>, what: &str) -> Result<Vec<Mount>, Error> {
        let Some(list) = field(e, "volumes") else {
            return Ok(Vec::new());
        };
        let vw = format!("{what}.volumes");
        let items = list.as_seq().ok_or_else(|| {
            Error::at(
                &list.pos,
                format!("{vw} must be a list, not {}", list.kind()),
            )
        })?;
        let mut mounts = Vec::new();
        for item in items {
            mounts.push(self.mount(item, &vw)?);
        }
        Ok(mounts)
    }

    /// One entry of a service's `volumes:` (at `vw`, `services.NAME.volumes`).
    fn mount(&mut self, item: &Node, vw: &str) -> Result<Mount, Error> {
        struct Spec {
            kind: String,
            source: String,
            target: String,
            read_only: bool,
            consistency: String,
            propagation: Option<String>,
            no_copy: Option<bool>,
            subpath: String,
            tmpfs_size: Option<i64>,
            tmpfs_mode: Option<u32>,
            has_bind: bool,
            has_volume: bool,
            has_tmpfs: bool,
        }
        let spec = match &item.value {
            Value::Scalar { text: s, .. } => {
                let v = units::parse_volume_spec(s);
                if let Some(err) = v.error {
                    return Err(Error::at(&item.pos, format!("{vw}: {err}")));
                }
                Spec {
                    kind: v.kind.to_string(),
                    source: v.source,
                    target: v.target,
                    read_only: v.read_only,
                    consistency: String::new(),
                    has_bind: v.propagation.is_some(),
                    propagation: v.propagation,
                    has_volume: v.no_copy,
                    no_copy: v.no_copy.then_some(true),
                    subpath: String::new(),
                    tmpfs_size: None,
                    tmpfs_mode: None,
                    has_tmpfs: false,
                }
            }
            Value::Map(_) => {
                let me = fields(
                    item,
                    vw,
                    &[
                        "type",
                        "source",
                        "target",
                        "read_only",
                        "consistency",
                        "bind",
                        "volume",
                        "tmpfs",
                        "image",
                    ],
                )?;
                let kind = opt_text(me, "type", vw)?.ok_or_else(|| {
                    Error::at(
                        &item.pos,
                        format!("{vw}: a long-syntax volume needs a type (volume, bind or tmpfs)"),
                    )
                })?;
                let mut s = Spec {
                    kind,
                    source: text_or_empty(me, "source", vw)?,
                    target: text_or_empty(me, "target", vw)?,
                    read_only: opt_bool(me, "read_only", vw)?.unwrap_or(false),
                    consistency: text_or_empty(me, "consistency", vw)?,
                    propagation: None,
                    no_copy: None,
                    subpath: String::new(),
                    tmpfs_size: None,
                    tmpfs_mode: None,
                    has_bind: false,
                    has_volume: false,
                    has_tmpfs: false,
                };
                if let Some(b) = field(me, "bind") {
                    let be = fields(
                        b,
                        &format!("{vw}.bind"),
                        &["propagation", "create_host_path", "selinux"],
                    )?;
                    s.has_bind = true;
                    s.propagation = opt_text(be, "propagation", vw)?;
                    let bw = format!("{vw}.bind");
                    // Swarm never creates a bind source (a task whose source is missing
                    // fails), which is what `create_host_path: false` asks for.
                    if opt_bool(be, "create_host_path", &bw)? == Some(true) {
                        self.warnings.push(ignored_bind_key(be, "create_host_path", &bw,
                            "a Swarm task never creates its bind source: it fails when the path does not exist on the node"));
                    }
                    if opt_text(be, "selinux", &bw)?.is_some() {
                        self.warnings.push(ignored_bind_key(
                            be,
                            "selinux",
                            &bw,
                            "a Swarm service's bind mounts cannot relabel their source for SELinux",
                        ));
                    }
                }
                if let Some(v) = field(me, "volume") {
                    let ve = fields(v, &format!("{vw}.volume"), &["nocopy", "subpath"])?;
                    s.has_volume = true;
                    s.no_copy = opt_bool(ve, "nocopy", vw)?;
                    s.subpath = text_or_empty(ve, "subpath", vw)?;
                }
                if let Some(t) = field(me, "tmpfs") {
                    let te = fields(t, &format!("{vw}.tmpfs"), &["size", "mode"])?;
                    s.has_tmpfs = true;
                    s.tmpfs_size = field(te, "size")
                        .map(|n| size(n, &format!("{vw}.tmpfs.size")))
                        .transpose()?;
                    s.tmpfs_mode = field(te, "mode")
                        .map(|n| file_mode(n, &format!("{vw}.tmpfs.mode")))
                        .transpose()?;
                }
                s
            }
            _ => {
                return Err(Error::at(
                    &item.pos,
                    format!(
                        "{vw} entries must be strings or mappings, not {}",
                        item.kind()
                    ),
                ))
            }
        };
        if spec.target.is_empty() {
            return Err(Error::at(
                &item.pos,
                format!("{vw}: a mount needs a target"),
            ));
        }
        let incompatible = |what: &str, kind: &str| {
            Err(Error::at(
                &item.pos,
                format!("{vw}: {what} options are incompatible with type {kind}"),
            ))
        };
        let mut mount = Mount {
            target: spec.target.clone(),
            read_only: spec.read_only,
            consistency: spec.consistency.clone(),
            ..Default::default()
        };
        match spec.kind.as_str() {
            "volume" => {
                mount.r#type = MountType::Volume;
                if spec.has_bind {
                    return incompatible("bind", "volume");
                }
                if spec.has_tmpfs {
                    return incompatible("tmpfs", "volume");
                }
                if spec.source.is_empty() {
                    return Ok(mount);
                }
                let def = self.volumes.get(&spec.source).ok_or_else(|| {
                    Error::at(
                        &item.pos,
                        format!(
                            "undefined volume {:?} (declare it under the top-level volumes)",
                            spec.source
                        ),
                    )
                })?;
                mount.source = def
                    .name
                    .clone()
                    .unwrap_or_else(|| scoped(self.ns, &spec.source));
                let mut options = VolumeOptions {
                    no_copy: spec.no_copy.unwrap_or(false),
                    subpath: spec.subpath.clone(),
                    ..Default::default()
                };
                if !def.external {
                    options.labels = with_namespace(self.ns, def.labels.clone());
                    if !def.driver.is_empty() || def.driver_opts.is_some() {
                        options.driver_config = Some(Driver {
                            name: def.driver.clone(),
                            options: def.driver_opts.clone().unwrap_or_default(),
                        });
                    }
                }
                mount.volume_options = Some(options);
            }
            "bind" => {
                mount.r#type = MountType::Bind;
                if spec.source.is_empty() {
                    return Err(Error::at(
                        &item.pos,
                        format!("{vw}: invalid bind source, source cannot be empty"),
                    ));
                }
                if spec.has_volume {
                    return incompatible("volume", "bind");
                }
                if spec.has_tmpfs {
                    return incompatible("tmpfs", "bind");
                }
                mount.source = self.bind_path(&spec.source);
                if spec.has_bind {
                    mount.bind_options = Some(BindOptions {
                        propagation: spec.propagation.clone().unwrap_or_default(),
                        ..Default::default()
                    });
                }
            }
            "tmpfs" => {
                mount.r#type = MountType::Tmpfs;
                if !spec.source.is_empty() {
                    return Err(Error::at(
                        &item.pos,
                        format!("{vw}: invalid tmpfs source, source must be empty"),
                    ));
                }
                if spec.has_bind {
                    return incompatible("bind", "tmpfs");
                }
                if spec.has_volume {
                    return incompatible("volume", "tmpfs");
                }
                if spec.has_tmpfs {
                    mount.tmpfs_options = Some(TmpfsOptions {
                        size_bytes: spec.tmpfs_size.unwrap_or(0),
                        mode: spec.tmpfs_mode.unwrap_or(0),
                        ..Default::default()
                    });
                }
            }
            "npipe" => {
                mount.r#type = MountType::Npipe;
                mount.source = spec.source.clone();
            }
            other => {
                return Err(Error::at(
                    &item.pos,
                    format!(
                        "{vw}: volume type must be volume, bind, tmpfs or npipe, not {other:?}"
                    ),
                ))
            }
        }
        Ok(mount)
    }

    /// A bind source as the docker CLI resolves it: `~` is the home folder, relative paths
    /// are relative to the Compose file's folder.
    fn bind_path(&self, source: &str) -> String {
        let mut s = source.to_string();
        if let Some(rest) = s.strip_prefix('~') {
            if let Some(home) = self.project.env.get("HOME") {
                s = format!("{home}{rest}");
            }
        }
        if Path::new(&s).is_absolute() {
            return s;
        }
        let joined = self.project.working_dir.join(&s);
        // Clean `./` and `a/../` like Go's filepath.Join.
        let mut parts: Vec<String> = Vec::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    if parts.len() > 1 {
                        parts.pop();
                    }
                }
                std::path::Component::RootDir => parts.push(String::new()),
                other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
            }
        }
        let out = parts.join("/");
        if out.is_empty() {
            "/".into()
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::convert::testing::{message, node, project};

    const FILE: &str = "volumes:
  data: {driver: local, driver_opts: {type: none}, labels: {v: \"1\"}}
  ext: {external: {name: real-ext}}
  plain:
";

    fn mount(item: &str) -> Result<Mount, Error> {
        Ok(mount_and_warnings(item)?.0)
    }

    fn mount_and_warnings(item: &str) -> Result<(Mount, Vec<String>), Error> {
        let p = project(FILE, Path::new("/srv/app"), &[("HOME", "/home/u")]);
        let mut ctx = Ctx::new(&p, "app").unwrap();
        let m = ctx.mount(&node(item), "services.web.volumes")?;
        Ok((m, ctx.warnings))
    }

    #[test]
    fn tmpfs_mode_is_a_yaml_number_or_an_octal_string() {
        for (mode, want) in [
            ("01777", 0o1777),
            ("0o700", 0o700),
            ("\"1777\"", 0o1777),
            ("'0o755'", 0o755),
            ("448", 448),
        ] {
            let m = mount(&format!(
                "{{type: tmpfs, target: /t, tmpfs: {{mode: {mode}}}}}"
            ))
            .unwrap();
            assert_eq!(m.tmpfs_options.unwrap().mode, want, "{mode}");
        }
        let m = mount("{type: tmpfs, target: /t, tmpfs: {size: 1k}}").unwrap();
        assert_eq!(m.tmpfs_options.unwrap().mode, 0);
        assert_eq!(
            message(mount("{type: tmpfs, target: /t, tmpfs: {mode: \"rwx\"}}")),
            "t.yml:1:44: services.web.volumes.tmpfs.mode must be an octal file mode (like \"1777\"), not \"rwx\""
        );
        assert_eq!(
            message(mount("{type: tmpfs, target: /t, tmpfs: {mode: -1}}")),
            "t.yml:1:44: services.web.volumes.tmpfs.mode: invalid file mode -1"
        );
    }

    #[test]
    fn bind_options_swarm_cannot_honour_are_warned_about_where_written() {
        let (m, warnings) = mount_and_warnings(
            "{type: bind, source: /x, target: /t, bind: {create_host_path: true, selinux: z, propagation: rslave}}",
        )
        .unwrap();
        assert_eq!(m.bind_options.unwrap().propagation, "rslave");
        assert_eq!(
            warnings,
            [
                "t.yml:1:48: ignoring services.web.volumes.bind.create_host_path: a Swarm task never creates its bind source: it fails when the path does not exist on the node",
                "t.yml:1:72: ignoring services.web.volumes.bind.selinux: a Swarm service's bind mounts cannot relabel their source for SELinux",
            ]
        );
        let (_, warnings) = mount_and_warnings(
            "{type: bind, source: /x, target: /t, bind: {create_host_path: false}}",
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn top_level_volumes_refuse_settings_on_external_ones() {
        let p = project(FILE, Path::new("/"), &[]);
        let defs = load_volumes(&p.root).unwrap();
        assert_eq!(defs["ext"].name.as_deref(), Some("real-ext"));
        assert!(defs["plain"].driver_opts.is_none());
        let p = project(
            "volumes:\n  v: {external: true, driver: x}\n",
            Path::new("/"),
            &[],
        );
        assert_eq!(
            message(load_volumes(&p.root)),
            "t.yml:2:3: conflicting parameters \"external\" and \"driver\" specified for volume \"v\""
        );
    }

    #[test]
    fn an_external_volume_takes_its_name_but_not_two_names() {
        let p = project(
            "volumes:\n  v: {external: {name: a}, name: b}\n",
            Path::new("/"),
            &[],
        );
        assert_eq!(
            message(load_volumes(&p.root)),
            "t.yml:2:3: volume v: volume.external.name and volume.name conflict; only use volume.name"
        );
        let p = project(
            "volumes:\n  v: {external: true, name: b}\n  w: {external: true}\n",
            Path::new("/"),
            &[],
        );
        let defs = load_volumes(&p.root).unwrap();
        assert_eq!(defs["v"].name.as_deref(), Some("b"));
        assert_eq!(defs["w"].name.as_deref(), Some("w"));
    }

    #[test]
    fn named_volumes_are_scoped_to_the_stack_with_their_driver_and_external_ones_are_not() {
        let m = mount("data:/v:nocopy").unwrap();
        assert_eq!(
            (m.r#type, m.source.as_str()),
            (MountType::Volume, "app_data")
        );
        let options = m.volume_options.unwrap();
        assert!(options.no_copy);
        assert_eq!(options.labels["v"], "1");
        assert_eq!(options.driver_config.unwrap().options["type"], "none");
        let m = mount("ext:/e").unwrap();
        assert_eq!(m.source, "real-ext");
        assert!(m.volume_options.unwrap().labels.is_empty());
        assert_eq!(mount("/anon").unwrap().source, "");
        assert_eq!(
            message(mount("nope:/n")),
            "t.yml:1:4: undefined volume \"nope\" (declare it under the top-level volumes)"
        );
    }

    #[test]
    fn binds_resolve_against_the_compose_folder_and_home() {
        assert_eq!(mount("./data:/d").unwrap().source, "/srv/app/data");
        assert_eq!(mount("../up/../x:/u").unwrap().source, "/srv/x");
        assert_eq!(mount("~/x:/h").unwrap().source, "/home/u/x");
        let m = mount("/abs:/abs:ro,rshared").unwrap();
        assert!(m.read_only);
        assert_eq!(m.bind_options.unwrap().propagation, "rshared");
    }

    #[test]
    fn long_syntax_checks_the_type_against_its_options() {
        let m = mount("{type: tmpfs, target: /t, tmpfs: {size: 1k}}").unwrap();
        assert_eq!(m.tmpfs_options.unwrap().size_bytes, 1024);
        let m = mount("{type: volume, source: data, target: /v, volume: {subpath: sub}}").unwrap();
        assert_eq!(m.volume_options.unwrap().subpath, "sub");
        assert_eq!(
            message(mount("{type: tmpfs, source: x, target: /t}")),
            "t.yml:1:4: services.web.volumes: invalid tmpfs source, source must be empty"
        );
        assert_eq!(
            message(mount(
                "{type: bind, source: /x, target: /t, volume: {nocopy: true}}"
            )),
            "t.yml:1:4: services.web.volumes: volume options are incompatible with type bind"
        );
        assert_eq!(
            message(mount("{type: volume, target: /t, tmpfs: {size: 1}}")),
            "t.yml:1:4: services.web.volumes: tmpfs options are incompatible with type volume"
        );
        assert_eq!(
            message(mount("{source: x, target: /t}")),
            "t.yml:1:4: services.web.volumes: a long-syntax volume needs a type (volume, bind or tmpfs)"
        );
        assert_eq!(
            message(mount("{type: cluster, target: /t}")),
            "t.yml:1:4: services.web.volumes: volume type must be volume, bind, tmpfs or npipe, not \"cluster\""
        );
        assert_eq!(
            message(mount("{type: bind, target: /t}")),
            "t.yml:1:4: services.web.volumes: invalid bind source, source cannot be empty"
        );
        assert_eq!(
            message(mount("{type: volume}")),
            "t.yml:1:4: services.web.volumes: a mount needs a target"
        );
    }
}
