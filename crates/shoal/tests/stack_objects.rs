//! Stacks as objects of the managers' state, through shoal's CLI against a real daemon and
//! engine: a deploy is one request applied whole or not at all, an unchanged redeploy touches
//! nothing, versions are kept and rolled back to, and stacks the docker CLI made are listed,
//! diffed and removed by shoal.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{
    engine, engine_ok, eventually, manager_with_engine, running_containers, stderr_of, test_image,
    Daemon,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/book-ch13");
const WAIT: Duration = Duration::from_secs(90);

/// A stack of two services on a network, the front end with a config and a named volume.
fn write_stack(dir: &Path, env: &str, config: &str) -> String {
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
    volumes:
      - data:/data
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
volumes:
  data:
"#
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

/// Every task of the stack's services (history included), by ID.
fn task_ids(m: &Daemon, stack: &str) -> Vec<String> {
    let mut ids: Vec<String> = m
        .docker_ok(&["stack", "ps", "-q", "--no-trunc", stack])
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

fn service_version(m: &Daemon, name: &str) -> u64 {
    m.inspect("service", name)["Version"]["Index"]
        .as_u64()
        .unwrap_or_default()
}

#[test]
fn the_book_stack_with_a_missing_external_secret_leaves_nothing_behind() {
    let m = manager_with_engine("stack-atomic");
    // Step 3 of the walkthrough was done, step 4 (the secret) was not.
    m.docker_ok(&[
        "config",
        "create",
        "todo-list-config",
        &format!("{FIXTURES}/configs/config.json"),
    ]);
    let out = m.shoal(&[
        "stack",
        "deploy",
        "-d",
        "-c",
        &format!("{FIXTURES}/v4.yml"),
        "todo",
    ]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("stack todo was not deployed, nothing changed"),
        "{err}"
    );
    // Where the secret was declared, and who needs it.
    assert!(
        err.contains("v4.yml:39:3: secret todo-list-secret is declared as external, but could not be found (used by todo_todo-web)"),
        "{err}"
    );
    // Nothing left behind: not the network, not a service, no stack.
    let networks = m.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("todo_"), "{networks}");
    assert!(m.docker_ok(&["service", "ls", "-q"]).trim().is_empty());
    let stacks = m.shoal_ok(&["stack", "ls", "--format", "{{.Name}}"]);
    assert!(stacks.trim().is_empty(), "{stacks}");
    let configs = m.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
    assert_eq!(configs.trim(), "todo-list-config");

    // With the secret, the same file deploys, all of it.
    m.docker_ok(&[
        "secret",
        "create",
        "todo-list-secret",
        &format!("{FIXTURES}/secrets/secrets.json"),
    ]);
    let out = m.shoal_ok(&[
        "stack",
        "deploy",
        "-d",
        "-c",
        &format!("{FIXTURES}/v4.yml"),
        "todo",
    ]);
    assert!(out.contains("Creating network todo_app-net"), "{out}");
    assert!(out.contains("Creating service todo_todo-web"), "{out}");
    assert!(out.contains("Creating service todo_todo-db"), "{out}");
    assert!(out.contains("Stack todo: version 1"), "{out}");
    m.shoal_ok(&["stack", "rm", "todo"]);
    // The external config and secret stay.
    assert_eq!(
        m.docker_ok(&["secret", "ls", "--format", "{{.Name}}"])
            .trim(),
        "todo-list-secret"
    );
}

#[test]
fn redeploying_an_unchanged_stack_touches_no_task() {
    let m = manager_with_engine("stack-unchanged");
    let dir = tempfile::tempdir().unwrap();
    let file = write_stack(dir.path(), "A=1", "color=green\n");
    m.shoal_ok(&["stack", "deploy", "--wait", "-c", &file, "u"]);
    let tasks = task_ids(&m, "u");
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let versions = (service_version(&m, "u_web"), service_version(&m, "u_db"));

    let out = m.shoal_ok(&["stack", "deploy", "-d", "-c", &file, "u"]);
    assert!(out.contains("Stack u: no changes (version 1)"), "{out}");
    assert!(!out.contains("Updating"), "{out}");
    assert_eq!(
        (service_version(&m, "u_web"), service_version(&m, "u_db")),
        versions
    );
    assert_eq!(task_ids(&m, "u"), tasks, "no task replaced or added");
    let history = m.shoal_ok(&["stack", "history", "-q", "u"]);
    assert_eq!(history.trim(), "1", "{history}");

    // A changed file: only what changed.
    let file = write_stack(dir.path(), "A=2", "color=green\n");
    let out = m.shoal_ok(&["stack", "deploy", "-d", "-c", &file, "u"]);
    assert!(out.contains("Updating service u_web"), "{out}");
    assert!(!out.contains("u_db"), "{out}");
    assert_eq!(service_version(&m, "u_db"), versions.1);
    m.shoal_ok(&["stack", "rm", "u"]);
}

#[test]
fn rollback_updates_the_services_to_a_stored_version_and_keeps_the_volume() {
    let m = manager_with_engine("stack-rollback");
    let dir = tempfile::tempdir().unwrap();
    let v1 = write_stack(dir.path(), "A=1", "color=green\n");
    m.shoal_ok(&["stack", "deploy", "--wait", "-c", &v1, "rb"]);
    let web_id = m.inspect("service", "rb_web")["ID"].clone();
    // Data in the stack's volume.
    let c = eventually(WAIT, "a container of rb_web", || {
        running_containers("rb_web").into_iter().next()
    });
    engine_ok(&["exec", &c, "sh", "-c", "echo kept > /data/file"]);

    let v2 = write_stack(dir.path(), "A=2", "color=green\n");
    let out = m.shoal_ok(&["stack", "deploy", "--wait", "-c", &v2, "rb"]);
    assert!(out.contains("Stack rb: version 2"), "{out}");
    let history = m.shoal_ok(&["stack", "history", "rb"]);
    assert!(history.contains("2 (current)"), "{history}");

    // The plan first, then the rollback itself.
    let plan = m.shoal_ok(&["stack", "rollback", "--dry-run", "rb"]);
    assert!(plan.contains("~ service rb_web"), "{plan}");
    assert!(
        plan.contains(r#"~ TaskTemplate.ContainerSpec.Env[0]: "A=2" -> "A=1""#),
        "{plan}"
    );
    let out = m.shoal_ok(&["stack", "rollback", "--to", "1", "rb"]);
    assert!(out.contains("Updating service rb_web"), "{out}");
    assert!(out.contains("Stack rb: version 3"), "{out}");
    let web = m.inspect("service", "rb_web");
    assert_eq!(web["ID"], web_id, "updated, not recreated");
    assert_eq!(
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"][0],
        "A=1"
    );
    assert!(web["UpdateStatus"]["State"].is_string(), "{web}");
    let history = m.shoal_ok(&["stack", "history", "rb"]);
    assert!(history.contains("rollback to version 1"), "{history}");

    m.shoal_ok(&["stack", "wait", "rb"]);
    let c = eventually(WAIT, "the rolled-back container", || {
        running_containers("rb_web")
            .into_iter()
            .find(|c| engine_ok(&["exec", c, "sh", "-c", "echo $A"]).trim() == "1")
    });
    assert_eq!(engine_ok(&["exec", &c, "cat", "/data/file"]).trim(), "kept");
    m.shoal_ok(&["stack", "rm", "rb"]);
    remove_volume("rb_data");
}

#[test]
fn a_stack_the_docker_cli_made_is_listed_diffed_and_removed_by_shoal() {
    let m = manager_with_engine("stack-docker-made");
    let dir = tempfile::tempdir().unwrap();
    let file = write_stack(dir.path(), "A=1", "color=green\n");
    m.docker_ok(&["stack", "deploy", "-c", &file, "dk"]);
    let ls = m.shoal_ok(&["stack", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["dk", "2", "-"]),
        "{ls}"
    );
    let history = m.shoal(&["stack", "history", "dk"]);
    assert!(history.status.success());
    assert!(stderr_of(&history).contains("deployed by the docker CLI"));

    let edited = write_stack(dir.path(), "A=2", "color=green\n");
    let plan = m.shoal_ok(&["stack", "diff", "-c", &edited, "dk"]);
    assert!(plan.contains("~ service dk_web"), "{plan}");
    assert!(plan.contains("against nothing stored yet"), "{plan}");

    let out = m.shoal_ok(&["stack", "rm", "dk"]);
    assert!(out.contains("Removing service dk_web"), "{out}");
    assert!(out.contains("Removing network dk_app-net"), "{out}");
    assert!(out.contains("Removing config dk_app"), "{out}");
    assert!(m.docker_ok(&["service", "ls", "-q"]).trim().is_empty());
    assert!(m.docker_ok(&["config", "ls", "-q"]).trim().is_empty());
    let ls = m.shoal_ok(&["stack", "ls", "--format", "{{.Name}}"]);
    assert!(ls.trim().is_empty(), "{ls}");
    remove_volume("dk_data");
}

/// Removes a stack's volume once the engine's containers that used it are gone.
fn remove_volume(name: &str) {
    eventually(WAIT, "the volume removed", || {
        engine(&["volume", "rm", "-f", name])
            .status
            .success()
            .then_some(())
    });
}
