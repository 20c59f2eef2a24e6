//! What `shoal stack deploy` adds to `docker stack deploy`, on a real daemon with real
//! containers: it waits (by default) until the stack converged (or fails, naming the service
//! and the reason), `--dry-run` shows the plan without changing anything, and a config or
//! secret whose content changed is rotated by the managers instead of failing.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

// The one-node swarm on the local engine of every test here.
use support::manager_with_engine as manager;
use support::{
    engine_ok, eventually, running_containers, running_containers_on, squash, stderr_of, stdout_of,
    test_image,
};

const WAIT: Duration = Duration::from_secs(60);

/// An example-like stack: a front end with its configuration and a back end, on a network.
fn write_stack(dir: &Path, env: &str, replicas: u32, config: &str) -> String {
    std::fs::write(dir.join("app.conf"), config).unwrap();
    let image = test_image();
    let file = dir.join("stack.yml");
    std::fs::write(
        &file,
        format!(
            r#"version: "3.7"
services:
  web:
    image: {image}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    environment:
      - {env}
    configs:
      - source: app
        target: /etc/app.conf
    deploy:
      replicas: {replicas}
      update_config:
        parallelism: 2
        order: start-first
    networks:
      - app-net
  db:
    image: {image}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    networks:
      - app-net
configs:
  app:
    file: ./app.conf
networks:
  app-net:
"#
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn deploy_with_wait_returns_once_every_service_runs_its_replicas() {
    let m = manager("wait-ok");
    let dir = tempfile::tempdir().unwrap();
    let file = write_stack(dir.path(), "A=1", 2, "color=green\n");
    let out = m.shoal_ok(&[
        "stack",
        "deploy",
        "--wait",
        "--timeout",
        "90s",
        "-c",
        &file,
        "w",
    ]);
    assert!(out.contains("Stack w: 2 services converged"), "{out}");
    assert!(out.contains("w_web: 2/2 running, converged"), "{out}");
    // At the moment --wait returns, docker sees every replica running.
    let services = m.docker_ok(&[
        "stack",
        "services",
        "w",
        "--format",
        "{{.Name}} {{.Replicas}}",
    ]);
    assert!(services.contains("w_web 2/2"), "{services}");
    assert!(services.contains("w_db 1/1"), "{services}");

    // A rolling update is followed to its end, too.
    let file = write_stack(dir.path(), "A=2", 2, "color=green\n");
    let out = m.shoal_ok(&["stack", "deploy", "--wait", "-c", &file, "w"]);
    assert!(out.contains("Stack w: 2 services converged"), "{out}");
    let st = m.inspect("service", "w_web");
    assert_eq!(st["UpdateStatus"]["State"], "completed", "{st}");
    let ps = m.docker_ok(&[
        "service",
        "ps",
        "w_web",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
    ]);
    assert_eq!(
        ps.lines().filter(|l| l.starts_with("Running")).count(),
        2,
        "{ps}"
    );

    // `stack wait` on its own: already converged.
    let out = m.shoal_ok(&["stack", "wait", "w"]);
    assert!(out.contains("Stack w: 2 services converged"), "{out}");
    m.shoal_ok(&["stack", "rm", "w"]);
}

#[test]
fn deploy_with_wait_fails_fast_naming_the_missing_image() {
    let m = manager("wait-bad");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        "version: \"3.7\"\nservices:\n  api:\n    image: shoal-test/no-such-image:4.2\n    stop_grace_period: 1s\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = m.shoal(&[
        "stack",
        "deploy",
        "--wait",
        "--timeout",
        "2m",
        "-c",
        file.to_str().unwrap(),
        "bad",
    ]);
    let took = started.elapsed();
    assert!(!out.status.success(), "{}", stdout_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("service bad_api"), "{err}");
    assert!(err.contains("shoal-test/no-such-image:4.2"), "{err}");
    assert!(took < Duration::from_secs(60), "took {took:?}: {err}");

    // A timeout is an error that names what did not converge.
    let out = m.shoal(&["stack", "wait", "--timeout", "1s", "nothing-here"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("nothing found in stack"),
        "{}",
        stderr_of(&out)
    );
    m.shoal_ok(&["stack", "rm", "bad"]);
}

#[test]
fn dry_run_lists_creations_then_nothing_then_the_edited_lines() {
    let m = manager("plan");
    let dir = tempfile::tempdir().unwrap();
    let file = write_stack(dir.path(), "A=1", 2, "color=green\n");

    let out = m.shoal_ok(&["stack", "deploy", "--dry-run", "-c", &file, "p"]);
    for line in [
        "+ network p_app-net",
        "+ config p_app",
        "+ service p_db",
        "+ service p_web",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    // Nothing was created.
    let ls = m.docker_ok(&["stack", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains('p'), "{ls}");
    assert!(m.docker_ok(&["config", "ls", "-q"]).trim().is_empty());
    let out = m.shoal(&["stack", "diff", "--exit-code", "-c", &file, "p"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout_of(&out));

    m.shoal_ok(&["stack", "deploy", "-d", "-c", &file, "p"]);
    let out = m.shoal_ok(&["stack", "diff", "--exit-code", "-c", &file, "p"]);
    assert!(out.contains("Stack p: no changes"), "{out}");
    assert!(!out.contains('~'), "{out}");

    let file = write_stack(dir.path(), "A=2", 3, "color=green\n");
    let out = m.shoal(&[
        "stack",
        "deploy",
        "--dry-run",
        "--exit-code",
        "-c",
        &file,
        "p",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("~ service p_web"), "{text}");
    assert!(
        text.contains(r#"~ TaskTemplate.ContainerSpec.Env[0]: "A=1" -> "A=2""#),
        "{text}"
    );
    assert!(
        text.contains("~ Mode.Replicated.Replicas: 2 -> 3"),
        "{text}"
    );
    assert!(!text.contains("p_db"), "{text}");
    // Still the old spec on the server.
    let st = m.inspect("service", "p_web");
    assert_eq!(st["Spec"]["Mode"]["Replicated"]["Replicas"], 2, "{st}");
    m.shoal_ok(&["stack", "rm", "p"]);
}

#[test]
fn a_changed_config_is_rotated_by_the_managers_and_the_tasks_read_the_new_content() {
    let m = manager("rotate");
    let dir = tempfile::tempdir().unwrap();
    let file = write_stack(dir.path(), "A=1", 1, "color=green\n");
    m.shoal_ok(&["stack", "deploy", "-c", &file, "r"]);

    let file = write_stack(dir.path(), "A=1", 1, "color=blue\n");
    let plan = m.shoal_ok(&["stack", "diff", "-c", &file, "r"]);
    assert!(
        plan.contains("~ config r_app: content changed, rotate to r_app-"),
        "{plan}"
    );
    // Deployed by default: rotated in the deploy's one entry, then waited for.
    let out = m.shoal_ok(&["stack", "deploy", "-c", &file, "r"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Rotating config r_app -> r_app-"))
        .unwrap_or_else(|| panic!("no rotation reported:\n{out}"));
    let new_name = line.rsplit(' ').next().unwrap().to_string();
    assert_eq!(new_name.len(), "r_app-".len() + 8, "{line}");
    assert!(out.contains("Updating service r_web"), "{out}");
    assert!(out.contains("converged"), "{out}");

    // The old config stays while the service can roll back to it.
    let configs = m.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = configs.lines().collect();
    names.sort_unstable();
    assert_eq!(names, vec!["r_app", new_name.as_str()]);
    let cfg = m.inspect("config", &new_name);
    assert_eq!(
        cfg["Spec"]["Labels"]["com.shoal.rotated-from"], "r_app",
        "{cfg}"
    );
    assert_eq!(
        cfg["Spec"]["Labels"]["com.docker.stack.namespace"], "r",
        "{cfg}"
    );
    let svc = m.inspect("service", "r_web");
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"],
        new_name.as_str(),
        "{svc}"
    );
    assert_eq!(
        svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"], "r_app",
        "{svc}"
    );

    let c = eventually(WAIT, "a container of the updated task", || {
        running_containers("r_web").into_iter().next()
    });
    let content = eventually(WAIT, "the new content in the container", || {
        let text = engine_ok(&["exec", &c, "cat", "/etc/app.conf"]);
        (text == "color=blue\n").then_some(text)
    });
    assert_eq!(content, "color=blue\n");

    // The same content again: nothing to rotate, nothing to change.
    let out = m.shoal_ok(&["stack", "deploy", "-c", &file, "r"]);
    assert!(!out.contains("Rotating"), "{out}");
    let plan = m.shoal_ok(&["stack", "diff", "-c", &file, "r"]);
    assert!(plan.contains("Stack r: no changes"), "{}", squash(&plan));

    // A third content: the first config, no longer in any spec, goes.
    let file = write_stack(dir.path(), "A=1", 1, "color=red\n");
    let out = m.shoal_ok(&["stack", "deploy", "-d", "-c", &file, "r"]);
    assert!(out.contains("Rotating config r_app -> r_app-"), "{out}");
    assert!(out.contains("Removing config r_app\n"), "{out}");
    let configs = m.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
    assert!(!configs.lines().any(|l| l == "r_app"), "{configs}");
    assert!(configs.lines().any(|l| l == new_name), "{configs}");
    assert_eq!(configs.lines().count(), 2, "{configs}");
    m.shoal_ok(&["stack", "rm", "r"]);
    let configs = m.docker_ok(&["config", "ls", "-q"]);
    assert!(configs.trim().is_empty(), "{configs}");
}

/// A stack whose service prints its secret `token`, read from `./token`.
fn write_secret_stack(dir: &Path, token: &str) -> String {
    std::fs::write(dir.join("token"), token).unwrap();
    let image = test_image();
    let file = dir.join("stack.yml");
    std::fs::write(
        &file,
        format!(
            r#"version: "3.7"
services:
  app:
    image: {image}
    command: ["sh", "-c", "cat /run/secrets/token; sleep 100000"]
    stop_grace_period: 1s
    secrets:
      - token
secrets:
  token:
    file: ./token
"#
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn a_changed_secret_is_rotated_by_the_managers_and_the_tasks_read_the_new_value() {
    let m = manager("rotate-secret");
    let node_id = m.node_id();
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret_stack(dir.path(), "token-one\n");
    m.shoal_ok(&["stack", "deploy", "--wait", "-c", &file, "rs"]);
    let c = eventually(WAIT, "a container of the first task", || {
        running_containers_on(&node_id, "rs_app").into_iter().next()
    });
    assert_eq!(
        engine_ok(&["exec", &c, "cat", "/run/secrets/token"]),
        "token-one\n"
    );

    let file = write_secret_stack(dir.path(), "token-two\n");
    let out = m.shoal_ok(&["stack", "deploy", "-c", &file, "rs"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Rotating secret rs_token -> rs_token-"))
        .unwrap_or_else(|| panic!("no rotation reported:\n{out}"));
    let new_name = line.rsplit(' ').next().unwrap().to_string();
    let suffix = new_name.strip_prefix("rs_token-").unwrap();
    assert!(
        suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{line}"
    );

    // The old secret stays while the service can roll back to it.
    let secrets = m.docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = secrets.lines().collect();
    names.sort_unstable();
    assert_eq!(names, vec!["rs_token", new_name.as_str()]);
    let secret = m.inspect("secret", &new_name);
    assert_eq!(
        secret["Spec"]["Labels"]["com.shoal.rotated-from"], "rs_token",
        "{secret}"
    );
    let svc = m.inspect("service", "rs_app");
    let refs = &svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"];
    assert_eq!(refs[0]["SecretName"], new_name.as_str(), "{svc}");
    assert_eq!(refs[0]["File"]["Name"], "token", "{svc}");

    // The task was replaced; its container reads the new value at the same path.
    let new_c = eventually(WAIT, "a new container in place of the old one", || {
        let running = running_containers_on(&node_id, "rs_app");
        (running.len() == 1 && running[0] != c).then(|| running[0].clone())
    });
    assert_eq!(
        engine_ok(&["exec", &new_c, "cat", "/run/secrets/token"]),
        "token-two\n"
    );
    eventually(WAIT, "the new value in the task's output", || {
        engine_ok(&["logs", &new_c])
            .contains("token-two")
            .then_some(())
    });
    // The managers' tag of a secret is keyed: not the plain hash of its value.
    assert_ne!(suffix, &sha256_hex(b"token-two\n")[..8]);
    m.shoal_ok(&["stack", "rm", "rs"]);
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
