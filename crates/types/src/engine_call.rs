//! What a manager asks a node's engine for on behalf of the Docker API (volumes, disk usage,
//! local images): `/internal/engine` on the node port. A closed set of calls, so that a manager
//! cannot reach anything else of a node's engine through it. Answers are the engine's own JSON.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The node's route.
pub const PATH_ENGINE: &str = "/internal/engine";

/// One call to one node's engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineReq {
    /// The node the manager means; another node refuses the request.
    pub node_id: String,
    pub call: EngineCall,
}

/// The engine calls a manager may make, each as the engine's API names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineCall {
    /// `GET /volumes`: `VolumeListResponse`.
    VolumeList {
        filters: HashMap<String, Vec<String>>,
    },
    /// `GET /volumes/{name}`: `Volume`.
    VolumeInspect { name: String },
    /// `POST /volumes/create` with the client's body (`Name`, `Driver`, `DriverOpts`,
    /// `Labels`): `Volume`.
    VolumeCreate {
        name: String,
        driver: String,
        driver_opts: HashMap<String, String>,
        labels: HashMap<String, String>,
    },
    /// `DELETE /volumes/{name}`: nothing.
    VolumeRemove { name: String, force: bool },
    /// `POST /volumes/prune`: `VolumePruneResponse`.
    VolumePrune {
        filters: HashMap<String, Vec<String>>,
    },
    /// `GET /system/df`: `SystemDataUsageResponse`.
    SystemDf,
    /// `GET /images/{name}/json`: `ImageInspect` (`GET /distribution` resolves names with it).
    ImageInspect { name: String },
}
