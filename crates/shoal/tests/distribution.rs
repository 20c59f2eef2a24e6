//! `GET /distribution/{name}/json` and `--with-registry-auth`, with the real docker CLI, real
//! shoal nodes and the real local engine: a local image every node has is pinned to its ID
//! without the CLI's "could not be accessed on a registry" warning and runs; an image no node
//! has is warned about and left unpinned; the credentials of `--with-registry-auth` reach the
//! registry a node pulls from (a stand-in on loopback), are kept across an update that sends
//! none, come back with a rollback, and show nowhere.

mod support;

use base64::Engine as _;
use std::time::Duration;
use support::registry::FakeRegistry;
use support::{engine_ok, eventually, test_image, Daemon, ENGINE_SOCKET};

const WAIT: Duration = Duration::from_secs(60);
const NO_REGISTRY_WARNING: &str = "could not be accessed on a registry";

fn image_id(image: &str) -> String {
    engine_ok(&["image", "inspect", "--format", "{{.Id}}", image])
        .trim()
        .to_string()
}

/// The images of the running containers of a service, as the engine reports them.
fn running_images(service: &str) -> Vec<String> {
    let out = engine_ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--format",
        "{{.ID}}",
    ]);
    out.split_whitespace()
        .map(|id| {
            engine_ok(&["inspect", "--format", "{{.Image}}", id])
                .trim()
                .to_string()
        })
        .collect()
}

fn spec_image(m: &Daemon, service: &str) -> String {
    m.inspect("service", service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_local_image_every_node_has_is_pinned_to_its_id_without_a_warning_and_runs() {
    let image = test_image();
    let m = Daemon::start_with_engine("dist", ENGINE_SOCKET);
    m.init();
    let w = Daemon::start_with_engine("distw", ENGINE_SOCKET);
    w.join(&m, "worker");
    let svc = format!("pinned{}", std::process::id());
    let id = image_id(image);

    // The CLI's own request answers the digest the engines have.
    let dist = m
        .http("GET", &format!("/v1.41/distribution/{image}/json"), None)
        .unwrap();
    assert_eq!(dist.0, 200, "{}", dist.1);
    let v: serde_json::Value = serde_json::from_str(&dist.1).unwrap();
    assert_eq!(v["Descriptor"]["digest"], id.as_str(), "{v}");
    assert_eq!(v["Platforms"][0]["os"], "linux", "{v}");

    // Without --detach the CLI waits until the task runs.
    let out = m.docker(&[
        "service",
        "create",
        "--name",
        &svc,
        "--replicas",
        "2",
        "--stop-grace-period",
        "1s",
        "--update-parallelism",
        "2",
        image,
        "sleep",
        "100000",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(NO_REGISTRY_WARNING), "{stderr}");
    assert_eq!(spec_image(&m, &svc), format!("{image}@{id}"));
    let s = m.inspect("service", &svc);
    let platforms = &s["Spec"]["TaskTemplate"]["Placement"]["Platforms"];
    assert_eq!(platforms[0]["OS"], "linux", "{s}");
    assert!(
        !platforms[0]["Architecture"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{s}"
    );
    eventually(WAIT, "two running tasks of the pinned image", || {
        let images = running_images(&svc);
        (images.len() == 2 && images.iter().all(|i| *i == id)).then_some(())
    });

    // `service update --image` pins the new image the same way.
    let other = "shoal-example/todo-web:latest";
    let other_id = image_id(other);
    let out = m.docker(&["service", "update", "--detach", "--image", other, &svc]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(NO_REGISTRY_WARNING), "{stderr}");
    assert_eq!(spec_image(&m, &svc), format!("{other}@{other_id}"));
    eventually(WAIT, "the tasks running the new image", || {
        let images = running_images(&svc);
        (images.len() == 2 && images.iter().all(|i| *i == other_id)).then_some(())
    });
}

#[test]
fn an_image_no_node_has_is_warned_about_and_left_unpinned() {
    test_image();
    let m = Daemon::start_with_engine("distmissing", ENGINE_SOCKET);
    m.init();
    let svc = format!("unpinned{}", std::process::id());
    let image = "shoal-test/no-such-image:1";

    let (status, body) = m
        .http("GET", &format!("/v1.41/distribution/{image}/json"), None)
        .unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("manifest for shoal-test/no-such-image:1 not found"),
        "{body}"
    );
    let (status, body) = m
        .http("GET", "/v1.41/distribution/Bad..Name/json", None)
        .unwrap();
    assert_eq!(status, 400, "{body}");

    let out = m.docker(&["service", "create", "--detach", "--name", &svc, image]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(NO_REGISTRY_WARNING), "{stderr}");
    assert_eq!(spec_image(&m, &svc), image);
}

/// A docker CLI config dir holding credentials for `registry`.
fn config_dir(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn registry_credentials_reach_the_pulling_node_are_kept_and_show_nowhere() {
    test_image();
    let registry = FakeRegistry::start();
    let host = format!("127.0.0.1:{}", registry.port);
    let m = Daemon::start_with_engine("distauth", ENGINE_SOCKET);
    m.init();
    // The worker's agent pulls: the credentials travel to it with its task.
    let w = Daemon::start_with_engine("distauthw", ENGINE_SOCKET);
    w.join(&m, "worker");
    let svc = format!("authed{}", std::process::id());
    let image = format!("{host}/nosuch:1");
    let password = "s3cr3t-p>>>???";
    let config = config_dir(&host, "shoaluser", password);
    let config = config.path().to_str().unwrap();

    let out = m.docker(&[
        "--config",
        config,
        "service",
        "create",
        "--detach",
        "--with-registry-auth",
        "--restart-delay",
        "100ms",
        "--constraint",
        "node.role==worker",
        "--name",
        &svc,
        &image,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = basic("shoaluser", password);
    eventually(
        WAIT,
        "the registry to see the service's credentials",
        || registry.authorizations().contains(&expected).then_some(()),
    );

    // Nowhere to be seen: not in the service, its tasks, or the daemon's log.
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("shoaluser:{password}"));
    let shown = [
        m.docker_ok(&["service", "inspect", &svc]),
        m.docker_ok(&["service", "inspect", "--pretty", &svc]),
        m.docker_ok(&["service", "ls"]),
        m.http("GET", "/v1.41/services", None).unwrap().1,
        m.http("GET", "/v1.41/tasks", None).unwrap().1,
        m.log(),
        w.log(),
    ];
    for text in &shown {
        for secret in [password, encoded.as_str(), "PullOptions", "RegistryAuth"] {
            assert!(!text.contains(secret), "{secret} shows in:\n{text}");
        }
    }

    // An update without --with-registry-auth keeps them (registryAuthFrom=spec): the new
    // tasks pull with them too.
    m.docker_ok(&["service", "update", "--detach", "--force", &svc]);
    let after = registry
        .authorizations()
        .iter()
        .filter(|a| **a == expected)
        .count();
    eventually(WAIT, "new tasks to pull with the kept credentials", || {
        let now = registry
            .authorizations()
            .iter()
            .filter(|a| **a == expected)
            .count();
        (now >= after + 3).then_some(())
    });

    // New credentials replace them.
    let config2 = config_dir(&host, "other", "pw2");
    let out = m.docker(&[
        "--config",
        config2.path().to_str().unwrap(),
        "service",
        "update",
        "--detach",
        "--force",
        "--with-registry-auth",
        &svc,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(WAIT, "the registry to see the new credentials", || {
        registry
            .authorizations()
            .contains(&basic("other", "pw2"))
            .then_some(())
    });

    // A rollback brings back the previous spec's credentials with it.
    let count = |who: &str| {
        registry
            .authorizations()
            .iter()
            .filter(|a| **a == who)
            .count()
    };
    let before = count(&expected);
    m.docker_ok(&["service", "rollback", "--detach", &svc]);
    eventually(
        WAIT,
        "the rolled-back tasks to pull with the first credentials",
        || (count(&expected) >= before + 3).then_some(()),
    );
}

#[test]
fn stack_deploy_with_registry_auth_is_honoured_for_docker_and_for_shoal() {
    test_image();
    let registry = FakeRegistry::start();
    let host = format!("127.0.0.1:{}", registry.port);
    let m = Daemon::start_with_engine("diststack", ENGINE_SOCKET);
    m.init();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        format!("services:\n  app:\n    image: {host}/nosuch:1\n    deploy:\n      restart_policy:\n        delay: 100ms\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let config = config_dir(&host, "stackuser", "pw+/");
    let stack = format!("authstack{}", std::process::id());

    let out = m.docker(&[
        "--config",
        config.path().to_str().unwrap(),
        "stack",
        "deploy",
        "--detach",
        "--with-registry-auth",
        "-c",
        file,
        &stack,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(WAIT, "the registry to see the stack's credentials", || {
        registry
            .authorizations()
            .contains(&basic("stackuser", "pw+/"))
            .then_some(())
    });

    // shoal's own deploy: the credentials of its user's docker config, in the deploy's one
    // entry, sealed beside the service; nowhere in the stack's stored version.
    let config = config_dir(&host, "shoaluser", "shoal-pw+/");
    let dir_env = config.path().to_str().unwrap();
    let out = m.shoal_with_env(
        &[("DOCKER_CONFIG", dir_env)],
        &[
            "stack",
            "deploy",
            "--detach",
            "--with-registry-auth",
            "-c",
            file,
            "other",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Nobody has that image: Docker's warning, and the image stays unpinned.
    assert!(stderr.contains(NO_REGISTRY_WARNING), "{stderr}");
    assert_eq!(spec_image(&m, "other_app"), format!("{host}/nosuch:1"));
    eventually(
        WAIT,
        "the registry to see shoal's stack credentials",
        || {
            registry
                .authorizations()
                .contains(&basic("shoaluser", "shoal-pw+/"))
                .then_some(())
        },
    );
    let inspect = m.docker_ok(&["service", "inspect", "other_app"]);
    assert!(!inspect.contains("shoaluser"), "{inspect}");
    let (status, stored) = m.http("GET", "/shoal/v1/stacks/other", None).unwrap();
    assert_eq!(status, 200, "{stored}");
    assert!(
        !stored.contains("shoaluser") && !stored.contains("shoal-pw"),
        "{stored}"
    );
    for f in support::files_under(&m.data_dir()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("shoal-pw+/"),
            "{} holds the password",
            f.display()
        );
    }
}
