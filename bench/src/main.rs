//! `shoal-bench`: runs real `shoal daemon` processes on loopback (each in its own temp dir)
//! and measures commit latency, write throughput, leader failover, idle memory and large
//! listings; with a Docker Engine, how fast a service's tasks converge (against Docker Swarm
//! too); in the multi-host lab, overlay networks (names, DNS, VIP, throughput, many tasks).
//! Prints a Markdown table. See `docs/benchmarks.md`.

mod client;
mod cluster;
mod converge;
mod join;
mod overlay;
mod program;
mod stack;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use client::Conn;
use cluster::{Cluster, Launch};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "shoal-bench",
    about = "Benchmarks a release build of shoal on loopback"
)]
struct Args {
    /// The shoal binary (build it with `cargo build --release -p shoal`).
    #[arg(long, global = true, default_value = "target/release/shoal")]
    shoal: PathBuf,
    /// Where the daemons' temp dirs go (default: $TMPDIR or /tmp). Its disk decides fsync cost.
    #[arg(long, global = true)]
    tmp_dir: Option<PathBuf>,
    /// Timing profile of the daemons.
    #[arg(long, global = true, default_value = "standard")]
    timing: String,
    /// SHOAL_LOG of the daemons.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Keep the daemons' temp dirs (data and logs) instead of removing them.
    #[arg(long, global = true)]
    keep: bool,
    /// commit: number of measured sequential writes.
    #[arg(long, global = true, default_value_t = 2000)]
    writes: usize,
    /// throughput: number of concurrent writers (one keep-alive connection each).
    #[arg(long, global = true, default_value_t = 128)]
    writers: usize,
    /// throughput: seconds of load.
    #[arg(long, global = true, default_value_t = 10.0)]
    seconds: f64,
    /// throughput: managers in the cluster (3 for the figure; 1 isolates the leader's path).
    #[arg(long, global = true, default_value_t = 3)]
    managers: usize,
    /// failover: number of kill -9 runs (default 20); converge: cycles per system (default 5);
    /// overlay: scale-ups timed for name propagation (default 20); join: joins per role
    /// (default 10).
    #[arg(long, global = true)]
    runs: Option<usize>,
    /// rss: seconds of idling before reading VmRSS.
    #[arg(long, global = true, default_value_t = 10.0)]
    idle: f64,
    /// list: number of services to create.
    #[arg(long, global = true, default_value_t = 10_000)]
    services: usize,
    /// stack: services in the benchmark's Compose stack.
    #[arg(long, global = true, default_value_t = 50)]
    stack_services: usize,
    /// list: number of timed GETs of each kind.
    #[arg(long, global = true, default_value_t = 50)]
    requests: usize,
    /// list: concurrent creators.
    #[arg(long, global = true, default_value_t = 64)]
    create_concurrency: usize,
    /// fsync: number of 4 KiB append + fdatasync rounds.
    #[arg(long, global = true, default_value_t = 1000)]
    fsyncs: usize,
    /// converge: replicas of the benchmark service.
    #[arg(long, global = true, default_value_t = 20)]
    replicas: usize,
    /// converge: the image of the benchmark service (must be on the engine already).
    #[arg(long, global = true, default_value = "shoal-test/busybox:latest")]
    image: String,
    /// converge: the Docker Engine's socket (shoal's agent runs the tasks there).
    #[arg(long, global = true, default_value = "/var/run/docker.sock")]
    engine_socket: PathBuf,
    /// converge: also measure Docker Swarm on the same engine (enters swarm mode only if the
    /// engine is in none, and always leaves it).
    #[arg(long, global = true)]
    compare_swarm: bool,
    /// overlay: DNS queries from each host's client.
    #[arg(long, global = true, default_value_t = 1000)]
    queries: usize,
    /// overlay: seconds of each connection-rate and bulk-throughput round.
    #[arg(long, global = true, default_value_t = 5.0)]
    net_seconds: f64,
    /// overlay: concurrent connections of the connection-rate client.
    #[arg(long, global = true, default_value_t = 16)]
    conn_workers: usize,
    /// overlay: tasks of the many-tasks service (0 skips that step). 300 by default: 1,000
    /// overwhelm the lab's three engines on the 2-vCPU benchmark machine.
    #[arg(long, global = true, default_value_t = 300)]
    tasks: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
enum Cmd {
    /// Sequential single-writer commit latency (three managers, and one for comparison).
    Commit,
    /// Concurrent configs/create throughput on three managers.
    Throughput,
    /// kill -9 the leader of three managers and time the first committed write.
    Failover,
    /// Join time of a worker and of a manager to a one-manager cluster (mutual TLS, CSR).
    Join,
    /// Idle VmRSS of a one-manager cluster and of the leader of three managers.
    Rss,
    /// GET /services with many services.
    List,
    /// fdatasync latency of the temp dir's disk (4 KiB appends).
    Fsync,
    /// Tasks on a real Docker Engine: create, rolling update, kill, remove until converged
    /// (`--compare-swarm`: Docker Swarm too). Needs the engine, so not part of `all`.
    Converge,
    /// A Compose stack of `--stack-services` services on a real Docker Engine:
    /// deploy, converge, unchanged redeploy. Needs the engine, so not part of `all`.
    Stack,
    /// Overlay networks in the multi-host lab (scripts/netlab.sh, as root): names, DNS, VIP
    /// vs task connections, overlay vs underlay throughput, many tasks. Not part of `all`.
    Overlay,
    /// One network with `--tasks` tasks programmed by shoal's overlay in scratch
    /// namespaces, without engines (as root): time and memory. Not part of `all`.
    Program,
    /// Everything above but `converge`, `overlay` and `program`, in order.
    All,
    /// What `overlay` runs inside a container's or a lab host's network namespace.
    #[command(hide = true)]
    Probe {
        #[command(subcommand)]
        probe: overlay::Probe,
    },
}

/// One line of the result table.
struct Row {
    name: String,
    result: String,
    goal: String,
    met: Option<bool>,
}

impl Row {
    fn new(
        name: impl Into<String>,
        result: impl Into<String>,
        goal: &str,
        met: Option<bool>,
    ) -> Row {
        Row {
            name: name.into(),
            result: result.into(),
            goal: goal.to_string(),
            met,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n={})",
        ms(pct(sorted, 50.0)),
        ms(pct(sorted, 90.0)),
        ms(pct(sorted, 99.0)),
        ms(*sorted.last().unwrap_or(&Duration::ZERO)),
        sorted.len()
    )
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[shoal-bench] {}", msg.as_ref());
}

const TINY_DATA: &str = "eA=="; // base64("x")

async fn create_config(c: &mut Conn, name: &str) -> Result<()> {
    let r = c
        .post(
            "/v1.41/configs/create",
            &json!({"Name": name, "Data": TINY_DATA}),
        )
        .await?;
    if !r.ok() {
        bail!("configs/create {name}: HTTP {}: {}", r.status, r.text());
    }
    Ok(())
}

// ----- 1. commit latency -----

async fn commit_on(launch: &Launch, managers: usize, writes: usize) -> Result<Vec<Duration>> {
    say(format!("commit: starting {managers} manager(s)"));
    let mut cl = Cluster::start(launch, managers).await?;
    let l = cl.wait_healthy(Duration::from_secs(60)).await?;
    let mut c = cl.nodes[l].conn();
    for i in 0..100 {
        create_config(&mut c, &format!("warm-{i}")).await?;
    }
    say(format!(
        "commit: {writes} sequential configs/create on the leader ({})",
        cl.nodes[l].name
    ));
    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let t = Instant::now();
        create_config(&mut c, &format!("c-{i}")).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok(lat)
}

async fn bench_commit(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    let three = commit_on(launch, 3, a.writes).await?;
    let one = commit_on(launch, 1, a.writes).await?;
    let p50 = pct(&three, 50.0);
    Ok(vec![
        Row::new(
            "Commit latency, 1 client, 3 managers",
            summary(&three),
            "p50 ≤ 1 ms",
            Some(p50 <= Duration::from_millis(1)),
        ),
        Row::new(
            "Commit latency, 1 client, 1 manager (reference)",
            summary(&one),
            "-",
            None,
        ),
    ])
}

// ----- 2. throughput -----

async fn bench_throughput(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    let managers = a.managers.max(1);
    say(format!("throughput: starting {managers} managers"));
    let mut cl = Cluster::start(launch, managers).await?;
    let l = cl.wait_healthy(Duration::from_secs(60)).await?;
    let sock = cl.nodes[l].socket();
    let writers = a.writers.max(1);
    let ok = Arc::new(AtomicU64::new(0));
    let errs = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(tokio::sync::Barrier::new(writers + 1));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (ok, errs, stop, barrier) = (ok.clone(), errs.clone(), stop.clone(), barrier.clone());
        let sock = sock.clone();
        set.spawn(async move {
            let mut c = Conn::new(&sock);
            let _ = c.get("/_ping").await; // open the connection before the clock starts
            barrier.wait().await;
            let mut lat = Vec::new();
            let mut i = 0u64;
            let mut first_err: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                match create_config(&mut c, &format!("t{w}-{i}")).await {
                    Ok(()) => {
                        if !stop.load(Ordering::Relaxed) {
                            ok.fetch_add(1, Ordering::Relaxed);
                            lat.push(t.elapsed());
                        }
                    }
                    Err(e) => {
                        errs.fetch_add(1, Ordering::Relaxed);
                        first_err.get_or_insert_with(|| format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (lat, first_err)
        });
    }
    say(format!(
        "throughput: {writers} writers for {} s on the leader ({})",
        a.seconds, cl.nodes[l].name
    ));
    barrier.wait().await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed();
    let done = ok.load(Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        let (l, e) = r?;
        lat.extend(l);
        if first_err.is_none() {
            first_err = e;
        }
    }
    lat.sort();
    let errors = errs.load(Ordering::Relaxed);
    if let Some(e) = &first_err {
        say(format!("throughput: {errors} failed writes, first: {e}"));
    }
    let rate = done as f64 / elapsed.as_secs_f64();
    Ok(vec![Row::new(
        format!("Write throughput, {writers} writers, {managers} managers"),
        format!(
            "{rate:.0} writes/s ({done} in {:.1} s, {errors} errors; latency p50 {:.2} ms, p99 {:.2} ms)",
            elapsed.as_secs_f64(),
            ms(pct(&lat, 50.0)),
            ms(pct(&lat, 99.0)),
        ),
        "≥ 50,000 writes/s",
        Some(rate >= 50_000.0),
    )])
}

// ----- 3. failover -----

/// Tries a write every 10 ms on every survivor (a fresh connection each, 5 s deadline each)
/// until one commits; returns the time from `t0` to that answer and the survivor's index.
async fn first_write(survivors: &[PathBuf], t0: Instant, run: usize) -> Result<(Duration, usize)> {
    let mut set = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if t0.elapsed() > Duration::from_secs(60) {
                    bail!("no write committed within 60 s of the kill");
                }
                for (i, s) in survivors.iter().enumerate() {
                    seq += 1;
                    let name = format!("fo-{run}-{seq}");
                    let s = s.clone();
                    set.spawn(async move {
                        let mut c = Conn::new(&s);
                        match c
                            .post_within(
                                Duration::from_secs(5),
                                "/v1.41/configs/create",
                                &json!({"Name": name, "Data": TINY_DATA}),
                            )
                            .await
                        {
                            Ok(r) if r.ok() => Some((Instant::now(), i)),
                            _ => None,
                        }
                    });
                }
            }
            Some(res) = set.join_next(), if !set.is_empty() => {
                if let Ok(Some((t, i))) = res {
                    set.abort_all();
                    return Ok((t.duration_since(t0), i));
                }
            }
        }
    }
}

async fn bench_failover(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    say(format!(
        "failover: starting 3 managers (timing {})",
        launch.timing
    ));
    let mut cl = Cluster::start(launch, 3).await?;
    let mut times = Vec::new();
    let mut continue_runs = 0;
    let runs = a.runs.unwrap_or(20);
    while times.len() < runs {
        let run = times.len();
        let l = cl.wait_healthy(Duration::from_secs(120)).await?;
        // Let the last (re)joined node catch up with the log before the next kill, and make
        // sure the leader did not change meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if cl.leader().await != Some(l) {
            say("failover: the leader changed before the kill; waiting again");
            continue_runs += 1;
            if continue_runs > 20 {
                bail!("the leader keeps changing before the kill");
            }
            continue;
        }
        let survivors: Vec<usize> = (0..cl.nodes.len()).filter(|&i| i != l).collect();
        let socks: Vec<PathBuf> = survivors.iter().map(|&i| cl.nodes[i].socket()).collect();
        let t0 = Instant::now();
        cl.nodes[l].kill9().await;
        let (d, via) = first_write(&socks, t0, run).await?;
        say(format!(
            "failover run {}/{}: killed {} (leader), first write committed via {} after {:.0} ms",
            run + 1,
            runs,
            cl.nodes[l].name,
            cl.nodes[survivors[via]].name,
            ms(d)
        ));
        times.push(d);
        cl.nodes[l]
            .spawn()
            .await
            .with_context(|| format!("restarting {}", cl.nodes[l].name))?;
    }
    cl.wait_healthy(Duration::from_secs(120)).await?;
    times.sort();
    let max = *times.last().unwrap_or(&Duration::ZERO);
    Ok(vec![Row::new(
        format!(
            "Leader failover (kill -9 → first commit), {} runs",
            times.len()
        ),
        format!(
            "min {:.0} ms, p50 {:.0} ms, max {:.0} ms ({} of {} runs over 1.5 s)",
            ms(*times.first().unwrap_or(&Duration::ZERO)),
            ms(pct(&times, 50.0)),
            ms(max),
            times
                .iter()
                .filter(|t| **t > Duration::from_millis(1500))
                .count(),
            times.len()
        ),
        "max ≤ 1.5 s",
        Some(!times.is_empty() && max <= Duration::from_millis(1500)),
    )])
}

// ----- 4. idle RSS -----

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn bench_rss(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    let goal = 50.0 * 1000.0 * 1000.0 / 1024.0; // 50 MB in KiB
    let mut rows = Vec::new();
    say("rss: one manager");
    let one = Cluster::start(launch, 1).await?;
    tokio::time::sleep(Duration::from_secs_f64(a.idle)).await;
    let (rss, hwm) = one.nodes[0].rss_kib()?;
    drop(one);
    rows.push(Row::new(
        format!("Idle RSS, 1-manager cluster, {} s after init", a.idle),
        format!("{:.1} MiB (peak {:.1} MiB)", mib(rss), mib(hwm)),
        "≤ 50 MB (47.7 MiB)",
        Some((rss as f64) <= goal),
    ));
    say("rss: three managers");
    let mut three = Cluster::start(launch, 3).await?;
    three.wait_healthy(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs_f64(a.idle)).await;
    let l = three.leader().await.context("no leader")?;
    let mut others = Vec::new();
    for (i, d) in three.nodes.iter().enumerate() {
        if i != l {
            others.push(format!("{:.1}", mib(d.rss_kib()?.0)));
        }
    }
    let (rss, hwm) = three.nodes[l].rss_kib()?;
    rows.push(Row::new(
        format!("Idle RSS, leader of 3 managers, {} s idle", a.idle),
        format!(
            "{:.1} MiB (peak {:.1} MiB; followers {} MiB)",
            mib(rss),
            mib(hwm),
            others.join(", ")
        ),
        "≤ 50 MB (47.7 MiB)",
        Some((rss as f64) <= goal),
    ));
    Ok(rows)
}

// ----- 5. GET /services -----

async fn bench_list(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    say("list: starting 3 managers");
    let mut cl = Cluster::start(launch, 3).await?;
    let l = cl.wait_healthy(Duration::from_secs(60)).await?;
    let sock = cl.nodes[l].socket();
    let next = Arc::new(AtomicUsize::new(0));
    let total = a.services;
    say(format!(
        "list: creating {total} services with {} concurrent clients",
        a.create_concurrency
    ));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..a.create_concurrency.max(1) {
        let (next, sock) = (next.clone(), sock.clone());
        set.spawn(async move {
            let mut c = Conn::new(&sock);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let spec = json!({
                    "Name": format!("svc-{i}"),
                    "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
                    "Mode": {"Replicated": {"Replicas": 1}},
                });
                let mut tries = 0;
                loop {
                    tries += 1;
                    match c.post("/v1.41/services/create", &spec).await {
                        Ok(r) if r.ok() => break,
                        Ok(r) if r.status == 409 => break, // an earlier try did commit
                        Ok(r) if tries >= 5 => {
                            bail!("services/create svc-{i}: HTTP {}: {}", r.status, r.text())
                        }
                        Err(e) if tries >= 5 => return Err(e),
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    say(format!(
        "list: created {total} services in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let mut c = cl.nodes[l].conn();
    let mut rows = Vec::new();
    for path in ["/v1.41/services", "/v1.41/services?status=true"] {
        let r = c.get(path).await?;
        if !r.ok() {
            bail!("GET {path}: HTTP {}: {}", r.status, r.text());
        }
        let n = r.json()?.as_array().map(|a| a.len()).unwrap_or(0);
        if n != total {
            bail!("GET {path} listed {n} services, expected {total}");
        }
        let mut lat = Vec::with_capacity(a.requests);
        let mut size = 0;
        for _ in 0..a.requests {
            let t = Instant::now();
            let r = c.get(path).await?;
            lat.push(t.elapsed());
            if !r.ok() {
                bail!("GET {path}: HTTP {}", r.status);
            }
            size = r.body.len();
        }
        lat.sort();
        let p50 = pct(&lat, 50.0);
        rows.push(Row::new(
            format!("GET {path} with {total} services"),
            format!(
                "p50 {:.1} ms, max {:.1} ms ({} requests, {:.2} MB per response)",
                ms(p50),
                ms(*lat.last().unwrap_or(&Duration::ZERO)),
                lat.len(),
                size as f64 / 1e6
            ),
            "p50 ≤ 50 ms",
            Some(p50 <= Duration::from_millis(50)),
        ));
    }
    Ok(rows)
}

// ----- fsync -----

fn fsync_samples(dir: &Path, count: usize) -> Result<Vec<Duration>> {
    use std::io::Write;
    let path = dir.join(format!("shoal-bench-fsync-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = vec![0x5au8; 4096];
    let mut lat = Vec::with_capacity(count);
    let res = (|| -> Result<()> {
        for _ in 0..count {
            let t = Instant::now();
            f.write_all(&block)?;
            f.sync_data()?;
            lat.push(t.elapsed());
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    res?;
    lat.sort();
    Ok(lat)
}

async fn bench_fsync(a: &Args, launch: &Launch) -> Result<Vec<Row>> {
    say(format!(
        "fsync: {} × (4 KiB append + fdatasync) in {}",
        a.fsyncs,
        launch.tmp_dir.display()
    ));
    let dir = launch.tmp_dir.clone();
    let count = a.fsyncs;
    let lat = tokio::task::spawn_blocking(move || fsync_samples(&dir, count)).await??;
    Ok(vec![Row::new(
        "Disk: 4 KiB append + fdatasync (temp dir)",
        summary(&lat),
        "-",
        None,
    )])
}

// ----- driver -----

fn print_table(rows: &[Row]) {
    println!("| Benchmark | Result | Goal | Met |");
    println!("|---|---|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        println!("| {} | {} | {} | {} |", r.name, r.result, r.goal, met);
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {}", kernel.trim())
}

/// `/proc/loadavg`'s first three fields: other work on the machine skews the figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run(a: Args) -> Result<Vec<Row>> {
    let shoal = std::fs::canonicalize(&a.shoal).with_context(|| {
        format!(
            "no shoal binary at {} (run `cargo build --release -p shoal`, or pass --shoal)",
            a.shoal.display()
        )
    })?;
    let tmp_dir = a.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let launch = Launch {
        shoal,
        tmp_dir,
        timing: a.timing.clone(),
        log: a.log.clone(),
        keep: a.keep,
        engine_socket: None,
    };
    say(format!("machine: {}", machine()));
    say(format!("shoal: {}", launch.shoal.display()));
    let cmds = match &a.cmd {
        Cmd::All => vec![
            Cmd::Fsync,
            Cmd::Commit,
            Cmd::Throughput,
            Cmd::Failover,
            Cmd::Join,
            Cmd::Rss,
            Cmd::List,
        ],
        c => vec![c.clone()],
    };
    let mut rows = Vec::new();
    for c in cmds {
        say(format!("{c:?}: load average before: {}", loadavg()));
        let res = match c {
            Cmd::Commit => bench_commit(&a, &launch).await,
            Cmd::Throughput => bench_throughput(&a, &launch).await,
            Cmd::Failover => bench_failover(&a, &launch).await,
            Cmd::Join => join::bench_join(a.runs.unwrap_or(10).max(1), &launch).await,
            Cmd::Rss => bench_rss(&a, &launch).await,
            Cmd::List => bench_list(&a, &launch).await,
            Cmd::Fsync => bench_fsync(&a, &launch).await,
            Cmd::Converge => {
                let o = converge::Options {
                    replicas: a.replicas.max(1),
                    runs: a.runs.unwrap_or(5).max(1),
                    image: a.image.clone(),
                    engine: a.engine_socket.clone(),
                    compare_swarm: a.compare_swarm,
                };
                converge::bench_converge(&o, &launch).await
            }
            Cmd::Overlay => {
                let o = overlay::Options {
                    runs: a.runs.unwrap_or(20).max(1),
                    queries: a.queries.max(1),
                    seconds: a.net_seconds,
                    workers: a.conn_workers.max(1),
                    tasks: a.tasks,
                    image: a.image.clone(),
                };
                overlay::bench_overlay(&o, &launch).await
            }
            Cmd::Stack => {
                let o = stack::Options {
                    services: a.stack_services.max(1),
                    runs: a.runs.unwrap_or(10).max(1),
                    image: a.image.clone(),
                    engine: a.engine_socket.clone(),
                };
                stack::bench_stack(&o, &launch).await
            }
            Cmd::Program => {
                program::bench_program(a.tasks.max(1), a.runs.unwrap_or(20).max(1)).await
            }
            Cmd::All | Cmd::Probe { .. } => unreachable!(),
        };
        match res {
            Ok(r) => rows.extend(r),
            Err(e) if a.cmd == Cmd::All => {
                say(format!("{c:?} failed: {e:#}"));
                let first = format!("{e:#}");
                let first = first.lines().next().unwrap_or_default().to_string();
                rows.push(Row::new(
                    format!("{c:?}"),
                    format!("not measured: {first}"),
                    "-",
                    None,
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Cmd::Probe { probe } = &args.cmd {
        return overlay::run_probe(probe);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Leaving the select drops the benchmark future, and with it its daemons (SIGKILL).
    let outcome = tokio::select! {
        r = run(args) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
    };
    let Some(rows) = outcome else {
        say("interrupted: the daemons were stopped (and swarm mode left, if converge entered it)");
        std::process::exit(130);
    };
    let rows = rows?;
    print_table(&rows);
    Ok(())
}
