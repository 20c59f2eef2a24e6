//! Services run: tasks become containers on the nodes' Docker Engines, driven by the real
//! docker CLI (create, ps, scale, update, rollback, rm), restarted when they die, and given
//! their configs and secrets as files.

mod support;

use std::time::Duration;
use support::{
    engine, engine_ok, eventually, running_containers_on, squash, test_image, Daemon, ENGINE_SOCKET,
};

const WAIT: Duration = Duration::from_secs(60);

/// The engine's containers of one service on one node: (name, state) sorted by name.
fn containers(node_id: &str, service: &str) -> Vec<(String, String)> {
    let out = engine_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.swarm.node.id={node_id}"),
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    v.sort();
    v
}

/// The first running container of a service on a node.
fn a_container(node_id: &str, service: &str) -> String {
    eventually(WAIT, "a running container", || {
        running_containers_on(node_id, service).into_iter().next()
    })
}

#[test]
fn a_service_runs_scales_updates_restarts_and_goes_away() {
    let image = test_image();
    let m = Daemon::start_with_engine("tasks", ENGINE_SOCKET);
    m.init();
    let node = m.node_id();
    let svc = format!("web{}", std::process::id());

    // Without --detach the CLI waits until the tasks run and stay up.
    let out = m.docker_ok(&[
        "service",
        "create",
        "--name",
        &svc,
        "--replicas",
        "2",
        "--restart-delay",
        "200ms",
        "--update-parallelism",
        "1",
        "--stop-grace-period",
        "1s",
        image,
        "sleep",
        "100000",
    ]);
    assert!(squash(&out).contains("verify: Service"), "{out}");
    let names = running_containers_on(&node, &svc);
    assert_eq!(names.len(), 2, "{names:?}");
    // Containers are named like Swarm's: service.slot.task-id.
    assert!(names[0].starts_with(&format!("{svc}.1.")), "{names:?}");
    assert!(names[1].starts_with(&format!("{svc}.2.")), "{names:?}");
    let ls = m.docker_ok(&["service", "ls", "--filter", &format!("name={svc}")]);
    assert!(
        squash(&ls).contains(&format!("{svc} replicated 2/2 {image}")),
        "{ls}"
    );
    let ps = m.docker_ok(&[
        "service",
        "ps",
        &svc,
        "--format",
        "{{.Name}} {{.DesiredState}} {{.CurrentState}}",
    ]);
    let rows: Vec<&str> = ps.lines().collect();
    assert_eq!(rows.len(), 2, "{ps}");
    assert!(rows.iter().all(|r| r.contains(" Running Running ")), "{ps}");

    // Scale up and down.
    m.docker_ok(&["service", "scale", "--detach", &format!("{svc}=3")]);
    eventually(WAIT, "three containers", || {
        (running_containers_on(&node, &svc).len() == 3).then_some(())
    });
    m.docker_ok(&["service", "scale", "--detach", &format!("{svc}=1")]);
    eventually(WAIT, "one container left", || {
        (containers(&node, &svc).len() == 1).then_some(())
    });

    // A container that dies is replaced after the restart delay.
    let victim = a_container(&node, &svc);
    engine_ok(&["kill", &victim]);
    eventually(WAIT, "a replacement container", || {
        running_containers_on(&node, &svc)
            .into_iter()
            .find(|n| *n != victim)
            .map(|_| ())
    });
    let ps = m.docker_ok(&[
        "service",
        "ps",
        &svc,
        "--format",
        "{{.Name}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
    ]);
    assert!(
        ps.lines()
            .any(|l| l.contains("|Shutdown|Failed") && l.contains("task: non-zero exit (137)")),
        "the killed task stays in the history as failed:\n{ps}"
    );

    // A rolling update replaces the task with one that has the new spec; the CLI waits.
    let out = m.docker_ok(&["service", "update", "--env-add", "COLOR=blue", &svc]);
    assert!(squash(&out).contains("verify: Service"), "{out}");
    let c = a_container(&node, &svc);
    let env = engine_ok(&["inspect", "--format", "{{json .Config.Env}}", &c]);
    assert!(env.contains("COLOR=blue"), "{env}");
    let st = m.inspect("service", &svc);
    assert_eq!(st["UpdateStatus"]["State"], "completed", "{st}");
    // Rollback brings the old spec back.
    m.docker_ok(&["service", "rollback", "--detach", &svc]);
    eventually(WAIT, "the rolled back container", || {
        let c = running_containers_on(&node, &svc).into_iter().next()?;
        let env = engine_ok(&["inspect", "--format", "{{json .Config.Env}}", &c]);
        (!env.contains("COLOR=blue")).then_some(())
    });
    eventually(WAIT, "rollback_completed", || {
        let st = m.inspect("service", &svc);
        (st["UpdateStatus"]["State"] == "rollback_completed").then_some(())
    });

    // Removing the service removes its containers and tasks.
    m.docker_ok(&["service", "rm", &svc]);
    eventually(WAIT, "no containers of the removed service", || {
        containers(&node, &svc).is_empty().then_some(())
    });
    eventually(WAIT, "no tasks of the removed service", || {
        let out = m.docker_ok(&["node", "ps", "self", "--format", "{{.Name}}"]);
        (!out.contains(&svc)).then_some(())
    });
}

#[test]
fn configs_and_secrets_reach_the_container_as_files() {
    test_image();
    let m = Daemon::start_with_engine("files", ENGINE_SOCKET);
    m.init();
    let node = m.node_id();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.conf"), "color=green\n").unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret-value\n").unwrap();
    m.docker_ok(&[
        "config",
        "create",
        "app-conf",
        dir.path().join("app.conf").to_str().unwrap(),
    ]);
    m.docker_ok(&[
        "secret",
        "create",
        "db-pw",
        dir.path().join("pw").to_str().unwrap(),
    ]);
    let svc = format!("files{}", std::process::id());
    m.create_sleeping_service(
        &svc,
        &[
            "--config",
            "source=app-conf,target=/etc/app.conf,mode=0440",
            "--secret",
            "db-pw",
        ],
    );
    let c = a_container(&node, &svc);
    let conf = engine_ok(&["exec", &c, "cat", "/etc/app.conf"]);
    assert_eq!(conf, "color=green\n");
    let pw = engine_ok(&["exec", &c, "cat", "/run/secrets/db-pw"]);
    assert_eq!(pw, "s3cret-value\n");
    let mode = engine_ok(&["exec", &c, "stat", "-L", "-c", "%a", "/etc/app.conf"]);
    assert_eq!(mode.trim(), "440");
    // The secret's plaintext is nowhere in the node's data dir.
    for entry in walk(&m.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(12).any(|w| w == b"s3cret-value"),
            "secret plaintext in {}",
            entry.display()
        );
    }
    m.docker_ok(&["service", "rm", &svc]);
    eventually(WAIT, "the container to go", || {
        containers(&node, &svc).is_empty().then_some(())
    });
}

#[test]
fn tasks_spread_over_nodes_and_follow_constraints() {
    let image = test_image();
    let m = Daemon::start_with_engine("spread-m", ENGINE_SOCKET);
    m.init();
    let w = Daemon::start_with_engine("spread-w", ENGINE_SOCKET);
    w.join(&m, "worker");
    let (mid, wid) = (m.node_id(), w.node_id());
    eventually(WAIT, "both nodes ready", || {
        let ls = m.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 2).then_some(())
    });
    let svc = format!("spread{}", std::process::id());
    m.create_sleeping_service(&svc, &["--replicas", "2"]);
    eventually(WAIT, "one task on each node", || {
        (running_containers_on(&mid, &svc).len() == 1
            && running_containers_on(&wid, &svc).len() == 1)
            .then_some(())
    });
    // Only managers: both tasks move to the manager.
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--constraint-add",
        "node.role==manager",
        &svc,
    ]);
    eventually(WAIT, "both tasks on the manager", || {
        (running_containers_on(&mid, &svc).len() == 2
            && running_containers_on(&wid, &svc).is_empty())
        .then_some(())
    });
    // A global service runs once per node.
    let g = format!("global{}", std::process::id());
    m.create_sleeping_service(&g, &["--mode", "global"]);
    eventually(WAIT, "a global task on each node", || {
        (running_containers_on(&mid, &g).len() == 1 && running_containers_on(&wid, &g).len() == 1)
            .then_some(())
    });
    // Draining the worker moves its tasks away.
    m.docker_ok(&["node", "update", "--availability", "drain", &wid]);
    eventually(WAIT, "the drained worker to run nothing", || {
        (containers(&wid, &g).is_empty()).then_some(())
    });
    // An unsatisfiable constraint leaves a task pending, with the reason.
    let p = format!("pending{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--stop-grace-period",
        "1s",
        "--name",
        &p,
        "--constraint",
        "node.labels.zone==mars",
        image,
        "sleep",
        "1",
    ]);
    eventually(WAIT, "the pending reason", || {
        let ps = m.docker_ok(&[
            "service",
            "ps",
            &p,
            "--no-trunc",
            "--format",
            "{{.CurrentState}}|{{.Error}}",
        ]);
        ps.contains("Pending")
            .then_some(())
            .filter(|_| ps.contains("no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)"))
    });
}

#[test]
fn a_task_whose_image_is_missing_is_rejected() {
    test_image();
    let m = Daemon::start_with_engine("rejected", ENGINE_SOCKET);
    m.init();
    let svc = format!("noimage{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--stop-grace-period",
        "1s",
        "--name",
        &svc,
        "shoal-test/does-not-exist:1",
        "true",
    ]);
    eventually(WAIT, "a rejected task", || {
        let ps = m.docker_ok(&[
            "service",
            "ps",
            &svc,
            "--no-trunc",
            "--format",
            "{{.CurrentState}}|{{.Error}}",
        ]);
        ps.lines()
            .find(|l| l.starts_with("Rejected") && l.contains("shoal-test/does-not-exist:1"))
            .map(|_| ())
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn the_engine_is_reachable() {
    // Guards the others: they need the local engine.
    let out = engine(&["version", "--format", "{{.Server.Version}}"]);
    assert!(out.status.success(), "no Docker Engine at {ENGINE_SOCKET}");
}

#[test]
fn the_example_stack_deploys_and_runs() {
    test_image();
    let m = Daemon::start_with_engine("example", ENGINE_SOCKET);
    m.init();
    let node = m.node_id();
    let stack = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/todo/stack.yml");
    m.docker_ok(&["stack", "deploy", "--detach=true", "-c", stack, "todo"]);
    eventually(WAIT, "the stack's services to converge", || {
        let out = m.docker_ok(&[
            "stack",
            "services",
            "todo",
            "--format",
            "{{.Name}} {{.Replicas}}",
        ]);
        let mut rows: Vec<&str> = out.lines().collect();
        rows.sort_unstable();
        (rows == ["todo_todo-db 1/1", "todo_todo-web 2/2"]).then_some(())
    });
    let ps = m.docker_ok(&[
        "stack",
        "ps",
        "todo",
        "--format",
        "{{.Name}} {{.CurrentState}}",
    ]);
    let mut names: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains(" Running "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["todo_todo-db.1", "todo_todo-web.1", "todo_todo-web.2"],
        "{ps}"
    );
    // The web tasks serve the stack's config, mounted where the file says.
    let web = a_container(&node, "todo_todo-web");
    let served = engine_ok(&["exec", &web, "wget", "-qO-", "http://127.0.0.1/config.json"]);
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/todo/config.json"
    ))
    .unwrap();
    assert_eq!(served, file);
    m.docker_ok(&["stack", "rm", "todo"]);
    eventually(WAIT, "the stack's containers to go", || {
        (containers(&node, "todo_todo-web").is_empty()
            && containers(&node, "todo_todo-db").is_empty())
        .then_some(())
    });
    // And the engine network the node made for the stack's network, once nothing uses it
    // (the view does not change when the last container goes).
    let driver = format!("driver=shoal-test-{}", m.port);
    eventually(WAIT, "the stack's engine network to go", || {
        engine_ok(&["network", "ls", "-q", "--filter", &driver])
            .trim()
            .is_empty()
            .then_some(())
    });
}

#[test]
fn a_replicated_job_runs_to_completion() {
    let image = test_image();
    let m = Daemon::start_with_engine("job", ENGINE_SOCKET);
    m.init();
    let svc = format!("job{}", std::process::id());
    // Without --detach the CLI follows the job until it completed.
    let out = m.docker_ok(&[
        "service",
        "create",
        "--name",
        &svc,
        "--mode",
        "replicated-job",
        "--replicas",
        "3",
        "--max-concurrent",
        "2",
        image,
        "sh",
        "-c",
        "echo done",
    ]);
    assert!(squash(&out).contains("job complete"), "{out}");
    let ps = m.docker_ok(&[
        "service",
        "ps",
        &svc,
        "--format",
        "{{.Name}} {{.CurrentState}}",
    ]);
    let complete = ps.lines().filter(|l| l.contains(" Complete ")).count();
    assert_eq!(complete, 3, "{ps}");
    m.docker_ok(&["service", "rm", &svc]);
}

#[test]
fn the_tasks_of_a_node_that_dies_move_and_its_containers_stop_when_it_returns() {
    test_image();
    let m = Daemon::start_with_engine("dies-m", ENGINE_SOCKET);
    m.init();
    let mut w = Daemon::start_with_engine("dies-w", ENGINE_SOCKET);
    w.join(&m, "worker");
    let (mid, wid) = (m.node_id(), w.node_id());
    eventually(WAIT, "both nodes ready", || {
        let ls = m.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 2).then_some(())
    });
    let svc = format!("moves{}", std::process::id());
    m.create_sleeping_service(&svc, &["--restart-delay", "100ms", "--replicas", "2"]);
    eventually(WAIT, "one task on each node", || {
        (running_containers_on(&mid, &svc).len() == 1
            && running_containers_on(&wid, &svc).len() == 1)
            .then_some(())
    });
    // The worker's daemon dies (its container keeps running on the engine, as when a node
    // loses touch with the managers).
    w.kill9();
    eventually(WAIT, "both tasks on the manager", || {
        (running_containers_on(&mid, &svc).len() == 2).then_some(())
    });
    let ls = m.docker_ok(&["node", "ls", "--format", "{{.ID}} {{.Status}}"]);
    assert!(ls.contains(&format!("{wid} Down")), "{ls}");
    // Back, the worker learns that its task was replaced and stops the container.
    w.restart();
    eventually(WAIT, "the returning worker to stop its old task", || {
        running_containers_on(&wid, &svc).is_empty().then_some(())
    });
    assert_eq!(running_containers_on(&mid, &svc).len(), 2);
}

#[test]
fn host_mode_ports_are_bound_on_the_node_that_runs_the_task() {
    test_image();
    let m = Daemon::start_with_engine("hostport", ENGINE_SOCKET);
    m.init();
    let port = support::free_port();
    let svc = format!("hostport{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--stop-grace-period",
        "1s",
        "--name",
        &svc,
        "--publish",
        &format!("mode=host,target=80,published={port}"),
        "shoal-example/todo-web:latest",
    ]);
    let page = eventually(WAIT, "the page on the published port", || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        use std::io::{Read, Write};
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.contains("200 OK").then_some(out)
    });
    assert!(page.contains("<h1>todo</h1>"), "{page}");
    // The task reports the port, and the CLI shows it.
    let ps = m.docker_ok(&["service", "ps", &svc, "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("*:{port}->80/tcp"), "{ps}");
    m.docker_ok(&["service", "rm", &svc]);
}

#[test]
fn a_failing_update_pauses_or_rolls_back_as_the_service_says() {
    let image = test_image();
    let m = Daemon::start_with_engine("failing-update", ENGINE_SOCKET);
    m.init();
    let pid = std::process::id();
    let (paused, rolled) = (format!("paused{pid}"), format!("rolled{pid}"));
    for (name, action) in [(&paused, "pause"), (&rolled, "rollback")] {
        m.create_sleeping_service(
            name,
            &["--update-failure-action", action, "--replicas", "2"],
        );
    }
    // Pause: the CLI follows the update and reports the pause, naming the failed task.
    let out = m.docker(&[
        "service",
        "update",
        "--image",
        "shoal-test/does-not-exist:1",
        &paused,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "service update paused: update paused due to failure or early termination of task"
        ),
        "{err}"
    );
    let st = m.inspect("service", &paused);
    assert_eq!(st["UpdateStatus"]["State"], "paused", "{st}");
    // Rollback: the previous spec comes back by itself and the CLI says so.
    let out = m.docker_ok(&[
        "service",
        "update",
        "--image",
        "shoal-test/does-not-exist:1",
        &rolled,
    ]);
    assert!(
        squash(&out).contains("rollback: rollback completed"),
        "{out}"
    );
    let st = m.inspect("service", &rolled);
    assert_eq!(st["UpdateStatus"]["State"], "rollback_completed", "{st}");
    // The image as the CLI pinned it (`GET /distribution`: the image's ID).
    let back = st["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or_default();
    assert!(back.starts_with(&format!("{image}@sha256:")), "{st}");
    eventually(WAIT, "two running tasks with the old image", || {
        (running_containers_on(&m.node_id(), &rolled).len() == 2).then_some(())
    });
}

#[test]
fn a_leader_failover_keeps_the_tasks_and_the_new_leader_carries_on() {
    test_image();
    // Three managers on the same engine, each its own node; meshes on distinct addresses.
    let a = Daemon::start_with_engine_mesh_ip("fo-1", ENGINE_SOCKET, "127.0.0.1");
    a.init();
    let b = Daemon::start_with_engine_mesh_ip("fo-2", ENGINE_SOCKET, "127.0.0.2");
    b.join(&a, "manager");
    let c = Daemon::start_with_engine_mesh_ip("fo-3", ENGINE_SOCKET, "127.0.0.3");
    c.join(&a, "manager");
    let mut nodes = vec![a, b, c];
    eventually(WAIT, "three reachable managers", || {
        let ls = nodes[0].docker_ok(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
        (ls.lines()
            .filter(|l| *l == "Leader" || *l == "Reachable")
            .count()
            == 3)
            .then_some(())
    });
    let ids: Vec<String> = nodes.iter().map(|n| n.node_id()).collect();
    let svc = format!("fo{}", std::process::id());
    nodes[0].create_sleeping_service(&svc, &["--restart-delay", "100ms", "--replicas", "3"]);
    let total = |nodes_alive: &[usize]| -> usize {
        nodes_alive
            .iter()
            .map(|i| running_containers_on(&ids[*i], &svc).len())
            .sum()
    };
    eventually(WAIT, "three running tasks, one per node", || {
        (ids.iter()
            .all(|id| running_containers_on(id, &svc).len() == 1))
        .then_some(())
    });

    // Kill the leader's daemon (its container keeps running, as a cut-off node's would).
    let mut alive = vec![true; 3];
    let leader = support::leader_index(&nodes, &alive).expect("a leader");
    nodes[leader].kill9();
    alive[leader] = false;
    let survivors: Vec<usize> = (0..3).filter(|i| alive[*i]).collect();
    let new_leader = eventually(WAIT, "a new leader", || {
        support::leader_index(&nodes, &alive)
    });
    assert_ne!(new_leader, leader);
    // The new leader sees the old one down and replaces its task on a survivor: three tasks run
    // on the survivors, never more.
    eventually(WAIT, "three tasks on the survivors", || {
        (total(&survivors) == 3).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        total(&survivors),
        3,
        "no duplicate tasks after the failover"
    );
    // The cluster keeps taking changes.
    nodes[new_leader].docker_ok(&["service", "scale", "--detach", &format!("{svc}=4")]);
    eventually(WAIT, "four tasks on the survivors", || {
        (total(&survivors) == 4).then_some(())
    });
    // The old leader comes back, learns its task was replaced, and stops its container.
    nodes[leader].restart();
    eventually(WAIT, "the old leader to stop its replaced task", || {
        running_containers_on(&ids[leader], &svc)
            .is_empty()
            .then_some(())
    });
    let ps = nodes[new_leader].docker_ok(&[
        "service",
        "ps",
        &svc,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ps.lines().count(), 4, "{ps}");
}
