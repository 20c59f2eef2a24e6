//! `shoal-bench stack`: a Compose stack of many services (50 by default) on a one-node cluster
//! with a real Docker Engine, deployed with the shoal CLI as a user would: the time of
//! `shoal stack deploy --detach` (read the files, send the stack, the managers validate it and
//! commit it in one Raft entry) and of its `--dry-run` (the same without the commit), the time
//! until every service runs its task, and an unchanged redeploy (goal ≤ 50 ms, and no task
//! touched). The stack is removed at the end, so the engine is left as it was.

use crate::cluster::{Cluster, Launch};
use crate::{ms, pct, say, Row};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Options {
    pub services: usize,
    pub runs: usize,
    pub image: String,
    pub engine: PathBuf,
}

const STACK: &str = "bench";

fn compose(services: usize, image: &str) -> String {
    let mut text = String::from("version: \"3.8\"\nservices:\n");
    for i in 0..services {
        text.push_str(&format!(
            "  s{i:02}:\n    image: {image}\n    command: [\"sleep\", \"100000\"]\n    stop_grace_period: 1s\n    environment:\n      INDEX: \"{i}\"\n"
        ));
    }
    text
}

/// Runs the shoal CLI against `socket`; the time it took, failing on a non-zero exit.
fn shoal(launch: &Launch, socket: &Path, args: &[&str]) -> Result<Duration> {
    let t0 = Instant::now();
    let out = std::process::Command::new(&launch.shoal)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running the shoal CLI")?;
    let took = t0.elapsed();
    if !out.status.success() {
        bail!(
            "shoal {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// Task IDs by service ID, of the tasks that run; and the services' versions.
async fn running(cl: &Cluster) -> Result<(BTreeMap<String, Vec<String>>, Vec<u64>)> {
    let d = &cl.nodes[0];
    let tasks: Value = d.conn().get("/v1.41/tasks").await?.json()?;
    let mut by_service: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tasks.as_array().into_iter().flatten() {
        if t["Status"]["State"] == "running" && t["DesiredState"] == "running" {
            by_service
                .entry(t["ServiceID"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(t["ID"].as_str().unwrap_or_default().to_string());
        }
    }
    let services: Value = d.conn().get("/v1.41/services").await?.json()?;
    let mut versions: Vec<u64> = services
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["Version"]["Index"].as_u64().unwrap_or_default())
        .collect();
    versions.sort();
    Ok((by_service, versions))
}

pub async fn bench_stack(o: &Options, launch: &Launch) -> Result<Vec<Row>> {
    let launch = Launch {
        engine_socket: Some(o.engine.clone()),
        ..launch.clone()
    };
    say(format!("stack: one manager on {}", o.engine.display()));
    let cl = Cluster::start(&launch, 1).await?;
    let socket = cl.nodes[0].socket();
    let file = cl.nodes[0].dir.join("stack.yml");
    std::fs::write(&file, compose(o.services, &o.image))?;
    let file = file.to_str().context("temp path")?.to_string();
    let deploy = ["stack", "deploy", "--detach", "-c", &file, STACK];
    let dry = [
        "stack",
        "deploy",
        "--detach",
        "--dry-run",
        "-c",
        &file,
        STACK,
    ];

    let dry_first = shoal(&launch, &socket, &dry)?;
    let t0 = Instant::now();
    let first = shoal(&launch, &socket, &deploy)?;
    say(format!(
        "stack: {} services deployed in {:.0} ms; waiting for their tasks",
        o.services,
        ms(first)
    ));
    let converged = loop {
        let (by_service, _) = running(&cl).await?;
        if by_service.len() >= o.services {
            break t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {} of {} services ran a task after 600 s",
                by_service.len(),
                o.services
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let before = running(&cl).await?;
    let mut again = Vec::new();
    for _ in 0..o.runs {
        again.push(shoal(&launch, &socket, &deploy)?);
    }
    let after = running(&cl).await?;
    let untouched = before == after;
    let dry_again = shoal(&launch, &socket, &dry)?;
    again.sort();
    shoal(&launch, &socket, &["stack", "rm", STACK])?;
    // The engine as it was: the daemon goes only once its agent removed every container and
    // the stack's engine network (with the daemon gone, the engine would keep them and retry
    // its network plugin on every call that touches them).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let containers = engine_lines(
            &o.engine,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.stack.namespace={STACK}"),
            ],
        );
        let networks = engine_lines(
            &o.engine,
            &["network", "ls", "-q", "--filter", &format!("name={STACK}_")],
        );
        if containers == 0 && networks == 0 {
            break;
        }
        if Instant::now() > deadline {
            say(format!(
                "stack: {containers} containers and {networks} networks of the stack still on the engine after 300 s"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let n = o.services;
    Ok(vec![
        Row::new(
            format!("Stack of {n} services: `stack deploy --dry-run` (read, send, validate)"),
            format!("{:.0} ms", ms(dry_first)),
            "—",
            None,
        ),
        Row::new(
            format!("Stack of {n} services: `stack deploy --detach` (… and commit, one entry)"),
            format!("{:.0} ms", ms(first)),
            "—",
            None,
        ),
        Row::new(
            format!("Stack of {n} services: deploy → every service runs its task"),
            format!("{:.1} s", converged.as_secs_f64()),
            "—",
            None,
        ),
        Row::new(
            format!(
                "Stack of {n} services: unchanged redeploy, {} runs (whole CLI process)",
                again.len()
            ),
            format!(
                "p50 {:.0} ms, max {:.0} ms; tasks and service versions {}",
                ms(pct(&again, 50.0)),
                ms(*again.last().unwrap_or(&Duration::ZERO)),
                if untouched { "untouched" } else { "CHANGED" }
            ),
            "≤ 50 ms, nothing touched",
            Some(untouched && pct(&again, 50.0) <= Duration::from_millis(50)),
        ),
        Row::new(
            format!("Stack of {n} services: `--dry-run` against the running stack"),
            format!("{:.0} ms", ms(dry_again)),
            "—",
            None,
        ),
    ])
}

/// How many lines `docker -H ENGINE ARGS` prints (0 when it fails).
fn engine_lines(engine: &Path, args: &[&str]) -> usize {
    std::process::Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", engine.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}
