//! `shoal service logs` against a running daemon, side by side with `docker service logs`: the
//! same lines on the same streams, each introduced by `service.slot.task@node    | `, printed
//! as they arrive, and the daemon's last word about an incomplete stream as the error.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{engine_ok, eventually, test_image, Daemon, ENGINE_SOCKET, SHOAL};

const WAIT: Duration = Duration::from_secs(60);

/// What each task prints: two lines on stdout, one on stderr.
const SCRIPT: &str = "echo out-$HOSTNAME; echo two words; echo err-line >&2; sleep 100000";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = text(bytes).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Runs `service logs ARGS` with both CLIs and asserts the same exit status and the same
/// lines on each stream (sorted: the tasks' lines interleave as they arrive). Returns docker's.
fn same_as_docker(d: &Daemon, args: &[&str]) -> Output {
    let argv: Vec<&str> = ["service", "logs"].iter().chain(args).copied().collect();
    let docker = d.docker(&argv);
    let shoal = d.shoal(&argv);
    let what = argv.join(" ");
    assert_eq!(
        shoal.status.code(),
        docker.status.code(),
        "{what}: exit status\nshoal: {}{}\ndocker: {}{}",
        text(&shoal.stdout),
        text(&shoal.stderr),
        text(&docker.stdout),
        text(&docker.stderr)
    );
    assert_eq!(
        sorted_lines(&shoal.stdout),
        sorted_lines(&docker.stdout),
        "{what}: stdout"
    );
    assert_eq!(
        sorted_lines(&shoal.stderr),
        sorted_lines(&docker.stderr),
        "{what}: stderr"
    );
    docker
}

/// Creates a service of `replicas` tasks running [`SCRIPT`] and waits until every task's
/// lines can be read.
fn service_with_lines(d: &Daemon, name: &str, replicas: usize) {
    d.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--replicas",
        &replicas.to_string(),
        "--stop-grace-period",
        "1s",
        test_image(),
        "sh",
        "-c",
        SCRIPT,
    ]);
    eventually(WAIT, "every task's lines", || {
        let o = d.docker(&["service", "logs", name]);
        (o.status.success()
            && text(&o.stdout).lines().count() == 2 * replicas
            && text(&o.stderr).lines().count() == replicas)
            .then_some(())
    });
}

#[test]
fn service_logs_print_what_docker_prints_for_services_and_tasks() {
    let d = Daemon::start_with_engine("cli-logs", ENGINE_SOCKET);
    d.init();
    let svc = format!("clilogs{}", std::process::id());
    // Ten replicas: slots 1 to 9 are padded to the width of 10.
    service_with_lines(&d, &svc, 10);

    let all = same_as_docker(&d, &[&svc]);
    let out = text(&all.stdout);
    assert_eq!(out.lines().count(), 20, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{svc}.1."))
            && l.contains("@")
            && l.ends_with("    | two words")),
        "{out}"
    );
    assert!(
        text(&all.stderr).lines().all(|l| l.ends_with("| err-line")),
        "{}",
        text(&all.stderr)
    );

    for args in [
        &["--tail", "1"][..],
        &["-n", "0"],
        &["--no-task-ids"],
        &["--no-trunc"],
        &["--no-resolve"],
        &["--timestamps"],
        &["--details", "--timestamps"],
        &["--raw"],
        &["--raw", "--details"],
        &["--since", "10m"],
        &["--since", "2000-01-01T00:00:00Z"],
        &["--since", "2100-01-01"],
        &["--since", "yesterday"],
        &["--tail", "x"],
    ] {
        let mut argv = args.to_vec();
        argv.push(&svc);
        same_as_docker(&d, &argv);
    }
    // One task, by its full ID and by a prefix of it.
    let task = d.docker_ok(&["service", "ps", "-q", "--no-trunc", &svc]);
    let task = task.lines().next().expect("a task").to_string();
    let lines = same_as_docker(&d, &[&task]);
    assert_eq!(text(&lines.stdout).lines().count(), 2);
    same_as_docker(&d, &[&task[..12]]);
    same_as_docker(&d, &["--no-trunc", "--no-task-ids", &task]);

    // Neither a service nor a task.
    let missing = same_as_docker(&d, &["no-such-thing"]);
    assert_eq!(
        text(&missing.stderr).trim(),
        "no such task or service: no-such-thing"
    );

    // --follow prints a line its task prints after the command started, while it runs.
    let mut follow = Command::new(SHOAL)
        .args(["-H", &d.host(), "service", "logs", "-f", &task])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run shoal");
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut printed = false;
    while !seen.iter().any(|l: &String| l.ends_with("| printed-later")) {
        if !printed && seen.iter().any(|l| l.ends_with("| two words")) {
            let container = engine_ok(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.task.id={task}"),
            ]);
            engine_ok(&[
                "exec",
                container.trim(),
                "sh",
                "-c",
                "echo printed-later > /proc/1/fd/1",
            ]);
            printed = true;
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("--follow never printed the later line; it printed {seen:?}"),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    d.docker_ok(&["service", "rm", &svc]);
}

#[test]
fn an_incomplete_stream_ends_with_the_daemons_error_like_docker() {
    let m = Daemon::start_with_engine("cli-logs-m", ENGINE_SOCKET);
    m.init();
    let mut w = Daemon::start_with_engine("cli-logs-w", ENGINE_SOCKET);
    w.join(&m, "worker");
    let wid = w.node_id();
    eventually(WAIT, "both nodes ready", || {
        let ls = m.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 2).then_some(())
    });
    let svc = format!("clilogsw{}", std::process::id());
    service_with_lines(&m, &svc, 2);
    eventually(WAIT, "a task on the worker", || {
        let nodes = m.docker_ok(&[
            "service",
            "ps",
            "--no-resolve",
            "--format",
            "{{.Node}}",
            &svc,
        ]);
        nodes.lines().any(|n| n == wid).then_some(())
    });

    w.kill9();
    let o = same_as_docker(&m, &[&svc]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "error from daemon in stream: Error grabbing logs: warning: incomplete log stream. some logs could not be retrieved for the following reasons: node {wid} is not available"
        )),
        "{err}"
    );

    m.docker_ok(&["service", "rm", &svc]);
}
