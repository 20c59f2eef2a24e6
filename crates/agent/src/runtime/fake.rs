//! A container runtime in memory, for the tests of this crate: images that are present or can
//! be pulled, containers that run until stopped or exit at once with a code their image was
//! given, images with a health check whose status the test sets (with the engine's events
//! for it), and the calls it received in order. Enough to drive the task state machine through
//! every path without an engine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    ContainerSummary, EndpointSettings, Health, HealthConfig, HealthStatusEnum, ImageInspect,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use shoal_types::registry::RegistryAuth;
use shoal_types::swarm::{Network, NetworkAttachment};

use super::Runtime;
use crate::engine::EngineError;
use crate::networks::{PendingAddresses, PendingHold};

#[derive(Debug, Clone)]
pub(crate) struct FakeContainer {
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    pub exit_code: i64,
    /// The health check's status, for an image with one.
    pub health: Option<HealthStatusEnum>,
}

#[derive(Default)]
struct State {
    images: HashSet<String>,
    pullable: HashSet<String>,
    /// Images whose containers exit at once with this code when started.
    exits: HashMap<String, i64>,
    /// Images with a health check.
    checked: HashSet<String>,
    containers: BTreeMap<String, FakeContainer>,
    next_id: u64,
    calls: Vec<String>,
}

pub(crate) struct FakeRuntime {
    state: Mutex<State>,
    pending: PendingAddresses,
    /// The engine's events of every container: (container ID, action).
    events: tokio::sync::broadcast::Sender<(String, String)>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            pending: PendingAddresses::default(),
            events: tokio::sync::broadcast::channel(64).0,
        }
    }
}

fn not_found(message: String) -> EngineError {
    EngineError::NotFound { message }
}

impl FakeRuntime {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An image the runtime has.
    pub fn with_image(self, image: &str) -> Self {
        self.state().images.insert(image.to_string());
        self
    }

    /// An image a pull brings.
    pub fn with_pullable(self, image: &str) -> Self {
        self.state().pullable.insert(image.to_string());
        self
    }

    /// An image whose containers exit at once with `code` when started.
    pub fn with_exit(self, image: &str, code: i64) -> Self {
        {
            let mut s = self.state();
            s.images.insert(image.to_string());
            s.exits.insert(image.to_string(), code);
        }
        self
    }

    /// An image the runtime has, whose containers run a health check (status `starting`
    /// until the test sets it, see [`FakeRuntime::set_health`]).
    pub fn with_healthcheck(self, image: &str) -> Self {
        {
            let mut s = self.state();
            s.images.insert(image.to_string());
            s.checked.insert(image.to_string());
        }
        self
    }

    /// The container's health check now says `status`, and the engine's event says so.
    pub fn set_health(&self, id: &str, status: HealthStatusEnum) {
        if let Some(c) = self.state().containers.get_mut(id) {
            c.health = Some(status);
        }
        let _ = self
            .events
            .send((id.to_string(), format!("health_status: {status}")));
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    pub fn container_ids(&self) -> Vec<String> {
        self.state().containers.keys().cloned().collect()
    }

    pub fn containers(&self) -> Vec<FakeContainer> {
        self.state().containers.values().cloned().collect()
    }

    /// Makes a running container exit with `code`, as if its process ended.
    pub fn exit(&self, id: &str, code: i64) {
        if let Some(c) = self.state().containers.get_mut(id) {
            c.running = false;
            c.exit_code = code;
        }
        let _ = self.events.send((id.to_string(), "die".into()));
    }

    fn container(&self, id: &str) -> Result<FakeContainer, EngineError> {
        self.state()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("No such container: {id}")))
    }
}

impl Runtime for FakeRuntime {
    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageInspect, EngineError>> {
        let found = self.state().images.contains(image);
        Box::pin(async move {
            if !found {
                return Err(not_found(format!("No such image: {image}")));
            }
            Ok(ImageInspect {
                id: Some(format!("sha256:{image}")),
                repo_tags: Some(vec![image.to_string()]),
                ..Default::default()
            })
        })
    }

    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        _auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        let pulled = {
            let mut s = self.state();
            s.calls.push(format!("pull {image}"));
            let ok = s.pullable.contains(image);
            if ok {
                s.images.insert(image.to_string());
            }
            ok
        };
        Box::pin(async move {
            if pulled {
                Ok(())
            } else {
                Err(not_found(format!(
                    "pull access denied for {image}, repository does not exist"
                )))
            }
        })
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ContainerSummary>, EngineError>> {
        let found = self
            .state()
            .containers
            .iter()
            .filter(|(_, c)| {
                labels.iter().all(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    c.labels.get(k).map(String::as_str) == Some(v)
                })
            })
            .map(|(id, c)| ContainerSummary {
                id: Some(id.clone()),
                names: Some(vec![format!("/{}", c.name)]),
                labels: Some(c.labels.clone()),
                ..Default::default()
            })
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn create_container<'a>(
        &'a self,
        name: &'a str,
        body: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, EngineError>> {
        let id = {
            let mut s = self.state();
            s.next_id += 1;
            let id = format!("c{}", s.next_id);
            s.calls.push(format!("create {name}"));
            let image = body.image.clone().unwrap_or_default();
            let health = s
                .checked
                .contains(&image)
                .then_some(HealthStatusEnum::STARTING);
            s.containers.insert(
                id.clone(),
                FakeContainer {
                    name: name.to_string(),
                    image,
                    labels: body.labels.unwrap_or_default(),
                    running: false,
                    exit_code: 0,
                    health,
                },
            );
            id
        };
        Box::pin(async move { Ok(id) })
    }

    fn ensure_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(async move { Ok(n.spec.name.clone()) })
    }

    fn connect_network<'a>(
        &'a self,
        _network: &'a str,
        _container: &'a str,
        _settings: EndpointSettings,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async { Ok(()) })
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        let result = {
            let mut s = self.state();
            s.calls.push(format!("start {id}"));
            let exit = s.containers.get(id).map(|c| s.exits.get(&c.image).copied());
            match (exit, s.containers.get_mut(id)) {
                (Some(code), Some(c)) => {
                    c.running = code.is_none();
                    c.exit_code = code.unwrap_or(0);
                    Ok(())
                }
                _ => Err(not_found(format!("No such container: {id}"))),
            }
        };
        Box::pin(async move { result })
    }

    fn inspect_container<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ContainerInspectResponse, EngineError>> {
        let found = self.container(id);
        Box::pin(async move {
            let c = found?;
            Ok(ContainerInspectResponse {
                id: Some(id.to_string()),
                name: Some(format!("/{}", c.name)),
                state: Some(ContainerState {
                    running: Some(c.running),
                    exit_code: Some(c.exit_code),
                    pid: Some(if c.running { 4242 } else { 0 }),
                    health: c.health.map(|status| Health {
                        status: Some(status),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                config: Some(ContainerConfig {
                    image: Some(c.image.clone()),
                    labels: Some(c.labels.clone()),
                    healthcheck: c.health.map(|_| HealthConfig {
                        test: Some(vec!["CMD".into(), "true".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
    }

    fn stop_container<'a>(
        &'a self,
        id: &'a str,
        _grace: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        let result = {
            let mut s = self.state();
            s.calls.push(format!("stop {id}"));
            match s.containers.get_mut(id) {
                Some(c) => {
                    if c.running {
                        c.running = false;
                        c.exit_code = 143;
                    }
                    Ok(())
                }
                None => Err(not_found(format!("No such container: {id}"))),
            }
        };
        Box::pin(async move { result })
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        let result = {
            let mut s = self.state();
            s.calls.push(format!("remove {id}"));
            match s.containers.remove(id) {
                Some(_) => Ok(()),
                None => Err(not_found(format!("No such container: {id}"))),
            }
        };
        Box::pin(async move { result })
    }

    fn wait_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            loop {
                if !self.container(id)?.running {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }

    fn container_events(
        &self,
        id: &str,
    ) -> Result<BoxStream<'static, Result<String, EngineError>>, EngineError> {
        let id = id.to_string();
        let events = futures::stream::unfold(self.events.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(events
            .filter_map(move |(of, action)| {
                let mine = of == id;
                async move { mine.then_some(Ok(action)) }
            })
            .boxed())
    }

    fn hold_addresses(&self, attachments: &[NetworkAttachment]) -> PendingHold {
        self.pending.hold(attachments)
    }
}
