//! How a task's image is found on the real local Docker Engine: a pin of a local image's ID
//! (what the managers' `GET /distribution` answers for a locally built image) runs that image
//! by ID without a pull, only for an image of that repository; a pull presents the service's
//! registry credentials to the registry.

mod support;

use base64::Engine as _;
use shoal_types::registry::RegistryAuth;
use shoal_types::swarm::TaskState;
use support::registry::FakeRegistry;
use support::{Node, IMAGE};

async fn image_id(node: &Node) -> String {
    node.docker
        .inspect_image(IMAGE)
        .await
        .expect("the test image")
        .id
        .expect("an image ID")
}

#[tokio::test]
async fn a_pin_of_a_local_image_id_runs_that_image_by_id() {
    let mut node = Node::start("pin").await;
    let id = image_id(&node).await;
    let mut a = node.task("web", 1, &["sleep", "1000"]);
    let pinned = format!("{IMAGE}@{id}");
    a.task.spec.container_spec.as_mut().unwrap().image = pinned.clone();
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let running = node.wait_for_state(&task_id, TaskState::Running).await;
    let cs = running.container_status.expect("container status");
    let inspect = node.inspect(&cs.container_id).await;
    assert_eq!(inspect.image.as_deref(), Some(id.as_str()));
    assert_eq!(
        inspect.config.and_then(|c| c.image).as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn a_pin_of_an_image_id_under_another_repository_is_not_taken_for_it() {
    let mut node = Node::start("pinother").await;
    let id = image_id(&node).await;
    // A registry that refuses everything: the pull the agent falls back to fails at once.
    let registry = FakeRegistry::start();
    let mut a = node.task("web", 1, &["true"]);
    let pinned = format!("127.0.0.1:{}/someone/else:1@{id}", registry.port);
    a.task.spec.container_spec.as_mut().unwrap().image = pinned.clone();
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let rejected = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(rejected.state, TaskState::Rejected, "{rejected:?}");
    assert!(
        rejected
            .err
            .starts_with(&format!("No such image: {pinned}")),
        "{}",
        rejected.err
    );
    assert!(node.containers().await.is_empty());
}

#[tokio::test]
async fn a_pull_presents_the_services_registry_credentials() {
    let mut node = Node::start("pullauth").await;
    let registry = FakeRegistry::start();
    let mut a = node.task("web", 1, &["true"]);
    let image = format!("127.0.0.1:{}/nosuch:1", registry.port);
    a.task.spec.container_spec.as_mut().unwrap().image = image.clone();
    // A password whose JSON encodes to base64 with `+` and `/` (the engine decodes the header
    // as base64url and would drop such credentials sent as standard base64).
    let password = "p>>>???~~~";
    a.registry_auth = Some(RegistryAuth {
        username: "shoaluser".into(),
        password: password.into(),
        serveraddress: format!("127.0.0.1:{}", registry.port),
        ..Default::default()
    });
    let task_id = a.task.id.clone();
    node.agent.assign(vec![a]).await;

    let rejected = node
        .wait_for(&task_id, "a terminal state", |s| s.state.is_terminal())
        .await;
    assert_eq!(rejected.state, TaskState::Rejected, "{rejected:?}");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("shoaluser:{password}"))
    );
    let seen = registry.authorizations();
    assert!(seen.contains(&expected), "{seen:?}");
}
