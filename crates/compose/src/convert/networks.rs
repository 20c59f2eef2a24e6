//! Networks: the top-level `networks:` (checked, external ones resolved to their cluster
//! names), each service's attachments (`networks:` of a service, aliases, driver options) and
//! the overlay networks the stack creates — only those its services use, as docker does —
//! with their IPAM pools and `enable_ipv6` as written: the managers refuse what they cannot
//! honour. Attachment keys a Swarm service cannot honour (fixed addresses, MAC, priority)
//! are warned about where written.

use std::collections::{BTreeMap, BTreeSet};

use shoal_types::network::{IPAMConfig, NetworkCreateRequest, IPAM};
use shoal_types::swarm::NetworkAttachmentConfig;

use super::read::{
    entries, external, external_name, field, fields, opt_bool, opt_string_map, opt_text,
    string_map, strings, text_or_empty, Entries,
};
use super::{place, scoped, with_namespace, Ctx, NetworkCreate, Positions};
use crate::yaml::{Node, Pos, Value};
use crate::Error;

/// One entry of the top-level `networks:`.
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
    pub(super) ipam_options: BTreeMap<String, String>,
    /// `ipam.config`: subnet, `ip_range`, `gateway` and `aux_addresses` of each pool.
    pub(super) ipam_config: Vec<IPAMConfig>,
    /// `enable_ipv6`, when set.
    pub(super) enable_ipv6: Option<bool>,
    pub(super) labels: BTreeMap<String, String>,
}

/// The top-level networks by their key in the file.
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
            enable_ipv6: opt_bool(e, "enable_ipv6", &what)?,
            ..Default::default()
        };
        def.driver_opts = opt_string_map(e, "driver_opts", &what)?.unwrap_or_default();
        def.labels = opt_string_map(e, "labels", &what)?.unwrap_or_default();
        if let Some(ipam) = field(e, "ipam") {
            let iw = format!("{what}.ipam");
            let ie = fields(ipam, &iw, &["driver", "config", "options"])?;
            def.ipam_driver = text_or_empty(ie, "driver", &iw)?;
            def.ipam_options = opt_string_map(ie, "options", &iw)?.unwrap_or_default();
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
                    let cw = format!("{iw}.config");
                    def.ipam_config.push(IPAMConfig {
                        subnet: text_or_empty(ce, "subnet", &iw)?,
                        ip_range: text_or_empty(ce, "ip_range", &cw)?,
                        gateway: text_or_empty(ce, "gateway", &cw)?,
                        aux_address: opt_string_map(ce, "aux_addresses", &cw)?.unwrap_or_default(),
                    });
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

/// Why a key of a service's network attachment is ignored, for the keys a Swarm service
/// cannot honour (`docker stack deploy` drops them without a word).
fn ignored_attachment_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "ipv4_address" | "ipv6_address" => {
            "a Swarm service's tasks take their addresses from the network's pool; a service cannot pin one"
        }
        "link_local_ips" => "a Swarm service cannot give its tasks link-local addresses",
        "mac_address" => "a Swarm service cannot set its tasks' MAC addresses",
        "priority" => "a Swarm service cannot order the networks its tasks join",
        _ => return None,
    })
}

impl Ctx<'_> {
    /// Service `service`'s network attachments (the stack's `default` network when it names
    /// none), sorted by target, and the networks' names in the file.
    pub(super) fn service_networks(
        &mut self,
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
                for (k, v) in ve {
                    let key = k.as_str().unwrap_or_default();
                    if let Some(why) = ignored_attachment_key(key) {
                        if !v.is_null() {
                            self.warnings
                                .push(format!("{}: ignoring {nw}.{key}: {why}", k.pos));
                        }
                    }
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
            // The pools go to the managers whole: they take a subnet, range and gateway and
            // refuse what they cannot honour (auxiliary addresses, IPv6) with their own
            // message.
            let ipam = (!def.ipam_driver.is_empty()
                || !def.ipam_config.is_empty()
                || !def.ipam_options.is_empty())
            .then(|| IPAM {
                driver: def.ipam_driver.clone(),
                options: def.ipam_options.clone(),
                config: def.ipam_config.clone(),
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
                    enable_ipv6: def.enable_ipv6,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::convert::read::entries;
    use crate::convert::testing::{message, node, project};

    const FILE: &str = "networks:
  front: {driver_opts: {encrypted: \"\"}, attachable: true, labels: {n: \"1\"}, ipam: {driver: default, config: [{subnet: 10.9.0.0/24}]}}
  back: {name: named-back}
  outside: {external: true, name: host-net}
  old: {external: {name: old-net}}
";

    #[test]
    fn top_level_networks_resolve_external_names_and_refuse_two_names() {
        let p = project(FILE, Path::new("/"), &[]);
        let defs = load_networks(&p.root).unwrap();
        assert_eq!(defs["outside"].name.as_deref(), Some("host-net"));
        assert_eq!(defs["old"].name.as_deref(), Some("old-net"));
        assert_eq!(defs["back"].name.as_deref(), Some("named-back"));
        assert!(defs["front"].attachable && !defs["front"].external);
        assert_eq!(defs["front"].ipam_config[0].subnet, "10.9.0.0/24");
        let p = project(
            "networks:\n  n: {name: a, external: {name: b}}\n",
            Path::new("/"),
            &[],
        );
        assert_eq!(
            message(load_networks(&p.root)),
            "t.yml:2:3: network n: network.external.name and network.name conflict; only use network.name"
        );
        let p = project("networks:\n  n: {driverr: x}\n", Path::new("/"), &[]);
        assert!(message(load_networks(&p.root))
            .starts_with("t.yml:2:7: unknown key \"driverr\" in networks.n (expected one of:"));
    }

    #[test]
    fn a_service_joins_the_default_network_or_the_ones_it_names_with_its_name_as_alias() {
        let p = project(FILE, Path::new("/"), &[]);
        let mut ctx = Ctx::new(&p, "app").unwrap();
        let n = node("{image: x}");
        let (attachments, used) = ctx
            .service_networks("web", entries(&n, "s").unwrap(), "services.web")
            .unwrap();
        assert_eq!(used, ["default"]);
        assert_eq!(attachments[0].target, "app_default");
        assert_eq!(attachments[0].aliases, ["web"]);
        let n = node("{networks: {front: {aliases: [www], driver_opts: {a: b}}, outside: ~}}");
        let (attachments, used) = ctx
            .service_networks("web", entries(&n, "s").unwrap(), "services.web")
            .unwrap();
        assert_eq!(used, ["front", "outside"]);
        let seen: Vec<_> = attachments
            .iter()
            .map(|a| (a.target.as_str(), a.aliases.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("app_front", vec!["www".to_string(), "web".to_string()]),
                ("host-net", vec!["web".to_string()])
            ]
        );
        let n = node("{networks: {nowhere: ~}}");
        assert_eq!(
            message(ctx.service_networks("web", entries(&n, "s").unwrap(), "services.web")),
            "t.yml:1:16: service web: undefined network \"nowhere\" (declare it under the top-level networks)"
        );
        assert!(ctx.warnings.is_empty());
    }

    #[test]
    fn attachment_keys_a_swarm_service_cannot_honour_are_warned_about_where_written() {
        let p = project(FILE, Path::new("/"), &[]);
        let mut ctx = Ctx::new(&p, "app").unwrap();
        let n = node("{networks: {front: {ipv4_address: 10.9.0.5, ipv6_address: \"::1\", link_local_ips: [169.254.0.1], mac_address: 02:42:ac:11:00:02, priority: 10, aliases: [a]}}}");
        let (attachments, _) = ctx
            .service_networks("web", entries(&n, "s").unwrap(), "services.web")
            .unwrap();
        assert_eq!(attachments[0].aliases, ["a", "web"]);
        let keys: Vec<_> = ctx
            .warnings
            .iter()
            .map(|w| w.split(':').take(4).collect::<Vec<_>>().join(":"))
            .collect();
        assert_eq!(
            keys,
            [
                "t.yml:1:24: ignoring services.web.networks.front.ipv4_address",
                "t.yml:1:48: ignoring services.web.networks.front.ipv6_address",
                "t.yml:1:69: ignoring services.web.networks.front.link_local_ips",
                "t.yml:1:100: ignoring services.web.networks.front.mac_address",
                "t.yml:1:132: ignoring services.web.networks.front.priority",
            ]
        );
        assert!(ctx.warnings[0].ends_with(
            "ipv4_address: a Swarm service's tasks take their addresses from the network's pool; a service cannot pin one"
        ));
    }

    #[test]
    fn the_stack_creates_only_the_networks_its_services_use() {
        let p = project(FILE, Path::new("/"), &[]);
        let ctx = Ctx::new(&p, "app").unwrap();
        let used: BTreeSet<String> = ["default", "front", "back", "outside"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut positions = Positions::new();
        let (created, external) = ctx.stack_networks(&used, &mut positions);
        let names: Vec<_> = created.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["app_default", "app_front", "named-back"]);
        assert_eq!(external, ["host-net"]);
        let front = &created[1].request;
        assert_eq!(front.driver, "overlay");
        assert_eq!(front.labels["n"], "1");
        assert_eq!(front.labels[super::super::LABEL_NAMESPACE], "app");
        assert_eq!(front.ipam.as_ref().unwrap().config[0].subnet, "10.9.0.0/24");
        assert_eq!(
            positions[&("network".to_string(), "app_front".to_string())],
            "t.yml:2:3"
        );
        assert!(!positions.contains_key(&("network".to_string(), "app_default".to_string())));
    }

    #[test]
    fn ipam_pools_options_and_ipv6_reach_the_network_create_request() {
        let p = project(
            "networks:
  n:
    enable_ipv6: true
    ipam:
      options: {o: \"1\"}
      config:
        - {subnet: 10.8.0.0/16, ip_range: 10.8.1.0/24, gateway: 10.8.0.1, aux_addresses: {r: 10.8.0.2}}
",
            Path::new("/"),
            &[],
        );
        let ctx = Ctx::new(&p, "app").unwrap();
        let used = BTreeSet::from(["n".to_string()]);
        let (created, _) = ctx.stack_networks(&used, &mut Positions::new());
        let request = &created[0].request;
        assert_eq!(request.enable_ipv6, Some(true));
        let ipam = request.ipam.as_ref().unwrap();
        assert_eq!(ipam.options["o"], "1");
        assert_eq!(
            ipam.config,
            [IPAMConfig {
                subnet: "10.8.0.0/16".into(),
                ip_range: "10.8.1.0/24".into(),
                gateway: "10.8.0.1".into(),
                aux_address: BTreeMap::from([("r".to_string(), "10.8.0.2".to_string())]),
            }]
        );
        let p = project("networks:\n  n: {}\n", Path::new("/"), &[]);
        let ctx = Ctx::new(&p, "app").unwrap();
        let (created, _) = ctx.stack_networks(&used, &mut Positions::new());
        assert_eq!(created[0].request.enable_ipv6, None);
        assert!(created[0].request.ipam.is_none());
    }
}
