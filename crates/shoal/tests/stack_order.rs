//! Compose's `depends_on` (which Swarm ignores) on a real daemon with real containers: the
//! managers hold a dependent's tasks until its dependencies are running, healthy or completed
//! (with `--detach` too, and across a leader kill); a cycle or an unknown dependency is refused
//! before anything is created; a failing dependency fails the deploy, naming it and the services
//! held for it.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{manager_with_engine, stderr_of, test_image, Daemon};

fn write(dir: &Path, text: &str) -> String {
    let file = dir.join("stack.yml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// web → api → (db healthy, migrate completed). The test image has no /tmp: db marks itself
/// ready in /ready.
fn todo_stack(image: &str, db_image: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: {image}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    depends_on: [api]
  api:
    image: {image}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
  db:
    image: {db_image}
    command: ["sh", "-c", "sleep 2; touch /ready; sleep 100000"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 500ms
      timeout: 1s
      retries: 20
  migrate:
    image: {image}
    command: ["sh", "-c", "sleep 1; exit 0"]
    stop_grace_period: 1s
    deploy:
      mode: replicated-job
"#
    )
}

/// A task timestamp as nanoseconds-comparable text: `2024-05-01T10:00:00.5Z` →
/// `2024-05-01T10:00:00.500000000`.
fn instant(ts: &str) -> String {
    let ts = ts.trim_end_matches('Z');
    let (whole, frac) = ts.split_once('.').unwrap_or((ts, ""));
    format!("{whole}.{frac:0<9}")
}

/// The tasks of service `name`, oldest first.
fn tasks_of(m: &Daemon, name: &str) -> Vec<Value> {
    let id = m.inspect("service", name)["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = m.http("GET", "/tasks", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let all: Value = serde_json::from_str(&body).unwrap();
    let mut tasks: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ServiceID"] == id.as_str())
        .cloned()
        .collect();
    tasks.sort_by_key(|t| instant(t["CreatedAt"].as_str().unwrap_or_default()));
    tasks
}

/// When the first task of `name` reached `state` (its last status, which must be that state).
fn reached(m: &Daemon, name: &str, state: &str) -> String {
    let tasks = tasks_of(m, name);
    let t = &tasks[0];
    assert_eq!(t["Status"]["State"], state, "{name}: {t}");
    instant(t["Status"]["Timestamp"].as_str().unwrap())
}

#[test]
fn a_waiting_deploy_starts_each_service_after_its_dependencies_hold() {
    let m = manager_with_engine("order-ok");
    let dir = tempfile::tempdir().unwrap();
    let image = test_image();
    let file = write(dir.path(), &todo_stack(image, image));

    // The dry run says in which order the managers will let the services start.
    let out = m.shoal_ok(&["stack", "deploy", "--dry-run", "-c", &file, "todo"]);
    assert!(
        out.contains("Start order (depends_on, held by the managers): 3 waves"),
        "{out}"
    );
    assert!(out.contains("  1. todo_db, todo_migrate\n"), "{out}");
    assert!(
        out.contains("  2. todo_api after todo_db (service_healthy), todo_migrate (service_completed_successfully)"),
        "{out}"
    );
    assert!(
        out.contains("  3. todo_web after todo_api (service_started)"),
        "{out}"
    );

    // --order is what every deploy does now: accepted (scripts use it), said so, honoured.
    let out = m.shoal(&[
        "stack",
        "deploy",
        "--order",
        "--timeout",
        "2m",
        "-c",
        &file,
        "todo",
    ]);
    let (stdout, stderr) = (support::stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--order is what every deploy does now"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Stack todo: 4 services converged"),
        "{stdout}"
    );

    // RUNNING is reported once the health check passed, so db's running time is when it
    // became healthy; the managers started api's task only after that, web's after api ran.
    let db_healthy = reached(&m, "todo_db", "running");
    let migrate_done = reached(&m, "todo_migrate", "complete");
    let api_running = reached(&m, "todo_api", "running");
    let web_running = reached(&m, "todo_web", "running");
    assert!(
        api_running > db_healthy,
        "api {api_running} db {db_healthy}"
    );
    assert!(
        api_running > migrate_done,
        "api {api_running} migrate {migrate_done}"
    );
    assert!(
        web_running > api_running,
        "web {web_running} api {api_running}"
    );
    m.shoal_ok(&["stack", "rm", "todo"]);
}

#[test]
fn without_order_the_managers_hold_dependents_until_their_dependencies_hold() {
    let m = manager_with_engine("order-managers");
    let dir = tempfile::tempdir().unwrap();
    let image = test_image();
    let file = write(dir.path(), &todo_stack(image, image));
    // --detach: the client sends everything at once and leaves; the managers keep the order.
    let out = m.shoal(&["stack", "deploy", "--detach", "-c", &file, "todo"]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("Ignoring unsupported options: depends_on"),
        "{err}"
    );
    let label = m.inspect("service", "todo_api")["Spec"]["Labels"]["io.shoal.depends-on"].clone();
    assert_eq!(
        label,
        "todo_db:service_healthy,todo_migrate:service_completed_successfully"
    );
    // api's task waits, saying for what, while db is not healthy yet (it takes ~2 s).
    support::eventually(
        std::time::Duration::from_secs(20),
        "api's task pending on its dependencies",
        || {
            let tasks = tasks_of(&m, "todo_api");
            let t = tasks.first()?;
            (t["Status"]["State"] == "pending"
                && t["Status"]["Err"]
                    .as_str()?
                    .starts_with("waiting for dependencies: todo_db (service_healthy)"))
            .then_some(())
        },
    );
    support::eventually(std::time::Duration::from_secs(60), "web running", || {
        (tasks_of(&m, "todo_web").first()?["Status"]["State"] == "running").then_some(())
    });
    let db_healthy = reached(&m, "todo_db", "running");
    let migrate_done = reached(&m, "todo_migrate", "complete");
    let api_running = reached(&m, "todo_api", "running");
    let web_running = reached(&m, "todo_web", "running");
    assert!(
        api_running > db_healthy,
        "api {api_running} db {db_healthy}"
    );
    assert!(
        api_running > migrate_done,
        "api {api_running} migrate {migrate_done}"
    );
    assert!(
        web_running > api_running,
        "web {web_running} api {api_running}"
    );

    // A label that is not a dependency list is refused, saying how it should look.
    let out = m.docker(&[
        "service",
        "create",
        "--label",
        "io.shoal.depends-on=todo_db:ready",
        image,
        "sleep",
        "1",
    ]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("expected SERVICE:CONDITION[:optional]"),
        "{err}"
    );
    m.shoal_ok(&["stack", "rm", "todo"]);
}

#[test]
fn the_order_holds_across_a_leader_kill_and_a_replaced_dependency() {
    // m1 has the engine and leads; m2 and m3 are managers without one.
    let mut m1 = manager_with_engine("order-fail-1");
    let m2 = Daemon::start("order-fail-2");
    m2.join(&m1, "manager");
    let m3 = Daemon::start("order-fail-3");
    m3.join(&m1, "manager");
    let dir = tempfile::tempdir().unwrap();
    let image = test_image();
    let file = write(dir.path(), &todo_stack(image, image));
    m2.shoal_ok(&["stack", "deploy", "--detach", "-c", &file, "todo"]);
    // The leader dies before db is healthy; its node goes down, so db's task is replaced.
    m1.kill9();
    let others = [&m2, &m3];
    support::eventually(
        std::time::Duration::from_secs(30),
        "api pending on its dependencies under the new leader",
        || {
            let m = others.iter().find(|m| {
                m.http("GET", "/nodes", None)
                    .is_ok_and(|(status, _)| status == 200)
            })?;
            let t = tasks_of(m, "todo_api").into_iter().next()?;
            (t["Status"]["State"] == "pending"
                && t["Status"]["Err"]
                    .as_str()?
                    .starts_with("waiting for dependencies:"))
            .then_some(())
        },
    );
    m1.restart();
    support::eventually(std::time::Duration::from_secs(90), "web running", || {
        let t = tasks_of(&m2, "todo_web");
        t.iter()
            .any(|t| t["Status"]["State"] == "running")
            .then_some(())
    });
    let running_since = |name: &str| {
        let tasks = tasks_of(&m2, name);
        let t = tasks
            .iter()
            .find(|t| t["Status"]["State"] == "running")
            .unwrap_or_else(|| panic!("{name}: no running task: {tasks:?}"));
        instant(t["Status"]["Timestamp"].as_str().unwrap())
    };
    let db_healthy = running_since("todo_db");
    let api_running = running_since("todo_api");
    assert!(
        api_running > db_healthy,
        "api {api_running} db {db_healthy}"
    );
    assert!(running_since("todo_web") > api_running);
    m2.shoal_ok(&["stack", "rm", "todo"]);
}

#[test]
fn a_cycle_or_an_unknown_dependency_is_refused_before_anything_is_created() {
    let m = manager_with_engine("order-refused");
    let dir = tempfile::tempdir().unwrap();
    let image = test_image();
    let file = write(
        dir.path(),
        &format!(
            "services:\n  a:\n    image: {image}\n    depends_on: [b]\n  b:\n    image: {image}\n    depends_on:\n      a:\n        condition: service_started\n"
        ),
    );
    let out = m.shoal(&["stack", "deploy", "-c", &file, "cyc"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{file}:8:7: depends_on cycle: a -> b -> a")),
        "{err}"
    );

    let file = write(
        dir.path(),
        &format!("services:\n  a:\n    image: {image}\n    depends_on: [ghost]\n"),
    );
    let out = m.shoal(&["stack", "deploy", "-c", &file, "cyc"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{file}:4:18: service a depends on \"ghost\"")),
        "{err}"
    );
    let ls = m.docker_ok(&["service", "ls", "-q"]);
    assert!(ls.trim().is_empty(), "{ls}");
}

#[test]
fn a_failing_dependency_fails_the_deploy_naming_it_and_the_services_held_for_it() {
    let m = manager_with_engine("order-bad");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        &todo_stack(test_image(), "shoal-test/no-such-image:4.2"),
    );
    let out = m.shoal(&["stack", "deploy", "--timeout", "2m", "-c", &file, "bad"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("service bad_db did not converge"), "{err}");
    assert!(err.contains("shoal-test/no-such-image:4.2"), "{err}");
    assert!(
        err.contains(
            "bad_api is held until it holds: waiting for dependencies: bad_db (service_healthy)"
        ),
        "{err}"
    );
    // The whole stack was deployed in one entry; the managers hold api (and web behind it).
    let services = m.docker_ok(&["stack", "services", "bad", "--format", "{{.Name}}"]);
    assert!(services.contains("bad_api"), "{services}");
    let api = tasks_of(&m, "bad_api");
    assert!(
        api.iter().all(|t| t["Status"]["State"] == "pending"),
        "{api:?}"
    );
    m.shoal_ok(&["stack", "rm", "bad"]);
}
