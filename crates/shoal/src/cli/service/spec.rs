//! The flags `service create` and `service update` share, turned into ServiceSpec parts the way
//! the docker CLI shapes them: `--mount` values, container settings, resources, the restart
//! policy, the update and rollback configs. Pure functions of the flags and the current spec:
//! no requests and no output here.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::flags::{
    ContainerFlags, ResourceFlags, RestartFlags, RollbackConfigFlags, UpdateConfigFlags,
};
use crate::cli::{object_at, opts};

/// A `--mount` value (`type=…,source=…,target=…,readonly`) as a swarm Mount.
pub(super) fn parse_mount(s: &str) -> Result<Value> {
    let mut mount = Map::new();
    mount.insert("Type".into(), json!("volume"));
    for field in s.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("type", Some(v)) => {
                anyhow::ensure!(
                    matches!(v, "bind" | "volume" | "tmpfs"),
                    "invalid mount type {v:?}: use bind, volume or tmpfs"
                );
                mount.insert("Type".into(), json!(v));
            }
            ("source" | "src", Some(v)) => {
                mount.insert("Source".into(), json!(v));
            }
            ("target" | "dst" | "destination", Some(v)) => {
                mount.insert("Target".into(), json!(v));
            }
            ("readonly" | "ro", None) => {
                mount.insert("ReadOnly".into(), json!(true));
            }
            ("readonly" | "ro", Some(v)) => {
                let ro = matches!(v.to_lowercase().as_str(), "1" | "true");
                anyhow::ensure!(
                    ro || matches!(v.to_lowercase().as_str(), "0" | "false"),
                    "invalid value for readonly: {v}"
                );
                if ro {
                    mount.insert("ReadOnly".into(), json!(true));
                }
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    anyhow::ensure!(mount.contains_key("Target"), "target is required");
    Ok(Value::Object(mount))
}

/// The container flags `create` and `update` share, applied onto a ContainerSpec (the endpoint
/// mode and max-replicas flags live elsewhere in the spec; the callers apply those).
pub(super) fn apply_container_flags(container: &mut Value, flags: &ContainerFlags) -> Result<()> {
    let c = object_at(container, &[]);
    if let Some(dir) = &flags.workdir {
        c.insert("Dir".into(), json!(dir));
    }
    if let Some(user) = &flags.user {
        c.insert("User".into(), json!(user));
    }
    if let Some(hostname) = &flags.hostname {
        c.insert("Hostname".into(), json!(hostname));
    }
    if let Some(signal) = &flags.stop_signal {
        c.insert("StopSignal".into(), json!(signal));
    }
    if let Some(grace) = &flags.stop_grace_period {
        c.insert(
            "StopGracePeriod".into(),
            json!(opts::parse_duration(grace)?),
        );
    }
    if let Some(entrypoint) = &flags.entrypoint {
        let words: Vec<&str> = entrypoint.split_whitespace().collect();
        if words.is_empty() {
            c.remove("Command");
        } else {
            c.insert("Command".into(), json!(words));
        }
    }
    Ok(())
}

pub(super) fn apply_resources(resources: &mut Value, flags: &ResourceFlags) -> Result<()> {
    let mut set = |section: &str, key: &str, value: Option<i64>| {
        if let Some(value) = value {
            let obj = object_at(resources, &[section]);
            if value == 0 {
                obj.remove(key);
            } else {
                obj.insert(key.into(), json!(value));
            }
        }
    };
    set(
        "Limits",
        "NanoCPUs",
        flags
            .limit_cpu
            .as_deref()
            .map(opts::parse_nano_cpus)
            .transpose()?,
    );
    set(
        "Limits",
        "MemoryBytes",
        flags
            .limit_memory
            .as_deref()
            .map(opts::parse_memory)
            .transpose()?,
    );
    set("Limits", "Pids", flags.limit_pids);
    set(
        "Reservations",
        "NanoCPUs",
        flags
            .reserve_cpu
            .as_deref()
            .map(opts::parse_nano_cpus)
            .transpose()?,
    );
    set(
        "Reservations",
        "MemoryBytes",
        flags
            .reserve_memory
            .as_deref()
            .map(opts::parse_memory)
            .transpose()?,
    );
    Ok(())
}

/// The restart policy after the flags, starting from `current` (or swarm's defaults) when any
/// restart flag is given; None when none is and there is no current policy.
pub(super) fn restart_policy(
    current: Option<&Value>,
    flags: &RestartFlags,
) -> Result<Option<Value>> {
    let any = flags.restart_condition.is_some()
        || flags.restart_delay.is_some()
        || flags.restart_max_attempts.is_some()
        || flags.restart_window.is_some();
    if !any {
        return Ok(current.cloned());
    }
    let mut policy = match current {
        Some(p) if p.is_object() => p.clone(),
        _ => json!({"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0}),
    };
    if let Some(condition) = &flags.restart_condition {
        policy["Condition"] = json!(condition);
    }
    if let Some(delay) = &flags.restart_delay {
        policy["Delay"] = json!(opts::parse_duration(delay)?);
    }
    if let Some(attempts) = flags.restart_max_attempts {
        policy["MaxAttempts"] = json!(attempts);
    }
    if let Some(window) = &flags.restart_window {
        policy["Window"] = json!(opts::parse_duration(window)?);
    }
    Ok(Some(policy))
}

/// Swarm's default update/rollback config, as the docker CLI fills it in.
fn default_update_config() -> Value {
    json!({
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000i64,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    })
}

struct ConfigFlags<'a> {
    parallelism: Option<u64>,
    delay: Option<&'a str>,
    monitor: Option<&'a str>,
    failure_action: Option<&'a str>,
    max_failure_ratio: Option<f32>,
    order: Option<&'a str>,
}

fn apply_config_flags(current: Option<&Value>, f: ConfigFlags<'_>) -> Result<Option<Value>> {
    let any = f.parallelism.is_some()
        || f.delay.is_some()
        || f.monitor.is_some()
        || f.failure_action.is_some()
        || f.max_failure_ratio.is_some()
        || f.order.is_some();
    if !any {
        return Ok(current.cloned());
    }
    let mut config = match current {
        Some(c) if c.is_object() => c.clone(),
        _ => default_update_config(),
    };
    let c = object_at(&mut config, &[]);
    if let Some(p) = f.parallelism {
        c.insert("Parallelism".into(), json!(p));
    }
    if let Some(d) = f.delay {
        let d = opts::parse_duration(d)?;
        if d == 0 {
            c.remove("Delay");
        } else {
            c.insert("Delay".into(), json!(d));
        }
    }
    if let Some(m) = f.monitor {
        let m = opts::parse_duration(m)?;
        if m == 0 {
            c.remove("Monitor");
        } else {
            c.insert("Monitor".into(), json!(m));
        }
    }
    if let Some(a) = f.failure_action {
        c.insert("FailureAction".into(), json!(a));
    }
    if let Some(r) = f.max_failure_ratio {
        // f32 → f64 through its decimal text, so 0.1 stays 0.1 in the JSON.
        let r: f64 = r.to_string().parse().unwrap_or(f64::from(r));
        c.insert("MaxFailureRatio".into(), json!(r));
    }
    if let Some(o) = f.order {
        c.insert("Order".into(), json!(o));
    }
    Ok(Some(config))
}

pub(super) fn update_config(
    current: Option<&Value>,
    flags: &UpdateConfigFlags,
) -> Result<Option<Value>> {
    apply_config_flags(
        current,
        ConfigFlags {
            parallelism: flags.update_parallelism,
            delay: flags.update_delay.as_deref(),
            monitor: flags.update_monitor.as_deref(),
            failure_action: flags.update_failure_action.as_deref(),
            max_failure_ratio: flags.update_max_failure_ratio,
            order: flags.update_order.as_deref(),
        },
    )
}

pub(super) fn rollback_config(
    current: Option<&Value>,
    flags: &RollbackConfigFlags,
) -> Result<Option<Value>> {
    apply_config_flags(
        current,
        ConfigFlags {
            parallelism: flags.rollback_parallelism,
            delay: flags.rollback_delay.as_deref(),
            monitor: flags.rollback_monitor.as_deref(),
            failure_action: flags.rollback_failure_action.as_deref(),
            max_failure_ratio: flags.rollback_max_failure_ratio,
            order: flags.rollback_order.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_defaults_to_a_volume_and_takes_docker_key_aliases() {
        assert_eq!(
            parse_mount("source=data,target=/data").unwrap(),
            json!({"Type": "volume", "Source": "data", "Target": "/data"})
        );
        assert_eq!(
            parse_mount("Type=bind,src=/srv,dst=/srv,ro").unwrap(),
            json!({"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": true})
        );
        assert_eq!(
            parse_mount("type=tmpfs,destination=/tmp,readonly=false").unwrap(),
            json!({"Type": "tmpfs", "Target": "/tmp"})
        );
        assert_eq!(
            parse_mount("target=/x,readonly=TRUE").unwrap()["ReadOnly"],
            json!(true)
        );
    }

    #[test]
    fn a_bad_mount_is_refused_saying_what_is_wrong() {
        let err = |s: &str| parse_mount(s).unwrap_err().to_string();
        assert_eq!(err("source=data"), "target is required");
        assert_eq!(
            err("type=npipe,target=/x"),
            "invalid mount type \"npipe\": use bind, volume or tmpfs"
        );
        assert_eq!(
            err("target=/x,ro=maybe"),
            "invalid value for readonly: maybe"
        );
        assert_eq!(
            err("target=/x,consistency=cached"),
            "unexpected key 'consistency' in 'consistency=cached'"
        );
    }

    #[test]
    fn container_flags_set_only_what_is_given_and_an_empty_entrypoint_clears_it() {
        let mut container = json!({"Image": "nginx:latest", "Command": ["old"]});
        let flags = ContainerFlags {
            workdir: Some("/app".into()),
            stop_grace_period: Some("1m30s".into()),
            entrypoint: Some("/bin/sh -c".into()),
            ..ContainerFlags::default()
        };
        apply_container_flags(&mut container, &flags).unwrap();
        assert_eq!(
            container,
            json!({
                "Image": "nginx:latest",
                "Dir": "/app",
                "StopGracePeriod": 90_000_000_000i64,
                "Command": ["/bin/sh", "-c"]
            })
        );
        let clear = ContainerFlags {
            entrypoint: Some(" ".into()),
            ..ContainerFlags::default()
        };
        apply_container_flags(&mut container, &clear).unwrap();
        assert!(container.get("Command").is_none());
        let bad = ContainerFlags {
            stop_grace_period: Some("soon".into()),
            ..ContainerFlags::default()
        };
        assert!(apply_container_flags(&mut container, &bad).is_err());
    }

    #[test]
    fn resources_set_limits_and_reservations_and_zero_removes_one() {
        let mut resources = json!({"Limits": {"Pids": 10}, "Reservations": {}});
        let flags = ResourceFlags {
            limit_cpu: Some("1.5".into()),
            limit_pids: Some(0),
            reserve_memory: Some("64M".into()),
            ..ResourceFlags::default()
        };
        apply_resources(&mut resources, &flags).unwrap();
        assert_eq!(
            resources,
            json!({
                "Limits": {"NanoCPUs": 1_500_000_000i64},
                "Reservations": {"MemoryBytes": 67_108_864i64}
            })
        );
        let bad = ResourceFlags {
            limit_memory: Some("lots".into()),
            ..ResourceFlags::default()
        };
        assert!(apply_resources(&mut resources, &bad).is_err());
    }

    #[test]
    fn a_restart_flag_starts_from_the_current_policy_or_swarms_defaults() {
        let none = RestartFlags::default();
        assert_eq!(restart_policy(None, &none).unwrap(), None);
        let current = json!({"Condition": "none"});
        assert_eq!(
            restart_policy(Some(&current), &none).unwrap(),
            Some(current.clone())
        );

        let window = RestartFlags {
            restart_window: Some("2m".into()),
            ..RestartFlags::default()
        };
        assert_eq!(
            restart_policy(None, &window).unwrap(),
            Some(json!({
                "Condition": "any",
                "Delay": 5_000_000_000i64,
                "MaxAttempts": 0,
                "Window": 120_000_000_000i64
            }))
        );
        assert_eq!(
            restart_policy(Some(&current), &window).unwrap(),
            Some(json!({"Condition": "none", "Window": 120_000_000_000i64}))
        );
    }

    #[test]
    fn update_and_rollback_configs_fill_swarms_defaults_and_a_zero_duration_removes_it() {
        assert_eq!(
            update_config(None, &UpdateConfigFlags::default()).unwrap(),
            None
        );
        let flags = UpdateConfigFlags {
            update_monitor: Some("0".into()),
            update_max_failure_ratio: Some(0.1),
            ..UpdateConfigFlags::default()
        };
        assert_eq!(
            update_config(None, &flags).unwrap(),
            Some(json!({
                "Parallelism": 1,
                "FailureAction": "pause",
                "MaxFailureRatio": 0.1,
                "Order": "stop-first"
            }))
        );
        let current = json!({"Parallelism": 4, "Delay": 1_000_000_000i64});
        let rollback = RollbackConfigFlags {
            rollback_delay: Some("0s".into()),
            rollback_order: Some("start-first".into()),
            ..RollbackConfigFlags::default()
        };
        assert_eq!(
            rollback_config(Some(&current), &rollback).unwrap(),
            Some(json!({"Parallelism": 4, "Order": "start-first"}))
        );
    }
}
