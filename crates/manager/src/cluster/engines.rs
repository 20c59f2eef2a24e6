//! The nodes' engines as the Docker API sees them (volumes, disk usage): which nodes there
//! are, what each is called in the names the API shows (`NODE/VOLUME`), and the call that asks
//! one node's engine through `/internal/engine`.
//!
//! Nothing here reads an engine: the node that answers does (the API crate), and the API
//! crate merges the answers. A node is named by its hostname, or by its ID where several
//! nodes share a hostname, so that every name the API shows leads back to one node.

use super::*;
use futures::StreamExt;
use shoal_types::engine_call::{EngineCall, EngineReq, PATH_ENGINE};
use shoal_types::swarm::NodeState;

/// How long a node may take to answer an engine call.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read from a node (a disk usage report of many images and containers).
const MAX_ENGINE_ANSWER: usize = 32 << 20;

/// One node whose engine the API can ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineNode {
    pub node_id: String,
    /// What the API calls it in names: its hostname, or its ID when that is not unique.
    pub name: String,
    /// Its node-to-node address; `None` for this node.
    pub addr: Option<String>,
    /// Known to be down: not asked, reported as not available.
    pub down: bool,
}

impl Manager {
    /// Every node of the cluster, this one first, then by name.
    pub fn engine_nodes(&self) -> Vec<EngineNode> {
        let state = self.replica().read();
        let mut hostnames: HashMap<&str, usize> = HashMap::new();
        for n in state.nodes.iter() {
            *hostnames
                .entry(n.description.hostname.as_str())
                .or_default() += 1;
        }
        let mut nodes: Vec<EngineNode> = state
            .nodes
            .iter()
            .map(|n| {
                let host = n.description.hostname.as_str();
                let name = if host.is_empty() || hostnames.get(host).copied().unwrap_or(0) > 1 {
                    n.id.clone()
                } else {
                    host.to_string()
                };
                let me = n.id == self.identity.node_id;
                EngineNode {
                    node_id: n.id.clone(),
                    name,
                    addr: if me {
                        None
                    } else {
                        state.members.get(&n.id).map(|m| m.addr.clone())
                    },
                    down: !me
                        && (n.status.state == NodeState::Down
                            || !state.members.contains_key(&n.id)),
                }
            })
            .collect();
        nodes.sort_by(|a, b| (a.addr.is_some(), &a.name).cmp(&(b.addr.is_some(), &b.name)));
        nodes
    }

    /// Asks another node's engine. A node that does not answer is "not available", as Swarm
    /// says it; the engine's own refusals come back with their status.
    pub async fn engine_call(
        &self,
        node: &EngineNode,
        call: &EngineCall,
    ) -> Result<serde_json::Value> {
        let Some(addr) = node.addr.as_deref().filter(|_| !node.down) else {
            return Err(ApiError::Unavailable(format!(
                "node {} is not available",
                node.name
            )));
        };
        let bearer = self.keys.data_key.node_call_credential(&node.node_id);
        let req = EngineReq {
            node_id: node.node_id.clone(),
            call: call.clone(),
        };
        let read = async {
            let mut body = self
                .transport
                .post_stream(addr, PATH_ENGINE, &req, Some(&bearer), ENGINE_TIMEOUT)
                .await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if bytes.len() + chunk.len() > MAX_ENGINE_ANSWER {
                    return Err(TransportError::Decode {
                        addr: addr.to_string(),
                        msg: format!("the answer is larger than {MAX_ENGINE_ANSWER} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        let bytes = match tokio::time::timeout(ENGINE_TIMEOUT, read).await {
            Ok(Ok(b)) => b,
            Ok(Err(e @ TransportError::Remote { .. })) => return Err(from_transport(e)),
            Ok(Err(e)) => {
                tracing::warn!("engine of node {}: {e}", node.name);
                return Err(ApiError::Unavailable(format!(
                    "node {} is not available",
                    node.name
                )));
            }
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "node {} is not available",
                    node.name
                )))
            }
        };
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(internal)
    }
}
