//! Join time of a node: a fresh daemon (already running, not in a swarm) joins a one-manager
//! cluster over mutual TLS. Timed from `POST /swarm/join` to (a) the join's answer — the node
//! holds its certificate and is in the state — and (b) the leader listing it `ready`; for a
//! manager, (b) is the leader listing it as a reachable manager.

use crate::cluster::{Cluster, Daemon, Launch};
use crate::{ms, pct, say, Row};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn bench_join(runs: usize, launch: &Launch) -> Result<Vec<Row>> {
    say("join: starting one manager");
    let cl = Cluster::start(launch, 1).await?;
    let r = cl.nodes[0].conn().get("/v1.41/swarm").await?;
    let tokens = r.json()?["JoinTokens"].clone();
    let mut rows = Vec::new();
    for role in ["Worker", "Manager"] {
        let token = tokens[role]
            .as_str()
            .with_context(|| format!("no JoinTokens.{role}"))?
            .to_string();
        let (mut answered, mut ready) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let mut d = Daemon::start(launch, &format!("{}{run}", role.to_lowercase())).await?;
            let t0 = Instant::now();
            let r = d
                .conn()
                .post_within(
                    Duration::from_secs(60),
                    "/v1.41/swarm/join",
                    &json!({
                        "ListenAddr": d.addr(),
                        "AdvertiseAddr": d.addr(),
                        "RemoteAddrs": [cl.nodes[0].addr()],
                        "JoinToken": token,
                    }),
                )
                .await?;
            if !r.ok() {
                bail!("swarm join ({role}) failed: {}", r.text());
            }
            answered.push(t0.elapsed());
            d.node_id = crate::cluster::node_id(&d).await?;
            wait_listed(&cl.nodes[0], &d.node_id, role == "Manager", t0).await?;
            ready.push(t0.elapsed());
            say(format!(
                "join {role} {}/{runs}: answered {:.0} ms, listed ready {:.0} ms",
                run + 1,
                ms(*answered.last().unwrap_or(&Duration::ZERO)),
                ms(*ready.last().unwrap_or(&Duration::ZERO)),
            ));
            retire(&cl.nodes[0], &d).await?;
            drop(d);
        }
        answered.sort();
        ready.sort();
        rows.push(Row::new(
            format!(
                "Join of a {} ({runs} runs): join answered",
                role.to_lowercase()
            ),
            format!(
                "p50 {:.0} ms, max {:.0} ms",
                ms(pct(&answered, 50.0)),
                ms(*answered.last().unwrap_or(&Duration::ZERO))
            ),
            "—",
            None,
        ));
        rows.push(Row::new(
            format!(
                "Join of a {} ({runs} runs): listed {} by the leader",
                role.to_lowercase(),
                if role == "Manager" {
                    "reachable"
                } else {
                    "ready"
                }
            ),
            format!(
                "p50 {:.0} ms, max {:.0} ms",
                ms(pct(&ready, 50.0)),
                ms(*ready.last().unwrap_or(&Duration::ZERO))
            ),
            "—",
            None,
        ));
    }
    Ok(rows)
}

/// Waits until the leader lists `id` ready (a worker) or as a reachable manager.
async fn wait_listed(leader: &Daemon, id: &str, manager: bool, t0: Instant) -> Result<()> {
    loop {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("node {id} not listed ready after 60 s");
        }
        let r = leader
            .conn()
            .get_within(Duration::from_secs(5), &format!("/v1.41/nodes/{id}"))
            .await?;
        if r.ok() {
            let v = r.json()?;
            let ready = v["Status"]["State"] == "ready";
            let reachable = v["ManagerStatus"]["Reachability"] == "reachable";
            if ready && (!manager || reachable) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Takes the node out again, so that every run joins a one-manager cluster: a manager is
/// demoted first (so that the leader keeps its quorum), then the node leaves and is removed.
async fn retire(leader: &Daemon, d: &Daemon) -> Result<()> {
    let path = format!("/v1.41/nodes/{}", d.node_id);
    let v = leader.conn().get(&path).await?.json()?;
    if v["Spec"]["Role"] == "manager" {
        let version = v["Version"]["Index"].as_u64().unwrap_or_default();
        let mut spec = v["Spec"].clone();
        spec["Role"] = json!("worker");
        let r = leader
            .conn()
            .post(&format!("{path}/update?version={version}"), &spec)
            .await?;
        if !r.ok() {
            bail!("demoting {}: {}", d.node_id, r.text());
        }
        let t0 = Instant::now();
        while leader.conn().get(&path).await?.json()?["ManagerStatus"].is_object() {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("{} still a manager 30 s after its demotion", d.node_id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = d
        .conn()
        .post_within(
            Duration::from_secs(30),
            "/v1.41/swarm/leave?force=true",
            &json!(null),
        )
        .await;
    let t0 = Instant::now();
    loop {
        let r = leader
            .conn()
            .request(http::Method::DELETE, &format!("{path}?force=true"), None)
            .await?;
        if r.ok() {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("removing {}: {}", d.node_id, r.text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
