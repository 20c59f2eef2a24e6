//! The Docker Engine API's swarm routes, one section per resource.

use crate::error::{HttpError, HttpResult};
use crate::query::{json, json_or_default, Query};
use crate::server::{API_VERSION, MIN_API_VERSION};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use shoal_manager::{Daemon, Role};
use shoal_store::State as ClusterState;
use shoal_types::filters::{self, Filters};
use shoal_types::network::{NetworkCreateRequest, NetworkCreateResponse, NetworkResource};
use shoal_types::swarm::{
    self, ConfigSpec, InitRequest, JoinRequest, LocalNodeState, Node, NodeSpec, Peer, SecretSpec,
    Service, ServiceSpec, ServiceStatus, Spec, Swarm, TaskState,
};
use shoal_types::system;
use std::collections::HashMap;
use std::sync::Arc;

type S = State<Arc<Daemon>>;

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/__version/{v}", axum::routing::any(bad_version))
        .route("/swarm", get(swarm_inspect))
        .route("/swarm/init", post(swarm_init))
        .route("/swarm/join", post(swarm_join))
        .route("/swarm/leave", post(swarm_leave))
        .route("/swarm/update", post(swarm_update))
        .route("/swarm/unlockkey", get(swarm_unlockkey))
        .route("/swarm/unlock", post(swarm_unlock))
        .route("/nodes", get(node_list))
        .route("/nodes/{id}", get(node_inspect).delete(node_remove))
        .route("/nodes/{id}/update", post(node_update))
        .route("/services", get(service_list))
        .route("/services/create", post(service_create))
        .route(
            "/services/{id}",
            get(service_inspect).delete(service_remove),
        )
        .route("/services/{id}/update", post(service_update))
        .route("/services/{id}/logs", get(service_logs))
        .route("/tasks", get(task_list))
        .route("/tasks/{id}", get(task_inspect))
        .route("/configs", get(config_list))
        .route("/configs/create", post(config_create))
        .route("/configs/{id}", get(config_inspect).delete(config_remove))
        .route("/configs/{id}/update", post(config_update))
        .route("/secrets", get(secret_list))
        .route("/secrets/create", post(secret_create))
        .route("/secrets/{id}", get(secret_inspect).delete(secret_remove))
        .route("/secrets/{id}/update", post(secret_update))
        .route("/networks", get(network_list))
        .route("/networks/create", post(network_create))
        .route("/networks/prune", post(network_prune))
        .route(
            "/networks/{id}",
            get(network_inspect).delete(network_remove),
        )
        .route("/distribution/{*name}", get(distribution))
}

// ----- system -----

fn swarm_header(d: &Daemon) -> &'static str {
    match d.role() {
        Role::Inactive => "inactive",
        Role::Worker(_) => "active/worker",
        Role::Manager(_) => "active/manager",
    }
}

async fn ping(State(d): S) -> Response {
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

async fn bad_version(Path(v): Path<String>) -> HttpError {
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

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn version() -> Json<system::Version> {
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

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn swarm_info(d: &Daemon) -> swarm::Info {
    match d.role() {
        Role::Inactive => swarm::Info {
            local_node_state: LocalNodeState::Inactive,
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

fn host(addr: &str) -> String {
    addr.rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(addr)
        .to_string()
}

async fn info(State(d): S) -> Json<system::Info> {
    let desc = d.description();
    let node_id = match d.role() {
        Role::Manager(m) => m.identity.node_id.clone(),
        Role::Worker(w) => w
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .node_id
            .clone(),
        Role::Inactive => String::new(),
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

// ----- swarm -----

async fn swarm_inspect(State(d): S) -> HttpResult<Json<Swarm>> {
    let m = d.manager()?;
    let state = m.replica().read();
    let c = state.cluster()?;
    Ok(Json(Swarm::from_parts(
        c.info.clone(),
        c.join_tokens.clone(),
    )))
}

async fn swarm_init(State(d): S, body: Bytes) -> HttpResult<Json<String>> {
    let req: InitRequest = json_or_default(&body)?;
    Ok(Json(d.init(req).await?))
}

async fn swarm_join(State(d): S, body: Bytes) -> HttpResult<StatusCode> {
    let req: JoinRequest = json(&body)?;
    d.join(req).await?;
    Ok(StatusCode::OK)
}

async fn swarm_leave(State(d): S, RawQuery(q): RawQuery) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    d.leave(q.flag("force")).await?;
    Ok(StatusCode::OK)
}

async fn swarm_update(State(d): S, RawQuery(q): RawQuery, body: Bytes) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("swarm")?;
    let spec: Spec = json(&body)?;
    d.manager()?
        .update_cluster(
            version,
            spec,
            q.flag("rotateWorkerToken"),
            q.flag("rotateManagerToken"),
        )
        .await?;
    Ok(StatusCode::OK)
}

async fn swarm_unlockkey(State(d): S) -> HttpResult<Json<Value>> {
    d.manager()?;
    Ok(Json(json!({ "UnlockKey": "" })))
}

async fn swarm_unlock(State(d): S) -> HttpResult<StatusCode> {
    d.manager()?;
    Err(HttpError::bad_request("swarm is not locked"))
}

// ----- nodes -----

/// A node as Docker shows it: `Leader` is computed from the current Raft leader.
fn present_node(state: &ClusterState, leader_raft: Option<u64>, n: &Node) -> Node {
    let mut n = n.clone();
    let raft_id = state.members.get(&n.id).map(|m| m.raft_id);
    if let Some(ms) = &mut n.manager_status {
        ms.leader = raft_id.is_some() && raft_id == leader_raft;
    }
    n
}

async fn node_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Vec<Node>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::NODE_FILTERS)?;
    let roles = f
        .roles()
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    for m in f.get("membership") {
        if m != "accepted" && m != "pending" {
            return Err(HttpError::bad_request(format!(
                "Invalid membership filter: '{m}'"
            )));
        }
    }
    let m = d.manager()?;
    let leader = m.raft.leader();
    let state = m.replica().read();
    let nodes = state
        .nodes
        .iter()
        .filter(|n| {
            f.match_id_prefix(&n.id)
                && (f.match_name_prefix(&n.spec.name)
                    || f.match_name_prefix(&n.description.hostname))
                && f.match_labels("label", &n.description.engine.labels)
                && f.match_labels("node.label", &n.spec.labels)
                && (roles.is_empty() || roles.contains(&n.spec.role))
                && f.match_exact("membership", "accepted")
        })
        .map(|n| present_node(&state, leader, n))
        .collect();
    Ok(Json(nodes))
}

async fn node_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<Node>> {
    let m = d.manager()?;
    let leader = m.raft.leader();
    let state = m.replica().read();
    let n = state.nodes.resolve(&id)?;
    Ok(Json(present_node(&state, leader, n)))
}

async fn node_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("node")?;
    let spec: NodeSpec = json(&body)?;
    d.manager()?.update_node(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

async fn node_remove(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    d.manager()?.remove_node(&id, q.flag("force")).await?;
    Ok(StatusCode::OK)
}

// ----- services -----

/// Task counts of every service, in one pass over the tasks.
fn task_counts(state: &ClusterState) -> HashMap<&str, (u64, u64, u64)> {
    let mut counts: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for t in state.tasks.iter() {
        let c = counts.entry(t.service_id.as_str()).or_default();
        if t.status.state == TaskState::Running {
            c.0 += 1;
        }
        if t.status.state == TaskState::Complete {
            c.1 += 1;
        }
        if t.desired_state == TaskState::Running {
            c.2 += 1;
        }
    }
    counts
}

fn service_status(counts: &HashMap<&str, (u64, u64, u64)>, s: &Service) -> ServiceStatus {
    let (running, completed, desired_running) =
        counts.get(s.id.as_str()).copied().unwrap_or_default();
    let desired = if let Some(r) = &s.spec.mode.replicated {
        r.replicas.unwrap_or(1)
    } else if let Some(j) = &s.spec.mode.replicated_job {
        j.max_concurrent.unwrap_or(1)
    } else {
        desired_running
    };
    ServiceStatus {
        running_tasks: running,
        desired_tasks: desired,
        completed_tasks: completed,
    }
}

/// A JSON answer serialized straight from the state, without copying the objects.
fn json_bytes(bytes: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

async fn service_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Response> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::SERVICE_FILTERS)?;
    for m in f.get("mode") {
        if m != "replicated" && m != "global" && m != "replicated-job" && m != "global-job" {
            return Err(HttpError::bad_request(format!(
                "Invalid filter: 'mode'='{m}'"
            )));
        }
    }
    let with_status = q.flag("status");
    let m = d.manager()?;
    let state = m.replica().read();
    let counts = if with_status {
        task_counts(&state)
    } else {
        HashMap::new()
    };
    let mut out = Vec::with_capacity(state.services.len() * 384);
    out.push(b'[');
    let mut first = true;
    for s in state.services.iter().filter(|s| {
        f.match_id_prefix(&s.id)
            && f.match_name_prefix(&s.spec.name)
            && f.match_labels("label", &s.spec.labels)
            && f.match_exact("mode", s.spec.mode.name())
    }) {
        if !first {
            out.push(b',');
        }
        first = false;
        let written = if with_status {
            let mut s = s.clone();
            s.service_status = Some(service_status(&counts, &s));
            serde_json::to_writer(&mut out, &s)
        } else {
            serde_json::to_writer(&mut out, s)
        };
        written.map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    out.push(b']');
    Ok(json_bytes(out))
}

/// `insertDefaults=true` (what `docker service inspect` asks for) shows Swarm's defaults in the
/// spec, like Docker does; the stored spec keeps only what the user set.
async fn service_inspect(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Service>> {
    let q = Query::parse(q.as_deref())?;
    let m = d.manager()?;
    let state = m.replica().read();
    let mut s = state.services.resolve(&id)?.clone();
    if q.flag("insertDefaults") {
        s.spec = s.spec.with_defaults();
    }
    Ok(Json(s))
}

async fn service_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<swarm::ServiceCreateResponse>)> {
    let spec: ServiceSpec = json(&body)?;
    let (id, warnings) = d.manager()?.create_service(spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(swarm::ServiceCreateResponse { id, warnings }),
    ))
}

async fn service_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<Json<swarm::ServiceUpdateResponse>> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("service")?;
    let rollback = match q.get("rollback") {
        None | Some("") => false,
        Some("previous") => true,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "unrecognized rollback option {other}"
            )))
        }
    };
    let spec: ServiceSpec = if rollback {
        json_or_default(&body)?
    } else {
        json(&body)?
    };
    let warnings = d
        .manager()?
        .update_service(&id, version, spec, rollback)
        .await?;
    Ok(Json(swarm::ServiceUpdateResponse { warnings }))
}

async fn service_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_service(&id).await?;
    Ok(StatusCode::OK)
}

async fn service_logs(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    let m = d.manager()?;
    m.replica().read().services.resolve(&id)?;
    Err(HttpError(
        StatusCode::NOT_IMPLEMENTED,
        "service logs are not available yet: tasks do not run on this version of shoal".into(),
    ))
}

// ----- tasks -----

async fn task_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Vec<swarm::Task>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::TASK_FILTERS)?;
    let desired = f
        .desired_states()
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let m = d.manager()?;
    let state = m.replica().read();
    let services: Vec<String> = f
        .get("service")
        .iter()
        .filter_map(|k| state.services.resolve(k).ok().map(|s| s.id.clone()))
        .collect();
    let nodes: Vec<String> = f
        .get("node")
        .iter()
        .filter_map(|k| state.nodes.resolve(k).ok().map(|n| n.id.clone()))
        .collect();
    if (f.contains("service") && services.is_empty()) || (f.contains("node") && nodes.is_empty()) {
        return Ok(Json(Vec::new()));
    }
    let up_to_date = f.contains("_up-to-date");
    let out = state
        .tasks
        .iter()
        .filter(|t| {
            f.match_id_prefix(&t.id)
                && f.match_name_prefix(&t.name)
                && f.match_labels("label", &t.labels)
                && (services.is_empty() || services.contains(&t.service_id))
                && (nodes.is_empty() || nodes.contains(&t.node_id))
                && (desired.is_empty() || desired.contains(&t.desired_state))
                && (!up_to_date
                    || state
                        .services
                        .get(&t.service_id)
                        .is_some_and(|s| s.spec.task_template == t.spec))
        })
        .cloned()
        .collect();
    Ok(Json(out))
}

async fn task_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<swarm::Task>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.tasks.resolve(&id)?.clone()))
}

// ----- configs -----

async fn config_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Vec<swarm::Config>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::CONFIG_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(
        state
            .configs
            .iter()
            .filter(|c| {
                f.match_id_prefix(&c.id)
                    && f.match_name_prefix(&c.spec.name)
                    && f.match_labels("label", &c.spec.labels)
            })
            .cloned()
            .collect(),
    ))
}

async fn config_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<swarm::Config>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.configs.resolve(&id)?.clone()))
}

async fn config_create(State(d): S, body: Bytes) -> HttpResult<(StatusCode, Json<Value>)> {
    let spec: ConfigSpec = json(&body)?;
    let id = d.manager()?.create_config(spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))))
}

async fn config_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("config")?;
    let spec: ConfigSpec = json(&body)?;
    d.manager()?.update_config(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

async fn config_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_config(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- secrets (their data never leaves the managers through this API) -----

async fn secret_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Vec<swarm::Secret>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::SECRET_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    let names = f.get("names");
    Ok(Json(
        state
            .secrets
            .iter()
            .filter(|s| {
                f.match_id_prefix(&s.id)
                    && f.match_name_prefix(&s.spec.name)
                    && (names.is_empty() || names.contains(&s.spec.name))
                    && f.match_labels("label", &s.spec.labels)
            })
            .map(|s| s.redacted())
            .collect(),
    ))
}

async fn secret_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<swarm::Secret>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.secrets.resolve(&id)?.redacted()))
}

async fn secret_create(State(d): S, body: Bytes) -> HttpResult<(StatusCode, Json<Value>)> {
    let spec: SecretSpec = json(&body)?;
    let id = d.manager()?.create_secret(spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))))
}

async fn secret_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("secret")?;
    let spec: SecretSpec = json(&body)?;
    d.manager()?.update_secret(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

async fn secret_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_secret(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- networks -----

fn network_matches(f: &Filters, n: &NetworkResource) -> bool {
    f.match_regex("name", &n.name)
        && f.match_regex("id", &n.id)
        && f.match_labels("label", &n.labels)
        && f.match_exact("driver", &n.driver)
        && f.match_exact("scope", &n.scope)
        && f.match_exact("type", "custom")
}

async fn network_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<NetworkResource>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::NETWORK_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    let dangling = f.contains("dangling");
    Ok(Json(
        state
            .networks
            .iter()
            .filter(|n| {
                !dangling
                    || !state.services.iter().any(|s| {
                        s.spec
                            .task_template
                            .networks
                            .iter()
                            .any(|a| a.target == n.id)
                    })
            })
            .map(NetworkResource::from)
            .filter(|n| network_matches(&f, n))
            .collect(),
    ))
}

async fn network_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<NetworkResource>> {
    let m = match d.manager() {
        Ok(m) => m,
        Err(_) => {
            return Err(HttpError::not_found(format!("network {id} not found")));
        }
    };
    let state = m.replica().read();
    let n = state
        .networks
        .resolve(&id)
        .map_err(|_| HttpError::not_found(format!("network {id} not found")))?;
    Ok(Json(NetworkResource::from(n)))
}

async fn network_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<NetworkCreateResponse>)> {
    let req: NetworkCreateRequest = json(&body)?;
    if req.name.is_empty() {
        return Err(HttpError::bad_request("network name must not be empty"));
    }
    let id = d.manager()?.create_network(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id,
            warning: String::new(),
        }),
    ))
}

async fn network_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn network_prune(State(d): S) -> HttpResult<Json<Value>> {
    let m = d.manager()?;
    let unused: Vec<(String, String)> = {
        let state = m.replica().read();
        state
            .networks
            .iter()
            .filter(|n| !n.spec.ingress)
            .filter(|n| {
                !state.services.iter().any(|s| {
                    s.spec
                        .task_template
                        .networks
                        .iter()
                        .chain(s.spec.networks.iter())
                        .any(|a| a.target == n.id)
                })
            })
            .map(|n| (n.id.clone(), n.spec.name.clone()))
            .collect()
    };
    let mut deleted = Vec::new();
    for (id, name) in unused {
        if m.remove_network(&id).await.is_ok() {
            deleted.push(name);
        }
    }
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}

/// The CLI asks for an image's digest before it creates a service; no registry is
/// reachable from a shoal manager, so it is told so and goes on without a digest.
async fn distribution(Path(name): Path<String>) -> HttpError {
    let image = name.strip_suffix("/json").unwrap_or(&name);
    HttpError(
        StatusCode::NOT_FOUND,
        format!("no registry is reachable from this manager to resolve {image}"),
    )
}
