//! `/_ping`, `/version`, `/info`, versioned-path errors and the registry stub.

use super::*;

pub(super) fn swarm_header(d: &Daemon) -> &'static str {
    match d.role() {
        Role::Inactive => "inactive",
        Role::Worker(_) => "active/worker",
        Role::Manager(_) => "active/manager",
        Role::Locked(_) => "locked",
    }
}

pub(super) async fn ping(State(d): S) -> Response {
    let mut h = HeaderMap::new();
    h.insert("API-Version", HeaderValue::from_static(API_VERSION));
    h.insert("OSType", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Swarm", HeaderValue::from_static(swarm_header(&d)));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    (StatusCode::OK, h, "OK").into_response()
}

pub(super) async fn bad_version(Path(v): Path<String>) -> HttpError {
    let (a, b) = v.split_once('.').unwrap_or(("0", "0"));
    let too_new = (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0)) > (1, 41);
    if too_new {
        HttpError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        ))
    } else {
        HttpError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ))
    }
}

pub(super) fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(super) async fn version() -> Json<system::Version> {
    let v = env!("CARGO_PKG_VERSION").to_string();
    Json(system::Version {
        platform: system::PlatformName {
            name: "shoal".into(),
        },
        components: vec![system::ComponentVersion {
            name: "shoal".into(),
            version: v.clone(),
            details: [("ApiVersion".to_string(), API_VERSION.to_string())]
                .into_iter()
                .collect(),
        }],
        version: v,
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        os: std::env::consts::OS.into(),
        arch: arch().into(),
        kernel_version: kernel_version(),
        ..Default::default()
    })
}

pub(super) fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

pub(super) fn swarm_info(d: &Daemon) -> swarm::Info {
    match d.role() {
        Role::Inactive => swarm::Info {
            local_node_state: LocalNodeState::Inactive,
            ..Default::default()
        },
        // As dockerd shows a locked manager: its address, the state and why.
        Role::Locked(l) => swarm::Info {
            node_addr: host(&l.identity.advertise_addr),
            local_node_state: LocalNodeState::Locked,
            error: shoal_manager::error::SWARM_LOCKED.to_string(),
            ..Default::default()
        },
        Role::Worker(w) => {
            let id = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
            swarm::Info {
                node_id: id.node_id,
                node_addr: host(&id.advertise_addr),
                local_node_state: LocalNodeState::Active,
                control_available: false,
                remote_managers: id
                    .managers
                    .iter()
                    .map(|a| Peer {
                        node_id: String::new(),
                        addr: a.clone(),
                    })
                    .collect(),
                ..Default::default()
            }
        }
        Role::Manager(m) => {
            let state = m.replica().read();
            let managers: Vec<Peer> = state
                .nodes
                .iter()
                .filter_map(|n| {
                    n.manager_status.as_ref().map(|s| Peer {
                        node_id: n.id.clone(),
                        addr: s.addr.clone(),
                    })
                })
                .collect();
            swarm::Info {
                node_id: m.identity.node_id.clone(),
                node_addr: host(&m.identity.advertise_addr),
                local_node_state: LocalNodeState::Active,
                control_available: true,
                nodes: state.nodes.len() as i64,
                managers: managers.len() as i64,
                remote_managers: managers,
                cluster: state.cluster.as_ref().map(|c| c.info.clone()),
                ..Default::default()
            }
        }
    }
}

pub(super) fn host(addr: &str) -> String {
    addr.rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(addr)
        .to_string()
}

pub(super) async fn info(State(d): S) -> Json<system::Info> {
    let desc = d.description();
    let node_id = match d.role() {
        Role::Manager(m) => m.identity.node_id.clone(),
        Role::Worker(w) => w
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .node_id
            .clone(),
        Role::Inactive | Role::Locked(_) => String::new(),
    };
    Json(system::Info {
        id: node_id,
        name: desc.hostname.clone(),
        server_version: format!("shoal-{}", env!("CARGO_PKG_VERSION")),
        os_type: "linux".into(),
        operating_system: "shoal".into(),
        kernel_version: kernel_version(),
        architecture: desc.platform.architecture.clone(),
        ncpu: desc.resources.nano_cpus / 1_000_000_000,
        mem_total: desc.resources.memory_bytes,
        docker_root_dir: d.config().data_dir.display().to_string(),
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: "2".into(),
        default_runtime: "runc".into(),
        system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        labels: desc
            .engine
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        swarm: swarm_info(&d),
        ..Default::default()
    })
}
