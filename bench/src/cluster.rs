//! Starts real `shoal daemon` processes on loopback, each in its own temp dir, and forms
//! clusters through the Docker-compatible API. Daemons are killed (SIGKILL) and their dirs
//! removed when dropped, which also happens when a benchmark fails or is interrupted.

use crate::client::Conn;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// What every daemon is started with.
#[derive(Clone, Debug)]
pub struct Launch {
    pub shoal: PathBuf,
    pub tmp_dir: PathBuf,
    pub timing: String,
    pub log: String,
    pub keep: bool,
    /// The Docker Engine the daemons' agents run tasks on; None: a socket that does not
    /// exist (only the control plane is measured).
    pub engine_socket: Option<PathBuf>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct Daemon {
    pub name: String,
    pub dir: PathBuf,
    pub port: u16,
    /// Set once the node is part of a swarm (`GET /info` `Swarm.NodeID`).
    pub node_id: String,
    launch: Launch,
    child: Option<Child>,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Daemon {
    pub async fn start(launch: &Launch, name: &str) -> Result<Daemon> {
        let dir = launch.tmp_dir.join(format!(
            "shoal-bench-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut d = Daemon {
            name: name.to_string(),
            dir,
            port: free_port()?,
            node_id: String::new(),
            launch: launch.clone(),
            child: None,
        };
        d.spawn().await?;
        Ok(d)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("shoal.sock")
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> Conn {
        Conn::new(&self.socket())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process (again) and waits until `/_ping` answers.
    pub async fn spawn(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))?;
        let child = Command::new(&self.launch.shoal)
            .arg("daemon")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--listen-addr")
            .arg(self.addr())
            .arg("--timing")
            .arg(&self.launch.timing)
            .arg("--engine-socket")
            .arg(
                self.launch
                    .engine_socket
                    .clone()
                    .unwrap_or_else(|| self.dir.join("no-engine.sock")),
            )
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .env("SHOAL_LOG", &self.launch.log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.launch.shoal.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = self.conn();
        loop {
            if let Ok(r) = conn.get_within(Duration::from_secs(2), "/_ping").await {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    bail!(
                        "{}: the daemon exited ({st}) before answering:\n{}",
                        self.name,
                        self.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: no answer on {} within 30 s:\n{}",
                    self.name,
                    self.socket().display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and reap it.
    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(30);
        lines[from..].join("\n")
    }

    /// VmRSS and VmHWM of the process, in KiB.
    pub fn rss_kib(&self) -> Result<(u64, u64)> {
        let pid = self.pid().context("the daemon is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL now; tokio reaps it (and kill_on_drop would kill it anyway).
            let _ = c.start_kill();
        }
        if !self.launch.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Fails with the daemon's log when a reply is not 2xx.
fn check(d: &Daemon, what: &str, r: &crate::client::Reply) -> Result<()> {
    if !r.ok() {
        bail!(
            "{}: {what}: HTTP {}: {}\n--- daemon log ---\n{}",
            d.name,
            r.status,
            r.text(),
            d.log_tail()
        );
    }
    Ok(())
}

pub async fn node_id(d: &Daemon) -> Result<String> {
    let r = d.conn().get("/v1.41/info").await?;
    check(d, "GET /info", &r)?;
    let v = r.json()?;
    Ok(v["Swarm"]["NodeID"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

pub struct Cluster {
    pub nodes: Vec<Daemon>,
}

impl Cluster {
    /// `n` managers: init on the first, the others join with the manager token; returns once
    /// all are reachable.
    pub async fn start(launch: &Launch, n: usize) -> Result<Cluster> {
        let first = Daemon::start(launch, "m1").await?;
        let mut c = first.conn();
        let r = c
            .post(
                "/v1.41/swarm/init",
                &json!({"ListenAddr": first.addr(), "AdvertiseAddr": first.addr()}),
            )
            .await?;
        check(&first, "swarm init", &r)?;
        let r = c.get("/v1.41/swarm").await?;
        check(&first, "GET /swarm", &r)?;
        let token = r.json()?["JoinTokens"]["Manager"]
            .as_str()
            .context("no JoinTokens.Manager")?
            .to_string();
        let mut nodes = vec![first];
        for i in 1..n {
            let d = Daemon::start(launch, &format!("m{}", i + 1)).await?;
            let r = d
                .conn()
                .post(
                    "/v1.41/swarm/join",
                    &json!({
                        "ListenAddr": d.addr(),
                        "AdvertiseAddr": d.addr(),
                        "RemoteAddrs": [nodes[0].addr()],
                        "JoinToken": token,
                    }),
                )
                .await?;
            check(&d, "swarm join", &r)?;
            nodes.push(d);
        }
        for d in nodes.iter_mut() {
            d.node_id = node_id(d).await?;
        }
        let mut cluster = Cluster { nodes };
        cluster.wait_healthy(Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    /// The index of the current leader: every live node must name the same one in
    /// `GET /nodes` (a node that just restarted can still report a stale leader); None
    /// while they disagree or there is none.
    pub async fn leader(&self) -> Option<usize> {
        let mut agreed: Option<String> = None;
        for n in self.nodes.iter().filter(|n| n.alive()) {
            let r = n
                .conn()
                .get_within(Duration::from_secs(2), "/v1.41/nodes")
                .await
                .ok()?;
            if !r.ok() {
                return None;
            }
            let v = r.json().ok()?;
            let id = v.as_array()?.iter().find_map(|n| {
                (n["ManagerStatus"]["Leader"] == serde_json::Value::Bool(true))
                    .then(|| n["ID"].as_str().unwrap_or_default().to_string())
            })?;
            match &agreed {
                Some(a) if *a != id => return None,
                _ => agreed = Some(id),
            }
        }
        let id = agreed?;
        self.nodes
            .iter()
            .position(|d| d.alive() && !d.node_id.is_empty() && d.node_id == id)
    }

    /// Waits until there is a leader that sees every node as a reachable manager, and every
    /// node can commit a write (forwarded to the leader when it is a follower).
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<usize> {
        let deadline = Instant::now() + limit;
        let n = self.nodes.len();
        loop {
            if let Some(l) = self.leader().await {
                let reachable = match self.nodes[l]
                    .conn()
                    .get_within(Duration::from_secs(2), "/v1.41/nodes")
                    .await
                    .and_then(|r| r.json())
                {
                    Ok(v) => v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|x| {
                                    x["ManagerStatus"]["Reachability"].as_str() == Some("reachable")
                                })
                                .count()
                        })
                        .unwrap_or(0),
                    Err(_) => 0,
                };
                if reachable == n {
                    let mut all = true;
                    for d in &self.nodes {
                        let probe = SEQ.fetch_add(1, Ordering::Relaxed);
                        let name = format!("health-{probe}");
                        let ok = d
                            .conn()
                            .post_within(
                                Duration::from_secs(3),
                                "/v1.41/configs/create",
                                &json!({"Name": name, "Data": "eA=="}),
                            )
                            .await
                            .map(|r| r.ok())
                            .unwrap_or(false);
                        all &= ok;
                    }
                    if all {
                        return Ok(l);
                    }
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|d| format!("--- {} ---\n{}", d.name, d.log_tail()))
                    .collect();
                bail!(
                    "the cluster did not become healthy within {limit:?}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
