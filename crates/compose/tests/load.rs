//! The loader end to end: Compose text in, swarm specs (or an error naming `file:line:col`)
//! out; the book's fixtures load; no input makes it panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use shoal_compose::{convert, load_files, load_sources, Source, Stack};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/book-ch13");

fn load_with(
    text: &str,
    vars: &[(&str, &str)],
    dir: &Path,
) -> Result<(Stack, Vec<String>), String> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let source = Source {
        name: "stack.yml".into(),
        text: text.into(),
    };
    let project = load_sources(&[source], dir, vars).map_err(|e| e.to_string())?;
    let warnings = project.warnings.clone();
    let stack = convert(&project, "app").map_err(|e| e.to_string())?;
    Ok((stack, warnings))
}

fn load(text: &str) -> Stack {
    load_with(text, &[], Path::new("/srv/app"))
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn err(text: &str) -> String {
    match load_with(text, &[], Path::new("/srv/app")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The JSON the CLI sends for service `name`.
fn service(stack: &Stack, name: &str) -> Value {
    serde_json::to_value(&stack.services[name]).unwrap_or_default()
}

#[test]
fn every_book_fixture_loads_and_converts() {
    let mut count = 0;
    for entry in std::fs::read_dir(FIXTURES).expect("fixtures") {
        let path = entry.expect("entry").path();
        // numbers-prod-update-config.yml is an override: it only loads merged (below).
        if path.extension().and_then(|e| e.to_str()) != Some("yml")
            || path.ends_with("numbers-prod-update-config.yml")
        {
            continue;
        }
        let project = load_files(std::slice::from_ref(&path), &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        convert(&project, "todo").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        count += 1;
    }
    assert!(count >= 6, "{count} fixtures");
    let files: Vec<PathBuf> = ["numbers-v3.yml", "numbers-prod-update-config.yml"]
        .iter()
        .map(|f| Path::new(FIXTURES).join(f))
        .collect();
    let stack = convert(
        &load_files(&files, &BTreeMap::new()).expect("load"),
        "numbers",
    )
    .expect("convert");
    let api = service(&stack, "numbers-api");
    assert_eq!(api["UpdateConfig"]["Parallelism"], 3);
    assert_eq!(api["UpdateConfig"]["Order"], "start-first");
    assert_eq!(api["UpdateConfig"]["FailureAction"], "rollback");
    assert_eq!(api["UpdateConfig"]["Monitor"], 60_000_000_000u64);
    assert_eq!(
        api["TaskTemplate"]["ContainerSpec"]["Healthcheck"],
        json!({"Interval": 5_000_000_000u64, "Timeout": 3_000_000_000u64, "StartPeriod": 5_000_000_000u64, "Retries": 2})
    );
    assert!(service(&stack, "numbers-web").get("UpdateConfig").is_none());
}

#[test]
fn the_v5_fixture_converts_to_what_docker_sends() {
    let project =
        load_files(&[Path::new(FIXTURES).join("v5.yml")], &BTreeMap::new()).expect("load");
    let stack = convert(&project, "todo").expect("convert");
    assert_eq!(stack.networks.len(), 1);
    assert_eq!(stack.networks[0].name, "todo_app-net");
    assert_eq!(stack.networks[0].request.driver, "overlay");
    assert!(
        stack.configs.is_empty() && stack.secrets.is_empty(),
        "external ones are not created"
    );
    let web = service(&stack, "todo-web");
    assert_eq!(web["Name"], "todo_todo-web");
    assert_eq!(
        web["Labels"],
        json!({"com.docker.stack.image": "diamol/ch06-todo-list", "com.docker.stack.namespace": "todo"})
    );
    let cs = &web["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Configs"][0]["ConfigName"], "todo-list-config");
    assert_eq!(
        cs["Configs"][0]["File"],
        json!({"Name": "/app/config/config.json", "UID": "0", "GID": "0", "Mode": 292})
    );
    assert_eq!(cs["Secrets"][0]["SecretName"], "todo-list-secret");
    assert_eq!(
        web["TaskTemplate"]["Networks"],
        json!([{"Target": "todo_app-net", "Aliases": ["todo-web"]}])
    );
    assert_eq!(
        web["TaskTemplate"]["Resources"]["Limits"],
        json!({"NanoCPUs": 500_000_000, "MemoryBytes": 104_857_600})
    );
    assert_eq!(
        web["EndpointSpec"]["Ports"],
        json!([{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}])
    );
    let db = service(&stack, "todo-db");
    let mount = &db["TaskTemplate"]["ContainerSpec"]["Mounts"][0];
    assert_eq!(
        mount,
        &json!({"Type": "volume", "Source": "todo_todo-db-data", "Target": "/var/lib/postgresql/data", "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "todo"}}})
    );
    assert_eq!(
        db["TaskTemplate"]["Placement"]["Constraints"],
        json!(["node.labels.storage == raid"])
    );
    assert_eq!(
        db["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["PGDATA=/var/lib/postgresql/data/pgdata"])
    );
}

#[test]
fn a_service_without_networks_joins_the_default_network() {
    let stack = load("services:\n  web:\n    image: nginx\n");
    assert_eq!(stack.networks[0].name, "app_default");
    assert_eq!(
        stack.networks[0].request.labels["com.docker.stack.namespace"],
        "app"
    );
    let web = service(&stack, "web");
    assert_eq!(
        web["TaskTemplate"]["Networks"],
        json!([{"Target": "app_default", "Aliases": ["web"]}])
    );
    assert_eq!(web["Mode"], json!({"Replicated": {}}));
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Privileges"],
        json!({"CredentialSpec": null, "SELinuxContext": null, "NoNewPrivileges": false})
    );
}

#[test]
fn external_and_renamed_objects_keep_their_names() {
    let stack = load(
        "services:\n  web:\n    image: nginx\n    networks: [outside, mine]\n    secrets: [s]\n    volumes: [v:/v]\nnetworks:\n  outside:\n    external: true\n    name: shared-net\n  mine:\n    name: custom-net\nsecrets:\n  s:\n    external: true\n    name: real-secret\nvolumes:\n  v:\n    external: true\n",
    );
    assert_eq!(stack.external_networks, ["shared-net"]);
    assert_eq!(
        stack
            .networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["custom-net"]
    );
    let web = service(&stack, "web");
    let targets: Vec<&str> = web["TaskTemplate"]["Networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["custom-net", "shared-net"]);
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"],
        "real-secret"
    );
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["File"]["Name"],
        "s"
    );
    let mount = &web["TaskTemplate"]["ContainerSpec"]["Mounts"][0];
    assert_eq!(mount["Source"], "v");
    assert!(mount["VolumeOptions"].get("Labels").is_none(), "{mount}");
}

#[test]
fn file_configs_and_secrets_are_read_relative_to_the_compose_file() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("app.conf"), "x=1\n").expect("write");
    let (stack, _) = load_with(
        "services:\n  web:\n    image: nginx\n    configs:\n      - source: conf\n        target: /etc/app.conf\n        mode: 0440\nconfigs:\n  conf:\n    file: ./app.conf\n    labels: [team=a]\n",
        &[],
        dir.path(),
    )
    .expect("load");
    assert_eq!(stack.configs[0].name, "app_conf");
    assert_eq!(stack.configs[0].data, b"x=1\n");
    assert_eq!(stack.configs[0].labels["team"], "a");
    assert_eq!(stack.configs[0].labels["com.docker.stack.namespace"], "app");
    let web = service(&stack, "web");
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Configs"][0]["File"]["Mode"],
        0o440
    );
    let missing = load_with(
        "services:\n  web:\n    image: nginx\nconfigs:\n  c:\n    file: ./nope.conf\n",
        &[],
        dir.path(),
    )
    .unwrap_err();
    assert!(
        missing.starts_with("stack.yml:6:11: cannot read "),
        "{missing}"
    );
}

#[test]
fn container_keys_convert_like_docker() {
    let stack = load(
        r#"services:
  web:
    image: nginx
    entrypoint: /entry.sh --flag
    command: ["run", "fast"]
    environment: [B=2, A=1, EMPTY=, BARE]
    working_dir: /srv
    user: "1000"
    hostname: h
    stop_grace_period: 1m30s
    stop_signal: SIGTERM
    tty: true
    stdin_open: true
    read_only: true
    init: false
    cap_add: [net_admin, CAP_SYS_TIME]
    cap_drop: [mknod]
    extra_hosts: ["db:10.0.0.2", "v6=[::1]"]
    dns: [1.1.1.1]
    dns_search: [a.example]
    sysctls: {net.ipv4.ip_forward: 1}
    ulimits: {nofile: {soft: 10, hard: 20}, core: 0}
    labels: {x: y}
    healthcheck:
      test: curl -f localhost
      interval: 1s
    logging:
      driver: json-file
      options: {max-size: 10m}
    volumes:
      - ./data:/data
      - /abs:/abs:ro,rshared
      - type: tmpfs
        target: /t
        tmpfs: {size: 1024}
      - /anon
"#,
    );
    let web = service(&stack, "web");
    let cs = &web["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Command"], json!(["/entry.sh", "--flag"]));
    assert_eq!(cs["Args"], json!(["run", "fast"]));
    assert_eq!(cs["Env"], json!(["A=1", "B=2", "BARE", "EMPTY="]));
    assert_eq!(cs["Dir"], "/srv");
    assert_eq!(cs["User"], "1000");
    assert_eq!(cs["Hostname"], "h");
    assert_eq!(cs["StopGracePeriod"], 90_000_000_000u64);
    assert_eq!(cs["StopSignal"], "SIGTERM");
    assert_eq!(
        (
            cs["TTY"].clone(),
            cs["OpenStdin"].clone(),
            cs["ReadOnly"].clone(),
            cs["Init"].clone()
        ),
        (json!(true), json!(true), json!(true), json!(false))
    );
    assert_eq!(
        cs["CapabilityAdd"],
        json!(["CAP_NET_ADMIN", "CAP_SYS_TIME"])
    );
    assert_eq!(cs["CapabilityDrop"], json!(["CAP_MKNOD"]));
    assert_eq!(cs["Hosts"], json!(["10.0.0.2 db", "::1 v6"]));
    assert_eq!(
        cs["DNSConfig"],
        json!({"Nameservers": ["1.1.1.1"], "Search": ["a.example"]})
    );
    assert_eq!(cs["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(
        cs["Ulimits"],
        json!([{"Name": "core", "Hard": 0, "Soft": 0}, {"Name": "nofile", "Hard": 20, "Soft": 10}])
    );
    assert_eq!(
        cs["Labels"],
        json!({"x": "y", "com.docker.stack.namespace": "app"})
    );
    assert_eq!(
        cs["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 1_000_000_000})
    );
    assert_eq!(
        web["TaskTemplate"]["LogDriver"],
        json!({"Name": "json-file", "Options": {"max-size": "10m"}})
    );
    let mounts = cs["Mounts"].as_array().unwrap();
    assert_eq!(
        mounts[0],
        json!({"Type": "bind", "Source": "/srv/app/data", "Target": "/data"})
    );
    assert_eq!(
        mounts[1],
        json!({"Type": "bind", "Source": "/abs", "Target": "/abs", "ReadOnly": true, "BindOptions": {"Propagation": "rshared"}})
    );
    assert_eq!(
        mounts[2],
        json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024}})
    );
    assert_eq!(mounts[3], json!({"Type": "volume", "Target": "/anon"}));
}

#[test]
fn deploy_keys_convert_like_docker() {
    let stack = load(
        r#"services:
  web:
    image: nginx
    ports:
      - "9090:90/udp"
      - 80
      - {target: 443, published: 8443, mode: host}
    deploy:
      endpoint_mode: dnsrr
      replicas: 3
      labels: [svc=web]
      update_config: {parallelism: 2, delay: 10s, failure_action: continue, monitor: 30s, max_failure_ratio: 0.5, order: start-first}
      rollback_config: {parallelism: 0}
      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, window: 1m}
      placement:
        constraints: [node.role==worker]
        preferences: [{spread: node.labels.dc}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "2", memory: 1G, pids: 50}
        reservations: {cpus: "0.1", memory: 10M}
  global:
    image: busybox
    restart: "on-failure:5"
    deploy: {mode: global}
  rjob:
    image: busybox
    deploy: {mode: replicated-job, replicas: 4}
  gjob:
    image: busybox
    deploy: {mode: global-job}
"#,
    );
    let web = service(&stack, "web");
    assert_eq!(web["Labels"]["svc"], "web");
    assert_eq!(web["Mode"], json!({"Replicated": {"Replicas": 3}}));
    assert_eq!(
        web["EndpointSpec"],
        json!({"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 8443, "PublishMode": "host"},
            {"Protocol": "udp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"},
        ]})
    );
    assert_eq!(
        web["UpdateConfig"],
        json!({"Parallelism": 2, "Delay": 10_000_000_000u64, "FailureAction": "continue", "Monitor": 30_000_000_000u64, "MaxFailureRatio": 0.5, "Order": "start-first"})
    );
    assert_eq!(web["RollbackConfig"]["Parallelism"], 0);
    let t = &web["TaskTemplate"];
    assert_eq!(
        t["RestartPolicy"],
        json!({"Condition": "on-failure", "Delay": 2_000_000_000u64, "MaxAttempts": 3, "Window": 60_000_000_000u64})
    );
    assert_eq!(
        t["Placement"],
        json!({"Constraints": ["node.role==worker"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.dc"}}], "MaxReplicas": 2})
    );
    assert_eq!(
        t["Resources"],
        json!({"Limits": {"NanoCPUs": 2_000_000_000u64, "MemoryBytes": 1_073_741_824u64, "Pids": 50}, "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 10_485_760}})
    );
    let global = service(&stack, "global");
    assert_eq!(global["Mode"], json!({"Global": {}}));
    assert_eq!(
        global["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "on-failure", "MaxAttempts": 5})
    );
    assert_eq!(
        service(&stack, "rjob")["Mode"],
        json!({"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}})
    );
    assert_eq!(service(&stack, "gjob")["Mode"], json!({"GlobalJob": {}}));
}

#[test]
fn interpolation_uses_the_environment_and_warns_about_unset_variables() {
    let (stack, warnings) = load_with(
        "services:\n  web:\n    image: ${IMAGE:-nginx}:${TAG}\n    environment:\n      PRICE: $$5\n      FROM_ENV:\n    deploy:\n      replicas: ${REPLICAS}\n",
        &[("REPLICAS", "4"), ("FROM_ENV", "yes")],
        Path::new("/"),
    )
    .expect("load");
    let web = service(&stack, "web");
    assert_eq!(web["TaskTemplate"]["ContainerSpec"]["Image"], "nginx:");
    assert_eq!(web["Mode"]["Replicated"]["Replicas"], 4);
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["FROM_ENV=yes", "PRICE=$5"])
    );
    assert_eq!(
        warnings,
        ["The \"TAG\" variable is not set. Defaulting to a blank string."]
    );
    let e = load_with(
        "services:\n  web:\n    image: ${IMAGE:?give an image}\n",
        &[],
        Path::new("/"),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "stack.yml:3:12: required variable IMAGE is missing a value: give an image"
    );
    let e = load_with(
        "services:\n  web:\n    image: nginx\n    user: ${1}\n",
        &[],
        Path::new("/"),
    )
    .unwrap_err();
    assert!(
        e.starts_with("stack.yml:4:11: invalid interpolation format for services.web.user"),
        "{e}"
    );
}

#[test]
fn a_dot_env_file_next_to_the_first_file_fills_variables_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(".env"), "TAG=1.0\nIMAGE=redis\n").expect("write");
    let file = dir.path().join("stack.yml");
    std::fs::write(&file, "services:\n  web:\n    image: ${IMAGE}:${TAG}\n").expect("write");
    let env: BTreeMap<String, String> = [("IMAGE".to_string(), "nginx".to_string())].into();
    let project = load_files(&[file], &env).expect("load");
    let stack = convert(&project, "app").expect("convert");
    assert_eq!(
        service(&stack, "web")["TaskTemplate"]["ContainerSpec"]["Image"],
        "nginx:1.0"
    );
}

#[test]
fn env_files_replace_the_dot_env_and_the_environment_still_wins() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(".env"), "TAG=dotenv\nIMAGE=redis\n").expect("write");
    std::fs::write(dir.path().join("a.env"), "TAG=a\nREPO=shoal\n").expect("write");
    std::fs::write(dir.path().join("b.env"), "TAG=b\n").expect("write");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: ${REPO}/${IMAGE:-none}:${TAG}\n",
    )
    .expect("write");
    let env_files = [dir.path().join("a.env"), dir.path().join("b.env")];
    let project = shoal_compose::load_files_with_env_files(
        std::slice::from_ref(&file),
        &BTreeMap::new(),
        &env_files,
    )
    .expect("load");
    let stack = convert(&project, "app").expect("convert");
    // .env is not read once env files are given; later files override earlier ones.
    assert_eq!(
        service(&stack, "web")["TaskTemplate"]["ContainerSpec"]["Image"],
        "shoal/none:b"
    );
    let env: BTreeMap<String, String> = [("TAG".to_string(), "env".to_string())].into();
    let project =
        shoal_compose::load_files_with_env_files(std::slice::from_ref(&file), &env, &env_files)
            .expect("load");
    let stack = convert(&project, "app").expect("convert");
    assert_eq!(
        service(&stack, "web")["TaskTemplate"]["ContainerSpec"]["Image"],
        "shoal/none:env"
    );
    let missing = [dir.path().join("nope.env")];
    let e = shoal_compose::load_files_with_env_files(&[file], &BTreeMap::new(), &missing)
        .expect_err("a missing env file");
    assert!(e.to_string().contains("nope.env"), "{e}");
}

#[test]
fn a_platform_places_the_tasks_and_a_build_only_service_is_refused_saying_what_to_do() {
    let stack = load("services:\n  web:\n    image: nginx\n    platform: linux/arm64/v8\n");
    assert_eq!(
        service(&stack, "web")["TaskTemplate"]["Placement"]["Platforms"],
        json!([{"Architecture": "arm64", "OS": "linux"}])
    );
    let (_, warnings) = load_with(
        "services:\n  web:\n    image: nginx\n    platform: linux\n",
        &[],
        Path::new("/"),
    )
    .expect("load");
    assert!(warnings.is_empty(), "platform is not ignored: {warnings:?}");
    let e = err("services:\n  web:\n    image: nginx\n    platform: amd64\n");
    assert!(
        e.starts_with("stack.yml:4:15: services.web.platform: invalid platform \"amd64\""),
        "{e}"
    );
    let e = err("services:\n  web:\n    build: ./web\n");
    assert!(
        e.starts_with("stack.yml:3:12: service web has only `build:`"),
        "{e}"
    );
    assert!(e.contains("give the service `image: NAME`"), "{e}");
}

#[test]
fn ignored_keys_are_warned_about_not_refused() {
    let (_, warnings) = load_with(
        "services:\n  web:\n    image: nginx\n    build: .\n    restart: always\n    depends_on: [db]\n    container_name: web\n  db:\n    image: pg\n",
        &[],
        Path::new("/"),
    )
    .expect("load");
    assert_eq!(
        warnings[0],
        "Ignoring unsupported options: build, depends_on, restart"
    );
    assert!(
        warnings[1].contains("container_name: Setting the container name is not supported."),
        "{warnings:?}"
    );
}

#[test]
fn errors_name_the_file_line_and_column() {
    for (text, want) in [
        ("services:\n  web:\n    image: a\n    image: b\n", "stack.yml:4:5: duplicate key \"image\" (first defined at stack.yml:3:5)"),
        ("servics: {}\n", "stack.yml:1:1: unknown top-level key \"servics\""),
        ("services:\n  web:\n    image: a\n    imagee: b\n", "stack.yml:4:5: unknown key \"imagee\" in service web"),
        ("services:\n  web:\n    image: [a]\n", "stack.yml:3:12: services.web.image must be a string, not a sequence"),
        ("services:\n  web:\n    image: a\n    deploy:\n      replicas: -1\n", "stack.yml:5:17: services.web.deploy.replicas must not be negative"),
        ("services:\n  web:\n    image: a\n    stop_grace_period: 5\n", "stack.yml:4:24: services.web.stop_grace_period: invalid duration \"5\""),
        ("services:\n  web:\n    image: a\n    deploy:\n      resources:\n        limits:\n          memory: lots\n", "stack.yml:7:19: services.web.deploy.resources.limits.memory: invalid size \"lots\""),
        ("services:\n  web:\n    image: a\n    ports: [\"80:x\"]\n", "stack.yml:4:13: services.web.ports: invalid port \"x\""),
        ("services:\n  web:\n    deploy: {}\n", "stack.yml:2:3: invalid image reference for service web: no image specified"),
        ("services:\n  web:\n    image: a\n    networks: [back]\n", "stack.yml:4:16: service web: undefined network \"back\""),
        ("services:\n  web:\n    image: a\n    volumes: [\"data:/d\"]\n", "stack.yml:4:15: undefined volume \"data\""),
        ("services:\n  web:\n    image: a\n    configs: [c]\n", "stack.yml:4:15: undefined config \"c\""),
        ("services:\n  web:\n    image: a\n    tty: maybe\n", "stack.yml:4:10: services.web.tty must be a boolean"),
        ("services:\n  web:\n    image: a\n    extends: base\n", "stack.yml:4:5: Compose file contains unsupported option \"extends\""),
        ("services:\n  web:\n    image: a\n    deploy:\n      mode: daemon\n", "stack.yml:5:13: services.web.deploy.mode must be replicated, global"),
        ("services:\n  web:\n    image: a\n    deploy:\n      mode: global\n      replicas: 2\n", "stack.yml:5:13: replicas can only be used with replicated or replicated-job mode"),
        ("[1, 2]\n", "stack.yml:1:1: top-level object must be a mapping"),
        ("services:\n  web:\n    image: \"unterminated\n", "stack.yml:"),
    ] {
        let e = err(text);
        assert!(e.starts_with(want), "{text}\nwant: {want}\ngot:  {e}");
    }
}

#[test]
fn merged_files_override_like_docker() {
    let a = Source { name: "a.yml".into(), text: "services:\n  web:\n    image: nginx:1\n    ports: [\"80:80\"]\n    environment: {A: \"1\"}\n".into() };
    let b = Source { name: "b.yml".into(), text: "services:\n  web:\n    image: nginx:2\n    ports: [\"443:443\"]\n    environment: [B=2]\n    deploy: {replicas: 2}\n".into() };
    let project = load_sources(&[a, b], Path::new("/"), BTreeMap::new()).expect("load");
    let stack = convert(&project, "app").expect("convert");
    let web = service(&stack, "web");
    assert_eq!(web["TaskTemplate"]["ContainerSpec"]["Image"], "nginx:2");
    assert_eq!(web["EndpointSpec"]["Ports"].as_array().unwrap().len(), 2);
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Env"],
        json!(["A=1", "B=2"])
    );
    assert_eq!(web["Mode"]["Replicated"]["Replicas"], 2);
    let bad = Source {
        name: "b.yml".into(),
        text: "services:\n  web:\n    deploy: {replicas: x}\n".into(),
    };
    let a = Source {
        name: "a.yml".into(),
        text: "services:\n  web:\n    image: nginx\n".into(),
    };
    let project = load_sources(&[a, bad], Path::new("/"), BTreeMap::new()).expect("load");
    let e = convert(&project, "app").unwrap_err().to_string();
    assert!(
        e.starts_with("b.yml:3:24: services.web.deploy.replicas must be an integer"),
        "{e}"
    );
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    let good = std::fs::read_to_string(Path::new(FIXTURES).join("v5.yml")).expect("fixture");
    let mut inputs: Vec<String> = (0..good.len())
        .filter(|i| good.is_char_boundary(*i))
        .map(|i| good[..i].to_string())
        .collect();
    inputs.extend([
        "\0\0\0".to_string(),
        "{{{{".into(),
        "- - - -".into(),
        "services: [".into(),
        "services:\n  web: [1, 2]\n".into(),
        "services:\n  web:\n    image: x\n    ports: [{}]\n".into(),
        "services:\n  web:\n    image: x\n    volumes: [{type: volume}]\n".into(),
        "services:\n  ? [a]\n  : b\n".into(),
        "a: &x [*x]\n".into(),
        "services: !!binary aGVsbG8=\n".into(),
        "\u{feff}services: {}\n".into(),
        "services:\n  web:\n    image: x\n    environment: 5\n".into(),
        "services:\n  web:\n    image: x\n    ulimits: {a: {soft: 1}}\n".into(),
        "services:\n  web:\n    image: x\n    ports: [\"99999999999:1\"]\n".into(),
        "services:\n  web:\n    image: x\n    deploy: {resources: {limits: {cpus: \"99999999999999999999\"}}}\n".into(),
        "services:\n  web:\n    image: x\n    stop_grace_period: 9999999999999h\n".into(),
        "x: ${".into(),
        "x: ${A:-${B:-${C".into(),
    ]);
    let mut bytes: Vec<u8> = good.bytes().collect();
    for i in (0..bytes.len()).step_by(7) {
        bytes[i] = bytes[i].wrapping_mul(31).wrapping_add(7);
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for text in inputs {
        let _ = load_with(&text, &[], Path::new("/"));
    }
}
