//! Recovery and managers that step aside: `docker swarm init --force-new-cluster` after the
//! quorum is lost for good, and a leader that leaves or is demoted handing over to the others.

mod support;

use std::time::{Duration, Instant};
use support::{eventually, leader_index, three_managers, Daemon};

const WAIT: Duration = Duration::from_secs(20);

/// `ID STATUS MANAGER-STATUS` per node, as `docker node ls` shows them.
fn node_rows(d: &Daemon) -> Vec<(String, String, String)> {
    let out = d.docker_ok(&[
        "node",
        "ls",
        "--format",
        "{{.ID}}|{{.Status}}|{{.ManagerStatus}}",
    ]);
    out.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '|');
            Some((
                parts.next()?.to_string(),
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

fn info(d: &Daemon, format: &str) -> String {
    d.docker_ok(&["info", "--format", format])
        .trim()
        .to_string()
}

fn names(d: &Daemon, kind: &str) -> Vec<String> {
    let out = d.docker_ok(&[kind, "ls", "--format", "{{.Name}}"]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn file_with(d: &Daemon, name: &str, text: &str) -> String {
    let path = d.dir.path().join(name);
    std::fs::write(&path, text).expect("cannot write a test file");
    path.display().to_string()
}

/// The index of the leader among `nodes` (those marked alive).
fn leader(nodes: &[Daemon], alive: &[bool]) -> usize {
    eventually(WAIT, "a leader", || leader_index(nodes, alive))
}

#[test]
fn force_new_cluster_on_the_last_manager_standing_keeps_the_state_and_takes_writes() {
    let mut nodes = three_managers();
    let m = &nodes[0];
    let secret = file_with(m, "secret.txt", "hunter2");
    let config = file_with(m, "config.txt", "key=value");
    m.docker_ok(&["secret", "create", "db-password", &secret]);
    m.docker_ok(&["config", "create", "app-config", &config]);
    m.docker_ok(&["network", "create", "-d", "overlay", "backend"]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "--network",
        "backend",
        "nginx:alpine",
    ]);
    // The survivor is a follower: the leader is among the two lost for good.
    let l = leader(&nodes, &[true; 3]);
    let s = (l + 1) % 3;
    let ids: Vec<String> = nodes.iter().map(Daemon::node_id).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != s {
            n.kill9();
        }
    }
    let survivor = &nodes[s];
    let refused = survivor.docker_err(&["network", "create", "-d", "overlay", "lonely"]);
    assert!(refused.contains("majority of managers"), "{refused}");

    // Other settings given with it are refused, not dropped.
    let err = survivor.docker_err(&["swarm", "init", "--force-new-cluster", "--autolock"]);
    assert!(err.contains("keeps the cluster's settings"), "{err}");
    let out = survivor.docker_ok(&["swarm", "init", "--force-new-cluster"]);
    assert!(
        out.contains(&format!(
            "Swarm initialized: current node ({}) is now a manager.",
            ids[s]
        )),
        "{out}"
    );
    // Everything is still there, and this manager takes writes at once.
    assert_eq!(names(survivor, "secret"), vec!["db-password"]);
    assert_eq!(names(survivor, "config"), vec!["app-config"]);
    assert_eq!(names(survivor, "service"), vec!["web"]);
    assert!(names(survivor, "network").contains(&"backend".to_string()));
    let second = file_with(survivor, "second.txt", "s3cret");
    survivor.docker_ok(&["secret", "create", "after-recovery", &second]);
    survivor.docker_ok(&["service", "scale", "--detach", "web=3"]);
    let (status, body) = survivor
        .http(
            "POST",
            "/v1.41/configs/create",
            Some(br#"{"Name":"fast","Data":"eA=="}"#),
        )
        .expect("http");
    assert_eq!(status, 201, "{body}");

    // As Swarm shows it: the lost managers are still nodes, down, and no longer managers.
    eventually(
        WAIT,
        "the lost managers shown down, out of the managers",
        || {
            let rows = node_rows(survivor);
            let ok = rows.len() == 3
                && rows.iter().all(|(id, status, ms)| {
                    if *id == ids[s] {
                        status == "Ready" && ms == "Leader"
                    } else {
                        status == "Down" && ms.is_empty()
                    }
                });
            ok.then_some(())
        },
    );
    assert_eq!(
        info(survivor, "{{.Swarm.Managers}} {{.Swarm.Nodes}}"),
        "1 3"
    );
    let last = survivor.docker_err(&["node", "demote", &ids[s]]);
    assert!(
        last.contains("attempting to demote the last manager of the swarm"),
        "{last}"
    );
    let lost = &ids[(s + 1) % 3];
    survivor.docker_ok(&["node", "rm", "--force", lost]);
    assert_eq!(node_rows(survivor).len(), 2);

    // A new manager joins the recovered cluster; with it the two are a quorum.
    let fresh = Daemon::start("after");
    fresh.join(survivor, "manager");
    eventually(WAIT, "two reachable managers", || {
        let ms: Vec<String> = node_rows(survivor)
            .into_iter()
            .map(|(_, _, ms)| ms)
            .filter(|ms| !ms.is_empty())
            .collect();
        (ms.len() == 2 && ms.iter().all(|m| m == "Leader" || m == "Reachable")).then_some(())
    });
    assert_eq!(info(&fresh, "{{.Swarm.Managers}}"), "2");
    fresh.docker_ok(&["network", "create", "-d", "overlay", "from-the-new-manager"]);
    eventually(WAIT, "the new manager to hold every secret", || {
        (names(&fresh, "secret") == ["after-recovery", "db-password"]).then_some(())
    });

    // On a worker, --force-new-cluster is refused as Docker refuses it.
    let worker = Daemon::start("worker");
    worker.join(survivor, "worker");
    let err = worker.docker_err(&["swarm", "init", "--force-new-cluster"]);
    assert!(
        err.contains("This node is not a swarm manager. Worker nodes can't be used"),
        "{err}"
    );
}

#[test]
fn force_new_cluster_survives_a_restart_and_a_lost_manager_that_returns_becomes_a_worker() {
    let mut nodes = three_managers();
    let secret = file_with(&nodes[0], "secret.txt", "hunter2");
    nodes[0].docker_ok(&["secret", "create", "kept", &secret]);
    nodes[1].kill9();
    nodes[2].kill9();
    let survivor = &mut nodes[0];
    survivor.docker_ok(&["swarm", "init", "--force-new-cluster"]);
    survivor.restart();
    eventually(WAIT, "the recovered manager back as the leader", || {
        let out = survivor.docker(&["node", "ls", "--format", "{{.Self}} {{.ManagerStatus}}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "true Leader")
            .then_some(())
    });
    assert_eq!(names(survivor, "secret"), vec!["kept"]);
    survivor.docker_ok(&["network", "create", "-d", "overlay", "after-restart"]);
    assert_eq!(info(survivor, "{{.Swarm.Managers}}"), "1");

    // A lost manager that comes back with its old Raft state does not split the cluster: it
    // is told it is a worker now, and serves as one.
    let back_id = {
        let back = &mut nodes[1];
        back.restart();
        eventually(WAIT, "the returning manager to become a worker", || {
            let out = back.docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
            (String::from_utf8_lossy(&out.stdout).trim() == "false").then_some(())
        });
        back.node_id()
    };
    let survivor = &nodes[0];
    eventually(WAIT, "the returning node ready, as a worker", || {
        let rows = node_rows(survivor);
        rows.iter()
            .any(|(i, status, ms)| *i == back_id && status == "Ready" && ms.is_empty())
            .then_some(())
    });
    assert_eq!(info(survivor, "{{.Swarm.Managers}}"), "1");
    survivor.docker_ok(&["network", "create", "-d", "overlay", "after-return"]);
}

#[test]
fn a_leader_that_leaves_hands_over_and_the_other_two_keep_their_quorum() {
    let mut nodes = three_managers();
    let l = leader(&nodes, &[true; 3]);
    let id = nodes[l].node_id();
    let out = nodes[l].docker_ok(&["swarm", "leave", "--force"]);
    assert!(out.contains("Node left the swarm."), "{out}");
    let left = Instant::now();
    let gone = nodes.remove(l);
    drop(gone);
    let alive = [true; 2];
    let next = leader(&nodes, &alive);
    eprintln!("a new leader after {:?}", left.elapsed());
    // Two voters of two: writes commit.
    nodes[next].docker_ok(&["network", "create", "-d", "overlay", "after-leave"]);
    nodes[1 - next].docker_ok(&["network", "create", "-d", "overlay", "on-the-follower"]);
    eventually(
        WAIT,
        "the departed leader down and out of the managers",
        || {
            let rows = node_rows(&nodes[0]);
            let ok = rows
                .iter()
                .any(|(i, status, ms)| *i == id && status == "Down" && ms.is_empty())
                && rows.iter().filter(|(_, _, ms)| !ms.is_empty()).count() == 2;
            ok.then_some(())
        },
    );
    assert_eq!(info(&nodes[0], "{{.Swarm.Managers}}"), "2");

    // A third manager joins: three voters, so one of them may go.
    let third = Daemon::start("third");
    third.join(&nodes[next], "manager");
    eventually(WAIT, "three reachable managers", || {
        let ms: Vec<String> = node_rows(&third)
            .into_iter()
            .map(|(_, _, ms)| ms)
            .filter(|ms| ms == "Leader" || ms == "Reachable")
            .collect();
        (ms.len() == 3).then_some(())
    });
    let follower = 1 - next;
    nodes[follower].kill9();
    // (Were the departed leader still a voter, two of four could not commit.)
    third.docker_ok(&["network", "create", "-d", "overlay", "with-one-down"]);
}

#[test]
fn the_leader_of_two_managers_leaves_and_the_other_carries_on_alone() {
    let a = Daemon::start("pair-a");
    a.init();
    let b = Daemon::start("pair-b");
    b.join(&a, "manager");
    let mut nodes = vec![a, b];
    eventually(WAIT, "two reachable managers", || {
        let ms = node_rows(&nodes[0])
            .into_iter()
            .filter(|(_, _, ms)| ms == "Leader" || ms == "Reachable")
            .count();
        (ms == 2).then_some(())
    });
    let l = leader(&nodes, &[true; 2]);
    nodes[l].docker_ok(&["swarm", "leave", "--force"]);
    nodes.remove(l);
    // Had the leader stayed a voter, one of two could never commit again.
    let other = &nodes[0];
    other.docker_ok(&["network", "create", "-d", "overlay", "alone"]);
    assert_eq!(info(other, "{{.Swarm.Managers}}"), "1");
    eventually(WAIT, "the remaining manager to lead", || {
        node_rows(other)
            .iter()
            .any(|(_, _, ms)| ms == "Leader")
            .then_some(())
    });
}

#[test]
fn a_demoted_leader_hands_over_and_becomes_a_worker() {
    let nodes = three_managers();
    let l = leader(&nodes, &[true; 3]);
    let id = nodes[l].node_id();
    // Demoted from itself.
    let out = nodes[l].docker_ok(&["node", "demote", &id]);
    assert!(
        out.contains(&format!("Manager {id} demoted in the swarm.")),
        "{out}"
    );
    eventually(WAIT, "the demoted leader to be a worker", || {
        (info(&nodes[l], "{{.Swarm.ControlAvailable}}") == "false").then_some(())
    });
    let others: Vec<usize> = (0..3).filter(|i| *i != l).collect();
    let mut alive = [true; 3];
    alive[l] = false;
    let next = leader(&nodes, &alive);
    assert!(others.contains(&next));
    nodes[next].docker_ok(&["network", "create", "-d", "overlay", "after-demotion"]);
    eventually(
        WAIT,
        "two managers, the demoted node a ready worker",
        || {
            let rows = node_rows(&nodes[others[0]]);
            let ok = rows.len() == 3
                && rows
                    .iter()
                    .any(|(i, status, ms)| *i == id && status == "Ready" && ms.is_empty())
                && rows.iter().filter(|(_, _, ms)| !ms.is_empty()).count() == 2;
            ok.then_some(())
        },
    );
    for i in &others {
        assert_eq!(info(&nodes[*i], "{{.Swarm.Managers}}"), "2");
    }
    let worker = nodes[l].docker_err(&["node", "ls"]);
    assert!(
        worker.contains("This node is not a swarm manager"),
        "{worker}"
    );
    // The worker can be promoted again and is a manager of the same cluster.
    nodes[next].docker_ok(&["node", "promote", &id]);
    eventually(WAIT, "three reachable managers again", || {
        let ms = node_rows(&nodes[next])
            .into_iter()
            .filter(|(_, _, ms)| ms == "Leader" || ms == "Reachable")
            .count();
        (ms == 3).then_some(())
    });
}

#[test]
fn demoting_a_leader_from_another_manager_hands_over_too() {
    let nodes = three_managers();
    let l = leader(&nodes, &[true; 3]);
    let id = nodes[l].node_id();
    let other = (l + 1) % 3;
    nodes[other].docker_ok(&["node", "demote", &id]);
    eventually(WAIT, "the demoted leader to be a worker", || {
        (info(&nodes[l], "{{.Swarm.ControlAvailable}}") == "false").then_some(())
    });
    eventually(WAIT, "two managers", || {
        (info(&nodes[other], "{{.Swarm.Managers}}") == "2").then_some(())
    });
    nodes[other].docker_ok(&["network", "create", "-d", "overlay", "after-demotion"]);
}
