//! `shoal stack deploy` against `docker stack deploy`: the same Compose file deployed by the
//! real docker CLI on one cluster and by shoal's CLI on another must give equal service specs
//! (IDs of networks, configs and secrets differ between clusters, so those are compared by
//! name). Also: a redeploy of an edited file updates in place, `--prune` removes what left the
//! file, and a bad file is refused with its `file:line:col`.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::Daemon;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/book-ch13");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn manager(name: &str) -> Daemon {
    let d = Daemon::start(name);
    d.init();
    d
}

/// Network ID → name on one cluster.
fn network_names(d: &Daemon) -> BTreeMap<String, String> {
    let out = d.docker_ok(&[
        "network",
        "ls",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect()
}

/// A service spec with cluster-specific IDs replaced by names (networks) or dropped
/// (configs and secrets, which carry their names too).
fn comparable(d: &Daemon, spec: &Value) -> Value {
    let names = network_names(d);
    let mut spec = spec.clone();
    for pointer in ["/TaskTemplate/Networks", "/Networks"] {
        if let Some(Value::Array(nets)) = spec.pointer_mut(pointer) {
            for net in nets {
                if let Some(target) = net.get("Target").and_then(Value::as_str) {
                    let name = names.get(target).cloned().unwrap_or(target.to_string());
                    net["Target"] = Value::String(name);
                }
            }
        }
    }
    for (list, id) in [("Configs", "ConfigID"), ("Secrets", "SecretID")] {
        if let Some(Value::Array(refs)) =
            spec.pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
        {
            for r in refs {
                if let Some(obj) = r.as_object_mut() {
                    obj.remove(id);
                }
            }
        }
    }
    spec
}

/// The services of `stack` on a cluster, by name, with their comparable specs.
fn stack_specs(d: &Daemon, stack: &str) -> BTreeMap<String, Value> {
    let names = d.docker_ok(&["stack", "services", stack, "--format", "{{.Name}}"]);
    names
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|name| {
            let service = d.inspect("service", name);
            (name.to_string(), comparable(d, &service["Spec"]))
        })
        .collect()
}

fn stack_networks(d: &Daemon, stack: &str) -> Vec<String> {
    let out = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Name}}",
    ]);
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Deploys the same files with docker on `a` and with shoal on `b`, and compares.
fn deploy_both(a: &Daemon, b: &Daemon, files: &[&str], stack: &str) {
    let mut args = vec!["stack", "deploy", "-d"];
    for f in files {
        args.push("-c");
        args.push(f);
    }
    args.push(stack);
    a.docker_ok(&args);
    let out = b.shoal_ok(&args);
    assert!(
        out.contains("Creating service") || out.contains("Updating service"),
        "{out}"
    );
    let docker = stack_specs(a, stack);
    let shoal = stack_specs(b, stack);
    assert_eq!(
        docker.keys().collect::<Vec<_>>(),
        shoal.keys().collect::<Vec<_>>(),
        "the same services"
    );
    for (name, spec) in &docker {
        assert_eq!(
            spec,
            &shoal[name],
            "{files:?}: service {name} differs:\ndocker: {}\nshoal:  {}",
            serde_json::to_string_pretty(spec).unwrap_or_default(),
            serde_json::to_string_pretty(&shoal[name]).unwrap_or_default()
        );
    }
    // docker keeps the networks of earlier files; a shoal stack is its files, so it has only
    // those the file uses now, with the same names and specs.
    let (docker_nets, shoal_nets) = (stack_networks(a, stack), stack_networks(b, stack));
    assert!(
        shoal_nets.iter().all(|n| docker_nets.contains(n)),
        "docker: {docker_nets:?}, shoal: {shoal_nets:?}"
    );
}

#[test]
fn book_fixtures_deploy_to_the_same_specs_as_docker_stack_deploy() {
    let a = manager("docker-side");
    let b = manager("shoal-side");
    deploy_both(&a, &b, &[&fixture("v1.yml")], "todo");
    deploy_both(&a, &b, &[&fixture("v2.yml")], "todo");
    // v4 onwards use an external config and secret, and v5 a node label.
    for d in [&a, &b] {
        d.docker_ok(&[
            "config",
            "create",
            "todo-list-config",
            &fixture("configs/config.json"),
        ]);
        d.docker_ok(&[
            "secret",
            "create",
            "todo-list-secret",
            &fixture("secrets/secrets.json"),
        ]);
        let me = d.node_id();
        d.docker_ok(&["node", "update", "--label-add", "storage=raid", &me]);
    }
    for file in ["v4.yml", "v5.yml", "v6.yml"] {
        deploy_both(&a, &b, &[&fixture(file)], "todo");
    }
    deploy_both(
        &a,
        &b,
        &[
            &fixture("numbers-v3.yml"),
            &fixture("numbers-prod-update-config.yml"),
        ],
        "numbers",
    );
}

#[test]
fn a_stack_with_its_own_objects_deploys_like_docker() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("app.conf"), "listen 80\n").expect("write");
    std::fs::write(dir.path().join("token.txt"), "s3cr3t\n").expect("write");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        r#"version: "3.9"
services:
  web:
    image: nginx:1.25
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment:
      B: "2"
      A: "1"
    working_dir: /srv
    user: "1000:1000"
    hostname: web-host
    stop_grace_period: 30s
    stop_signal: SIGQUIT
    tty: true
    read_only: true
    init: true
    labels:
      tier: front
    cap_add: [net_admin]
    cap_drop: [ALL]
    extra_hosts:
      - "db.local:10.0.0.5"
    dns: 8.8.8.8
    dns_search: example.com
    sysctls:
      net.core.somaxconn: "1024"
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
      nproc: 512
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 1s
    ports:
      - "8081:80"
      - target: 443
        published: 8443
        protocol: tcp
        mode: host
    volumes:
      - data:/data:ro
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 1048576
      - /etc/hostname:/host-name:ro
    configs:
      - source: app
        target: /etc/app.conf
        mode: 0440
    secrets:
      - token
    networks:
      front:
        aliases: [www]
      back:
    deploy:
      replicas: 2
      labels:
        owner: team-a
      update_config:
        parallelism: 2
        delay: 5s
        order: start-first
      rollback_config:
        parallelism: 0
        failure_action: continue
      restart_policy:
        condition: on-failure
        delay: 3s
        max_attempts: 4
        window: 1m
      placement:
        constraints: [node.role == manager]
        preferences:
          - spread: node.labels.zone
        max_replicas_per_node: 3
      resources:
        limits:
          cpus: "1.5"
          memory: 256M
          pids: 100
        reservations:
          cpus: "0.25"
          memory: 64M
  worker:
    image: busybox
    command: sleep 3600
    deploy:
      mode: global
      endpoint_mode: dnsrr
    networks: [back]
  job:
    image: busybox
    command: ["true"]
    deploy:
      mode: replicated-job
      replicas: 3
networks:
  front:
    attachable: true
    labels:
      purpose: edge
  back:
    driver: overlay
volumes:
  data:
    labels:
      keep: "yes"
configs:
  app:
    file: ./app.conf
secrets:
  token:
    file: ./token.txt
"#,
    )
    .expect("write");
    let a = manager("docker-own");
    let b = manager("shoal-own");
    let f = file.display().to_string();
    deploy_both(&a, &b, &[&f], "app");
    // The stack's own config and secret exist on both sides with the same names and labels.
    for d in [&a, &b] {
        let config = d.inspect("config", "app_app");
        assert_eq!(
            config["Spec"]["Labels"]["com.docker.stack.namespace"],
            "app"
        );
        d.inspect("secret", "app_token");
    }
    // Deploying the same file again: docker sends every object again and updates the
    // services; shoal finds nothing changed and touches nothing.
    let again = ["stack", "deploy", "-d", "-c", f.as_str(), "app"];
    let docker = a.docker(&again);
    let shoal = b.shoal(&again);
    let (docker_err, shoal_err) = (
        String::from_utf8_lossy(&docker.stderr),
        String::from_utf8_lossy(&shoal.stderr),
    );
    // As with Swarm, the same secret data sent again is no change.
    assert!(docker.status.success(), "docker: {docker_err}");
    assert!(shoal.status.success(), "shoal: {shoal_err}");
    let out = String::from_utf8_lossy(&shoal.stdout);
    assert!(out.contains("Stack app: no changes"), "{out}");
    assert!(!out.contains("Creating config"), "{out}");
    // Different data is refused, as Swarm refuses it.
    let other = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(other.path(), "another value").expect("write");
    let secret = a.inspect("secret", "app_token");
    let version = secret["Version"]["Index"].to_string();
    let body = serde_json::json!({
        "Name": "app_token",
        "Labels": secret["Spec"]["Labels"],
        "Data": "YW5vdGhlciB2YWx1ZQ==",
    });
    let (status, answer) = a
        .http(
            "POST",
            &format!(
                "/v1.41/secrets/{}/update?version={version}",
                secret["ID"].as_str().unwrap_or_default()
            ),
            Some(body.to_string().as_bytes()),
        )
        .expect("http");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("only updates to Labels are allowed"),
        "{answer}"
    );
}

#[test]
fn an_edited_file_updates_the_service_and_what_left_the_file_is_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("stack.yml");
    let d = manager("shoal-redeploy");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: nginx:1\n  cache:\n    image: redis:7\n",
    )
    .expect("write");
    let f = file.display().to_string();
    let out = d.shoal_ok(&["stack", "deploy", "-d", "-c", &f, "shop"]);
    assert!(out.contains("Creating network shop_default"), "{out}");
    assert!(out.contains("Creating service shop_web"), "{out}");
    assert!(out.contains("Creating service shop_cache"), "{out}");
    let before = d.inspect("service", "shop_web");
    let id = before["ID"].as_str().unwrap_or_default().to_string();

    std::fs::write(&file, "services:\n  web:\n    image: nginx:2\n").expect("write");
    let out = d.shoal_ok(&["stack", "deploy", "-d", "-c", &f, "shop"]);
    assert!(out.contains("Updating service shop_web"), "{out}");
    // A shoal stack is its files: the service that left it goes in the same deploy.
    assert!(out.contains("Removing service shop_cache"), "{out}");
    assert!(!out.contains("Creating network"), "{out}");
    let after = d.inspect("service", "shop_web");
    assert!(after["Version"]["Index"].as_u64() > before["Version"]["Index"].as_u64());
    assert_eq!(
        after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        "nginx:2"
    );
    assert_eq!(after["Spec"]["Labels"]["com.docker.stack.image"], "nginx:2");
    assert_eq!(after["ID"].as_str().unwrap_or_default(), id);

    // --prune is accepted and changes nothing more.
    let out = d.shoal_ok(&["stack", "deploy", "-d", "--prune", "-c", &f, "shop"]);
    assert!(out.contains("Stack shop: no changes"), "{out}");
    let names = d.docker_ok(&["stack", "services", "shop", "--format", "{{.Name}}"]);
    assert_eq!(names.trim(), "shop_web");
}

#[test]
fn a_bad_file_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = manager("shoal-bad-file");
    let cases = [
        (
            "services:\n  web:\n    image: nginx\n    image: other\n",
            ":4:5: duplicate key \"image\"",
        ),
        (
            "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: two\n",
            ":5:17: services.web.deploy.replicas must be an integer",
        ),
        (
            "servics:\n  web:\n    image: nginx\n",
            ":1:1: unknown top-level key \"servics\"",
        ),
        (
            "services:\n  web:\n    image: nginx\n    stop_grace_period: 10 seconds\n",
            ":4:24: services.web.stop_grace_period: invalid duration",
        ),
        (
            "services:\n  web:\n    image: nginx\n    secrets: [nope]\n",
            ":4:15: undefined secret \"nope\"",
        ),
        (
            "services:\n  web:\n    command: x\n",
            ":2:3: invalid image reference for service web: no image specified",
        ),
        // Compose-spec keys are passed on, and the managers refuse what they cannot honour.
        (
            "services:\n  web:\n    image: nginx\nnetworks:\n  default:\n    enable_ipv6: true\n",
            ":5:3: network bad_default: IPv6 is not supported",
        ),
        (
            "services:\n  web:\n    image: nginx\nnetworks:\n  default:\n    ipam:\n      config:\n        - {subnet: 10.20.0.0/24, aux_addresses: {r: 10.20.0.2}}\n",
            ":5:3: network bad_default: auxiliary addresses",
        ),
        (
            "services:\n  web:\n    image: nginx\n    env_file: [{path: a.env, format: dotenv}]\n",
            ":4:38: services.web.env_file.format: unsupported env_file format \"dotenv\"",
        ),
        (
            "services:\n  web:\n    image: nginx\nvolumes:\n  v: {external: {name: a}, name: b}\n",
            ":5:3: volume v: volume.external.name and volume.name conflict; only use volume.name",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.yml"));
        std::fs::write(&file, text).expect("write");
        let f = file.display().to_string();
        let out = d.shoal(&["stack", "deploy", "-d", "-c", &f, "bad"]);
        assert!(!out.status.success(), "{text} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{f}{want}")),
            "{text}: want {f}{want} in:\n{stderr}"
        );
    }
    // Nothing was created.
    let services = d.docker_ok(&["service", "ls", "-q"]);
    assert!(services.trim().is_empty(), "{services}");
}

#[test]
fn the_files_top_level_name_is_the_stack_name_when_none_is_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = manager("shoal-named-stack");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        "name: named\nservices:\n  web:\n    image: nginx\n    deploy:\n      replicas: 0\n",
    )
    .expect("write");
    let file = file.to_str().expect("path");
    d.shoal_ok(&["stack", "deploy", "-d", "-c", file]);
    let ls = d.docker_ok(&["service", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.trim(), "named_web");
    // A name given wins over the file's.
    d.shoal_ok(&["stack", "deploy", "-d", "-c", file, "given"]);
    let ls = d.docker_ok(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == "given_web"), "{ls}");

    let unnamed = dir.path().join("unnamed.yml");
    std::fs::write(&unnamed, "services:\n  web:\n    image: nginx\n").expect("write");
    let out = d.shoal(&[
        "stack",
        "deploy",
        "-d",
        "-c",
        unnamed.to_str().expect("path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("a stack name is needed"), "{err}");
}
