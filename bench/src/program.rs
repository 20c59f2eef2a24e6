//! `shoal-bench program`: what shoal itself costs a node for one network with many tasks on
//! it, without engines — the data plane and name server of `shoal_net::overlay` given a
//! network view with `--tasks` endpoints on two other nodes and one service over all of them
//! (VIP backends), in scratch network namespaces of this machine (as root). The lab benchmark
//! (`overlay`) measures the same end to end, but its engines cannot run 1,000 containers on
//! a 2-vCPU machine.

use crate::{say, Row};
use anyhow::{bail, Context, Result};
use shoal_net::dataplane::Linux;
use shoal_net::dns::Upstream;
use shoal_net::overlay::{Cluster, Overlay};
use shoal_types::netview::{NetEndpoint, NetInfo, NetService, NetView};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const HOST_NS: &str = "q7prog-host";
const PREFIX: &str = "q7prog-";
const NODE: &str = "node-here";
const NET_ID: &str = "progbench000000000000000a";

/// The managers are not asked anything here: no container attaches.
struct NoManagers;

impl Cluster for NoManagers {
    async fn attach(&self, _: &str, _: Option<String>) -> Result<String, String> {
        Err("not in this benchmark".into())
    }
    async fn detach(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The `i`-th address of 10.240.0.0/16, past the gateway (.0.1) and the VIP (.0.2).
fn addr(i: usize) -> Ipv4Addr {
    let n = 3 + i as u32;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 240, 0, 0)) + n)
}

fn endpoint(i: usize) -> NetEndpoint {
    // One in three here, the others on two other nodes.
    let (node, node_addr) = match i % 3 {
        0 => (NODE.to_string(), Ipv4Addr::new(203, 0, 113, 1)),
        1 => ("node-two".to_string(), Ipv4Addr::new(203, 0, 113, 2)),
        _ => ("node-three".to_string(), Ipv4Addr::new(203, 0, 113, 3)),
    };
    NetEndpoint {
        addr: addr(i),
        node_id: node,
        node_addr,
        task_id: format!("task{i:06}"),
        service_id: "svcbig".into(),
        names: vec![format!("big.{}.task{i:06}", i + 1)],
        serving: true,
    }
}

fn view(tasks: usize, digest: usize) -> NetView {
    NetView {
        digest: digest.to_string(),
        node_addr: Some(Ipv4Addr::new(203, 0, 113, 1)),
        data_path_port: 4789,
        networks: vec![NetInfo {
            id: NET_ID.into(),
            name: "bench-program".into(),
            vni: 4999,
            subnet: "10.240.0.0/16".into(),
            ip_range: String::new(),
            gateway: Ipv4Addr::new(10, 240, 0, 1),
            mtu: 1450,
            internal: true,
            attachable: false,
            labels: Default::default(),
            endpoints: (0..tasks).map(endpoint).collect(),
            services: vec![NetService {
                id: "svcbig".into(),
                name: "big".into(),
                aliases: vec![],
                vip: Some(Ipv4Addr::new(10, 240, 0, 2)),
            }],
        }],
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cleanup() {
    let _ = ip(&["netns", "del", HOST_NS]);
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && name != HOST_NS {
                let _ = ip(&["netns", "del", &name]);
            }
        }
    }
}

pub async fn bench_program(tasks: usize, runs: usize) -> Result<Vec<Row>> {
    cleanup();
    ip(&["netns", "add", HOST_NS])?;
    let res = measure(tasks, runs).await;
    cleanup();
    res
}

async fn measure(tasks: usize, runs: usize) -> Result<Vec<Row>> {
    ip(&[
        "-n", HOST_NS, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1",
    ])?;
    ip(&["-n", HOST_NS, "addr", "add", "203.0.113.1/24", "dev", "ul0"])?;
    ip(&["-n", HOST_NS, "link", "set", "ul0", "up"])?;
    ip(&["-n", HOST_NS, "link", "set", "lo", "up"])?;
    let dp = Arc::new(Linux::new(PREFIX, Some(HOST_NS.to_string()))?);
    let overlay = Overlay::new(NoManagers, dp, Upstream::none());
    let before = rss_kib();
    say(format!(
        "program: a view with {tasks} tasks on one network (a third here, the rest on two other nodes), one service over all"
    ));
    let t0 = Instant::now();
    overlay.apply_view(NODE, view(tasks, 1)).await;
    let first = t0.elapsed();
    let after = rss_kib();
    let ns = format!("{PREFIX}{}", &NET_ID[..12]);
    let neigh = Command::new("ip")
        .args(["-n", &ns, "neigh", "show", "nud", "permanent"])
        .output()?;
    let neighbours = String::from_utf8_lossy(&neigh.stdout).lines().count();
    let remote = (0..tasks).filter(|i| i % 3 != 0).count();
    if neighbours < remote {
        bail!("{neighbours} neighbour entries for {remote} remote endpoints: the view was not programmed");
    }
    say(format!(
        "program: {tasks} tasks programmed in {:.1} ms ({neighbours} neighbours); RSS {} → {} KiB",
        first.as_secs_f64() * 1000.0,
        before,
        after
    ));
    let mut more = Vec::new();
    for r in 0..runs {
        let t = Instant::now();
        overlay.apply_view(NODE, view(tasks + r + 1, r + 2)).await;
        more.push(t.elapsed());
    }
    more.sort();
    let p = |q: f64| more[((more.len() - 1) as f64 * q).round() as usize];
    say(format!(
        "program: one more task, {runs} times: p50 {:.1} ms, max {:.1} ms",
        p(0.5).as_secs_f64() * 1000.0,
        p(1.0).as_secs_f64() * 1000.0
    ));
    let t = Instant::now();
    overlay.apply_view("", NetView::default()).await;
    let removed = t.elapsed();
    Ok(vec![
        Row::new(
            format!("{tasks} tasks on one network: a node programs the view (data plane: {neighbours} neighbour/FDB entries, {tasks} VIP backends; name server)"),
            format!(
                "{:.1} ms; daemon-side RSS +{:.1} MiB ({} → {} KiB)",
                first.as_secs_f64() * 1000.0,
                (after.saturating_sub(before)) as f64 / 1024.0,
                before,
                after
            ),
            "-",
            None,
        ),
        Row::new(
            format!("…then one more task ({runs} times)"),
            format!(
                "p50 {:.1} ms, max {:.1} ms",
                p(0.5).as_secs_f64() * 1000.0,
                p(1.0).as_secs_f64() * 1000.0
            ),
            "-",
            None,
        ),
        Row::new(
            "…then the network removed from the node",
            format!("{:.1} ms", removed.as_secs_f64() * 1000.0),
            "-",
            None,
        ),
    ])
}
