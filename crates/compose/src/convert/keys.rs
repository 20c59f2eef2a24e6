//! Which keys a service may have: the ones converted, the ones docker ignores with a warning
//! (unsupported, deprecated), and the ones it refuses. Pure functions of the merged document.

use std::collections::BTreeSet;

use super::read::Entries;
use crate::yaml::Node;
use crate::Error;

/// Keys docker warns about and ignores ("Ignoring unsupported options: ...").
const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];
/// Compose-spec keys that mean nothing to Swarm; also ignored with the same warning.
const ALSO_IGNORED: &[&str] = &[
    "depends_on",
    "profiles",
    "pull_policy",
    "scale",
    "tmpfs",
    "group_add",
    "runtime",
    "storage_opt",
    "cpus",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "mem_reservation",
    "mem_swappiness",
    "oom_kill_disable",
    "pids_limit",
    "blkio_config",
    "device_cgroup_rules",
    "annotations",
    "attach",
    "develop",
    "gpus",
    "uts",
];
const DEPRECATED: &[(&str, &str)] = &[
    ("container_name", "Setting the container name is not supported."),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];
const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "hostname",
    "healthcheck",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "read_only",
    "init",
    "sysctls",
    "ulimits",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "dns",
    "dns_search",
    "dns_opt",
    "volumes",
    "configs",
    "secrets",
    "networks",
    "ports",
    "deploy",
    "labels",
    "logging",
    "isolation",
    "oom_score_adj",
    "credential_spec",
    "platform",
];

/// The warnings docker prints for keys it ignores, for the merged document.
pub fn unsupported_warnings(root: &Node) -> Vec<String> {
    let mut ignored = BTreeSet::new();
    let mut deprecated = BTreeSet::new();
    for (_, service) in root
        .get("services")
        .and_then(Node::as_map)
        .unwrap_or_default()
    {
        for (key, _) in service.as_map().unwrap_or_default() {
            let key = key.as_str().unwrap_or_default();
            if UNSUPPORTED.contains(&key) || ALSO_IGNORED.contains(&key) {
                ignored.insert(key.to_string());
            }
            if let Some((k, why)) = DEPRECATED.iter().find(|(k, _)| *k == key) {
                deprecated.insert(format!("{k}: {why}"));
            }
        }
    }
    let mut out = Vec::new();
    if !ignored.is_empty() {
        out.push(format!(
            "Ignoring unsupported options: {}",
            ignored.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !deprecated.is_empty() {
        out.push(format!(
            "Ignoring deprecated options:\n\n{}",
            deprecated.into_iter().collect::<Vec<_>>().join("\n\n")
        ));
    }
    out
}

/// Refuses a key of service `name` that docker refuses (saying what to do instead) or does
/// not know; keys docker ignores pass (they are warned about once, for the whole file).
pub(super) fn check_service_keys(name: &str, e: Entries<'_>) -> Result<(), Error> {
    for (k, _) in e {
        let k_text = k.as_str().unwrap_or_default();
        if let Some((_, why)) = FORBIDDEN.iter().find(|(f, _)| *f == k_text) {
            return Err(Error::at(
                &k.pos,
                format!(
                    "Compose file contains unsupported option {k_text:?} in service {name}: {why}"
                ),
            ));
        }
        let known = SERVICE_KEYS.contains(&k_text)
            || UNSUPPORTED.contains(&k_text)
            || ALSO_IGNORED.contains(&k_text)
            || DEPRECATED.iter().any(|(d, _)| *d == k_text)
            || k_text.starts_with("x-");
        if !known {
            return Err(Error::at(
                &k.pos,
                format!("unknown key {k_text:?} in service {name}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::read::entries;
    use crate::convert::testing::{message, node};
    use crate::yaml::parse;

    fn check(service: &str) -> Result<(), Error> {
        let n = node(service);
        check_service_keys("web", entries(&n, "s")?)
    }

    #[test]
    fn converted_ignored_and_x_keys_pass_unknown_ones_are_refused() {
        check("{image: a, build: ., container_name: c, depends_on: [b], x-mine: 1}").unwrap();
        assert_eq!(
            message(check("{image: a, imagee: b}")),
            "t.yml:1:15: unknown key \"imagee\" in service web"
        );
    }

    #[test]
    fn refused_keys_say_what_to_do_instead() {
        assert_eq!(
            message(check("{mem_limit: 1g}")),
            "t.yml:1:5: Compose file contains unsupported option \"mem_limit\" in service web: Set resource limits using deploy.resources"
        );
    }

    #[test]
    fn ignored_keys_are_warned_about_once_for_the_whole_file() {
        let doc = parse(
            "t.yml",
            "services:\n  a: {image: x, restart: always, expose: [\"1\"]}\n  b: {image: x, restart: \"no\", links: [a]}\n",
        )
        .unwrap();
        assert_eq!(
            unsupported_warnings(&doc),
            [
                "Ignoring unsupported options: links, restart".to_string(),
                "Ignoring deprecated options:\n\nexpose: Exposing ports is unnecessary - services on the same network can access each other's containers on any port.".to_string(),
            ]
        );
        assert!(
            unsupported_warnings(&parse("t.yml", "services: {a: {image: x}}").unwrap()).is_empty()
        );
    }
}
