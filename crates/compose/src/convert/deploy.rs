//! A service's `deploy:` → the service's mode and replicas, labels, placement, restart
//! policy, update and rollback configs and endpoint mode, as docker converts them (resources
//! are in [`super::resources`]). Pure functions of the nodes; each error names its key.

use std::collections::BTreeMap;

use shoal_types::swarm::{
    FailureAction, GlobalJob, GlobalService, Placement, PlacementPreference, Platform,
    ReplicatedJob, ReplicatedService, ResolutionMode, RestartPolicy, RestartPolicyCondition,
    ServiceMode, SpreadOver, UpdateConfig, UpdateOrder,
};

use super::read::{
    field, fields, float, opt_duration, opt_string_map, opt_strings, opt_unsigned, text,
    text_or_empty, Entries,
};
use super::{LABEL_IMAGE, LABEL_NAMESPACE};
use crate::yaml::{Node, Pos};
use crate::Error;

/// The keys of `deploy:`.
const DEPLOY_KEYS: &[&str] = &[
    "mode",
    "replicas",
    "labels",
    "update_config",
    "rollback_config",
    "resources",
    "restart_policy",
    "placement",
    "endpoint_mode",
];

/// The entries of `deploy:` at `dw` (`services.NAME.deploy`), none when it is absent.
pub(super) fn entries<'a>(node: Option<&'a Node>, dw: &str) -> Result<Entries<'a>, Error> {
    match node {
        Some(d) => fields(d, dw, DEPLOY_KEYS),
        None => Ok(&[]),
    }
}

/// The service's labels: `deploy.labels`, the stack's namespace and the image as written.
pub(super) fn service_labels(
    deploy: Entries<'_>,
    dw: &str,
    ns: &str,
    image: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut labels = opt_string_map(deploy, "labels", dw)?.unwrap_or_default();
    labels.insert(LABEL_NAMESPACE.into(), ns.into());
    labels.insert(LABEL_IMAGE.into(), image.to_string());
    Ok(labels)
}

/// `deploy.placement`, with the service's `platform:` (which docker ignores): it places the
/// tasks on nodes of that platform, as the image platforms docker sends in
/// `Placement.Platforms` do.
pub(super) fn placement(
    node: Option<&Node>,
    platform_node: Option<&Node>,
    dw: &str,
    what: &str,
) -> Result<Placement, Error> {
    let mut placement = match node {
        None => Placement::default(),
        Some(p) => {
            let pw = format!("{dw}.placement");
            let pe = fields(
                p,
                &pw,
                &["constraints", "preferences", "max_replicas_per_node"],
            )?;
            let mut preferences = Vec::new();
            if let Some(prefs) = field(pe, "preferences") {
                for pref in prefs.as_seq().ok_or_else(|| {
                    Error::at(&prefs.pos, format!("{pw}.preferences must be a list"))
                })? {
                    let pre = fields(pref, &format!("{pw}.preferences"), &["spread"])?;
                    preferences.push(PlacementPreference {
                        spread: Some(SpreadOver {
                            spread_descriptor: text_or_empty(pre, "spread", &pw)?,
                        }),
                    });
                }
            }
            Placement {
                constraints: opt_strings(pe, "constraints", &pw, false)?.unwrap_or_default(),
                preferences,
                max_replicas: opt_unsigned(pe, "max_replicas_per_node", &pw)?.unwrap_or(0),
                platforms: Vec::new(),
            }
        }
    };

    if let Some(p) = platform_node {
        placement
            .platforms
            .push(platform(p, &format!("{what}.platform"))?);
    }
    Ok(placement)
}

/// `deploy.endpoint_mode`: how the service's name resolves (a virtual IP by default).
pub(super) fn endpoint_mode(node: Option<&Node>, dw: &str) -> Result<ResolutionMode, Error> {
    Ok(match node {
        None => ResolutionMode::Vip,
        Some(n) => match text(n, &format!("{dw}.endpoint_mode"))?
            .to_ascii_lowercase()
            .as_str()
        {
            "vip" | "" => ResolutionMode::Vip,
            "dnsrr" => ResolutionMode::Dnsrr,
            other => {
                return Err(Error::at(
                    &n.pos,
                    format!("{dw}.endpoint_mode must be vip or dnsrr, not {other:?}"),
                ))
            }
        },
    })
}

pub(super) fn restart_policy(
    restart: Option<&Node>,
    policy: Option<&Node>,
    dw: &str,
) -> Result<Option<RestartPolicy>, Error> {
    if let Some(p) = policy {
        let rw = format!("{dw}.restart_policy");
        let e = fields(p, &rw, &["condition", "delay", "max_attempts", "window"])?;
        let condition = match field(e, "condition") {
            None => RestartPolicyCondition::Any,
            Some(c) => match text(c, &format!("{rw}.condition"))?.as_str() {
                "none" => RestartPolicyCondition::None,
                "on-failure" => RestartPolicyCondition::OnFailure,
                "any" => RestartPolicyCondition::Any,
                other => {
                    return Err(Error::at(
                        &c.pos,
                        format!("{rw}.condition must be none, on-failure or any, not {other:?}"),
                    ))
                }
            },
        };
        return Ok(Some(RestartPolicy {
            condition,
            delay: opt_duration(e, "delay", &rw)?,
            max_attempts: opt_unsigned(e, "max_attempts", &rw)?,
            window: opt_duration(e, "window", &rw)?,
        }));
    }
    // No deploy.restart_policy: docker falls back to the `restart` key.
    let Some(r) = restart else {
        return Ok(None);
    };
    let value = text(r, "restart")?;
    let (name, count) = match value.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (value.as_str(), None),
    };
    match name {
        "" | "no" => Ok(None),
        "always" | "unless-stopped" => Ok(Some(RestartPolicy {
            condition: RestartPolicyCondition::Any,
            ..Default::default()
        })),
        "on-failure" => {
            let attempts = match count {
                Some(c) => c.parse::<u64>().map_err(|_| {
                    Error::at(&r.pos, format!("invalid restart policy {value:?}: maximum retry count must be an integer"))
                })?,
                None => 0,
            };
            Ok(Some(RestartPolicy {
                condition: RestartPolicyCondition::OnFailure,
                max_attempts: Some(attempts),
                ..Default::default()
            }))
        }
        _ => Err(Error::at(
            &r.pos,
            format!("unknown restart policy: {value}"),
        )),
    }
}

pub(super) fn mode(
    mode: Option<&Node>,
    replicas: Option<u64>,
    dw: &str,
) -> Result<ServiceMode, Error> {
    let (name, pos) = match mode {
        Some(m) => (text(m, &format!("{dw}.mode"))?, Some(&m.pos)),
        None => (String::new(), None),
    };
    let no_replicas = |kind: &str| -> Result<(), Error> {
        match (replicas, pos) {
            (Some(_), Some(p)) => Err(Error::at(
                p,
                format!(
                    "replicas can only be used with replicated or replicated-job mode, not {kind}"
                ),
            )),
            _ => Ok(()),
        }
    };
    let mut out = ServiceMode::default();
    match name.as_str() {
        "" | "replicated" => out.replicated = Some(ReplicatedService { replicas }),
        "global" => {
            no_replicas("global")?;
            out.global = Some(GlobalService {});
        }
        "replicated-job" => {
            out.replicated_job = Some(ReplicatedJob {
                max_concurrent: replicas,
                total_completions: replicas,
            })
        }
        "global-job" => {
            no_replicas("global-job")?;
            out.global_job = Some(GlobalJob {});
        }
        other => {
            return Err(Error::at(
                pos.unwrap_or(&Pos::new(&"".into(), 0, 0)),
                format!(
                "{dw}.mode must be replicated, global, replicated-job or global-job, not {other:?}"
            ),
            ))
        }
    }
    Ok(out)
}

pub(super) fn update_config(node: Option<&Node>, uw: &str) -> Result<Option<UpdateConfig>, Error> {
    let Some(node) = node else {
        return Ok(None);
    };
    let e = fields(
        node,
        uw,
        &[
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        ],
    )?;
    let failure_action = match field(e, "failure_action") {
        None => FailureAction::default(),
        Some(n) => match text(n, &format!("{uw}.failure_action"))?.as_str() {
            "pause" | "" => FailureAction::Pause,
            "continue" => FailureAction::Continue,
            "rollback" => FailureAction::Rollback,
            other => {
                return Err(Error::at(
                    &n.pos,
                    format!(
                        "{uw}.failure_action must be pause, continue or rollback, not {other:?}"
                    ),
                ))
            }
        },
    };
    let order = match field(e, "order") {
        None => UpdateOrder::default(),
        Some(n) => match text(n, &format!("{uw}.order"))?.as_str() {
            "stop-first" | "" => UpdateOrder::StopFirst,
            "start-first" => UpdateOrder::StartFirst,
            other => {
                return Err(Error::at(
                    &n.pos,
                    format!("{uw}.order must be stop-first or start-first, not {other:?}"),
                ))
            }
        },
    };
    Ok(Some(UpdateConfig {
        parallelism: opt_unsigned(e, "parallelism", uw)?.unwrap_or(1),
        delay: opt_duration(e, "delay", uw)?.unwrap_or(0),
        failure_action,
        monitor: opt_duration(e, "monitor", uw)?.unwrap_or(0),
        max_failure_ratio: field(e, "max_failure_ratio")
            .map(|n| float(n, &format!("{uw}.max_failure_ratio")))
            .transpose()?
            .unwrap_or(0.0) as f32,
        order,
    }))
}

/// Compose's `platform` (`linux/amd64`, `linux/arm64/v8`, `linux`) as a placement platform.
pub(super) fn platform(node: &Node, what: &str) -> Result<Platform, Error> {
    let value = text(node, what)?;
    let mut parts = value.split('/');
    let os = parts.next().unwrap_or_default();
    let arch = parts.next().unwrap_or_default();
    if !["linux", "windows"].contains(&os) || parts.count() > 1 || value.ends_with('/') {
        return Err(Error::at(
            &node.pos,
            format!(
                "{what}: invalid platform {value:?}: expected OS[/ARCH[/VARIANT]], e.g. linux/amd64"
            ),
        ));
    }
    Ok(Platform {
        architecture: arch.to_string(),
        os: os.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    const DW: &str = "services.web.deploy";

    #[test]
    fn unknown_deploy_keys_are_refused_and_no_deploy_is_empty() {
        assert!(entries(None, DW).unwrap().is_empty());
        assert!(message(entries(Some(&node("{replica: 2}")), DW))
            .starts_with("t.yml:1:5: unknown key \"replica\" in services.web.deploy (expected one of: mode, replicas,"));
    }

    #[test]
    fn service_labels_carry_the_namespace_and_the_image_as_written() {
        let n = node("{labels: {a: b}}");
        let labels = service_labels(entries(Some(&n), DW).unwrap(), DW, "app", "nginx").unwrap();
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_string(), "b".to_string()),
                (LABEL_IMAGE.to_string(), "nginx".to_string()),
                (LABEL_NAMESPACE.to_string(), "app".to_string()),
            ]
        );
    }

    #[test]
    fn modes_take_replicas_only_when_replicated() {
        let replicated = mode(None, Some(3), DW).unwrap();
        assert_eq!(replicated.replicated.unwrap().replicas, Some(3));
        assert!(mode(Some(&node("global")), None, DW)
            .unwrap()
            .global
            .is_some());
        let job = mode(Some(&node("replicated-job")), Some(4), DW).unwrap();
        let job = job.replicated_job.unwrap();
        assert_eq!(
            (job.max_concurrent, job.total_completions),
            (Some(4), Some(4))
        );
        assert!(mode(Some(&node("global-job")), None, DW)
            .unwrap()
            .global_job
            .is_some());
        assert_eq!(
            message(mode(Some(&node("global")), Some(2), DW)),
            "t.yml:1:4: replicas can only be used with replicated or replicated-job mode, not global"
        );
        assert_eq!(
            message(mode(Some(&node("daemon")), None, DW)),
            "t.yml:1:4: services.web.deploy.mode must be replicated, global, replicated-job or global-job, not \"daemon\""
        );
    }

    #[test]
    fn restart_policy_comes_from_deploy_or_falls_back_to_restart() {
        let p = restart_policy(
            Some(&node("always")),
            Some(&node(
                "{condition: on-failure, delay: 2s, max_attempts: 3, window: 1m}",
            )),
            DW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.condition, RestartPolicyCondition::OnFailure);
        assert_eq!(
            (p.delay, p.max_attempts, p.window),
            (Some(2_000_000_000), Some(3), Some(60_000_000_000))
        );
        let p = restart_policy(Some(&node("\"on-failure:5\"")), None, DW)
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.condition, p.max_attempts),
            (RestartPolicyCondition::OnFailure, Some(5))
        );
        let p = restart_policy(Some(&node("unless-stopped")), None, DW)
            .unwrap()
            .unwrap();
        assert_eq!(p.condition, RestartPolicyCondition::Any);
        assert_eq!(
            restart_policy(Some(&node("\"no\"")), None, DW).unwrap(),
            None
        );
        assert_eq!(restart_policy(None, None, DW).unwrap(), None);
        assert_eq!(
            message(restart_policy(Some(&node("\"on-failure:x\"")), None, DW)),
            "t.yml:1:4: invalid restart policy \"on-failure:x\": maximum retry count must be an integer"
        );
        assert_eq!(
            message(restart_policy(Some(&node("sometimes")), None, DW)),
            "t.yml:1:4: unknown restart policy: sometimes"
        );
        assert_eq!(
            message(restart_policy(None, Some(&node("{condition: often}")), DW)),
            "t.yml:1:16: services.web.deploy.restart_policy.condition must be none, on-failure or any, not \"often\""
        );
    }

    #[test]
    fn update_config_defaults_to_one_at_a_time_and_checks_its_words() {
        let u = update_config(Some(&node("{}")), "u").unwrap().unwrap();
        assert_eq!(u.parallelism, 1);
        assert_eq!(u.failure_action, FailureAction::Pause);
        assert_eq!(u.order, UpdateOrder::StopFirst);
        let u = update_config(
            Some(&node("{parallelism: 2, failure_action: rollback, order: start-first, max_failure_ratio: 0.5, monitor: 30s}")),
            "u",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                u.parallelism,
                u.failure_action,
                u.order,
                u.max_failure_ratio,
                u.monitor
            ),
            (
                2,
                FailureAction::Rollback,
                UpdateOrder::StartFirst,
                0.5,
                30_000_000_000
            )
        );
        assert_eq!(update_config(None, "u").unwrap(), None);
        assert_eq!(
            message(update_config(Some(&node("{order: random}")), "u")),
            "t.yml:1:12: u.order must be stop-first or start-first, not \"random\""
        );
        assert_eq!(
            message(update_config(Some(&node("{failure_action: panic}")), "u")),
            "t.yml:1:21: u.failure_action must be pause, continue or rollback, not \"panic\""
        );
    }

    #[test]
    fn placement_holds_constraints_preferences_and_the_platform() {
        let p = placement(
            Some(&node("{constraints: [node.role==worker], preferences: [{spread: node.labels.dc}], max_replicas_per_node: 2}")),
            Some(&node("linux/arm64/v8")),
            DW,
            "services.web",
        )
        .unwrap();
        assert_eq!(p.constraints, ["node.role==worker"]);
        assert_eq!(
            p.preferences[0].spread.as_ref().unwrap().spread_descriptor,
            "node.labels.dc"
        );
        assert_eq!(p.max_replicas, 2);
        assert_eq!(
            (
                p.platforms[0].os.as_str(),
                p.platforms[0].architecture.as_str()
            ),
            ("linux", "arm64")
        );
        assert_eq!(
            placement(None, None, DW, "s").unwrap(),
            Placement::default()
        );
        assert_eq!(
            message(placement(None, Some(&node("linux/arm64/v8/x")), DW, "services.web")),
            "t.yml:1:4: services.web.platform: invalid platform \"linux/arm64/v8/x\": expected OS[/ARCH[/VARIANT]], e.g. linux/amd64"
        );
        assert_eq!(
            message(placement(Some(&node("{preferences: x}")), None, DW, "s")),
            "t.yml:1:18: services.web.deploy.placement.preferences must be a list"
        );
    }

    #[test]
    fn endpoint_mode_is_vip_or_dnsrr_in_any_case() {
        assert_eq!(endpoint_mode(None, DW).unwrap(), ResolutionMode::Vip);
        assert_eq!(
            endpoint_mode(Some(&node("DNSRR")), DW).unwrap(),
            ResolutionMode::Dnsrr
        );
        assert_eq!(
            message(endpoint_mode(Some(&node("lb")), DW)),
            "t.yml:1:4: services.web.deploy.endpoint_mode must be vip or dnsrr, not \"lb\""
        );
    }
}
