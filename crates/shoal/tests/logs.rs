//! `docker service logs`: the managers read each task's log from the engine of the node that
//! ran it (over the node-to-node port for another node) and merge them into Docker's stream,
//! which the real docker CLI prints as `service.slot.task@node | line`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{engine_ok, eventually, remove_containers, test_image, Daemon, ENGINE_SOCKET};

const WAIT: Duration = Duration::from_secs(60);

/// One task of a service: (full ID, slot, node ID).
fn tasks(m: &Daemon, svc: &str) -> Vec<(String, u64, String)> {
    let ids = m.docker_ok(&["service", "ps", "-q", "--no-trunc", svc]);
    let mut out = Vec::new();
    for id in ids.split_whitespace() {
        let t = m.docker_json(&["inspect", "--type", "task", id])[0].clone();
        out.push((
            id.to_string(),
            t["Slot"].as_u64().unwrap_or_default(),
            t["NodeID"].as_str().unwrap_or_default().to_string(),
        ));
    }
    out.sort_by_key(|t| t.1);
    out
}

/// How the CLI introduces a task's lines: `svc.slot.shortid@host    | `.
fn prefix(svc: &str, slot: u64, task_id: &str, host: &str) -> String {
    format!("{svc}.{slot}.{}@{host}    | ", &task_id[..12])
}

/// The running container of a task on the shared engine.
fn container_of(task_id: &str) -> String {
    eventually(WAIT, "the task's container", || {
        let out = engine_ok(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.task.id={task_id}"),
        ]);
        out.split_whitespace().next().map(str::to_string)
    })
}

/// Reads lines of a running `docker service logs --follow` until `done` holds.
fn read_until(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("--follow never printed {what}; it printed {seen:?}"),
        }
    }
}

#[test]
fn service_logs_merge_the_tasks_of_every_node_as_the_docker_cli_shows_them() {
    let image = test_image();
    let m = Daemon::start_with_engine("logs-m", ENGINE_SOCKET);
    m.init();
    let w = Daemon::start_with_engine("logs-w", ENGINE_SOCKET);
    w.join(&m, "worker");
    let (mid, wid) = (m.node_id(), w.node_id());
    eventually(WAIT, "both nodes ready", || {
        let ls = m.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 2).then_some(())
    });
    let host = m
        .docker_ok(&[
            "node",
            "inspect",
            "self",
            "--format",
            "{{.Description.Hostname}}",
        ])
        .trim()
        .to_string();
    let svc = format!("logs{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &svc,
        "--replicas",
        "2",
        "--stop-grace-period",
        "1s",
        image,
        "sh",
        "-c",
        "echo hello-$HOSTNAME; echo err >&2; sleep 100000",
    ]);
    // One task on each node, both running.
    let ts = eventually(WAIT, "a running task on each node", || {
        let ts = tasks(&m, &svc);
        let running = m.docker_ok(&["service", "ps", &svc, "--format", "{{.CurrentState}}"]);
        let mut nodes: Vec<&str> = ts.iter().map(|t| t.2.as_str()).collect();
        nodes.sort();
        let mut want = vec![mid.as_str(), wid.as_str()];
        want.sort();
        (ts.len() == 2 && nodes == want && running.lines().all(|l| l.starts_with("Running")))
            .then_some(ts)
    });
    let prefixes: Vec<String> = ts.iter().map(|t| prefix(&svc, t.1, &t.0, &host)).collect();

    // Every task's stdout on stdout, its stderr on stderr, each line introduced by its task.
    let (out, err) = eventually(WAIT, "both tasks' lines", || {
        let o = m.docker(&["service", "logs", &svc]);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        (o.status.success() && out.lines().count() == 2 && err.lines().count() == 2)
            .then_some((out, err))
    });
    for p in &prefixes {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{p}hello-")) && l.len() > p.len() + 6),
            "no hello line from {p:?}:\n{out}"
        );
        assert!(
            err.lines().any(|l| l == format!("{p}err")),
            "no stderr line from {p:?}:\n{err}"
        );
    }

    // --tail 1: the last line of each task only.
    let o = m.docker(&["service", "logs", "--tail", "1", &svc]);
    assert!(o.status.success(), "{o:?}");
    let lines = String::from_utf8_lossy(&o.stdout).lines().count()
        + String::from_utf8_lossy(&o.stderr).lines().count();
    assert_eq!(lines, 2, "{o:?}");
    let o = m.docker_ok(&["service", "logs", "--tail", "0", &svc]);
    assert_eq!(o, "");

    // --timestamps: Docker's RFC 3339 time with nine digits of nanoseconds comes first.
    let out = m.docker_ok(&["service", "logs", "--timestamps", &svc]);
    assert_eq!(out.lines().count(), 2, "{out}");
    for l in out.lines() {
        let (ts, rest) = l.split_once(' ').expect("a timestamp");
        assert_eq!(ts.len(), "2006-01-02T15:04:05.000000000Z".len(), "{l}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "not a timestamp: {l}"
        );
        assert!(prefixes.iter().any(|p| rest.starts_with(p.as_str())), "{l}");
    }
    // --since in the future: nothing yet.
    let out = m.docker_ok(&["service", "logs", "--since", "2100-01-01T00:00:00Z", &svc]);
    assert_eq!(out, "");

    // One task, the worker's, by its ID.
    let (wt, wslot, _) = ts.iter().find(|t| t.2 == wid).expect("the worker's task");
    let wprefix = prefix(&svc, *wslot, wt, &host);
    let o = m.docker(&["service", "logs", wt]);
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(&format!("{wprefix}hello-")), "{out}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!("{wprefix}err")
    );

    // --follow: a line the worker's task prints after the call started arrives.
    let mut follow = Command::new("timeout")
        .args(["60", "docker", "service", "logs", "--follow", &svc])
        .env("DOCKER_HOST", m.host())
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run docker");
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The old lines first (the stream is open), then the new one.
    let mut seen = Vec::new();
    read_until(&rx, &mut seen, "both hello lines", |seen| {
        seen.iter().filter(|l| l.contains("| hello-")).count() == 2
    });
    let container = container_of(wt);
    engine_ok(&[
        "exec",
        &container,
        "sh",
        "-c",
        "echo printed-later > /proc/1/fd/1",
    ]);
    let later = format!("{wprefix}printed-later");
    read_until(&rx, &mut seen, "the later line", |seen| {
        seen.contains(&later)
    });
    let _ = follow.kill();
    let _ = follow.wait();

    // Names that are neither a service nor a task: the CLI's own words after two 404s.
    let err = m.docker_err(&["service", "logs", "no-such-service"]);
    assert!(
        err.contains("no such task or service: no-such-service"),
        "{err}"
    );
    let (status, body) = m
        .http("GET", "/v1.41/services/no-such-service/logs?stdout=1", None)
        .expect("http");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("service no-such-service not found"), "{body}");
    let (status, body) = m
        .http("GET", "/v1.41/tasks/nosuchtask/logs?stdout=1", None)
        .expect("http");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("task nosuchtask not found"), "{body}");
    let (status, body) = m
        .http("GET", &format!("/v1.41/services/{svc}/logs"), None)
        .expect("http");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("you must choose at least one stream"),
        "{body}"
    );

    // A node that does not answer: the other tasks' lines, then Swarm's warning.
    let mut w = w;
    w.kill9();
    let o = m.docker(&["service", "logs", &svc]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}{err}");
    let mprefix = prefixes
        .iter()
        .find(|p| **p != wprefix)
        .expect("the manager's task");
    assert!(out.contains(&format!("{mprefix}hello-")), "{out}");
    assert!(
        err.contains(&format!(
            "Error grabbing logs: warning: incomplete log stream. some logs could not be retrieved for the following reasons: node {wid} is not available"
        )),
        "{err}"
    );

    m.docker_ok(&["service", "rm", &svc]);
    remove_containers(&format!("com.docker.swarm.node.id={wid}"));
}
