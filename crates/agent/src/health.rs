//! A container's health check, as Swarm uses it: a task whose container has one (from its spec
//! or its image) is RUNNING only once the check passes, and FAILED ("container unhealthy") when
//! it fails. Level-triggered: the engine's events only wake the watch up, every decision comes
//! from inspecting the container, so a missed event costs a few seconds, never a wrong state.

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use futures::StreamExt;

use crate::engine::EngineError;
use crate::runtime::Runtime;

/// Swarm's error for a task whose container turned unhealthy.
pub const UNHEALTHY: &str = "container unhealthy";

/// How often the container is inspected when no event comes.
const POLL: Duration = Duration::from_secs(5);

/// What settled the container's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Healthy,
    Unhealthy,
    /// The container stopped running first.
    Exited,
}

/// Whether the container runs a health check (`["NONE"]` disables the image's).
pub fn has_healthcheck(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .and_then(|t| t.first())
        .is_some_and(|first| first != "NONE")
}

/// Waits until the container is healthy (when `until_healthy`), unhealthy, or exited.
pub async fn watch(
    engine: &dyn Runtime,
    id: &str,
    until_healthy: bool,
) -> Result<Outcome, EngineError> {
    let mut events = engine.container_events(id).ok();
    loop {
        let inspect = engine.inspect_container(id).await?;
        let state = inspect.state.unwrap_or_default();
        if state.running != Some(true) {
            return Ok(Outcome::Exited);
        }
        match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) if until_healthy => return Ok(Outcome::Healthy),
            Some(HealthStatusEnum::UNHEALTHY) => return Ok(Outcome::Unhealthy),
            _ => {}
        }
        let woken = match events.as_mut() {
            Some(stream) => tokio::time::timeout(POLL, stream.next()).await,
            None => {
                tokio::time::sleep(POLL).await;
                Ok(None)
            }
        };
        // A broken event stream is opened again; until then the poll goes on.
        if let Ok(None | Some(Err(_))) = woken {
            tokio::time::sleep(Duration::from_millis(500)).await;
            events = engine.container_events(id).ok();
        }
    }
}
