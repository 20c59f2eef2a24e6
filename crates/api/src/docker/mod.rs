//! The Docker Engine API's swarm routes, one file per resource. Handlers only parse, call
//! the manager or read the replica, and shape Docker's JSON.

use crate::error::{HttpError, HttpResult};
use crate::query::{json, json_or_default, Query};
use crate::server::{API_VERSION, MIN_API_VERSION};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use shoal_manager::{Daemon, Role};
use shoal_store::State as ClusterState;
use shoal_types::filters::{self, Filters};
use shoal_types::network::{NetworkCreateRequest, NetworkCreateResponse, NetworkResource};
use shoal_types::swarm::{
    self, ConfigSpec, InitRequest, JoinRequest, LocalNodeState, Node, NodeSpec, Peer, SecretSpec,
    Service, ServiceSpec, ServiceStatus, Spec, Swarm, TaskState, UnlockKeyResponse, UnlockRequest,
};
use shoal_types::system;
use std::collections::HashMap;
use std::sync::Arc;

mod cluster;
mod configs;
mod disk_usage;
mod distribution;
mod events;
mod info;
pub(crate) mod logs;
mod networks;
pub(crate) mod node_engine;
mod nodes;
mod secrets;
mod services;
mod tasks;
mod volumes;

use cluster::*;
use configs::*;
use disk_usage::*;
use distribution::*;
use events::*;
use info::*;
use logs::*;
use networks::*;
use nodes::*;
use secrets::*;
use services::*;
use tasks::*;
use volumes::*;

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
        .route("/tasks/{id}/logs", get(task_logs))
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
        .route("/events", get(events))
        .route("/volumes", get(volume_list))
        .route("/volumes/create", post(volume_create))
        .route("/volumes/prune", post(volume_prune))
        .route(
            "/volumes/{*name}",
            get(volume_inspect).delete(volume_remove),
        )
        .route("/system/df", get(system_df))
}
