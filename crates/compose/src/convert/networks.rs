//! Networks: the top-level `networks:` (checked, external ones resolved to their cluster
//! names), each service's attachments (`networks:` of a service, aliases, driver options) and
//! the overlay networks the stack creates — only those its services use, as docker does.

use std::collections::{BTreeMap, BTreeSet};

use shoal_types::network::{IPAMConfig, NetworkCreateRequest, IPAM};
use shoal_types::swarm::NetworkAttachmentConfig;

use super::read::{
    entries, external, external_name, field, fields, opt_bool, opt_text, string_map, strings,
    text_or_empty, Entries,
};
use super::{place, scoped, with_namespace, Ctx, NetworkCreate, Positions};
use crate::yaml::{Node, Pos, Value};
use crate::Error;

#[derive(Debug, Clone, Default)]
pub(super) struct NetworkDef {
    /// Where it is declared (its key under `networks:`).
    pub(super) pos: Option<Pos>,
    pub(super) external: bool,
    /// `name:` (or the external name).
    pub(super) name: Option<String>,
    pub(super) driver: String,
    pub(super) driver_opts: BTreeMap<String, String>,
    pub(super) internal: bool,
    pub(super) attachable: bool,
    pub(super) ipam_driver: String,
    pub(super) subnets: Vec<String>,
    pub(super) labels: BTreeMap<String, String>,
}

pub(super) fn load_networks(root: &Node) -> Result<BTreeMap<String, NetworkDef>, Error> {
    let mut out = BTreeMap::new();
    let Some(section) = root.get("networks") else {
        return Ok(out);
    };
    for (key, node) in entries(section, "networks")? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("networks.{name}");
        let e = fields(
            node,
            &what,
            &[
                "driver",
                "driver_opts",
                "external",
                "internal",
                "attachable",
                "ipam",
                "labels",
                "name",
                "enable_ipv6",
            ],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = NetworkDef {
            pos: Some(key.pos.clone()),
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            internal: opt_bool(e, "internal", &what)?.unwrap_or(false),
            attachable: opt_bool(e, "attachable", &what)?.unwrap_or(false),
            ..Default::default()
        };
        if let Some(n) = field(e, "driver_opts") {
            def.driver_opts = string_map(n, &format!("{what}.driver_opts"))?;
        }
        if let Some(n) = field(e, "labels") {
            def.labels = string_map(n, &format!("{what}.labels"))?;
        }
        if let Some(ipam) = field(e, "ipam") {
            let iw = format!("{what}.ipam");
            let ie = fields(ipam, &iw, &["driver", "config", "options"])?;
            def.ipam_driver = text_or_empty(ie, "driver", &iw)?;
            if let Some(configs) = field(ie, "config") {
                for c in configs
                    .as_seq()
                    .ok_or_else(|| Error::at(&configs.pos, format!("{iw}.config must be a list")))?
                {
                    let ce = fields(
                        c,
                        &format!("{iw}.config"),
                        &["subnet", "ip_range", "gateway", "aux_addresses"],
                    )?;
                    def.subnets.push(text_or_empty(ce, "subnet", &iw)?);
                }
            }
        }
        if ext {
            def.name = Some(external_name("network", key, ext_name, def.name)?);
        }
        out.insert(name, def);
    }
    Ok(out)
}

impl Ctx<'_> {
    /// Service `service`'s network attachments (the stack's `default` network when it names
    /// none), sorted by target, and the networks' names in the file.
    pub(super) fn service_networks(
        &self,
        service: &str,
        e: Entries<'_>,
        what: &str,
    ) -> Result<(Vec<NetworkAttachmentConfig>, Vec<String>), Error> {
        let declared: Vec<(Node, Node)> = match field(e, "networks") {
            Some(n) if !entries(n, "networks")?.is_empty() => entries(n, "networks")?.to_vec(),
            _ => vec![(
                Node::scalar(Pos::new(&"".into(), 0, 0), "default"),
                Node::new(Pos::new(&"".into(), 0, 0), Value::Null),
            )],
        };
        let mut out = Vec::new();
        for (k, v) in &declared {
            let name = k.as_str().unwrap_or_default();
            let def = self.networks.get(name);
            if def.is_none() && name != "default" {
                return Err(Error::at(
                    &k.pos,
                    format!("service {service}: undefined network {name:?} (declare it under the top-level networks)"),
                ));
            }
            let nw = format!("{what}.networks.{name}");
            let mut aliases = Vec::new();
            let mut driver_opts = BTreeMap::new();
            if !v.is_null() {
                let ve = fields(
                    v,
                    &nw,
                    &[
                        "aliases",
                        "ipv4_address",
                        "ipv6_address",
                        "driver_opts",
                        "priority",
                        "link_local_ips",
                        "mac_address",
                    ],
                )?;
                if let Some(a) = field(ve, "aliases") {
                    aliases = strings(a, &format!("{nw}.aliases"), false)?;
                }
                if let Some(d) = field(ve, "driver_opts") {
                    driver_opts = string_map(d, &format!("{nw}.driver_opts"))?;
                }
            }
            let target = def
                .and_then(|d| d.name.clone())
                .unwrap_or_else(|| scoped(self.ns, name));
            if !matches!(target.as_str(), "default" | "bridge" | "host" | "none")
                && !target.starts_with("container:")
            {
                aliases.push(service.to_string());
            }
            out.push(NetworkAttachmentConfig {
                target,
                aliases,
                driver_opts,
            });
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
        let used = declared
            .iter()
            .map(|(k, _)| k.as_str().unwrap_or_default().to_string())
            .collect();
        Ok((out, used))
    }

    /// The networks the stack creates (those its services use, sorted by name) and the
    /// external ones its services use, with where each is declared.
    pub(super) fn stack_networks(
        &self,
        used: &BTreeSet<String>,
        positions: &mut Positions,
    ) -> (Vec<NetworkCreate>, Vec<String>) {
        let mut networks = Vec::new();
        let mut external_networks = Vec::new();
        for internal in used {
            let def = self.networks.get(internal).cloned().unwrap_or_default();
            if def.external {
                let name = def.name.clone().unwrap_or_else(|| internal.clone());
                place(positions, "network", &name, &def.pos);
                external_networks.push(name);
                continue;
            }
            let ipam = (!def.ipam_driver.is_empty() || !def.subnets.is_empty()).then(|| IPAM {
                driver: def.ipam_driver.clone(),
                config: def
                    .subnets
                    .iter()
                    .map(|s| IPAMConfig {
                        subnet: s.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            });
            let name = def
                .name
                .clone()
                .unwrap_or_else(|| scoped(self.ns, internal));
            place(positions, "network", &name, &def.pos);
            networks.push(NetworkCreate {
                name: name.clone(),
                request: NetworkCreateRequest {
                    name,
                    driver: if def.driver.is_empty() {
                        "overlay".into()
                    } else {
                        def.driver.clone()
                    },
                    internal: def.internal,
                    attachable: def.attachable,
                    ipam,
                    options: def.driver_opts.clone(),
                    labels: with_namespace(self.ns, def.labels.clone()),
                    ..Default::default()
                },
            });
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        (networks, external_networks)
    }
}
