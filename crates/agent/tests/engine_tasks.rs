//! The agent against the real local Docker Engine: tasks become labelled containers, their
//! exits become task states, shutdown and removal stop and remove them, configs and secrets
//! become files, and a restarted agent adopts what is already running.

mod support;

use std::time::Duration;

use shoal_agent::{Agent, AgentConfig, FileData};
use shoal_types::swarm::{
    ConfigReference, ConfigReferenceFileTarget, HealthConfig, SecretReference,
    SecretReferenceFileTarget, TaskState,
};
use support::Node;

#[tokio::test]
async fn a_task_runs_as_a_labelled_container_named_after_its_slot() {
    let mut node = Node::start("run").await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    a.task
        .labels
        .insert("com.docker.stack.namespace".into(), "app".into());
    a.task
        .spec
        .container_spec
        .as_mut()
        .unwrap()
        .labels
        .insert("tier".into(), "front".into());
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a.clone()]).await;

    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    assert_eq!(running.message, "started");
    let states: Vec<TaskState> = node.seen[&task_id].iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            TaskState::Accepted,
            TaskState::Preparing,
            TaskState::Ready,
            TaskState::Starting,
            TaskState::Running
        ]
    );
    let cs = running.container_status.clone().expect("container status");
    assert!(cs.pid > 0, "{cs:?}");

    let inspect = node.inspect(&cs.container_id).await;
    let name = format!("web.1.{task_id}");
    assert_eq!(inspect.name.as_deref(), Some(format!("/{name}").as_str()));
    let labels = inspect.config.unwrap().labels.unwrap();
    assert_eq!(labels["com.docker.swarm.task.id"], task_id);
    assert_eq!(labels["com.docker.swarm.task.name"], name);
    assert_eq!(labels["com.docker.swarm.task"], "");
    assert_eq!(labels["com.docker.swarm.node.id"], node.node_id);
    assert_eq!(labels["com.docker.swarm.service.id"], "svc-web");
    assert_eq!(labels["com.docker.swarm.service.name"], "web");
    assert_eq!(labels["com.docker.stack.namespace"], "app");
    assert_eq!(labels["tier"], "front");
    let restart = inspect.host_config.unwrap().restart_policy.unwrap();
    assert_eq!(restart.name.map(|n| n.to_string()).as_deref(), Some("no"));

    // The same set again (with the status the manager now knows) changes nothing.
    let mut again = a.clone();
    again.task.status = running.clone();
    node.agent.assign(vec![again.clone()]).await;
    node.agent.assign(vec![again]).await;
    assert!(node.drain(Duration::from_secs(2)).await.is_empty());
    assert_eq!(node.containers().await.len(), 1);
}

#[tokio::test]
async fn a_global_task_is_named_after_its_node() {
    let mut node = Node::start("global").await;
    let a = node.task("mon", 0, &["sleep", "1000"]);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;
    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    let inspect = node
        .inspect(&running.container_status.unwrap().container_id)
        .await;
    assert_eq!(
        inspect.name.unwrap(),
        format!("/mon.{}.{task_id}", node.node_id)
    );
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_task_with_its_exit_code() {
    let mut node = Node::start("fail").await;
    let a = node.task("job", 1, &["sh", "-c", "exit 3"]);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let failed = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    assert_eq!(failed.err, "task: non-zero exit (3)");
    assert_eq!(failed.container_status.unwrap().exit_code, 3);
    // Never restarted: the container stays exited until the task leaves the set.
    assert!(node.drain(Duration::from_secs(2)).await.is_empty());
    let containers = node.containers().await;
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0].state.map(|s| s.to_string()).as_deref(),
        Some("exited")
    );
}

#[tokio::test]
async fn a_zero_exit_completes_the_task() {
    let mut node = Node::start("complete").await;
    let a = node.task("job", 1, &["true"]);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;
    let done = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(done.state, TaskState::Complete, "{done:?}");
    assert_eq!(done.message, "finished");
    assert_eq!(done.container_status.unwrap().exit_code, 0);
}

#[tokio::test]
async fn a_task_with_a_health_check_is_running_only_once_healthy() {
    let mut node = Node::start("healthy").await;
    let mut a = node.task(
        "web",
        1,
        &["sh", "-c", "sleep 1; touch /healthy; exec sleep 1000"],
    );
    a.task.spec.container_spec.as_mut().unwrap().healthcheck = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "test -e /healthy".into()],
        interval: 200_000_000,
        retries: 50,
        ..Default::default()
    });
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;
    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    let starting = node.seen[&task_id]
        .iter()
        .find(|s| s.state == TaskState::Starting)
        .cloned()
        .expect("STARTING reported");
    let waited = running.timestamp - starting.timestamp;
    assert!(
        waited >= chrono::TimeDelta::milliseconds(900),
        "RUNNING came {waited} after STARTING, before the check could pass"
    );
    let inspect = node
        .inspect(&running.container_status.unwrap().container_id)
        .await;
    let health = inspect.state.unwrap().health.unwrap().status.unwrap();
    assert_eq!(health.to_string(), "healthy");
}

#[tokio::test]
async fn a_container_turning_unhealthy_fails_its_task_and_is_stopped() {
    let mut node = Node::start("unhealthy").await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    let spec = a.task.spec.container_spec.as_mut().unwrap();
    spec.stop_grace_period = Some(0);
    spec.healthcheck = Some(HealthConfig {
        test: vec!["CMD".into(), "false".into()],
        interval: 200_000_000,
        retries: 1,
        ..Default::default()
    });
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;
    let failed = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    assert_eq!(failed.err, "container unhealthy");
    let id = failed.container_status.unwrap().container_id;
    assert_eq!(node.inspect(&id).await.state.unwrap().running, Some(false));
}

#[tokio::test]
async fn a_missing_image_rejects_the_task_naming_the_image() {
    let mut node = Node::start("noimage").await;
    let mut a = node.task("web", 1, &["true"]);
    a.task.spec.container_spec.as_mut().unwrap().image = "shoal-test/no-such-image".into();
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let rejected = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(rejected.state, TaskState::Rejected, "{rejected:?}");
    assert!(
        rejected
            .err
            .starts_with("No such image: shoal-test/no-such-image:latest"),
        "{}",
        rejected.err
    );
    assert!(node.containers().await.is_empty());
}

#[tokio::test]
async fn desired_shutdown_stops_the_container_and_reports_shutdown() {
    let mut node = Node::start("shutdown").await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    // `sleep` as PID 1 ignores SIGTERM: the grace period runs out and the engine kills it.
    a.task
        .spec
        .container_spec
        .as_mut()
        .unwrap()
        .stop_grace_period = Some(1_000_000_000);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a.clone()]).await;
    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    let id = running.container_status.unwrap().container_id;

    a.task.desired_state = TaskState::Shutdown;
    node.agent.assign(vec![a]).await;
    let shutdown = node.wait_for_state(&task_id, TaskState::Shutdown).await;
    assert_eq!(shutdown.message, "shutdown");
    assert_eq!(shutdown.container_status.unwrap().container_id, id);
    let state = node.inspect(&id).await.state.unwrap();
    assert_eq!(state.running, Some(false));
    // Still there for its logs until the task leaves the set.
    assert_eq!(node.containers().await.len(), 1);
}

#[tokio::test]
async fn a_task_dropped_from_the_set_has_its_container_and_files_removed() {
    let mut node = Node::start("drop").await;
    let mut keep = node.task("web", 1, &["sleep", "1000"]);
    let mut gone = node.task("web", 2, &["sleep", "1000"]);
    for a in [&mut keep, &mut gone] {
        a.task
            .spec
            .container_spec
            .as_mut()
            .unwrap()
            .stop_grace_period = Some(0);
    }
    with_secret(&mut gone, "s1", "token", b"x");
    node.agent.assign(vec![keep.clone(), gone.clone()]).await;
    node.wait_for_state(&keep.task.id, TaskState::Running).await;
    node.wait_for_state(&gone.task.id, TaskState::Running).await;
    let secret_dir = node.cfg.secrets_dir.join(&gone.task.id);
    assert!(secret_dir.exists());

    node.agent.assign(vec![keep.clone()]).await;
    let containers = node
        .wait_until("the dropped task's container is removed", |c| c.len() == 1)
        .await;
    let labels = containers[0].labels.clone().unwrap();
    assert_eq!(labels["com.docker.swarm.task.id"], keep.task.id);
    support::eventually("the dropped task's secrets are removed", || {
        !secret_dir.exists()
    })
    .await;
}

#[tokio::test]
async fn configs_and_secrets_are_files_with_their_content_and_mode() {
    let mut node = Node::start("files").await;
    let script = "cat /etc/app.conf; echo; stat -c '%a %u' /etc/app.conf; \
                  cat /run/secrets/db; echo; stat -c '%a %u %g' /run/secrets/db; \
                  cat /absolute/secret; echo";
    let mut a = node.task("web", 1, &["sh", "-c", script]);
    let spec = a.task.spec.container_spec.as_mut().unwrap();
    spec.configs.push(ConfigReference {
        config_id: "cfg1".into(),
        config_name: "app.conf".into(),
        file: Some(ConfigReferenceFileTarget {
            name: "etc/app.conf".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o440,
        }),
        runtime: None,
    });
    spec.secrets.push(SecretReference {
        secret_id: "sec1".into(),
        secret_name: "db-password".into(),
        file: Some(SecretReferenceFileTarget {
            name: "db".into(),
            uid: "1000".into(),
            gid: "1001".into(),
            mode: 0o400,
        }),
    });
    spec.secrets.push(SecretReference {
        secret_id: "sec2".into(),
        secret_name: "other".into(),
        file: Some(SecretReferenceFileTarget {
            name: "/absolute/secret".into(),
            ..Default::default()
        }),
    });
    a.configs.push(FileData {
        id: "cfg1".into(),
        name: "app.conf".into(),
        data: b"listen=8080".to_vec(),
    });
    a.secrets.push(FileData {
        id: "sec1".into(),
        name: "db-password".into(),
        data: b"hunter2".to_vec(),
    });
    a.secrets.push(FileData {
        id: "sec2".into(),
        name: "other".into(),
        data: b"second".to_vec(),
    });
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let done = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(done.state, TaskState::Complete, "{done:?}");
    let logs = node
        .logs(&done.container_status.unwrap().container_id)
        .await;
    assert_eq!(
        logs, "listen=8080\n440 0\nhunter2\n400 1000 1001\nsecond\n",
        "container output"
    );
    // Secrets live under the secrets dir only, configs under the state dir.
    let on_tmpfs = node.cfg.secrets_dir.join(&task_id).join("sec1");
    assert_eq!(std::fs::read(on_tmpfs).unwrap(), b"hunter2");
    let in_state = node.cfg.state_dir.join("tasks").join(&task_id);
    assert!(in_state.join("configs/cfg1").exists());
    assert!(!in_state.join("sec1").exists());
}

#[tokio::test]
async fn a_restarted_agent_adopts_the_running_container() {
    let mut node = Node::start("adopt").await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    a.task
        .spec
        .container_spec
        .as_mut()
        .unwrap()
        .stop_grace_period = Some(0);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a.clone()]).await;
    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    let id = running.container_status.clone().unwrap().container_id;

    node.restart_agent().await;
    assert_eq!(
        node.inspect(&id).await.state.unwrap().running,
        Some(true),
        "shutting the agent down must leave its containers running"
    );
    // The manager never heard of RUNNING: the new agent reports it from the container.
    node.seen.clear();
    node.agent.assign(vec![a.clone()]).await;
    let adopted = node.wait_for_state(&task_id, TaskState::Running).await;
    assert_eq!(adopted.container_status.unwrap().container_id, id);
    let containers = node.containers().await;
    assert_eq!(containers.len(), 1, "a second container: {containers:?}");

    // And it watches the adopted container: a shutdown still works.
    a.task.desired_state = TaskState::Shutdown;
    node.agent.assign(vec![a]).await;
    node.wait_for_state(&task_id, TaskState::Shutdown).await;
    assert_eq!(node.inspect(&id).await.state.unwrap().running, Some(false));
}

#[tokio::test]
async fn a_restarted_agent_removes_containers_of_tasks_no_longer_assigned() {
    let mut node = Node::start("orphan").await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    a.task
        .spec
        .container_spec
        .as_mut()
        .unwrap()
        .stop_grace_period = Some(0);
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;
    node.wait_for_state(&task_id, TaskState::Running).await;

    node.restart_agent().await;
    node.agent.assign(vec![]).await;
    node.wait_until("the orphaned container is removed", |c| c.is_empty())
        .await;
    let files = node.cfg.state_dir.join("tasks").join(&task_id);
    support::eventually("the orphan's files are removed", || !files.exists()).await;
}

#[tokio::test]
async fn an_unreachable_engine_rejects_tasks_naming_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-engine.sock");
    let (agent, mut updates) = Agent::start(AgentConfig {
        node_id: "test-unreachable".into(),
        engine_socket: socket.clone(),
        state_dir: dir.path().join("state"),
        secrets_dir: dir.path().join("secrets"),
        network_driver: shoal_agent::networks::DRIVER.to_string(),
        pending_addresses: Default::default(),
    });
    let a = support::assignment("test-unreachable", "web", 1, &["true"]);
    agent.assign(vec![a]).await;
    let rejected = tokio::time::timeout(support::TIMEOUT, async {
        loop {
            let update = updates.recv().await.expect("status channel open");
            if update.status.state.is_terminal() {
                return update.status;
            }
        }
    })
    .await
    .expect("a rejection in time");
    assert_eq!(rejected.state, TaskState::Rejected);
    assert!(
        rejected.err.contains(&*socket.to_string_lossy()) && rejected.err.contains("unreachable"),
        "{}",
        rejected.err
    );
    agent.shutdown().await;
}

fn with_secret(a: &mut shoal_agent::Assignment, id: &str, name: &str, data: &[u8]) {
    a.task
        .spec
        .container_spec
        .as_mut()
        .unwrap()
        .secrets
        .push(SecretReference {
            secret_id: id.into(),
            secret_name: name.into(),
            file: None,
        });
    a.secrets.push(FileData {
        id: id.into(),
        name: name.into(),
        data: data.to_vec(),
    });
}
