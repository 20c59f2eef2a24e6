//! `shoal-bench converge`: how long a one-node cluster on a real Docker Engine takes to bring
//! a replicated service's tasks to running, to roll an update, to replace a killed container
//! and to remove everything; with `--compare-swarm`, the same Engine API calls against Docker
//! Swarm on the same engine.
//!
//! It must leave the engine as it found it: Swarm mode is entered only when the engine is in
//! no swarm, and is left (`docker swarm leave --force`) whatever happens, error and Ctrl-C
//! included; the containers of the benchmark's node are removed when a run stops midway.
//! Only loopback: shoal listens on 127.0.0.1, Swarm is given 127.0.0.1 as listen and
//! advertise address, and no service publishes a port (Swarm's ingress needs IPVS).

use crate::client::{Conn, Reply};
use crate::cluster::{Cluster, Launch};
use crate::{ms, pct, say, Row};
use anyhow::{bail, Context, Result};
use http::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `converge` is run with.
pub struct Options {
    pub replicas: usize,
    pub runs: usize,
    pub image: String,
    /// The Docker Engine's socket: shoal's agent runs tasks there, Swarm is entered there.
    pub engine: PathBuf,
    pub compare_swarm: bool,
}

/// One system under test: where its Docker API answers, and the engine its tasks run on.
struct Target {
    name: &'static str,
    api: PathBuf,
    engine: PathBuf,
}

/// How long any one step may take before the run fails.
const LIMIT: Duration = Duration::from_secs(120);
/// Pause between two polls of the API.
const POLL: Duration = Duration::from_millis(10);
const SECOND_NS: u64 = 1_000_000_000;
/// Task states from ASSIGNED up to RUNNING: the scheduler has placed the task.
const PLACED: [&str; 6] = [
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
];

/// The times of every run, per step.
#[derive(Default)]
struct Samples {
    placed: Vec<Duration>,
    create: Vec<Duration>,
    update: Vec<Duration>,
    update_completed: Vec<Duration>,
    replace: Vec<Duration>,
    remove: Vec<Duration>,
}

fn service_spec(name: &str, image: &str, replicas: usize) -> Value {
    json!({
        "Name": name,
        "Labels": {"shoal-bench": "converge"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["sleep", "100000"],
                "StopGracePeriod": SECOND_NS,
            },
            // Swarm's default delay is 5 s: 0 on both, so a restart is measured, not a pause.
            "RestartPolicy": {"Condition": "any", "Delay": 0, "MaxAttempts": 0},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {
            "Parallelism": replicas,
            "Delay": 0,
            "FailureAction": "pause",
            "Monitor": 5 * SECOND_NS,
            "MaxFailureRatio": 0,
            "Order": "start-first",
        },
    })
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn expect(what: &str, r: &Reply) -> Result<()> {
    if !r.ok() {
        bail!("{what}: HTTP {}: {}", r.status, r.text());
    }
    Ok(())
}

async fn tasks(c: &mut Conn, filters: &Value) -> Result<Vec<Value>> {
    let path = format!("/v1.41/tasks?filters={}", encode(&filters.to_string()));
    let r = c.get_within(Duration::from_secs(10), &path).await?;
    expect("GET /tasks", &r)?;
    Ok(r.json()?.as_array().cloned().unwrap_or_default())
}

fn state(t: &Value) -> &str {
    t["Status"]["State"].as_str().unwrap_or_default()
}

fn running(ts: &[Value]) -> usize {
    ts.iter().filter(|t| state(t) == "running").count()
}

fn check_deadline(t0: Instant, what: &str) -> Result<()> {
    if t0.elapsed() > LIMIT {
        bail!("{what}: not done within {LIMIT:?}");
    }
    Ok(())
}

/// Waits until the engine's node is ready to run tasks.
async fn node_ready(api: &Path) -> Result<()> {
    let mut c = Conn::new(api);
    let t0 = Instant::now();
    loop {
        if let Ok(r) = c.get_within(Duration::from_secs(5), "/v1.41/nodes").await {
            if r.ok() {
                let v = r.json()?;
                let ready = v.as_array().is_some_and(|ns| {
                    ns.iter().any(|n| {
                        n["Status"]["State"] == "ready" && n["Spec"]["Availability"] == "active"
                    })
                });
                if ready {
                    return Ok(());
                }
            }
        }
        check_deadline(t0, "waiting for a ready node")?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One create → update → kill → remove cycle of a fresh service.
async fn one_run(t: &Target, o: &Options, run: usize, s: &mut Samples) -> Result<()> {
    let n = o.replicas;
    let mut c = Conn::new(&t.api);
    let mut engine = Conn::new(&t.engine);
    let _ = c.get("/_ping").await; // the connection is open before the clock starts
    let name = format!("bench-converge-{}-{run}", std::process::id());

    // 1. create → N running.
    let t0 = Instant::now();
    let r = c
        .post("/v1.41/services/create", &service_spec(&name, &o.image, n))
        .await?;
    expect("services/create", &r)?;
    let id = r.json()?["ID"]
        .as_str()
        .context("services/create: no ID")?
        .to_string();
    let of_service = json!({"service": [id], "desired-state": ["running"]});
    let mut placed = None;
    loop {
        let ts = tasks(&mut c, &of_service).await?;
        if placed.is_none() && ts.iter().filter(|t| PLACED.contains(&state(t))).count() >= n {
            placed = Some(t0.elapsed());
        }
        if running(&ts) >= n {
            break;
        }
        check_deadline(t0, "create → running")?;
        tokio::time::sleep(POLL).await;
    }
    let create = t0.elapsed();
    let placed = placed.unwrap_or(create);

    // 2. rolling update (all at once, start-first) → N up-to-date tasks running, then
    // UpdateStatus completed (after the monitor period).
    let r = c.get(&format!("/v1.41/services/{id}")).await?;
    expect("GET /services/ID", &r)?;
    let svc = r.json()?;
    let version = svc["Version"]["Index"]
        .as_u64()
        .context("no Version.Index")?;
    let mut spec = svc["Spec"].clone();
    spec["TaskTemplate"]["ContainerSpec"]["Env"] = json!([format!("SHOAL_BENCH_RUN={run}")]);
    let t0 = Instant::now();
    let r = c
        .post(
            &format!("/v1.41/services/{id}/update?version={version}"),
            &spec,
        )
        .await?;
    expect("services/update", &r)?;
    let up_to_date =
        json!({"service": [id], "_up-to-date": ["true"], "desired-state": ["running"]});
    loop {
        if running(&tasks(&mut c, &up_to_date).await?) >= n {
            break;
        }
        check_deadline(t0, "update → running")?;
        tokio::time::sleep(POLL).await;
    }
    let update = t0.elapsed();
    loop {
        let r = c
            .get_within(Duration::from_secs(10), &format!("/v1.41/services/{id}"))
            .await?;
        expect("GET /services/ID", &r)?;
        let st = r.json()?["UpdateStatus"]["State"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match st.as_str() {
            "completed" => break,
            "paused" | "rollback_started" | "rollback_completed" | "rollback_paused" => {
                bail!("the update of {name} did not complete: UpdateStatus {st}")
            }
            _ => {}
        }
        check_deadline(t0, "update → completed")?;
        tokio::time::sleep(POLL).await;
    }
    let update_completed = t0.elapsed();

    // 3. kill one task's container → a new task of that slot runs.
    let ts = tasks(&mut c, &up_to_date).await?;
    let victim = ts
        .iter()
        .filter(|t| state(t) == "running")
        .min_by_key(|t| t["Slot"].as_u64().unwrap_or(u64::MAX))
        .context("no running task to kill")?;
    let slot = victim["Slot"].as_u64().context("task without a slot")?;
    let old = victim["ID"].as_str().unwrap_or_default().to_string();
    let cid = victim["Status"]["ContainerStatus"]["ContainerID"]
        .as_str()
        .context("running task without a container")?
        .to_string();
    let t0 = Instant::now();
    let r = engine
        .post(&format!("/v1.41/containers/{cid}/kill"), &json!({}))
        .await?;
    expect("engine: POST /containers/ID/kill", &r)?;
    loop {
        let ts = tasks(&mut c, &of_service).await?;
        let replaced = ts.iter().any(|t| {
            t["Slot"].as_u64() == Some(slot)
                && t["ID"].as_str() != Some(&old)
                && state(t) == "running"
        });
        if replaced {
            break;
        }
        check_deadline(t0, "kill → replaced")?;
        tokio::time::sleep(POLL).await;
    }
    let replace = t0.elapsed();

    // 4. remove → no container of the service left on the engine.
    let t0 = Instant::now();
    let r = c
        .request(Method::DELETE, &format!("/v1.41/services/{id}"), None)
        .await?;
    expect("DELETE /services/ID", &r)?;
    let path = format!(
        "/v1.41/containers/json?all=1&filters={}",
        encode(&json!({"label": [format!("com.docker.swarm.service.id={id}")]}).to_string())
    );
    loop {
        let r = engine.get_within(Duration::from_secs(10), &path).await?;
        expect("engine: GET /containers/json", &r)?;
        if r.json()?.as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        check_deadline(t0, "remove → gone")?;
        tokio::time::sleep(POLL).await;
    }
    let remove = t0.elapsed();

    say(format!(
        "converge {} run {}/{}: placed {:.0} ms, running {:.0} ms; update running {:.0} ms, completed {:.0} ms; replaced {:.0} ms; removed {:.0} ms",
        t.name,
        run + 1,
        o.runs,
        ms(placed),
        ms(create),
        ms(update),
        ms(update_completed),
        ms(replace),
        ms(remove)
    ));
    s.placed.push(placed);
    s.create.push(create);
    s.update.push(update);
    s.update_completed.push(update_completed);
    s.replace.push(replace);
    s.remove.push(remove);
    Ok(())
}

fn min_p50_max(v: &mut [Duration]) -> String {
    v.sort();
    format!(
        "min {:.0} ms, p50 {:.0} ms, max {:.0} ms (n={})",
        ms(*v.first().unwrap_or(&Duration::ZERO)),
        ms(pct(v, 50.0)),
        ms(*v.last().unwrap_or(&Duration::ZERO)),
        v.len()
    )
}

async fn measure(t: &Target, o: &Options) -> Result<Vec<Row>> {
    node_ready(&t.api).await?;
    let mut s = Samples::default();
    for run in 0..o.runs {
        one_run(t, o, run, &mut s)
            .await
            .with_context(|| format!("{}: run {}", t.name, run + 1))?;
    }
    let n = o.replicas;
    let name = t.name;
    Ok(vec![
        Row::new(
            format!("{name}: create → {n} tasks placed on the node"),
            min_p50_max(&mut s.placed),
            "-",
            None,
        ),
        Row::new(
            format!("{name}: create → {n} tasks running"),
            min_p50_max(&mut s.create),
            "-",
            None,
        ),
        Row::new(
            format!("{name}: update (parallelism {n}, start-first) → {n} new tasks running"),
            min_p50_max(&mut s.update),
            "-",
            None,
        ),
        Row::new(
            format!("{name}: update → UpdateStatus completed (monitor 5 s)"),
            min_p50_max(&mut s.update_completed),
            "-",
            None,
        ),
        Row::new(
            format!("{name}: kill one container → its slot's new task running"),
            min_p50_max(&mut s.replace),
            "-",
            None,
        ),
        Row::new(
            format!("{name}: remove → no container left"),
            min_p50_max(&mut s.remove),
            "-",
            None,
        ),
    ])
}

/// `docker -H unix://ENGINE ARGS…`; its stdout, trimmed.
fn docker(engine: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", engine.display()))
        .args(args)
        .output()
        .context("cannot run the docker CLI")?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Force-removes every container of a node (label `com.docker.swarm.node.id`).
fn remove_node_containers(engine: &Path, node_id: &str) {
    if node_id.is_empty() {
        return;
    }
    let label = format!("label=com.docker.swarm.node.id={node_id}");
    match docker(engine, &["ps", "-aq", "--filter", &label]) {
        Ok(ids) if !ids.is_empty() => {
            let ids: Vec<&str> = ids.lines().collect();
            say(format!(
                "converge: removing {} container(s) of node {node_id}",
                ids.len()
            ));
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            if let Err(e) = docker(engine, &args) {
                say(format!("converge: {e:#}"));
            }
        }
        Ok(_) => {}
        Err(e) => say(format!("converge: {e:#}")),
    }
}

/// A one-node shoal cluster whose agent runs tasks on the engine. Dropping it kills the
/// daemon first, then removes whatever containers its node left (a run that stopped midway).
struct ShoalNode {
    cluster: Cluster,
    engine: PathBuf,
}

impl Drop for ShoalNode {
    fn drop(&mut self) {
        let node_id = self.cluster.nodes[0].node_id.clone();
        self.cluster.nodes.clear();
        remove_node_containers(&self.engine, &node_id);
    }
}

/// Swarm mode, entered on the engine by the benchmark and left when dropped, whatever
/// happened (an error, or Ctrl-C dropping the benchmark).
struct SwarmMode {
    engine: PathBuf,
    node_id: String,
}

impl SwarmMode {
    fn enter(engine: &Path) -> Result<SwarmMode> {
        let state = docker(engine, &["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
        if state != "inactive" {
            bail!(
                "the engine at {} is already in swarm mode (LocalNodeState {state}): refusing to \
                 touch a swarm the benchmark did not create; leave it first if it is yours",
                engine.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        say(format!("converge: docker swarm init (listen {listen})"));
        let mut swarm = SwarmMode {
            engine: engine.to_path_buf(),
            node_id: String::new(),
        };
        // From here on, Drop leaves: even a failed init may have left a half-made swarm.
        docker(
            engine,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                "127.0.0.1",
                "--listen-addr",
                &listen,
            ],
        )
        .context("docker swarm init failed on this engine")?;
        swarm.node_id = docker(engine, &["info", "--format", "{{.Swarm.NodeID}}"])?;
        Ok(swarm)
    }
}

impl Drop for SwarmMode {
    fn drop(&mut self) {
        say("converge: docker swarm leave --force");
        if let Err(e) = docker(&self.engine, &["swarm", "leave", "--force"]) {
            say(format!("converge: {e:#}"));
        }
        remove_node_containers(&self.engine, &self.node_id);
        match docker(
            &self.engine,
            &["info", "--format", "{{.Swarm.LocalNodeState}}"],
        ) {
            Ok(s) if s == "inactive" => {}
            Ok(s) => say(format!(
                "converge: WARNING: the engine is still in swarm mode ({s}); run `docker swarm leave --force`"
            )),
            Err(e) => say(format!("converge: {e:#}")),
        }
    }
}

pub async fn bench_converge(o: &Options, launch: &Launch) -> Result<Vec<Row>> {
    let engine = &o.engine;
    let ping = Conn::new(engine)
        .get_within(Duration::from_secs(5), "/_ping")
        .await
        .with_context(|| format!("no Docker Engine answers at {}", engine.display()))?;
    expect("engine: GET /_ping", &ping)?;
    let r = Conn::new(engine)
        .get(&format!(
            "/v1.41/images/{}/json",
            encode(&o.image).replace("%2F", "/")
        ))
        .await?;
    if !r.ok() {
        bail!(
            "image {} is not on the engine (build it with scripts/test-images.sh)",
            o.image
        );
    }

    let mut rows = Vec::new();
    {
        say(format!(
            "converge: starting one shoal manager on engine {}",
            engine.display()
        ));
        let launch = Launch {
            engine_socket: Some(engine.clone()),
            ..launch.clone()
        };
        let cluster = Cluster::start(&launch, 1).await?;
        let node = ShoalNode {
            cluster,
            engine: engine.clone(),
        };
        let target = Target {
            name: "shoal",
            api: node.cluster.nodes[0].socket(),
            engine: engine.clone(),
        };
        rows.extend(measure(&target, o).await?);
    }
    if o.compare_swarm {
        say(format!(
            "converge: load average before Swarm: {}",
            crate::loadavg()
        ));
        let swarm = SwarmMode::enter(engine)?;
        let target = Target {
            name: "Swarm",
            api: engine.clone(),
            engine: engine.clone(),
        };
        let res = measure(&target, o).await;
        drop(swarm);
        rows.extend(res?);
    }
    Ok(rows)
}
