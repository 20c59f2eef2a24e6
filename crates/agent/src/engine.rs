//! The local Docker Engine as a container runtime: a thin layer over bollard (and raw HTTP for
//! pulls, see [`Engine::pull_image`]) that speaks API 1.41 on the engine's unix socket and turns its failures into [`EngineError`]s that say which
//! engine and which object failed. It knows nothing about tasks; it must not use swarm mode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ImageInspect,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures::stream::BoxStream;
use futures::StreamExt;
use shoal_types::registry::RegistryAuth;

/// The API version shoal speaks: what dockerd 20.10 offers, and all the agent needs.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// How long a plain request may take before the engine counts as unresponsive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a pull may take (a large image over a slow link).
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Something the engine could not do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing answers on the socket (missing, refused, timed out).
    #[error("the Docker Engine at {} is unreachable: {reason}", path.display())]
    Unreachable { path: PathBuf, reason: String },
    /// The object does not exist; `message` is the engine's own words ("No such image: …").
    #[error("{message}")]
    NotFound { message: String },
    /// The engine answered with an error.
    #[error("{message}")]
    Failed { status: u16, message: String },
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }
}

/// A handle on one engine socket. Cheap to clone; each call opens its own connection, so an
/// engine that comes back after a restart is used again without any reconnect logic.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
    /// The name the node's network plugin is served under on this engine.
    network_driver: String,
    /// Addresses of task containers being started, for the node's network plugin.
    pending: crate::networks::PendingAddresses,
}

/// One engine network creation at a time in this process: tasks that start together (and
/// the overlay's attachable networks) must not each create the same network, which engines
/// before API 1.44 allow.
static NETWORK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Engine {
    pub fn new(socket: impl Into<PathBuf>) -> Engine {
        Engine {
            socket: socket.into(),
            network_driver: crate::networks::DRIVER.to_string(),
            pending: Default::default(),
        }
    }

    /// The engine whose shoal networks use the plugin served as `driver`.
    pub fn with_network_driver(mut self, driver: impl Into<String>) -> Engine {
        self.network_driver = driver.into();
        self
    }

    /// Shares `pending` with the node's network plugin (see [`crate::networks::PendingAddresses`]).
    pub fn with_pending_addresses(mut self, pending: crate::networks::PendingAddresses) -> Engine {
        self.pending = pending;
        self
    }

    /// Marks the task's addresses as about to be taken by its container, until dropped.
    pub fn hold_addresses(
        &self,
        attachments: &[shoal_types::swarm::NetworkAttachment],
    ) -> crate::networks::PendingHold {
        self.pending.hold(attachments)
    }

    pub fn network_driver(&self) -> &str {
        &self.network_driver
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn client(&self, timeout: Duration) -> Result<Docker, EngineError> {
        let path = self.socket.to_string_lossy();
        Docker::connect_with_unix(&path, timeout.as_secs().max(1), &API_VERSION)
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound { message },
            B::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Failed {
                status: status_code,
                message,
            },
            B::DockerStreamError { error } => EngineError::Failed {
                status: 500,
                message: error,
            },
            B::SocketNotFoundError(_) => EngineError::Unreachable {
                path: self.socket.clone(),
                reason: "no such socket".into(),
            },
            B::RequestTimeoutError => EngineError::Unreachable {
                path: self.socket.clone(),
                reason: "no answer in time".into(),
            },
            other => EngineError::Unreachable {
                path: self.socket.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let docker = self.client(Duration::from_secs(10))?;
        docker.ping().await.map(drop).map_err(|e| self.error(e))
    }

    /// The image as the engine has it (`GET /images/{name}/json`); the error of a missing
    /// image is the engine's "No such image: NAME".
    pub async fn inspect_image(&self, image: &str) -> Result<ImageInspect, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        docker.inspect_image(image).await.map_err(|e| self.error(e))
    }

    /// Pulls one image reference; a reference without a tag pulls `latest`, never every tag.
    /// `auth` goes to the engine as the pull's `X-Registry-Auth` (the service's
    /// `--with-registry-auth` credentials), base64url-encoded as the engine decodes it (a
    /// client library's standard base64 would make the engine drop credentials whose
    /// encoding has a `+` or `/`, silently). Raw HTTP on the engine's socket, for that.
    pub async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), EngineError> {
        use http_body_util::{BodyExt, Empty};
        let mut query = format!("fromImage={}", query_escape(image));
        if !has_tag_or_digest(image) {
            query.push_str("&tag=latest");
        }
        let unreachable = |reason: String| EngineError::Unreachable {
            path: self.socket.clone(),
            reason,
        };
        let exchange = async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            tokio::spawn(conn);
            let mut req = http::Request::builder()
                .method(http::Method::POST)
                .uri(format!("/v1.41/images/create?{query}"))
                .header(http::header::HOST, "docker");
            if let Some(auth) = auth {
                let json = serde_json::to_vec(auth).unwrap_or_default();
                req = req.header("X-Registry-Auth", URL_SAFE.encode(json));
            }
            let req = req
                .body(Empty::<bytes::Bytes>::new())
                .map_err(|e| unreachable(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, EngineError>((status, body))
        };
        let (status, body) = tokio::time::timeout(PULL_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable("no answer in time".into()))??;
        pull_outcome(status.as_u16(), &body)
    }

    /// Containers (running or not) carrying every `key=value` label given.
    pub async fn list_containers(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.error(e))
    }

    /// Creates a container and returns its ID.
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map(|r| r.id)
            .map_err(|e| self.error(e))
    }

    /// Makes sure the engine has the local network for cluster network `n` (shoal's
    /// driver): creates it, or replaces a stale one of ours left from another cluster
    /// network. It is named like the cluster network, or `NAME-<ID prefix>` when the engine
    /// already has a network of that name that is not ours (another cluster's, or the
    /// user's). Returns the engine network's name.
    pub async fn ensure_network(
        &self,
        n: &shoal_types::swarm::Network,
    ) -> Result<String, EngineError> {
        use crate::networks::{create_request, NETWORK_ID_OPTION};
        let _one_at_a_time = NETWORK_LOCK.lock().await;
        let docker = self.client(REQUEST_TIMEOUT)?;
        self.remove_duplicate_networks(&n.spec.name, &n.id).await;
        let names = [
            n.spec.name.clone(),
            format!("{}-{}", n.spec.name, &n.id[..n.id.len().min(12)]),
        ];
        // Made before (under either name): nothing to do.
        for name in &names {
            if let Ok(existing) = docker.inspect_network(name, None).await {
                let labels = existing.labels.unwrap_or_default();
                if labels.get(NETWORK_ID_OPTION) == Some(&n.id) {
                    return Ok(name.clone());
                }
            }
        }
        let mut last = None;
        for name in names {
            for _ in 0..3 {
                match docker.inspect_network(&name, None).await {
                    Ok(existing) => {
                        let labels = existing.labels.clone().unwrap_or_default();
                        if labels.get(NETWORK_ID_OPTION) == Some(&n.id) {
                            return Ok(name);
                        }
                        let ours = existing.driver.as_deref() == Some(self.network_driver.as_str());
                        let used = existing.containers.as_ref().is_some_and(|c| !c.is_empty());
                        if !ours || used {
                            last = Some(EngineError::Failed {
                                status: 409,
                                message: format!(
                                    "the engine already has a network named {name} (driver {})",
                                    existing.driver.unwrap_or_default()
                                ),
                            });
                            break;
                        }
                        // Ours, unused, from a removed cluster network: replace it. The
                        // engine may still refuse (endpoints it kept from containers removed
                        // while no plugin answered): then the network takes the other name,
                        // never a second network under this one.
                        if let Err(e) = docker.remove_network(&name).await {
                            tracing::warn!(network = %name, error = %e, "cannot remove a stale engine network; using another name");
                            last = Some(self.error(e));
                            break;
                        }
                    }
                    Err(e) => {
                        let e = self.error(e);
                        if !e.is_not_found() {
                            return Err(e);
                        }
                    }
                }
                let mut req = create_request(n, &self.network_driver);
                req.name = name.clone();
                match docker.create_network(req).await {
                    Ok(_) => return Ok(name),
                    // Another task created it at the same moment: look again.
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        ..
                    }) => continue,
                    Err(e) => return Err(self.error(e)),
                }
            }
        }
        Err(last.unwrap_or_else(|| EngineError::Failed {
            status: 409,
            message: format!("could not create the engine network for {}", n.spec.name),
        }))
    }

    /// Engines before API 1.44 let two networks share a name, and then refuse to resolve it
    /// ("is ambiguous"): unused duplicates of ours go, keeping the one made for cluster
    /// network `id`, else the oldest.
    async fn remove_duplicate_networks(&self, name: &str, id: &str) {
        let Ok(docker) = self.client(REQUEST_TIMEOUT) else {
            return;
        };
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
            .filters(&HashMap::from([("name", vec![name])]))
            .build();
        let Ok(mut found) = docker.list_networks(Some(options)).await else {
            return;
        };
        found.retain(|n| {
            n.name.as_deref() == Some(name)
                && n.driver.as_deref() == Some(self.network_driver.as_str())
        });
        if found.len() < 2 {
            return;
        }
        use crate::networks::NETWORK_ID_OPTION;
        let foreign = |n: &bollard::models::Network| {
            n.labels.as_ref().and_then(|l| l.get(NETWORK_ID_OPTION)) != Some(&id.to_string())
        };
        found.sort_by(|a, b| (foreign(a), &a.created).cmp(&(foreign(b), &b.created)));
        for n in found.iter().skip(1) {
            let id = n.id.clone().unwrap_or_default();
            let used = docker
                .inspect_network(&id, None)
                .await
                .map(|i| i.containers.is_some_and(|c| !c.is_empty()))
                .unwrap_or(true);
            if !used {
                let _ = docker.remove_network(&id).await;
            }
        }
    }

    /// Connects a created container to one more network, with its settings.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        settings: bollard::models::EndpointSettings,
    ) -> Result<(), EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        docker
            .connect_network(
                network,
                bollard::models::NetworkConnectRequest {
                    container: container.to_string(),
                    endpoint_config: Some(settings),
                },
            )
            .await
            .map_err(|e| self.error(e))
    }

    /// The engine networks of shoal's driver: (engine ID, name, cluster network ID,
    /// containers on it).
    pub async fn shoal_networks(
        &self,
    ) -> Result<Vec<(String, String, String, usize)>, EngineError> {
        use crate::networks::NETWORK_ID_OPTION;
        let docker = self.client(REQUEST_TIMEOUT)?;
        let all = docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for n in all
            .into_iter()
            .filter(|n| n.driver.as_deref() == Some(self.network_driver.as_str()))
        {
            let name = n.name.clone().unwrap_or_default();
            let id = n
                .labels
                .as_ref()
                .and_then(|l| l.get(NETWORK_ID_OPTION))
                .cloned()
                .unwrap_or_default();
            // The list does not say who is attached; inspect does.
            let used = docker
                .inspect_network(&name, None)
                .await
                .map(|i| i.containers.map_or(0, |c| c.len()))
                .unwrap_or(0);
            out.push((n.id.clone().unwrap_or_default(), name, id, used));
        }
        Ok(out)
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        docker.remove_network(name).await.map_err(|e| self.error(e))
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        docker
            .start_container(id, None)
            .await
            .map_err(|e| self.error(e))
    }

    pub async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<ContainerInspectResponse, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.error(e))
    }

    /// Sends the container's stop signal, then kills it after `grace`, or after the
    /// container's own stop timeout when `None`. Stopping a container that is not running is
    /// not an error.
    pub async fn stop_container(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<(), EngineError> {
        // The request lasts as long as the grace period, so its timeout must outlast it.
        let docker = self.client(grace.unwrap_or(REQUEST_TIMEOUT) + REQUEST_TIMEOUT)?;
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(grace) = grace {
            options = options.t(grace_secs(grace));
        }
        docker
            .stop_container(id, Some(options.build()))
            .await
            .map_err(|e| self.error(e))
    }

    /// Removes a container with its anonymous volumes. A container already gone is not an
    /// error.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match self.error(e) {
                EngineError::NotFound { .. } => Ok(()),
                // "removal of container … is already in progress"
                EngineError::Failed { status: 409, .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// The container's health changes and exit from now on, as the engine's event actions
    /// (`health_status: healthy`, `health_status: unhealthy`, `die`). The request is sent when
    /// the stream is first polled.
    pub fn container_events(
        &self,
        id: &str,
    ) -> Result<BoxStream<'static, Result<String, EngineError>>, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let filters = HashMap::from([
            ("container".to_string(), vec![id.to_string()]),
            (
                "event".to_string(),
                vec!["health_status".to_string(), "die".to_string()],
            ),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        let engine = self.clone();
        Ok(docker
            .events(Some(options))
            .map(move |r| {
                r.map(|m| m.action.unwrap_or_default())
                    .map_err(|e| engine.error(e))
            })
            .boxed())
    }

    /// The engine's container events for the tasks of node `node_id` (containers labelled
    /// `com.docker.swarm.node.id=NODE`), as `GET /events` gives them: `since`/`until` are the
    /// Unix-seconds text the engine takes, `None` for "from now" / "until closed". The request
    /// is sent when the stream is first polled.
    pub fn task_events(
        &self,
        node_id: &str,
        since: Option<String>,
        until: Option<String>,
    ) -> Result<BoxStream<'static, Result<shoal_types::events::Message, EngineError>>, EngineError>
    {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={node_id}", crate::container::LABEL_NODE_ID)],
            ),
        ]);
        let mut options = EventsOptionsBuilder::default().filters(&filters);
        if let Some(since) = &since {
            options = options.since(since);
        }
        if let Some(until) = &until {
            options = options.until(until);
        }
        let engine = self.clone();
        Ok(docker
            .events(Some(options.build()))
            .map(move |r| r.map(event_message).map_err(|e| engine.error(e)))
            .boxed())
    }

    /// `GET /containers/{id}/logs` with timestamps: every message starts with the engine's
    /// RFC 3339 timestamp and a space. `since` is in whole seconds (0: from the start), `tail`
    /// a line count or `all`. With `follow` the stream lasts as long as the container runs;
    /// the request timeout covers only the engine's first answer. The request is sent when
    /// the stream is first polled.
    pub fn container_logs(
        &self,
        id: &str,
        follow: bool,
        stdout: bool,
        stderr: bool,
        since: i32,
        tail: &str,
    ) -> Result<BoxStream<'static, Result<LogOutput, EngineError>>, EngineError> {
        let docker = self.client(REQUEST_TIMEOUT)?;
        let options = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(stdout)
            .stderr(stderr)
            .since(since)
            .timestamps(true)
            .tail(tail)
            .build();
        let engine = self.clone();
        Ok(docker
            .logs(id, Some(options))
            .map(move |r| r.map_err(|e| engine.error(e)))
            .boxed())
    }

    /// Waits until the container is not running. Returns when it exits, or with an error
    /// when the connection breaks; the caller inspects the container for the exit code.
    pub async fn wait_container(&self, id: &str) -> Result<(), EngineError> {
        // Headers come back at once; the body waits for the exit, which the request timeout
        // does not cover.
        let docker = self.client(REQUEST_TIMEOUT)?;
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = docker.wait_container(id, Some(options));
        match stream.next().await {
            None | Some(Ok(_)) => Ok(()),
            // bollard turns a non-zero exit into an error; it still means "exited".
            Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) => Err(self.error(e)),
        }
    }
}

/// The engine counts stop timeouts in whole seconds; a partial second is rounded up.
pub fn grace_secs(grace: Duration) -> i32 {
    i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i32::MAX)
}

/// A query value percent-encoded (RFC 3986 unreserved characters kept).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a pull ended: the engine answers 200 and streams progress, with an `error` line when
/// it fails part-way; a refusal before the pull starts is a status with `message`.
fn pull_outcome(status: u16, body: &[u8]) -> Result<(), EngineError> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(if status == 404 {
            EngineError::NotFound { message }
        } else {
            EngineError::Failed { status, message }
        });
    }
    let failure = serde_json::Deserializer::from_slice(body)
        .into_iter::<serde_json::Value>()
        .filter_map(Result::ok)
        .find_map(|line| line["error"].as_str().map(str::to_string));
    match failure {
        Some(message) => Err(EngineError::Failed {
            status: 500,
            message,
        }),
        None => Ok(()),
    }
}

/// Whether an image reference names a tag or digest (`name:tag`, `name@sha256:…`); a registry
/// port (`host:5000/name`) is not a tag.
fn has_tag_or_digest(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains(':')
}

/// An engine event in shoal's wire type.
fn event_message(m: bollard::models::EventMessage) -> shoal_types::events::Message {
    let actor = m.actor.unwrap_or_default();
    let scope = m.scope.map(|s| s.to_string()).unwrap_or_default();
    shoal_types::events::Message {
        typ: m.typ.map(|t| t.to_string()).unwrap_or_default(),
        action: m.action.unwrap_or_default(),
        actor: shoal_types::events::Actor {
            id: actor.id.unwrap_or_default(),
            attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
        },
        scope,
        time: m.time.unwrap_or_default(),
        time_nano: m.time_nano.unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_fails_on_its_status_or_on_an_error_line_in_its_progress() {
        assert!(pull_outcome(200, b"{\"status\":\"Pulling\"}\n{\"status\":\"Done\"}\n").is_ok());
        let e = pull_outcome(
            200,
            b"{\"status\":\"Pulling\"}\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "denied");
        let e = pull_outcome(404, b"{\"message\":\"manifest unknown\"}").unwrap_err();
        assert!(
            e.is_not_found() && e.to_string() == "manifest unknown",
            "{e}"
        );
        let e = pull_outcome(500, b"oops").unwrap_err();
        assert_eq!(e.to_string(), "oops");
    }

    #[test]
    fn pull_references_are_escaped_in_the_query() {
        assert_eq!(
            query_escape("127.0.0.1:5000/a/b:1@sha256:ab"),
            "127.0.0.1%3A5000%2Fa%2Fb%3A1%40sha256%3Aab"
        );
        assert_eq!(query_escape("a&b=c d"), "a%26b%3Dc%20d");
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        assert!(!has_tag_or_digest("localhost:5000/web"));
        assert!(has_tag_or_digest("localhost:5000/web:1.2"));
        assert!(has_tag_or_digest("busybox:latest"));
        assert!(has_tag_or_digest("busybox@sha256:abc"));
        assert!(!has_tag_or_digest("busybox"));
    }

    #[tokio::test]
    async fn a_missing_socket_is_reported_as_unreachable_with_its_path() {
        let engine = Engine::new("/nonexistent/shoal-test.sock");
        let err = engine.ping().await.unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/shoal-test.sock"),
            "{err}"
        );
    }
}
