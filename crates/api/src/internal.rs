//! Node-to-node routes: Raft RPCs, join, heartbeat, leave, forwarded writes, task assignments
//! and status, task logs, the routing mesh's routes and pipes, the network view and attachments.

use crate::error::{HttpError, HttpResult};
use crate::query::internal_json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use shoal_manager::cluster::logs::{LogsReq, PATH_LOGS};
use shoal_manager::cluster::netview::{PATH_NET_ATTACH, PATH_NET_DETACH, PATH_NET_VIEW};
use shoal_manager::internal::*;
use shoal_manager::{Caller, Daemon};
use shoal_net::mesh::{self, PipeError};
use shoal_raft::limits::{MAX_APPEND_BYTES, MAX_PROPOSAL_BYTES, MAX_SNAPSHOT_BYTES};
use shoal_raft::tls::PeerIdentity;
use shoal_raft::{AppendResp, PreVoteResp, SnapshotResp, VoteResp};
use shoal_store::{Request as Proposal, Response};
use shoal_types::engine_call::{EngineReq, PATH_ENGINE};
use shoal_types::mesh::{IngressPorts, MeshPipeReq, MeshRoutesReq, MeshRoutesResp};
use shoal_types::netview::{NetAttachReq, NetAttachResp, NetDetachReq, NetView, NetViewReq};
use std::sync::Arc;

type S = State<Arc<Daemon>>;

/// The peer of a node-port connection, from the certificate it presented in the TLS
/// handshake (none: a node that joins). The server puts it in every request's extensions.
#[derive(Clone, Default)]
pub struct Peer(pub Option<Arc<PeerIdentity>>);

impl Peer {
    fn id(&self) -> Option<&PeerIdentity> {
        self.0.as_deref()
    }
}

type P = axum::Extension<Peer>;

/// What anyone may send before proving who they are (a join), and small Raft messages.
pub(crate) const SMALL_BODY: usize = 64 << 10;
/// A node's own messages: heartbeats with its description, long polls, attachments.
const NODE_BODY: usize = 256 << 10;
/// A node's report of its tasks' states (a few hundred bytes a task).
const TASK_STATUS_BODY: usize = 8 << 20;

/// Every route names the largest body it reads: a larger one is refused with 413 before it
/// is read (or as soon as it passes the limit, when its length is not announced).
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route(
            "/internal/raft/append",
            limited(post(append), MAX_APPEND_BYTES),
        )
        .route("/internal/raft/vote", limited(post(vote), SMALL_BODY))
        .route(
            "/internal/raft/snapshot",
            limited(post(snapshot), MAX_SNAPSHOT_BYTES),
        )
        .route(
            "/internal/raft/prevote",
            limited(post(pre_vote), SMALL_BODY),
        )
        .route(PATH_JOIN, limited(post(join), SMALL_BODY))
        .route(PATH_NODE_CERT, limited(post(node_cert), NODE_BODY))
        .route(PATH_HEARTBEAT, limited(post(heartbeat), NODE_BODY))
        .route(PATH_RAFT_JOIN, limited(post(raft_join), NODE_BODY))
        .route(PATH_LEAVE, limited(post(leave), NODE_BODY))
        .route(PATH_PROPOSE, limited(post(propose), MAX_PROPOSAL_BYTES))
        .route(PATH_ASSIGNMENTS, limited(post(assignments), NODE_BODY))
        .route(
            PATH_TASK_STATUS,
            limited(post(task_status), TASK_STATUS_BODY),
        )
        .route(PATH_LOGS, limited(post(logs), NODE_BODY))
        .route(PATH_ENGINE, limited(post(engine), NODE_BODY))
        .route(PATH_MESH_ROUTES, limited(post(mesh_routes), NODE_BODY))
        .route(PATH_MESH, limited(post(mesh_pipe), SMALL_BODY))
        .route(PATH_NET_VIEW, limited(post(net_view), NODE_BODY))
        .route(PATH_NET_ATTACH, limited(post(net_attach), NODE_BODY))
        .route(PATH_NET_DETACH, limited(post(net_detach), NODE_BODY))
}

/// A route whose body may hold at most `max` bytes.
fn limited<St>(route: MethodRouter<St>, max: usize) -> MethodRouter<St>
where
    St: Clone + Send + Sync + 'static,
{
    route.layer(middleware::from_fn(move |req: Request, next: Next| {
        limit_body(max, req, next)
    }))
}

async fn limit_body(max: usize, req: Request, next: Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return too_large(max).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, max).map_err(move |e| {
        if e.is::<http_body_util::LengthLimitError>() {
            Box::new(TooLarge(max)) as axum::BoxError
        } else {
            e
        }
    });
    next.run(Request::from_parts(parts, Body::new(body))).await
}

/// A body past its route's limit.
#[derive(Debug, thiserror::Error)]
#[error("request body is larger than {0} bytes, the most this route takes")]
struct TooLarge(usize);

fn too_large(max: usize) -> HttpError {
    HttpError(StatusCode::PAYLOAD_TOO_LARGE, TooLarge(max).to_string())
}

/// Reads a (limited) body and decodes its JSON.
async fn read_json<T: DeserializeOwned>(body: Body) -> HttpResult<T> {
    match body.collect().await {
        Ok(b) => internal_json(&b.to_bytes()),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if let Some(l) = s.downcast_ref::<TooLarge>() {
                    return Err(too_large(l.0));
                }
                source = s.source();
            }
            Err(HttpError::bad_request(format!(
                "cannot read the request body: {e}"
            )))
        }
    }
}

/// The bearer credential of a node-to-node call.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// What the headers alone tell of a call about a node, before its body is read: a node's
/// `ID:SECRET` must be that node's, anything else a manager's. The body's node is checked
/// once it is read.
fn authorize_node_headers(d: &Daemon, peer: &Peer, headers: &HeaderMap) -> HttpResult<()> {
    let b = bearer(headers);
    // A manager's credential comes from a manager, or from a node that was one a moment ago
    // (demoted, it asks for its worker's certificate): its certificate says which node.
    let who = b
        .and_then(|b| b.split_once(':'))
        .map(|(who, _)| who)
        .or_else(|| peer.id().map(|p| p.node_id.as_str()))
        .unwrap_or_default();
    d.authorize(peer.id(), b, Caller::Node(who))?;
    Ok(())
}

/// Reads the body of a call about a node (after [`authorize_node_headers`]) and checks the
/// credential against the node it names.
async fn read_node_call<T: DeserializeOwned>(
    d: &Daemon,
    peer: &Peer,
    headers: &HeaderMap,
    body: Body,
    node_of: impl Fn(&T) -> &str,
) -> HttpResult<T> {
    authorize_node_headers(d, peer, headers)?;
    let req: T = read_json(body).await?;
    d.authorize(peer.id(), bearer(headers), Caller::Node(node_of(&req)))?;
    Ok(req)
}

/// This node's ID, when a call a manager sent to a node (`/internal/logs`, `/internal/engine`)
/// names this node: a call meant for another node is refused (409), as is any call before
/// this node is in a swarm (503).
pub(crate) fn this_node(d: &Daemon, addressed_to: &str) -> HttpResult<String> {
    addressed_here(d.node_id(), addressed_to)
}

/// [`this_node`] once this node's ID (none outside a swarm) is known.
fn addressed_here(me: Option<String>, addressed_to: &str) -> HttpResult<String> {
    let me = me.ok_or_else(|| {
        HttpError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node is not part of a swarm".into(),
        )
    })?;
    if addressed_to != me {
        return Err(HttpError(
            StatusCode::CONFLICT,
            format!("node {addressed_to} is not this node ({me})"),
        ));
    }
    Ok(me)
}

async fn net_view(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<NetView>> {
    let req: NetViewReq =
        read_node_call(&d, &peer, &headers, body, |r: &NetViewReq| &r.node_id).await?;
    Ok(Json(d.internal_net_view(req).await?))
}

async fn net_attach(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<NetAttachResp>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &NetAttachReq| &r.node_id).await?;
    Ok(Json(d.internal_net_attach(req).await?))
}

async fn net_detach(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &NetDetachReq| &r.node_id).await?;
    d.internal_net_detach(req).await?;
    Ok(Json(()))
}

async fn append(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<AppendResp>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.append(read_json(body).await?).await))
}

async fn vote(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<VoteResp>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.vote(read_json(body).await?).await))
}

async fn snapshot(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<SnapshotResp>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.snapshot(read_json(body).await?).await))
}

async fn pre_vote(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
) -> HttpResult<Json<PreVoteResp>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    Ok(Json(d.raft_node()?.pre_vote()))
}

/// A node asks for a new certificate (promotion, demotion, renewal), with its current one.
async fn node_cert(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<NodeCertResp>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &NodeCertReq| &r.node_id).await?;
    Ok(Json(d.internal_node_cert(req).await?))
}

/// A join proves itself with its token, inside the body: the body is small. It is the one
/// route a caller without a certificate may use.
async fn join(State(d): S, body: Body) -> HttpResult<Json<JoinResp>> {
    Ok(Json(d.internal_join(read_json(body).await?).await?))
}

async fn heartbeat(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<HeartbeatResp>> {
    // A removed node still learns that it was removed: its credential is checked as a
    // heartbeat's, not as a member's.
    let b = bearer(&headers);
    // A manager that was demoted still reports with the managers' credential until it learns
    // it: its certificate says which node it is.
    let who = b
        .and_then(|b| b.split_once(':'))
        .map(|(who, _)| who)
        .or_else(|| peer.id().map(|p| p.node_id.as_str()))
        .unwrap_or_default();
    d.authorize(peer.id(), b, Caller::Heartbeat(who))?;
    let req: HeartbeatReq = read_json(body).await?;
    d.authorize(peer.id(), b, Caller::Heartbeat(&req.node_id))?;
    Ok(Json(d.internal_heartbeat(req).await?))
}

async fn raft_join(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &RaftJoinReq| &r.node_id).await?;
    d.internal_raft_join(req).await?;
    Ok(Json(()))
}

async fn leave(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &LeaveReq| &r.node_id).await?;
    d.internal_leave(req).await?;
    Ok(Json(()))
}

async fn propose(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<Response>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let req: Proposal = read_json(body).await?;
    Ok(Json(d.internal_propose(req).await?))
}

async fn assignments(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<AssignmentsResp>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &AssignmentsReq| &r.node_id).await?;
    Ok(Json(d.internal_assignments(req).await?))
}

async fn task_status(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &TaskStatusReq| &r.node_id).await?;
    d.internal_task_status(req).await?;
    Ok(Json(()))
}

/// A manager asks this node (manager or worker) for the log of a task it ran.
async fn logs(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<axum::response::Response> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let req: LogsReq = read_json(body).await?;
    crate::docker::logs::node_logs(&d, req).await
}

/// A manager asks this node's engine for something the Docker API shows (volumes, disk usage).
async fn engine(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<serde_json::Value>> {
    d.authorize(peer.id(), bearer(&headers), Caller::Manager)?;
    let req: EngineReq = read_json(body).await?;
    crate::docker::node_engine::node_engine(&d, req).await
}

async fn mesh_routes(
    State(d): S,
    axum::Extension(peer): P,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<MeshRoutesResp>> {
    let req = read_node_call(&d, &peer, &headers, body, |r: &MeshRoutesReq| &r.node_id).await?;
    Ok(Json(d.internal_mesh_routes(req).await?))
}

/// Another node's routing mesh opens a pipe to one of this node's tasks: once the task's port
/// is reached, the connection is upgraded into raw bytes and handed to the mesh
/// (`shoal_net::mesh`), which copies them both ways.
async fn mesh_pipe(
    State(d): S,
    axum::Extension(ingress): axum::Extension<IngressPorts>,
    axum::Extension(peer): P,
    mut request: Request,
) -> HttpResult<axum::response::Response> {
    d.authorize(peer.id(), bearer(request.headers()), Caller::Mesh)?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    let req: MeshPipeReq = read_json(request.into_body()).await?;
    let me = d.node_id().unwrap_or_default();
    let task = mesh::connect_task(&ingress, &me, &req).await.map_err(|e| {
        let status = match e {
            PipeError::NotThisNode { .. } => StatusCode::CONFLICT,
            PipeError::NoSuchPort { .. } => StatusCode::NOT_FOUND,
            PipeError::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        HttpError(status, e.to_string())
    })?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => task.join(hyper_util::rt::TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!(task = %req.task_id, "mesh pipe was not upgraded: {e}"),
        }
    });
    axum::response::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, shoal_raft::transport::PIPE_PROTOCOL)
        .body(axum::body::Body::empty())
        .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tower::ServiceExt;

    /// A route like the node port's: limited, reading JSON.
    fn echo(max: usize) -> Router {
        async fn h(body: Body) -> HttpResult<Json<serde_json::Value>> {
            Ok(Json(read_json(body).await?))
        }
        Router::new().route("/x", limited(post(h), max))
    }

    async fn call(router: Router, length: Option<String>, chunks: Vec<Vec<u8>>) -> StatusCode {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
        );
        let mut req = http::Request::post("/x");
        if let Some(l) = length {
            req = req.header(header::CONTENT_LENGTH, l);
        }
        let req = req.body(Body::from_stream(stream)).unwrap();
        router.oneshot(req).await.unwrap().status()
    }

    #[test]
    fn a_call_for_another_node_or_before_a_swarm_is_refused() {
        assert_eq!(addressed_here(Some("n1".into()), "n1").unwrap(), "n1");
        let other = addressed_here(Some("n1".into()), "n2").unwrap_err();
        assert_eq!(other.0, StatusCode::CONFLICT);
        assert_eq!(other.1, "node n2 is not this node (n1)");
        let outside = addressed_here(None, "n1").unwrap_err();
        assert_eq!(outside.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(outside.1, "this node is not part of a swarm");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_with_413_announced_or_not() {
        let big = vec![b' '; 100];
        let status = call(echo(64), Some("100".into()), vec![big.clone()]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let status = call(echo(64), None, vec![big[..50].to_vec(), big[50..].to_vec()]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let status = call(echo(64), None, vec![b"{\"a\": 1}".to_vec()]).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Every message type the node port decodes, fed the same bytes.
    fn decode_every_message(bytes: &[u8]) {
        let b = bytes::Bytes::copy_from_slice(bytes);
        let _ = internal_json::<shoal_raft::AppendReq>(&b);
        let _ = internal_json::<shoal_raft::VoteReq>(&b);
        let _ = internal_json::<shoal_raft::SnapshotReq>(&b);
        let _ = internal_json::<JoinReq>(&b);
        let _ = internal_json::<HeartbeatReq>(&b);
        let _ = internal_json::<LeaveReq>(&b);
        let _ = internal_json::<Proposal>(&b);
        let _ = internal_json::<AssignmentsReq>(&b);
        let _ = internal_json::<TaskStatusReq>(&b);
        let _ = internal_json::<LogsReq>(&b);
        let _ = internal_json::<MeshRoutesReq>(&b);
        let _ = internal_json::<MeshPipeReq>(&b);
        let _ = internal_json::<NetViewReq>(&b);
        let _ = internal_json::<NetAttachReq>(&b);
        let _ = internal_json::<NetDetachReq>(&b);
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("node_id".to_string()),
                        Just("offset".to_string()),
                        Just("data".to_string()),
                        Just("meta".to_string()),
                        Just("vote".to_string()),
                        Just("entries".to_string()),
                        Just("token".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any bytes in any route's body get an answer: the JSON decodes or is a 400.
        #[test]
        fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            decode_every_message(&bytes);
        }

        #[test]
        fn any_json_decodes_or_is_refused(v in any_json()) {
            decode_every_message(&serde_json::to_vec(&v).unwrap());
        }

        /// Whatever length is announced and whatever is sent, a limited route answers 200,
        /// 400 or 413, never a server error.
        #[test]
        fn a_limited_route_answers_any_body_with_ok_400_or_413(
            length in proptest::option::of(prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                (0u64..200).prop_map(|n| n.to_string()),
                "\\PC{0,10}",
            ]),
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let status = rt.block_on(call(echo(64), length, chunks));
            prop_assert!(
                [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE]
                    .contains(&status),
                "{status}"
            );
        }
    }
}
