//! `docker events` against shoal, with the real docker CLI: the cluster's events as Swarm emits
//! them (service, node, secret, config, network; scope `swarm`), streamed live on the leader and
//! on a follower manager, replayed with `--since`, ended by `--until`, narrowed by filters; and
//! the container events of the node's tasks from its engine.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{eventually, test_image, Daemon, ENGINE_SOCKET};

const WAIT: Duration = Duration::from_secs(30);
/// A stand-in image the engine never needs: these services are created without resolving it.
const IMAGE: &str = "busybox:1.36";

/// A running `docker events --format '{{json .}}'`, read line by line.
struct Events {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Events {
    fn start(d: &Daemon, args: &[&str]) -> Events {
        let mut child = Command::new("docker")
            .arg("events")
            .args(args)
            .args(["--format", "{{json .}}"])
            .env("DOCKER_HOST", d.host())
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run docker events");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        // The CLI has connected once the server answered; give it that moment.
        std::thread::sleep(Duration::from_millis(500));
        Events { child, lines }
    }

    /// The next event that satisfies `want`, skipping others (which are returned too).
    fn until(&self, what: &str, want: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return (v, skipped),
                Ok(v) => skipped.push(v),
                Err(_) => panic!("no event {what} within {WAIT:?}; got {skipped:#?}"),
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(e: &'a Value, key: &str) -> &'a str {
    e["Actor"]["Attributes"][key].as_str().unwrap_or("")
}

fn is(e: &Value, typ: &str, action: &str, name: &str) -> bool {
    e["Type"] == typ && e["Action"] == action && attr(e, "name") == name
}

/// Runs `docker events ARGS` that end by themselves (`--until` in the past) and returns them.
fn past_events(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "{{json .}}"]);
    let out = d.docker_ok(&all);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn service_create_update_and_remove_stream_as_swarm_emits_them() {
    let m = Daemon::start("ev-svc");
    m.init();
    let events = Events::start(&m, &["--filter", "type=service"]);

    let id = m
        .docker_ok(&[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            "web",
            "--replicas",
            "1",
            IMAGE,
        ])
        .trim()
        .to_string();
    let (created, _) = events.until("service create", |e| is(e, "service", "create", "web"));
    assert_eq!(created["Actor"]["ID"], id.as_str());
    assert_eq!(created["scope"], "swarm");
    assert!(created["timeNano"].as_i64().unwrap() > 0, "{created}");
    assert_eq!(
        created["time"].as_i64().unwrap(),
        created["timeNano"].as_i64().unwrap() / 1_000_000_000
    );

    m.docker_ok(&["service", "update", "--detach", "--replicas", "3", "web"]);
    let (scaled, _) = events.until("replicas 1 → 3", |e| {
        is(e, "service", "update", "web") && attr(e, "replicas.new") == "3"
    });
    assert_eq!(attr(&scaled, "replicas.old"), "1");

    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--no-resolve-image",
        "--image",
        "busybox:1.37",
        "web",
    ]);
    let (retagged, _) = events.until("image change", |e| {
        is(e, "service", "update", "web") && attr(e, "image.new") == "busybox:1.37"
    });
    assert_eq!(attr(&retagged, "image.old"), IMAGE);

    m.docker_ok(&["service", "rm", "web"]);
    let (removed, skipped) = events.until("service remove", |e| is(e, "service", "remove", "web"));
    assert_eq!(removed["Actor"]["ID"], id.as_str());
    // Only services passed the type filter.
    assert!(
        skipped.iter().all(|e| e["Type"] == "service"),
        "{skipped:#?}"
    );
}

#[test]
fn since_replays_what_is_kept_until_ends_and_filters_narrow() {
    let m = Daemon::start("ev-since");
    m.init();
    let t0 = format!("{:.3}", unix_now() - 1.0);
    m.docker_stdin(&["secret", "create", "s1", "-"], "hush");
    m.docker_stdin(&["config", "create", "c1", "-"], "conf");
    m.docker_ok(&["network", "create", "--driver", "overlay", "n1"]);
    m.docker_ok(&["config", "rm", "c1"]);
    std::thread::sleep(Duration::from_millis(50));
    let t1 = format!("{:.3}", unix_now());

    // Both ends in the past: the kept events between them, in order, and the command ends.
    let all = past_events(&m, &["--since", &t0, "--until", &t1]);
    let seen: Vec<(String, String, String)> = all
        .iter()
        .map(|e| {
            (
                e["Type"].as_str().unwrap().to_string(),
                e["Action"].as_str().unwrap().to_string(),
                attr(e, "name").to_string(),
            )
        })
        .collect();
    let want = [
        ("secret", "create", "s1"),
        ("config", "create", "c1"),
        ("network", "create", "n1"),
        ("config", "remove", "c1"),
    ];
    let positions: Vec<usize> = want
        .iter()
        .map(|(t, a, n)| {
            seen.iter()
                .position(|(st, sa, sn)| st == t && sa == a && sn == n)
                .unwrap_or_else(|| panic!("no {t} {a} {n} in {seen:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(all.iter().all(|e| e["scope"] == "swarm"), "{all:#?}");
    let times: Vec<i64> = all
        .iter()
        .map(|e| e["timeNano"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Filters: by object name, by action and type, by scope.
    let secrets = past_events(
        &m,
        &["--since", &t0, "--until", &t1, "--filter", "secret=s1"],
    );
    assert_eq!(secrets.len(), 1, "{secrets:#?}");
    assert!(is(&secrets[0], "secret", "create", "s1"));
    let removals = past_events(
        &m,
        &[
            "--since",
            &t0,
            "--until",
            &t1,
            "--filter",
            "event=remove",
            "--filter",
            "type=config",
        ],
    );
    assert_eq!(removals.len(), 1, "{removals:#?}");
    assert!(is(&removals[0], "config", "remove", "c1"));
    let local = past_events(
        &m,
        &["--since", &t0, "--until", &t1, "--filter", "scope=local"],
    );
    assert!(local.is_empty(), "{local:#?}");
    let labelled = past_events(
        &m,
        &["--since", &t0, "--until", &t1, "--filter", "label=name=n1"],
    );
    assert_eq!(labelled.len(), 1, "{labelled:#?}");

    // Nothing kept before the first event; nothing after t1 but what came later.
    let before = past_events(&m, &["--since", "1", "--until", &t0]);
    assert!(
        !before.iter().any(|e| attr(e, "name") == "s1"),
        "{before:#?}"
    );

    // `--until` in the future: the stream replays from `--since`, follows, then ends by
    // itself.
    let soon = format!("{:.3}", unix_now() + 2.0);
    let mut child = Command::new("docker")
        .args([
            "events",
            "--since",
            &t1,
            "--until",
            &soon,
            "--filter",
            "type=secret",
            "--format",
            "{{json .}}",
        ])
        .env("DOCKER_HOST", m.host())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    m.docker_stdin(&["secret", "create", "s2", "-"], "hush");
    let status = eventually(WAIT, "docker events --until to end", || {
        child.try_wait().unwrap()
    });
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("\"s2\""), "{out}");
    assert!(!out.contains("\"s1\""), "since {t1}: {out}");

    // Mistakes are told.
    let err = m.docker_err(&["events", "--filter", "scope=global", "--until", &t1]);
    assert!(err.contains("invalid scope 'global'"), "{err}");
    let err = m.docker_err(&["events", "--filter", "colour=red", "--until", &t1]);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let err = m.docker_err(&["events", "--since", &t1, "--until", &t0]);
    assert!(err.contains("cannot be after `until` time"), "{err}");
}

#[test]
fn a_follower_manager_streams_node_updates_with_old_and_new_values() {
    let leader = Daemon::start("ev-lead");
    leader.init();
    let follower = Daemon::start("ev-follow");
    follower.join(&leader, "manager");
    let worker = Daemon::start("ev-work");
    worker.join(&leader, "worker");
    let wid = worker.node_id();

    let events = Events::start(&follower, &["--filter", "type=node"]);
    leader.docker_ok(&["node", "update", "--availability", "drain", &wid]);
    let (drained, skipped) = events.until("availability active → drain", |e| {
        e["Action"] == "update"
            && e["Actor"]["ID"] == wid.as_str()
            && attr(e, "availability.new") == "drain"
    });
    assert_eq!(attr(&drained, "availability.old"), "active");
    assert_eq!(drained["scope"], "swarm");
    assert!(!attr(&drained, "name").is_empty(), "{drained}");
    assert!(skipped.iter().all(|e| e["Type"] == "node"), "{skipped:#?}");

    follower.docker_ok(&["node", "promote", &wid]);
    let (promoted, _) = events.until("role worker → manager", |e| {
        e["Actor"]["ID"] == wid.as_str() && attr(e, "role.new") == "manager"
    });
    assert_eq!(attr(&promoted, "role.old"), "worker");
    // Demoted once it is a reachable manager (a demotion is refused before it is one).
    eventually(WAIT, "the promoted node reachable", || {
        let s = follower.docker_ok(&[
            "node",
            "inspect",
            "--format",
            "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}",
            &wid,
        ]);
        (s.trim() == "reachable").then_some(())
    });
    follower.docker_ok(&["node", "demote", &wid]);
    events.until("role manager → worker", |e| {
        e["Actor"]["ID"] == wid.as_str() && attr(e, "role.new") == "worker"
    });

    // A node that leaves goes down, then is removed.
    let node_filter = format!("node={wid}");
    let gone = Events::start(&leader, &["--filter", &node_filter]);
    drop(worker);
    gone.until("state ready → down", |e| attr(e, "state.new") == "down");
    leader.docker_ok(&["node", "rm", &wid]);
    let (removed, _) = gone.until("node remove", |e| e["Action"] == "remove");
    assert_eq!(removed["Actor"]["ID"], wid.as_str());
}

#[test]
fn the_containers_of_a_nodes_tasks_are_in_its_events() {
    let image = test_image();
    let m = Daemon::start_with_engine("ev-tasks", ENGINE_SOCKET);
    m.init();
    let svc = format!("evweb{}", std::process::id());
    let events = Events::start(
        &m,
        &["--filter", "type=container", "--filter", "event=start"],
    );
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &svc,
        "--stop-grace-period",
        "1s",
        image,
        "sleep",
        "100000",
    ]);
    let (started, skipped) = events.until("a task's container start", |e| {
        attr(e, "com.docker.swarm.service.name") == svc
    });
    assert_eq!(started["scope"], "local");
    assert_eq!(attr(&started, "com.docker.swarm.node.id"), m.node_id());
    assert!(
        attr(&started, "name").starts_with(&format!("{svc}.1.")),
        "{started}"
    );
    assert!(
        skipped.iter().all(|e| e["Action"] == "start"),
        "{skipped:#?}"
    );
    m.docker_ok(&["service", "rm", &svc]);
    std::thread::sleep(Duration::from_millis(100));
    // (`--until 0s` would be "now" in whole seconds, as the CLI sends durations.)
    let now = format!("{:.3}", unix_now());

    // Replayed with --since as well, after the service is gone.
    let out = m.docker_ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        &now,
        "--filter",
        &format!("service={svc}"),
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert!(out.contains("service create"), "{out}");
    assert!(out.contains("service remove"), "{out}");
    let out = m.docker_ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        &now,
        "--filter",
        "type=container",
        "--filter",
        &format!("label=com.docker.swarm.service.name={svc}"),
        "--format",
        "{{.Action}}",
    ]);
    assert!(out.lines().any(|l| l == "start"), "{out}");
    assert!(out.lines().any(|l| l == "create"), "{out}");
}

#[test]
fn a_leader_change_is_a_node_update_with_the_leader_flag_moving() {
    let mut nodes = support::three_managers();
    let alive = [true; 3];
    let l = eventually(WAIT, "a leader", || support::leader_index(&nodes, &alive));
    let old_id = nodes[l].node_id();
    let watcher = (l + 1) % 3;
    let events = Events::start(&nodes[watcher], &["--filter", "type=node"]);
    nodes[l].kill9();
    // The new leader records both flags in one pass over the nodes, so the two updates come in
    // the order of the node IDs: wait for whichever comes first, then find the other.
    let taking = |e: &Value| {
        e["Action"] == "update"
            && attr(e, "leader.new") == "true"
            && e["Actor"]["ID"] != old_id.as_str()
    };
    let losing =
        |e: &Value| e["Actor"]["ID"] == old_id.as_str() && attr(e, "leader.new") == "false";
    let (first, _) = events.until("a leadership change", |e| taking(e) || losing(e));
    let (taken, lost) = if taking(&first) {
        (first, events.until("the killed leader losing it", losing).0)
    } else {
        (events.until("a manager taking the lead", taking).0, first)
    };
    assert_eq!(attr(&taken, "leader.old"), "false");
    assert_eq!(attr(&lost, "leader.old"), "true");
}
