//! The book's chapter-13 walkthrough (fixtures/book-ch13) with shoal's own CLI, on a real
//! daemon and engine, as a user does it: a stack whose external objects are missing is refused
//! whole (nothing left behind), then v1 → v2 → v4 → v5 → v6 deploy (each waiting until the
//! stack converged), the database's data survive its image change, the history lists every
//! version, and a rollback to the v5 file brings back its image with the data still there.
//! Rotation and depends_on (with --detach, across a leader kill) have their own tests in
//! stack_extras.rs and stack_order.rs: the book's files use neither.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{engine_ok, eventually, test_image, Daemon, ENGINE_SOCKET};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/book-ch13");
const WAIT: Duration = Duration::from_secs(90);
/// The loopback address this test's routing mesh listens on (port 8080 is the book's).
const MESH_IP: &str = "127.0.13.13";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// The body of `GET path` on the routing mesh, if it answered 200.
fn http_get(path: &str) -> Option<String> {
    let addr = format!("{MESH_IP}:8080").parse().ok()?;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: todo\r\n\r\n").as_bytes())
        .ok()?;
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    (answer.starts_with("HTTP/1.") && answer.contains(" 200 ")).then_some(answer)
}

/// The running containers of one of this node's services on the shared engine.
fn running(node: &str, service: &str) -> Vec<String> {
    engine_ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.swarm.node.id={node}"),
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn image_of(m: &Daemon, service: &str) -> String {
    m.inspect("service", service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The running container of the database's task that runs `image` (the spec's image: its
/// container shows the image ID it was pinned to, and 11.5 and 11.6 are the same stand-in).
fn db_running(m: &Daemon, image: &str) -> String {
    eventually(WAIT, &format!("todo_todo-db running {image}"), || {
        let tasks = m.docker_ok(&[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Image}}",
            "todo_todo-db",
        ]);
        tasks.lines().find_map(|l| {
            let (id, task_image) = l.split_once(' ')?;
            if !task_image.starts_with(image) {
                return None;
            }
            engine_ok(&[
                "ps",
                "--filter",
                &format!("label=com.docker.swarm.task.id={id}"),
                "--format",
                "{{.Names}}",
            ])
            .lines()
            .next()
            .map(str::to_string)
        })
    })
}

#[test]
fn the_book_walkthrough_deploys_updates_and_rolls_back_with_the_data_kept() {
    test_image();
    let m = Daemon::start_with_engine_mesh_ip("book", ENGINE_SOCKET, MESH_IP);
    m.init();
    let node = m.node_id();
    let _ = support::engine(&["volume", "rm", "-f", "todo_todo-db-data"]);

    // v4 before its external config and secret exist: refused whole, every problem with its
    // place in the file, nothing created (docker's own deploy leaves the network behind).
    let out = m.shoal(&["stack", "deploy", "-c", &fixture("v4.yml"), "todo"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    for want in [
        "v4.yml:35:3: config todo-list-config is declared as external, but could not be found",
        "v4.yml:39:3: secret todo-list-secret is declared as external, but could not be found",
    ] {
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
    let networks = m.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("todo_"), "{networks}");
    assert!(m.shoal_ok(&["stack", "ls"]).lines().count() <= 1);

    // v1 and v2: one web service, then two replicas with limits, each deploy waiting.
    let out = m.shoal_ok(&["stack", "deploy", "-c", &fixture("v1.yml"), "todo"]);
    assert!(out.contains("Creating service todo_todo-web"), "{out}");
    assert!(out.contains("Stack todo: version 1"), "{out}");
    assert!(out.contains("converged"), "{out}");
    let page = eventually(WAIT, "the web page through the routing mesh", || {
        http_get("/")
    });
    assert!(page.contains("todo list"), "{page}");
    let out = m.shoal_ok(&["stack", "deploy", "-c", &fixture("v2.yml"), "todo"]);
    assert!(out.contains("Updating service todo_todo-web"), "{out}");
    assert_eq!(running(&node, "todo_todo-web").len(), 2);

    // v4 and v5 once the config, the secret and the node label exist.
    m.docker_ok(&[
        "config",
        "create",
        "todo-list-config",
        &fixture("configs/config.json"),
    ]);
    m.docker_ok(&[
        "secret",
        "create",
        "todo-list-secret",
        &fixture("secrets/secrets.json"),
    ]);
    m.docker_ok(&["node", "update", "--label-add", "storage=raid", &node]);
    let out = m.shoal_ok(&["stack", "deploy", "-c", &fixture("v4.yml"), "todo"]);
    assert!(out.contains("Creating service todo_todo-db"), "{out}");
    let web = running(&node, "todo_todo-web");
    let config = engine_ok(&["exec", &web[0], "cat", "/app/config/config.json"]);
    assert_eq!(
        config,
        std::fs::read_to_string(fixture("configs/config.json")).unwrap()
    );
    let out = m.shoal_ok(&["stack", "deploy", "-c", &fixture("v5.yml"), "todo"]);
    assert!(out.contains("Updating service todo_todo-db"), "{out}");
    assert!(out.contains("Stack todo: version 4"), "{out}");

    // Data written by the v5 database, in its volume.
    let db = db_running(&m, "diamol/postgres:11.5");
    engine_ok(&[
        "exec",
        &db,
        "sh",
        "-c",
        "echo 'written by v5' >> \"$PGDATA/items\"",
    ]);

    // v6: the database image changes; the new task mounts the same volume.
    let out = m.shoal_ok(&["stack", "deploy", "-c", &fixture("v6.yml"), "todo"]);
    assert!(out.contains("Updating service todo_todo-db"), "{out}");
    assert!(!out.contains("Updating service todo_todo-web"), "{out}");
    let db6 = db_running(&m, "diamol/postgres:11.6");
    let items = engine_ok(&["exec", &db6, "sh", "-c", "cat \"$PGDATA/items\""]);
    assert!(items.contains("written by v5"), "{items}");

    // Every version is kept; the rollback goes to the v5 file (version 4) in one entry.
    let history = m.shoal_ok(&["stack", "history", "todo"]);
    for n in 1..=5 {
        assert!(
            history
                .lines()
                .any(|l| l.trim_start().starts_with(&n.to_string())),
            "no version {n} in:\n{history}"
        );
    }
    assert!(history.contains("5 (current)"), "{history}");
    let web_id = m.inspect("service", "todo_todo-web")["ID"].clone();
    let plan = m.shoal_ok(&["stack", "rollback", "--dry-run", "--to", "4", "todo"]);
    assert!(plan.contains("~ service todo_todo-db"), "{plan}");
    assert!(
        plan.contains(r#""diamol/postgres:11.6" -> "diamol/postgres:11.5""#),
        "{plan}"
    );
    let out = m.shoal_ok(&["stack", "rollback", "--to", "4", "todo"]);
    assert!(out.contains("Updating service todo_todo-db"), "{out}");
    assert!(out.contains("Stack todo: version 6"), "{out}");
    // The stored version's image, pinned when it was deployed.
    let image = image_of(&m, "todo_todo-db");
    assert!(image.starts_with("diamol/postgres:11.5@sha256:"), "{image}");
    assert_eq!(m.inspect("service", "todo_todo-web")["ID"], web_id);
    m.shoal_ok(&["stack", "wait", "todo"]);
    let db5 = db_running(&m, "diamol/postgres:11.5");
    let items = engine_ok(&["exec", &db5, "sh", "-c", "cat \"$PGDATA/items\""]);
    assert!(items.contains("written by v5"), "the v5 data: {items}");
    let history = m.shoal_ok(&["stack", "history", "todo"]);
    assert!(history.contains("rollback to version 4"), "{history}");

    // stack rm: the stack's objects go; the external config and secret and the volume stay.
    let out = m.shoal_ok(&["stack", "rm", "todo"]);
    assert!(out.contains("Removing service todo_todo-db"), "{out}");
    assert!(out.contains("Removing network todo_app-net"), "{out}");
    m.inspect("config", "todo-list-config");
    m.inspect("secret", "todo-list-secret");
    eventually(WAIT, "the stack's containers gone", || {
        (running(&node, "todo_todo-db").is_empty() && running(&node, "todo_todo-web").is_empty())
            .then_some(())
    });
    let volumes = engine_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(
        volumes.lines().any(|v| v == "todo_todo-db-data"),
        "{volumes}"
    );
    let _ = support::engine(&["volume", "rm", "todo_todo-db-data"]);
}
