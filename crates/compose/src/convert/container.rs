//! The container a service's tasks run, key by key where docker's conversion is more than a
//! copy: `command`/`entrypoint` (a string is split as a shell would), capabilities (names
//! normalised, `ALL` and `RESET`), DNS, credential spec, `extra_hosts` and `ulimits`.

use std::collections::BTreeSet;

use shoal_types::swarm::{CredentialSpec, DNSConfig, Privileges, Ulimit};

use super::read::{entries, field, fields, integer, opt_strings, strings, text_or_empty, Entries};
use crate::yaml::{Node, Value};
use crate::{shell, Error};

/// `entrypoint` or `command` (`key`): a list as it is, a string split like a shell does.
pub(super) fn command(e: Entries<'_>, key: &str, what: &str) -> Result<Vec<String>, Error> {
    match field(e, key) {
        None => Ok(Vec::new()),
        Some(n) => match &n.value {
            Value::Scalar { text, .. } => {
                shell::split(text).map_err(|m| Error::at(&n.pos, format!("{what}.{key}: {m}")))
            }
            _ => strings(n, &format!("{what}.{key}"), false),
        },
    }
}

/// `cap_add` and `cap_drop` as the engine takes them (see [`effective_caps`]).
pub(super) fn capabilities(
    e: Entries<'_>,
    what: &str,
) -> Result<(Vec<String>, Vec<String>), Error> {
    Ok(effective_caps(
        opt_strings(e, "cap_add", what, false)?.unwrap_or_default(),
        opt_strings(e, "cap_drop", what, false)?.unwrap_or_default(),
    ))
}

/// `dns`, `dns_search` and `dns_opt`, when any is set.
pub(super) fn dns_config(e: Entries<'_>, what: &str) -> Result<Option<DNSConfig>, Error> {
    let dns = opt_strings(e, "dns", what, true)?;
    let dns_search = opt_strings(e, "dns_search", what, true)?;
    let dns_opt = opt_strings(e, "dns_opt", what, false)?;
    Ok(
        (dns.is_some() || dns_search.is_some() || dns_opt.is_some()).then(|| DNSConfig {
            nameservers: dns.unwrap_or_default(),
            search: dns_search.unwrap_or_default(),
            options: dns_opt.unwrap_or_default(),
        }),
    )
}

/// The privileges: a `credential_spec` (file or registry; one of them only).
pub(super) fn privileges(e: Entries<'_>, what: &str) -> Result<Privileges, Error> {
    let mut privileges = Privileges::default();
    if let Some(cs) = field(e, "credential_spec") {
        let cw = format!("{what}.credential_spec");
        let ce = fields(cs, &cw, &["config", "file", "registry"])?;
        let spec = CredentialSpec {
            config: text_or_empty(ce, "config", &cw)?,
            file: text_or_empty(ce, "file", &cw)?,
            registry: text_or_empty(ce, "registry", &cw)?,
        };
        let set = [&spec.config, &spec.file, &spec.registry]
            .iter()
            .filter(|s| !s.is_empty())
            .count();
        if set > 1 {
            return Err(Error::at(
                &cs.pos,
                "invalid credential spec: set only one of config, file and registry",
            ));
        }
        if !spec.config.is_empty() {
            return Err(Error::at(
                &cs.pos,
                "credential_spec.config is not supported by shoal yet: use file or registry",
            ));
        }
        if set == 1 {
            privileges.credential_spec = Some(spec);
        }
    }
    Ok(privileges)
}

/// Capabilities as docker's CLI hands them to the engine: upper case with `CAP_`, `ALL`
/// alone when given, a drop that is also added left out, `RESET` removed.
pub(super) fn effective_caps(add: Vec<String>, drop: Vec<String>) -> (Vec<String>, Vec<String>) {
    let normalize = |c: &String| {
        let c = c.trim().to_ascii_uppercase();
        if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let mut add: BTreeSet<String> = add.iter().map(normalize).collect();
    let mut drop: BTreeSet<String> = drop.iter().map(normalize).collect();
    if add.contains("ALL") {
        add = ["ALL".to_string()].into();
    }
    if drop.contains("ALL") {
        drop = ["ALL".to_string()].into();
    }
    let cap_drop = drop
        .iter()
        .filter(|c| !add.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = add.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

/// `extra_hosts` (`host:ip` or `host=ip`, IPv6 in brackets or not) as the engine's
/// `ip host` lines; an entry without an address is left out.
pub(super) fn extra_hosts(node: Option<&Node>, what: &str) -> Result<Vec<String>, Error> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let mut hosts = Vec::new();
    for entry in strings(node, &format!("{what}.extra_hosts"), false)? {
        // `host:ip` or `host=ip`; the engine wants "ip host".
        let split = entry.split_once('=').or_else(|| entry.split_once(':'));
        if let Some((host, ip)) = split {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            hosts.push(format!("{ip} {host}"));
        }
    }
    Ok(hosts)
}

/// `ulimits`: a number for both limits or `{soft, hard}`, sorted by name.
pub(super) fn ulimits(node: Option<&Node>, what: &str) -> Result<Vec<Ulimit>, Error> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let uw = format!("{what}.ulimits");
    let mut out = Vec::new();
    for (k, v) in entries(node, &uw)? {
        let name = k.as_str().unwrap_or_default().to_string();
        let (soft, hard) = if v.as_map().is_some() {
            let e = fields(v, &format!("{uw}.{name}"), &["soft", "hard"])?;
            let get = |key: &str| -> Result<i64, Error> {
                field(e, key)
                    .map(|n| integer(n, &format!("{uw}.{name}.{key}")))
                    .transpose()?
                    .ok_or_else(|| Error::at(&v.pos, format!("{uw}.{name} needs soft and hard")))
            };
            (get("soft")?, get("hard")?)
        } else {
            let single = integer(v, &format!("{uw}.{name}"))?;
            (single, single)
        };
        out.push(Ulimit { name, soft, hard });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    const WHAT: &str = "services.web";

    #[test]
    fn a_string_command_is_split_like_a_shell_and_a_list_kept() {
        let n = node("{command: echo \"a b\" 'c', entrypoint: [sh, -c]}");
        let e = entries(&n, WHAT).unwrap();
        assert_eq!(command(e, "command", WHAT).unwrap(), ["echo", "a b", "c"]);
        assert_eq!(command(e, "entrypoint", WHAT).unwrap(), ["sh", "-c"]);
        assert!(command(e, "absent", WHAT).unwrap().is_empty());
        let n = node("{command: \"echo 'open\"}");
        assert!(
            message(command(entries(&n, WHAT).unwrap(), "command", WHAT))
                .starts_with("t.yml:1:14: services.web.command: ")
        );
    }

    #[test]
    fn capabilities_are_normalised_all_wins_and_reset_goes() {
        assert_eq!(
            effective_caps(
                vec!["net_admin".into(), "CAP_SYS_TIME".into()],
                vec!["mknod".into(), "NET_ADMIN".into(), "RESET".into()],
            ),
            (
                vec!["CAP_NET_ADMIN".to_string(), "CAP_SYS_TIME".to_string()],
                vec!["CAP_MKNOD".to_string()]
            )
        );
        assert_eq!(
            effective_caps(vec!["all".into(), "chown".into()], vec!["ALL".into()]),
            (vec!["ALL".to_string()], vec![])
        );
        let n = node("{cap_add: chown}");
        assert_eq!(
            message(capabilities(entries(&n, WHAT).unwrap(), WHAT)),
            "t.yml:1:14: services.web.cap_add must be a list, not a scalar"
        );
    }

    #[test]
    fn dns_is_set_only_when_a_key_is_there() {
        let n = node("{dns: 1.1.1.1, dns_opt: [ndots:2]}");
        let dns = dns_config(entries(&n, WHAT).unwrap(), WHAT)
            .unwrap()
            .unwrap();
        assert_eq!(dns.nameservers, ["1.1.1.1"]);
        assert!(dns.search.is_empty());
        assert_eq!(dns.options, ["ndots:2"]);
        let n = node("{image: x}");
        assert_eq!(dns_config(entries(&n, WHAT).unwrap(), WHAT).unwrap(), None);
    }

    #[test]
    fn a_credential_spec_takes_one_source_and_config_is_refused_saying_so() {
        let n = node("{credential_spec: {file: spec.json}}");
        let p = privileges(entries(&n, WHAT).unwrap(), WHAT).unwrap();
        assert_eq!(p.credential_spec.unwrap().file, "spec.json");
        let n = node("{credential_spec: {file: a, registry: b}}");
        assert_eq!(
            message(privileges(entries(&n, WHAT).unwrap(), WHAT)),
            "t.yml:1:22: invalid credential spec: set only one of config, file and registry"
        );
        let n = node("{credential_spec: {config: c}}");
        assert_eq!(
            message(privileges(entries(&n, WHAT).unwrap(), WHAT)),
            "t.yml:1:22: credential_spec.config is not supported by shoal yet: use file or registry"
        );
    }

    #[test]
    fn extra_hosts_become_ip_then_host_lines() {
        assert_eq!(
            extra_hosts(
                Some(&node(
                    "[\"db:10.0.0.2\", \"v6=[::1]\", \"v6b:::2\", nohost]"
                )),
                WHAT
            )
            .unwrap(),
            ["10.0.0.2 db", "::1 v6", "::2 v6b"]
        );
        assert!(extra_hosts(None, WHAT).unwrap().is_empty());
    }

    #[test]
    fn ulimits_take_one_number_or_soft_and_hard() {
        let u = ulimits(
            Some(&node("{nofile: {soft: 10, hard: 20}, core: 0x10}")),
            WHAT,
        )
        .unwrap();
        assert_eq!(
            u,
            [
                Ulimit {
                    name: "core".into(),
                    soft: 16,
                    hard: 16
                },
                Ulimit {
                    name: "nofile".into(),
                    soft: 10,
                    hard: 20
                }
            ]
        );
        assert_eq!(
            message(ulimits(Some(&node("{nofile: {soft: 1}}")), WHAT)),
            "t.yml:1:13: services.web.ulimits.nofile needs soft and hard"
        );
    }
}
