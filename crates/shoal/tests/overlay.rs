//! Overlay networks across hosts: services on one overlay network reach each other by name
//! (VIP, `tasks.NAME`, dnsrr, aliases) from every host, networks are isolated, internal ones
//! have no egress, names follow tasks as they come and go, attachable networks take plain
//! `docker run`, and the book's chapter-13 stack runs across hosts. Each test makes a cluster
//! of three nodes in the lab (scripts/netlab.sh): the manager on h1, workers on h2 and h3.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::lab::{Lab, LabHost, UNDERLAY_GATEWAY};
use support::{eventually, Daemon, TEST_IMAGE};

const WAIT: Duration = Duration::from_secs(30);

/// A web server that never refuses: busybox httpd serving the container's hostname.
const WEB: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www",
];

/// `web`: three tasks on network `appnet`, one per node.
const REPLICAS_3_SPREAD: [&str; 6] = [
    "--network",
    "appnet",
    "--replicas",
    "3",
    "--replicas-max-per-node",
    "1",
];

/// `client`: one task per node on network `appnet`.
const GLOBAL_ON_APPNET: [&str; 4] = ["--network", "appnet", "--mode", "global"];

/// A container that only waits, to exec into.
const IDLE: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];

/// Three nodes of one cluster, each in its own lab host: `nodes[0]` the manager on h1,
/// `nodes[1]` and `nodes[2]` workers on h2 and h3. Dropping it removes the services and
/// stacks, then every container and engine network on the hosts while the daemons still
/// answer their engines' plugin calls, then the daemons, then (the lab) what they left.
struct Swarm {
    nodes: Vec<Daemon>,
    /// When the test began, for the progress lines on stderr.
    started: std::time::Instant,
    /// Declared last: dropped after the daemons.
    lab: Lab,
}

impl Swarm {
    fn up(test: &str) -> Swarm {
        let started = std::time::Instant::now();
        support::test_image();
        let lab = Lab::up(3);
        let manager = Daemon::start_in_lab_host(&format!("{test}-h1"), &lab.host(1));
        manager.init();
        let mut nodes = vec![manager];
        for i in [2, 3] {
            let worker = Daemon::start_in_lab_host(&format!("{test}-h{i}"), &lab.host(i));
            worker.join(&nodes[0], "worker");
            nodes.push(worker);
        }
        let swarm = Swarm {
            nodes,
            started,
            lab,
        };
        eventually(WAIT, "three ready nodes", || {
            let out = swarm.m().docker(&["node", "ls", "--format", "{{.Status}}"]);
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            (s.lines().filter(|l| l.trim() == "Ready").count() == 3).then_some(())
        });
        swarm.step("three ready nodes");
        swarm
    }

    /// A progress line on stderr (shown when the test fails): what was reached, and when.
    fn step(&self, what: &str) {
        eprintln!("[{:6.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// The manager.
    fn m(&self) -> &Daemon {
        &self.nodes[0]
    }

    fn host(&self, i: usize) -> LabHost {
        self.lab.host(i)
    }

    fn hosts(&self) -> Vec<LabHost> {
        self.lab.hosts()
    }

    /// `docker network create -d overlay ARGS NAME`; the network's ID.
    fn network(&self, name: &str, args: &[&str]) -> String {
        let mut cmd = vec!["network", "create", "-d", "overlay"];
        cmd.extend(args);
        cmd.push(name);
        self.m().docker_ok(&cmd).trim().to_string()
    }

    /// `docker service create --detach --name NAME --stop-grace-period 1s ARGS IMAGE CMD`.
    fn service(&self, name: &str, args: &[&str], cmd: &[&str]) {
        let mut full = vec![
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--stop-grace-period",
            "1s",
        ];
        full.extend(args);
        full.push(TEST_IMAGE);
        full.extend(cmd);
        self.m().docker_ok(&full);
    }

    /// Creates the service (as [`Swarm::service`]) and waits for `n` running tasks with an
    /// address on `net_id`; those addresses. Services made this way start one after the other.
    fn service_running(
        &self,
        name: &str,
        args: &[&str],
        cmd: &[&str],
        net_id: &str,
        n: usize,
    ) -> BTreeSet<Ipv4Addr> {
        self.service(name, args, cmd);
        let ips = self.running(name, net_id, n);
        self.step(&format!("{name}: {n} running tasks"));
        ips
    }

    /// The service's virtual IP on network `net_id`.
    fn vip(&self, service: &str, net_id: &str) -> Ipv4Addr {
        let out = self.m().docker_ok(&[
            "service",
            "inspect",
            service,
            "--format",
            "{{json .Endpoint.VirtualIPs}}",
        ]);
        let vips: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("service {service}: VirtualIPs not JSON ({e}): {out}"));
        vips.as_array()
            .into_iter()
            .flatten()
            .find(|v| v["NetworkID"] == net_id)
            .and_then(|v| v["Addr"].as_str())
            .map(addr_of)
            .unwrap_or_else(|| panic!("service {service} has no VIP on {net_id}: {out}"))
    }

    /// The addresses on `net_id` of the service's tasks that run (desired and actual state),
    /// from the tasks' NetworksAttachments.
    fn task_ips(&self, service: &str, net_id: &str) -> BTreeSet<Ipv4Addr> {
        let ids = self.m().docker_ok(&[
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            service,
        ]);
        let mut ips = BTreeSet::new();
        for id in ids.split_whitespace() {
            let task = self.m().docker_json(&["inspect", "--type", "task", id]);
            let task = &task[0];
            if task["Status"]["State"] != "running" {
                continue;
            }
            for a in task["NetworksAttachments"].as_array().into_iter().flatten() {
                if a["Network"]["ID"] == net_id {
                    for addr in a["Addresses"].as_array().into_iter().flatten() {
                        ips.insert(addr_of(addr.as_str().unwrap_or_default()));
                    }
                }
            }
        }
        ips
    }

    /// Waits until `service` has `n` running tasks with addresses on `net_id`; those.
    fn running(&self, service: &str, net_id: &str, n: usize) -> BTreeSet<Ipv4Addr> {
        eventually(WAIT, &format!("{n} running tasks of {service}"), || {
            let ips = self.task_ips(service, net_id);
            (ips.len() == n).then_some(ips)
        })
    }

    /// The running container of `service` on host `h`, once there is one.
    fn container_on(&self, h: &LabHost, service: &str) -> String {
        eventually(
            WAIT,
            &format!("a running {service} container on {}", h.name()),
            || running_container(h, service),
        )
    }

    /// The hostnames of the running containers of `service` on all hosts.
    fn hostnames(&self, service: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for h in self.hosts() {
            let ids = h.docker_ok(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ]);
            for id in ids.split_whitespace() {
                // A container listed a moment ago may be gone by now (a task being replaced).
                let out = h.docker(&["inspect", "-f", "{{.Config.Hostname}}", id]);
                if out.status.success() {
                    names.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
                }
            }
        }
        names
    }

    /// The daemons' logs, kept in `target/overlay-logs/TEST/` when a test fails (their temp
    /// dirs go with them).
    fn keep_logs(&self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("overlay")
            .replace("::", "-");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("overlay-logs")
            .join(test);
        let _ = std::fs::create_dir_all(&dir);
        for d in &self.nodes {
            let _ = std::fs::write(dir.join(format!("{}.log", d.name)), d.log());
        }
        eprintln!("daemon logs kept in {}", dir.display());
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // No assertion here: a panic in a drop during a test's panic would abort the run.
        if std::thread::panicking() {
            self.keep_logs();
        }
        let m = &self.nodes[0];
        let stacks = m.docker(&["stack", "ls", "--format", "{{.Name}}"]);
        for stack in String::from_utf8_lossy(&stacks.stdout).split_whitespace() {
            let _ = m.docker(&["stack", "rm", stack]);
        }
        let services = m.docker(&["service", "ls", "-q"]);
        let services = String::from_utf8_lossy(&services.stdout).into_owned();
        if !services.trim().is_empty() {
            let mut rm = vec!["service", "rm"];
            rm.extend(services.split_whitespace());
            let _ = m.docker(&rm);
        }
        for h in self.hosts() {
            let ids = h.docker(&["ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            if !ids.trim().is_empty() {
                let mut rm = vec!["rm", "-f"];
                rm.extend(ids.split_whitespace());
                let _ = h.docker(&rm);
            }
            // By ID: two engine networks may share a name. Once the plugin is gone the
            // engine would take most of a minute over each.
            let nets = h.docker(&["network", "ls", "--format", "{{.ID}} {{.Driver}}"]);
            for line in String::from_utf8_lossy(&nets.stdout).lines() {
                if let Some((id, driver)) = line.split_once(' ') {
                    if !["bridge", "host", "null"].contains(&driver) {
                        let _ = h.docker(&["network", "rm", id]);
                    }
                }
            }
        }
    }
}

/// `10.0.1.5/24` → 10.0.1.5.
fn addr_of(cidr: &str) -> Ipv4Addr {
    let ip = cidr.split('/').next().unwrap_or_default();
    ip.parse()
        .unwrap_or_else(|e| panic!("not an IPv4 address: {cidr} ({e})"))
}

fn running_container(h: &LabHost, service: &str) -> Option<String> {
    let out = h.docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    out.split_whitespace().next().map(str::to_string)
}

fn exec(h: &LabHost, container: &str, cmd: &[&str]) -> Output {
    let mut args = vec!["exec", container];
    args.extend(cmd);
    h.docker(&args)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The A records busybox `nslookup` prints for `name` in the container, or `None` when the
/// lookup fails (no such name, no answer).
fn resolve(h: &LabHost, container: &str, name: &str) -> Option<BTreeSet<Ipv4Addr>> {
    let out = exec(h, container, &["nslookup", "-type=a", name]);
    if !out.status.success() {
        return None;
    }
    let ips = answer_addresses(&String::from_utf8_lossy(&out.stdout));
    (!ips.is_empty()).then_some(ips)
}

/// The addresses after the first `Name:` line of busybox nslookup's output (the lines
/// before it are the server's).
fn answer_addresses(out: &str) -> BTreeSet<Ipv4Addr> {
    out.lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// Waits until `name` resolves to exactly `want` from the container.
fn resolves_to(h: &LabHost, container: &str, name: &str, want: &BTreeSet<Ipv4Addr>) {
    let mut last = None;
    let ok = wait_for(WAIT, || {
        last = resolve(h, container, name);
        last.as_ref() == Some(want)
    });
    assert!(
        ok,
        "{}: `{name}` from {container} resolves to {last:?}, not {want:?}",
        h.name()
    );
}

/// Polls `f` until it is true or `timeout` passes; whether it became true.
fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pages `tries` GETs of `url` from the container give (each a hostname), in one exec.
fn pages(h: &LabHost, container: &str, url: &str, tries: usize) -> Vec<String> {
    let script = format!("for i in $(seq {tries}); do wget -q -O - {url}; done");
    let out = exec(h, container, &["sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether a TCP connection from the container to `ip:port` gives `expect` within 5 s.
fn tcp_answers(h: &LabHost, container: &str, ip: &str, port: u16, expect: &str) -> bool {
    let script = format!("echo | timeout 5 nc {ip} {port}");
    let out = exec(h, container, &["sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).contains(expect)
}

#[test]
fn services_reach_each_other_by_name_across_hosts() {
    let s = Swarm::up("names");
    let net = s.network("appnet", &[]);
    // One service after the other (two starting together on a node is another test).
    let tasks = s.service_running("web", &REPLICAS_3_SPREAD, WEB, &net, 3);
    s.service_running("client", &GLOBAL_ON_APPNET, IDLE, &net, 3);
    let vip = s.vip("web", &net);
    assert!(!tasks.contains(&vip), "the VIP {vip} is a task's address");
    let web_hosts = eventually(WAIT, "a web container on every host", || {
        let names = s.hostnames("web");
        (names.len() == 3).then_some(names)
    });

    for h in s.hosts() {
        let client = s.container_on(&h, "client");
        resolves_to(&h, &client, "web", &BTreeSet::from([vip]));
        resolves_to(&h, &client, "tasks.web", &tasks);
        // Connections to the VIP spread over the tasks on every host.
        let mut last = Vec::new();
        let ok = wait_for(WAIT, || {
            last = pages(&h, &client, "http://web/", 30);
            web_hosts.iter().all(|w| last.contains(w))
        });
        let seen: BTreeSet<&String> = last.iter().collect();
        assert!(
            ok,
            "{}: 30 GETs of http://web/ reached {seen:?} ({} answers), not all of {web_hosts:?}",
            h.name(),
            last.len()
        );
    }
}

#[test]
fn services_starting_together_on_a_node_share_its_engine_network() {
    let s = Swarm::up("together");
    let net = s.network("appnet", &[]);
    // Three services created at once: on every node, three tasks want the engine network of
    // `appnet` at the same moment.
    for name in ["one", "two", "three"] {
        s.service(name, &GLOBAL_ON_APPNET, IDLE);
    }
    for h in s.hosts() {
        let mut last = String::new();
        let ok = wait_for(WAIT, || {
            last = h
                .docker_ok(&[
                    "network",
                    "ls",
                    "--filter",
                    &format!("label=shoal.network.id={net}"),
                    "--format",
                    "{{.ID}} {{.Name}}",
                ])
                .trim()
                .to_string();
            last.lines().count() == 1
        });
        assert!(
            ok,
            "{}: the engine has not exactly one network for appnet ({net}):\n{last}",
            h.name()
        );
    }
    for name in ["one", "two", "three"] {
        let mut tasks = BTreeSet::new();
        let ok = wait_for(WAIT, || {
            tasks = s.task_ips(name, &net);
            tasks.len() == 3
        });
        let ps = s.m().docker(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.CurrentState}} {{.Error}}",
            name,
        ]);
        assert!(
            ok,
            "service {name}: {} running tasks, not one per node:\n{}",
            tasks.len(),
            text(&ps)
        );
    }
}

#[test]
fn dnsrr_and_aliases_resolve_to_task_addresses() {
    let s = Swarm::up("dnsrr");
    let net = s.network("rrnet", &[]);
    let rr = s.service_running(
        "rr",
        &[
            "--network",
            "rrnet",
            "--endpoint-mode",
            "dnsrr",
            "--replicas",
            "3",
        ],
        WEB,
        &net,
        3,
    );
    let db = s.service_running(
        "db",
        &["--network", "name=rrnet,alias=db-alias", "--replicas", "2"],
        WEB,
        &net,
        2,
    );
    let global = ["--network", "rrnet", "--mode", "global"];
    s.service_running("client", &global, IDLE, &net, 3);
    let db_vip = s.vip("db", &net);
    let vips = s.m().docker_ok(&[
        "service",
        "inspect",
        "rr",
        "--format",
        "{{json .Endpoint.VirtualIPs}}",
    ]);
    assert!(
        !vips.contains(&net),
        "a dnsrr service has a VIP on its network: {vips}"
    );

    for h in s.hosts() {
        let client = s.container_on(&h, "client");
        resolves_to(&h, &client, "rr", &rr);
        resolves_to(&h, &client, "tasks.rr", &rr);
        resolves_to(&h, &client, "db", &BTreeSet::from([db_vip]));
        resolves_to(&h, &client, "db-alias", &BTreeSet::from([db_vip]));
        resolves_to(&h, &client, "tasks.db-alias", &db);
        resolves_to(&h, &client, "tasks.db", &db);
        // The alias reaches the tasks through the VIP.
        let page = pages(&h, &client, "http://db-alias/", 1);
        assert_eq!(page.len(), 1, "{}: http://db-alias/ gave no page", h.name());
    }
}

/// A TCP listener in the root namespace on the lab's gateway address: it writes `MESSAGE`
/// to whoever connects, until dropped.
struct RootListener {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const MESSAGE: &str = "hello from the underlay";

impl RootListener {
    fn start() -> RootListener {
        let listener = TcpListener::bind((UNDERLAY_GATEWAY, 0))
            .unwrap_or_else(|e| panic!("cannot listen on {UNDERLAY_GATEWAY}: {e}"));
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.write_all(format!("{MESSAGE}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        RootListener {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RootListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn networks_are_isolated_and_internal_has_no_egress() {
    let s = Swarm::up("isolation");
    let net_a = s.network("neta", &[]);
    let net_b = s.network("netb", &[]);
    let internal = s.network("inner", &["--internal"]);
    let b_task = *s
        .service_running("only-b", &["--network", "netb"], WEB, &net_b, 1)
        .first()
        .expect("one task");
    for (client, net, id) in [
        ("client-a", "neta", &net_a),
        ("client-b", "netb", &net_b),
        ("client-in", "inner", &internal),
    ] {
        let global = ["--network", net, "--mode", "global"];
        s.service_running(client, &global, IDLE, id, 3);
    }
    let b_vip = s.vip("only-b", &net_b);
    assert_ne!(net_a, internal);
    let listener = RootListener::start();

    for h in s.hosts() {
        let on_a = s.container_on(&h, "client-a");
        let on_b = s.container_on(&h, "client-b");
        let inside = s.container_on(&h, "client-in");
        // On B, the service answers (so what fails from A fails because of the network).
        resolves_to(&h, &on_b, "only-b", &BTreeSet::from([b_vip]));
        let mut page = Vec::new();
        assert!(
            wait_for(WAIT, || {
                page = pages(&h, &on_b, &format!("http://{b_task}/"), 1);
                page.len() == 1
            }),
            "{}: a client on netb cannot reach only-b's task {b_task}",
            h.name()
        );
        // From A: no such name (the lookup goes upstream and fails there, which takes some
        // seconds), and neither the task's address nor the VIP answers.
        let from_a = exec(&h, &on_a, &["nslookup", "-type=a", "only-b"]);
        let found = answer_addresses(&String::from_utf8_lossy(&from_a.stdout));
        assert!(
            !from_a.status.success() && found.is_empty(),
            "{}: a client on neta resolves only-b (a service on netb only):\n{}",
            h.name(),
            text(&from_a)
        );
        let reached = in_parallel(
            &h,
            &on_a,
            &[
                ("task", format!("timeout 3 wget -q -O - http://{b_task}/")),
                ("vip", format!("timeout 3 wget -q -O - http://{b_vip}/")),
            ],
        );
        assert!(
            reached.is_empty(),
            "{}: a client on neta reaches only-b on netb through its {reached:?} ({b_task}, {b_vip})",
            h.name()
        );
        // Egress: a normal overlay network leaves through the node; an internal one does not.
        let gw = UNDERLAY_GATEWAY;
        let port = listener.port;
        assert!(
            wait_for(WAIT, || tcp_answers(&h, &on_a, gw, port, MESSAGE)),
            "{}: a client on neta cannot reach {gw}:{port} (egress through the node)",
            h.name()
        );
        let reached = in_parallel(
            &h,
            &inside,
            &[
                (
                    "tcp",
                    format!("echo | timeout 3 nc {gw} {port} | grep -q '{MESSAGE}'"),
                ),
                ("ping", format!("ping -c1 -W2 {gw} >/dev/null")),
            ],
        );
        assert!(
            reached.is_empty(),
            "{}: a client on the internal network reaches {gw} by {reached:?}",
            h.name()
        );
    }
}

/// Runs each `(label, command)` at once in the container; the labels of those that succeed.
fn in_parallel(h: &LabHost, container: &str, checks: &[(&str, String)]) -> Vec<String> {
    let script: String = checks
        .iter()
        .map(|(label, cmd)| format!("( {cmd} ) >/dev/null 2>&1 && echo {label} &\n"))
        .chain(std::iter::once("wait\n".to_string()))
        .collect();
    let out = exec(h, container, &["sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn names_follow_scale_down_and_task_failure() {
    let s = Swarm::up("follow");
    let net = s.network("appnet", &[]);
    let three = s.service_running("web", &REPLICAS_3_SPREAD, WEB, &net, 3);
    s.service_running("client", &GLOBAL_ON_APPNET, IDLE, &net, 3);
    let clients: Vec<(LabHost, String)> = s
        .hosts()
        .into_iter()
        .map(|h| {
            let c = s.container_on(&h, "client");
            (h, c)
        })
        .collect();
    for (h, c) in &clients {
        resolves_to(h, c, "tasks.web", &three);
    }

    s.m().docker_ok(&["service", "scale", "--detach", "web=1"]);
    let one = s.running("web", &net, 1);
    for (h, c) in &clients {
        resolves_to(h, c, "tasks.web", &one);
    }

    // Kill the last task's container with its host's engine, three times: each time the
    // replacement takes over the name, the dead one is no longer answered, and every client
    // (one is on the replacement's node) goes on resolving and reaching the service.
    let mut current = one;
    for round in 1..=3 {
        let dead = *current.first().expect("one task");
        let old_hostname = eventually(WAIT, "one web container", || {
            let names = s.hostnames("web");
            (names.len() == 1).then(|| names.into_iter().next().unwrap_or_default())
        });
        let (host, container) = s
            .hosts()
            .into_iter()
            .find_map(|h| running_container(&h, "web").map(|c| (h, c)))
            .expect("the web container on some host");
        host.docker_ok(&["kill", &container]);
        let replacement = eventually(WAIT, "a replacement web task", || {
            let ips = s.task_ips("web", &net);
            let fresh = s.hostnames("web");
            (ips.len() == 1 && fresh.len() == 1 && !fresh.contains(&old_hostname)).then_some(ips)
        });
        let fresh = s.hostnames("web");
        s.step(&format!(
            "round {round}: killed {dead} on {}, replacement {replacement:?}",
            host.name()
        ));
        for (h, c) in &clients {
            resolves_to(h, c, "tasks.web", &replacement);
            let mut page = Vec::new();
            assert!(
                wait_for(WAIT, || {
                    page = pages(h, c, "http://web/", 3);
                    !page.is_empty() && page.iter().all(|p| fresh.contains(p))
                }),
                "{}: http://web/ gives {page:?}, not the replacement {fresh:?}",
                h.name()
            );
            if !replacement.contains(&dead) {
                let answered = resolve(h, c, "tasks.web").unwrap_or_default();
                assert!(
                    !answered.contains(&dead),
                    "{}: the killed task's {dead} is still answered",
                    h.name()
                );
            }
        }
        current = replacement;
    }
}

#[test]
fn attachable_network_takes_docker_run_on_any_node() {
    let s = Swarm::up("attach");
    let net = s.network("att", &["--attachable"]);
    s.service_running(
        "web",
        &["--network", "att", "--replicas", "2"],
        WEB,
        &net,
        2,
    );
    let vip = s.vip("web", &net);
    let web_hosts = s.hostnames("web");
    let h3 = s.host(3);
    // The network reaches h3's engine once its node has the view.
    eventually(WAIT, "network att on h3's engine", || {
        h3.docker(&["network", "inspect", "att"])
            .status
            .success()
            .then_some(())
    });

    let run = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "--network", "att"];
        full.extend(args);
        h3.docker(&full)
    };
    let out = run(&[TEST_IMAGE, "wget", "-q", "-O", "-", "http://web/"]);
    let page = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && web_hosts.contains(&page),
        "h3: docker run --network att ... wget http://web/ gave {page:?}, not one of {web_hosts:?}:\n{}",
        text(&out)
    );
    let out = run(&[TEST_IMAGE, "nslookup", "-type=a", "web"]);
    assert_eq!(
        answer_addresses(&String::from_utf8_lossy(&out.stdout)),
        BTreeSet::from([vip]),
        "h3: nslookup web in a docker run container:\n{}",
        text(&out)
    );

    // A chosen address: the subnet's .200.
    let subnet = s.m().docker_ok(&[
        "network",
        "inspect",
        "att",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
    ]);
    let base = addr_of(subnet.trim()).octets();
    let chosen = Ipv4Addr::new(base[0], base[1], base[2], 200).to_string();
    let out = run(&[
        "--ip",
        &chosen,
        TEST_IMAGE,
        "sh",
        "-c",
        "ip -4 -o addr show; wget -q -O - http://web/",
    ]);
    let printed = text(&out);
    assert!(
        out.status.success() && printed.contains(&format!("inet {chosen}/")),
        "h3: docker run --network att --ip {chosen}:\n{printed}"
    );
    assert!(
        web_hosts.iter().any(|w| printed.contains(w.as_str())),
        "h3: the container at {chosen} does not reach http://web/:\n{printed}"
    );
}

/// The book's images, as `scripts/test-images.sh` builds stand-ins for them (the real ones
/// cannot be pulled here): a web app whose `/cgi-bin/db` shows what the database answers at
/// `todo-db:5432`, and a database that answers there with its hostname and items.
const BOOK_IMAGES: [&str; 2] = ["diamol/ch06-todo-list:latest", "diamol/postgres:11.5"];

/// GET `path` on `addr` (`IP:PORT`) from the test process: the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut conn = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: todo\r\n\r\n").as_bytes())
        .ok()?;
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    if !answer.starts_with("HTTP/1.") || !answer.contains(" 200 ") {
        return None;
    }
    // A CGI script's own headers may end in a bare "\n\n" (busybox httpd passes them on).
    let crlf = answer.find("\r\n\r\n").map(|i| (i, 4));
    let lf = answer.find("\n\n").map(|i| (i, 2));
    let (at, len) = [crlf, lf].into_iter().flatten().min()?;
    Some(answer[at + len..].to_string())
}

#[test]
fn the_book_walkthrough_step_5_runs_on_shoal_across_hosts() {
    let s = Swarm::up("book");
    for h in s.hosts() {
        h.load_images(&BOOK_IMAGES);
    }
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/book-ch13");
    let file = |p: &str| book.join(p).to_string_lossy().into_owned();
    let config = file("configs/config.json");
    let secret = file("secrets/secrets.json");
    s.m()
        .docker_ok(&["config", "create", "todo-list-config", &config]);
    s.m()
        .docker_ok(&["secret", "create", "todo-list-secret", &secret]);
    s.m()
        .docker_ok(&["stack", "deploy", "-c", &file("v4.yml"), "todo"]);

    let net = s
        .m()
        .docker_ok(&["network", "inspect", "todo_app-net", "--format", "{{.Id}}"])
        .trim()
        .to_string();
    s.running("todo_todo-web", &net, 1);
    s.running("todo_todo-db", &net, 1);
    let node_of = |service: &str| {
        let id = s.m().docker_ok(&[
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            service,
        ]);
        let task = s.m().docker_json(&["inspect", "--type", "task", id.trim()]);
        task[0]["NodeID"].as_str().unwrap_or_default().to_string()
    };
    let (web_node, db_node) = (node_of("todo_todo-web"), node_of("todo_todo-db"));
    let db_hostname = s
        .hostnames("todo_todo-db")
        .into_iter()
        .next()
        .expect("the db container");

    // Through the routing mesh on every host: the web task reaches `todo-db` by name.
    for h in s.hosts() {
        let addr = format!("{}:8080", h.addr());
        let mut last = None;
        let ok = wait_for(WAIT, || {
            last = http_get(&addr, "/cgi-bin/db");
            last.as_deref()
                .is_some_and(|page| page.starts_with(&format!("todo-db {db_hostname} items:")))
        });
        assert!(
            ok,
            "{}: GET /cgi-bin/db on {addr} (web on node {web_node}, db on node {db_node}) gave {last:?}",
            h.name()
        );
    }
    // The config and the secret are where the file puts them.
    let (web_host, web) = s
        .hosts()
        .into_iter()
        .find_map(|h| running_container(&h, "todo_todo-web").map(|c| (h, c)))
        .expect("the web container");
    for (path, source) in [
        ("/app/config/config.json", &config),
        ("/app/config/secrets.json", &secret),
    ] {
        let out = exec(&web_host, &web, &["cat", path]);
        let want = std::fs::read_to_string(source).expect("fixture");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "{path}: {}",
            text(&out)
        );
    }
    assert_ne!(
        web_node, db_node,
        "web and db run on one node: the stack does not cross hosts"
    );
}

#[test]
fn a_restarted_host_rejoins_with_working_names() {
    let mut s = Swarm::up("restart");
    let net = s.network("appnet", &[]);
    let before = s.service_running("web", &REPLICAS_3_SPREAD, WEB, &net, 3);
    s.service_running("client", &GLOBAL_ON_APPNET, IDLE, &net, 3);
    let vip = s.vip("web", &net);
    let h2 = s.host(2);
    let old_client = s.container_on(&h2, "client");
    resolves_to(&h2, &old_client, "tasks.web", &before);

    s.lab.restart_host(2);
    s.nodes[1].restart();
    // h2's tasks come back as replacements, with names that answer from h1 and h2.
    let after = eventually(
        WAIT * 2,
        "three running web tasks after h2's restart",
        || {
            let ips = s.task_ips("web", &net);
            (ips.len() == 3 && running_container(&h2, "web").is_some()).then_some(ips)
        },
    );
    let web_hosts = eventually(WAIT, "a web container on every host", || {
        let names = s.hostnames("web");
        (names.len() == 3).then_some(names)
    });
    for h in [s.host(1), h2.clone()] {
        let client = eventually(WAIT, &format!("a fresh client on {}", h.name()), || {
            running_container(&h, "client").filter(|c| *c != old_client)
        });
        resolves_to(&h, &client, "web", &BTreeSet::from([vip]));
        resolves_to(&h, &client, "tasks.web", &after);
        let mut last = Vec::new();
        let ok = wait_for(WAIT, || {
            last = pages(&h, &client, "http://web/", 30);
            web_hosts.iter().all(|w| last.contains(w))
        });
        assert!(
            ok,
            "{}: after h2's restart, 30 GETs of http://web/ reached {last:?}, not all of {web_hosts:?}",
            h.name()
        );
    }
}
