//! A service's `ports:` (short `[IP:][PUBLISHED:]TARGET[/PROTO]` strings, with ranges, and the
//! long form) → the endpoint's `PortConfig`s, sorted by published port as docker sends them.
//! A host IP cannot be honoured by Swarm's routing mesh: it is dropped with a warning.

use shoal_types::swarm::{PortConfig, PublishMode};

use super::read::{field, fields, opt_text, unsigned};
use crate::yaml::{Node, Value};
use crate::{units, Error};

/// The ports of service `what` (`services.NAME`), and a warning for each host IP dropped.
pub(super) fn ports(
    node: Option<&Node>,
    what: &str,
) -> Result<(Vec<PortConfig>, Vec<String>), Error> {
    let mut warnings = Vec::new();
    let Some(list) = node else {
        return Ok((Vec::new(), warnings));
    };
    let pw = format!("{what}.ports");
    let items = list.as_seq().ok_or_else(|| {
        Error::at(
            &list.pos,
            format!("{pw} must be a list, not {}", list.kind()),
        )
    })?;
    let mut ports = Vec::new();
    for item in items {
        match &item.value {
            Value::Scalar { text, .. } => {
                let (expanded, ip) = units::parse_port_spec_with_ip(text)
                    .map_err(|e| Error::at(&item.pos, format!("{pw}: {e}")))?;
                if let Some(ip) = ip {
                    warnings.push(format!(
                        "{}: ignoring IP-address ({ip}) in {text:?}: service will listen on '0.0.0.0'",
                        item.pos
                    ));
                }
                ports.extend(expanded);
            }
            Value::Map(_) => {
                let pe = fields(
                    item,
                    &pw,
                    &[
                        "target",
                        "published",
                        "protocol",
                        "mode",
                        "host_ip",
                        "name",
                        "app_protocol",
                    ],
                )?;
                let target = field(pe, "target").ok_or_else(|| {
                    Error::at(
                        &item.pos,
                        format!("{pw}: a long-syntax port needs a target"),
                    )
                })?;
                let port = |n: &Node, w: &str| -> Result<u32, Error> {
                    let v = unsigned(n, w)?;
                    u32::try_from(v)
                        .ok()
                        .filter(|p| *p <= 65535)
                        .ok_or_else(|| Error::at(&n.pos, format!("{w}: invalid port {v}")))
                };
                let protocol = match opt_text(pe, "protocol", &pw)? {
                    Some(p) => units::parse_protocol(&p)
                        .map_err(|e| Error::at(&item.pos, format!("{pw}: {e}")))?,
                    None => Default::default(),
                };
                let mode = match opt_text(pe, "mode", &pw)?.as_deref() {
                    None | Some("ingress") => PublishMode::Ingress,
                    Some("host") => PublishMode::Host,
                    Some(other) => {
                        return Err(Error::at(
                            &item.pos,
                            format!("{pw}: port mode must be ingress or host, not {other:?}"),
                        ))
                    }
                };
                ports.push(PortConfig {
                    name: String::new(),
                    protocol,
                    target_port: port(target, &format!("{pw}.target"))?,
                    published_port: field(pe, "published")
                        .map(|n| port(n, &format!("{pw}.published")))
                        .transpose()?
                        .unwrap_or(0),
                    publish_mode: mode,
                });
            }
            _ => {
                return Err(Error::at(
                    &item.pos,
                    format!(
                        "{pw} entries must be strings or mappings, not {}",
                        item.kind()
                    ),
                ))
            }
        }
    }
    ports.sort_by_key(|p| p.published_port);
    Ok((ports, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};
    use shoal_types::swarm::PortConfigProtocol;

    fn parse(text: &str) -> Result<(Vec<PortConfig>, Vec<String>), Error> {
        ports(Some(&node(text)), "services.web")
    }

    #[test]
    fn short_and_long_ports_are_sorted_by_published_port() {
        let (ports, warnings) =
            parse("[\"9090:90/udp\", 80, {target: 443, published: 8443, mode: host}]").unwrap();
        assert!(warnings.is_empty());
        let seen: Vec<_> = ports
            .iter()
            .map(|p| (p.published_port, p.target_port, p.publish_mode))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 80, PublishMode::Ingress),
                (8443, 443, PublishMode::Host),
                (9090, 90, PublishMode::Ingress)
            ]
        );
        assert_eq!(ports[2].protocol, PortConfigProtocol::Udp);
    }

    #[test]
    fn a_host_ip_is_dropped_with_a_warning_naming_where() {
        let (ports, warnings) = parse("[\"127.0.0.1:81:81\"]").unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            warnings,
            ["t.yml:1:5: ignoring IP-address (127.0.0.1) in \"127.0.0.1:81:81\": service will listen on '0.0.0.0'"]
        );
    }

    #[test]
    fn bad_ports_are_refused_at_their_position() {
        assert_eq!(
            message(parse("[{published: 80}]")),
            "t.yml:1:5: services.web.ports: a long-syntax port needs a target"
        );
        assert_eq!(
            message(parse("[{target: 70000}]")),
            "t.yml:1:14: services.web.ports.target: invalid port 70000"
        );
        assert_eq!(
            message(parse("[{target: 1, mode: bridge}]")),
            "t.yml:1:5: services.web.ports: port mode must be ingress or host, not \"bridge\""
        );
        assert_eq!(
            message(parse("80")),
            "t.yml:1:4: services.web.ports must be a list, not a scalar"
        );
        assert_eq!(
            message(parse("[[80]]")),
            "t.yml:1:5: services.web.ports entries must be strings or mappings, not a sequence"
        );
    }
}
