//! shoal's own `service` commands against a running daemon, side by side with docker's: the
//! spec `shoal service create` stores is the one `docker service create` stores for the same
//! flags, and `ls`, `ps`, `inspect`, `update`, `scale`, `rollback` and `rm` print and do what
//! docker's do. (No engine: the tasks stay pending, which is all these commands need.)

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{free_port, test_image, Daemon, ENGINE_SOCKET};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The spec as stored (`GET /services/ID` without Swarm's defaults filled in).
fn stored_spec(d: &Daemon, name: &str) -> Value {
    let (status, body) = d
        .http("GET", &format!("/v1.41/services/{name}"), None)
        .expect("http");
    assert_eq!(status, 200, "{body}");
    let service: Value = serde_json::from_str(&body).expect("json");
    service["Spec"].clone()
}

/// The lines as printed, trailing blanks included: docker pads the cells before an empty last
/// column (`service ps`' PORTS), and so does shoal.
fn lines(bytes: &[u8]) -> Vec<String> {
    text(bytes).lines().map(str::to_string).collect()
}

/// `docker service ls`'s REPLICAS of service `name`.
fn replicas(d: &Daemon, name: &str) -> String {
    d.docker_ok(&[
        "service",
        "ls",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Replicas}}",
    ])
}

/// Runs ARGS with both CLIs until they print the same (a task's state and age move between
/// the two calls), then asserts it.
fn same_output_as_docker(d: &Daemon, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ours = d.shoal(args);
        let theirs = d.docker(args);
        let same = lines(&ours.stdout) == lines(&theirs.stdout);
        if (ours.status.success() && same) || Instant::now() > deadline {
            assert!(ours.status.success(), "{}", text(&ours.stderr));
            assert_eq!(
                lines(&ours.stdout),
                lines(&theirs.stdout),
                "{}: shoal's, then docker's",
                args.join(" ")
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The flags given to both CLIs after `service create --name NAME`.
const CREATE_FLAGS: &[&str] = &[
    "--detach",
    "--no-resolve-image",
    "--replicas",
    "2",
    "--env",
    "A=1",
    "-e",
    "B=2",
    "--label",
    "com.example.team=web",
    "--container-label",
    "tier=front",
    "--constraint",
    "node.role==manager",
    "--mount",
    "type=tmpfs,target=/scratch",
    "--mount",
    "type=volume,source=data,target=/data,readonly",
    "--limit-cpu",
    "0.5",
    "--limit-memory",
    "64M",
    "--reserve-memory",
    "32M",
    "--restart-condition",
    "on-failure",
    "--restart-max-attempts",
    "3",
    "--update-parallelism",
    "2",
    "--update-delay",
    "10s",
    "--update-order",
    "start-first",
    "--rollback-monitor",
    "20s",
    "--stop-grace-period",
    "3s",
    "--workdir",
    "/srv",
    "--hostname",
    "web-host",
    "--init",
    "--read-only",
    "busybox:latest",
    "sh",
    "-c",
    "sleep 1000",
];

#[test]
fn service_create_stores_what_docker_service_create_stores() {
    let d = Daemon::start("svc-cli-create");
    d.init();
    let mut shoal = vec!["service", "create", "--name", "by-shoal"];
    shoal.extend_from_slice(CREATE_FLAGS);
    let out = d.shoal_ok(&shoal);
    assert_eq!(out.trim().len(), 25, "create prints the new ID: {out}");
    let mut docker = vec!["service", "create", "--name", "by-docker"];
    docker.extend_from_slice(CREATE_FLAGS);
    d.docker_ok(&docker);

    let mut ours = stored_spec(&d, "by-shoal");
    let mut theirs = stored_spec(&d, "by-docker");
    assert_eq!(ours["Name"], "by-shoal");
    ours["Name"] = json!("");
    theirs["Name"] = json!("");
    assert_eq!(ours, theirs, "shoal's spec, then docker's");

    // Refused on the client, as docker does, with nothing created.
    let bad = d.shoal(&[
        "service",
        "create",
        "--name",
        "bad",
        "--mount",
        "type=npipe,target=/x",
        "busybox",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("invalid mount type \"npipe\": use bind, volume or tmpfs"),
        "{}",
        text(&bad.stderr)
    );
    let global = d.shoal(&[
        "service",
        "create",
        "--mode",
        "global",
        "--replicas",
        "2",
        "busybox",
    ]);
    assert!(
        text(&global.stderr)
            .contains("replicas can only be used with replicated or replicated-job mode"),
        "{}",
        text(&global.stderr)
    );
    let names = d.docker_ok(&["service", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "by-docker\nby-shoal\n");
}

#[test]
fn service_ls_ps_inspect_update_scale_rollback_and_rm_act_as_docker_does() {
    let d = Daemon::start("svc-cli-life");
    d.init();
    let publish = format!("{}:80", free_port());
    d.shoal_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--env",
        "A=1",
        "--publish",
        &publish,
        "busybox:latest",
        "sleep",
        "1000",
    ]);

    // Listings and inspection: the same text as docker's (retried while a task's state moves).
    for args in [
        &["service", "ls"][..],
        &["service", "ls", "-q"],
        &[
            "service",
            "ls",
            "--format",
            "{{.Name}} {{.Replicas}} {{.Ports}}",
        ],
        &["service", "ps", "web"],
        &["service", "ps", "--no-trunc", "web"],
        &[
            "service",
            "inspect",
            "--format",
            "{{.Spec.Name}} {{.ID}}",
            "web",
        ],
    ] {
        same_output_as_docker(&d, args);
    }
    let pretty = d.shoal_ok(&["service", "inspect", "--pretty", "web"]);
    for want in [
        "Name:\t\tweb",
        "Service Mode:\tReplicated",
        "Image:\t\tbusybox:latest",
        "Args:\t\tsleep 1000",
        "Env:\t\tA=1",
    ] {
        assert!(pretty.contains(want), "no {want:?} in\n{pretty}");
    }
    let published = publish.split(':').next().unwrap_or_default();
    assert!(
        pretty.contains(&format!("PublishedPort = {published}\n")),
        "{pretty}"
    );
    let missing = d.shoal(&["service", "ps", "nosuch"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no such service: nosuch"),
        "{}",
        text(&missing.stderr)
    );

    // update changes only what its flags name.
    let before = stored_spec(&d, "web");
    assert_eq!(
        d.shoal_ok(&["service", "update", "-d", "--env-add", "B=2", "web"]),
        "web\n"
    );
    let mut expected = before.clone();
    expected["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1", "B=2"]);
    assert_eq!(stored_spec(&d, "web"), expected);
    let combined = d.shoal(&[
        "service",
        "update",
        "-d",
        "--rollback",
        "--replicas",
        "3",
        "web",
    ]);
    assert!(
        text(&combined.stderr).contains("other flags may not be combined with --rollback"),
        "{}",
        text(&combined.stderr)
    );

    // scale, then rollback to the spec before it.
    assert_eq!(
        d.shoal_ok(&["service", "scale", "-d", "web=3"]),
        "web scaled to 3\n"
    );
    assert_eq!(
        stored_spec(&d, "web")["Mode"],
        json!({"Replicated": {"Replicas": 3}})
    );
    let bad = d.shoal(&["service", "scale", "-d", "web=three"]);
    assert!(
        text(&bad.stderr).contains("invalid replicas value three: must be a positive integer"),
        "{}",
        text(&bad.stderr)
    );
    assert_eq!(d.shoal_ok(&["service", "rollback", "-d", "web"]), "web\n");
    assert_eq!(stored_spec(&d, "web"), expected);

    // rm names what it removed and reports what it could not.
    let rm = d.shoal(&["service", "rm", "web", "nosuch"]);
    assert!(!rm.status.success());
    assert_eq!(text(&rm.stdout), "web\n");
    assert!(text(&rm.stderr).contains("nosuch"), "{}", text(&rm.stderr));
    assert_eq!(d.docker_ok(&["service", "ls", "-q"]), "");
}

#[test]
fn without_detach_create_update_and_scale_wait_for_convergence_and_pin_the_image() {
    let image = test_image();
    let d = Daemon::start_with_engine("svc-cli-wait", ENGINE_SOCKET);
    d.init();
    let name = format!("waited{}", std::process::id());
    // As docker's: the ID, then the wait until the task runs; the image pinned.
    let out = d.shoal(&[
        "service",
        "create",
        "--name",
        &name,
        "--stop-grace-period",
        "1s",
        image,
        "sleep",
        "100000",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("could not be accessed"),
        "{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("verify: Service converged"), "{stdout}");
    let running = replicas(&d, &name);
    assert_eq!(running.trim(), "1/1", "converged when create returned");
    let pinned = stored_spec(&d, &name)["TaskTemplate"]["ContainerSpec"]["Image"].clone();
    assert!(pinned.as_str().unwrap().contains("@sha256:"), "{pinned}");

    let out = d.shoal_ok(&["service", "scale", &format!("{name}=2")]);
    assert!(out.contains("verify: Service converged"), "{out}");
    let running = replicas(&d, &name);
    assert_eq!(running.trim(), "2/2");

    // --quiet waits without progress; --no-resolve-image leaves a new image as typed.
    let out = d.shoal_ok(&[
        "service",
        "update",
        "--quiet",
        "--no-resolve-image",
        "--image",
        image,
        &name,
    ]);
    assert_eq!(out, format!("{name}\n"));
    let spec = stored_spec(&d, &name);
    assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], image);
    // An image nobody has: Docker's warning, left unpinned, and the wait fails naming it.
    let out = d.shoal(&[
        "service",
        "update",
        "--image",
        "shoal-test/no-such-image:4.2",
        &name,
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("could not be accessed on a registry"), "{err}");
    assert!(
        err.contains(&format!("service {name} did not converge")),
        "{err}"
    );
    d.docker_ok(&["service", "rm", &name]);
}
