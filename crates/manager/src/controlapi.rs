//! The control API: validates what users ask for, fills Docker's server-side defaults, and
//! proposes it through Raft. Checks that need the current state (name clashes, versions,
//! objects in use) are made again when the command is applied, where they are race-free.
//!
//! Nothing here reads the network or the engine, and nothing here writes state except by
//! [`Manager::propose`].

use crate::ca::RootCa;
use crate::ca_config::{plan_ca_change, CaChange};
use crate::cluster::Manager;
use crate::error::{ApiError, Result};
use crate::keys::Kek;
use crate::tokens;
use shoal_store::{AuthChange, Command, RootRotation, RotationChange};
use shoal_types::ids::new_id;
use shoal_types::names;
use shoal_types::network::NetworkCreateRequest;
use shoal_types::registry::RegistryAuth;
use shoal_types::swarm::{
    Config, ConfigSpec, Driver, IPAMConfig, IPAMOptions, ManagerStatus, Network, NetworkSpec, Node,
    NodeRole, NodeSpec, Reachability, ReplicatedService, ResolutionMode, Secret, SecretSpec,
    Service, ServiceSpec, Spec,
};
use std::collections::{BTreeMap, BTreeSet};

/// Swarm's answer to an update of anything but a secret's labels.
pub const SECRET_UPDATE_REFUSED: &str = "only updates to Labels are allowed";

/// Secret data must be smaller than this (Swarm: 500 KB).
pub const MAX_SECRET_SIZE: usize = 500 * 1024;
/// Config data must be smaller than this (Swarm: 1000 KB).
pub const MAX_CONFIG_SIZE: usize = 1000 * 1024;
const MIN_NANO_CPUS: i64 = 1_000_000;
const MIN_MEMORY: i64 = 4 * 1024 * 1024;

mod stack_rotation;
mod stacks;

/// The registry credentials a service update leaves the service with (Docker's
/// `X-Registry-Auth` header, else its `registryAuthFrom`).
#[derive(Debug, Clone, PartialEq)]
pub enum NewRegistryAuth {
    /// The current spec's (`registryAuthFrom=spec`, the default).
    FromSpec,
    /// The previous spec's (`registryAuthFrom=previous-spec`).
    FromPreviousSpec,
    /// Those the request carries (`None`: a header without credentials, which clears them).
    Given(Option<RegistryAuth>),
}

pub use stacks::validate_stack_name;

impl Manager {
    // ----- services -----

    /// Creates a service; `registry_auth` are the credentials its nodes pull its image with
    /// (`--with-registry-auth`), kept sealed beside it and never shown.
    pub async fn create_service(
        &self,
        mut spec: ServiceSpec,
        registry_auth: Option<RegistryAuth>,
    ) -> Result<(String, Vec<String>)> {
        if spec.name.is_empty() {
            spec.name = random_name();
        }
        let warnings = self.normalize_service(&mut spec)?;
        let id = new_id();
        let service = Service {
            id: id.clone(),
            spec,
            ..Default::default()
        };
        self.propose(Command::CreateService {
            service: Box::new(service),
            registry_auth: self.seal_registry_auth(registry_auth.as_ref()),
        })
        .await?;
        Ok((id, warnings))
    }

    pub async fn update_service(
        &self,
        key: &str,
        version: u64,
        mut spec: ServiceSpec,
        rollback: bool,
        registry_auth: NewRegistryAuth,
    ) -> Result<Vec<String>> {
        let id = self.replica().read().services.resolve(key)?.id.clone();
        let warnings = if rollback {
            Vec::new()
        } else {
            self.normalize_service(&mut spec)?
        };
        self.propose(Command::UpdateService {
            id,
            version,
            spec: Box::new(spec),
            rollback,
            rollback_reason: None,
            registry_auth: match registry_auth {
                NewRegistryAuth::FromSpec => AuthChange::Keep,
                NewRegistryAuth::FromPreviousSpec => AuthChange::FromPrevious,
                NewRegistryAuth::Given(auth) => {
                    AuthChange::Set(self.seal_registry_auth(auth.as_ref()))
                }
            },
        })
        .await?;
        Ok(warnings)
    }

    /// Credentials as the state keeps them: sealed with the data key; none: empty.
    fn seal_registry_auth(&self, auth: Option<&RegistryAuth>) -> Vec<u8> {
        auth.map(|a| {
            self.keys
                .data_key
                .seal(&serde_json::to_vec(a).unwrap_or_default())
        })
        .unwrap_or_default()
    }

    /// The credentials a service's nodes pull its image with, opened.
    pub(crate) fn registry_auth_of(
        &self,
        state: &shoal_store::State,
        service_id: &str,
    ) -> Option<RegistryAuth> {
        let sealed = &state.registry_auth.get(service_id)?.spec;
        if sealed.is_empty() {
            return None;
        }
        match self.keys.data_key.open(sealed) {
            Ok(json) => serde_json::from_slice(&json).ok(),
            Err(e) => {
                tracing::error!(
                    "cannot open the registry credentials of service {service_id}: {e}"
                );
                None
            }
        }
    }

    pub async fn remove_service(&self, key: &str) -> Result<()> {
        let id = self.replica().read().services.resolve(key)?.id.clone();
        self.propose(Command::RemoveService { id }).await?;
        Ok(())
    }

    /// Validates a service spec, fills what Docker's daemon fills, and refers to networks,
    /// configs and secrets by ID.
    fn normalize_service(&self, spec: &mut ServiceSpec) -> Result<Vec<String>> {
        let warnings = normalize_spec(spec)?;
        // Networks may be named; store them by ID like Docker does.
        let state = self.replica().read();
        for a in spec
            .task_template
            .networks
            .iter_mut()
            .chain(spec.networks.iter_mut())
        {
            let n = state
                .networks
                .resolve(&a.target)
                .map_err(|_| ApiError::NotFound(format!("network {} not found", a.target)))?;
            a.target = n.id.clone();
        }
        if let Some(cs) = &mut spec.task_template.container_spec {
            for r in &mut cs.secrets {
                let key = if r.secret_id.is_empty() {
                    &r.secret_name
                } else {
                    &r.secret_id
                };
                let s = state
                    .secrets
                    .resolve(key)
                    .map_err(|_| ApiError::NotFound(format!("secret not found: {key}")))?;
                r.secret_id = s.id.clone();
                r.secret_name = s.spec.name.clone();
            }
            for r in &mut cs.configs {
                let key = if r.config_id.is_empty() {
                    &r.config_name
                } else {
                    &r.config_id
                };
                let c = state
                    .configs
                    .resolve(key)
                    .map_err(|_| ApiError::NotFound(format!("config not found: {key}")))?;
                r.config_id = c.id.clone();
                r.config_name = c.spec.name.clone();
            }
        }
        Ok(warnings)
    }

    // ----- nodes -----

    pub async fn update_node(&self, key: &str, version: u64, spec: NodeSpec) -> Result<()> {
        let id = {
            let state = self.replica().read();
            let node = state.nodes.resolve(key)?;
            if node.spec.role == NodeRole::Manager
                && spec.role == NodeRole::Worker
                && !demotion_keeps_quorum(state.nodes.iter(), &node.id)
            {
                return Err(ApiError::Invalid(DEMOTION_LOSES_QUORUM.into()));
            }
            node.id.clone()
        };
        self.propose(Command::UpdateNodeSpec { id, version, spec })
            .await?;
        Ok(())
    }

    pub async fn remove_node(&self, key: &str, force: bool) -> Result<()> {
        let id = {
            let state = self.replica().read();
            let n = state.nodes.resolve(key)?;
            if n.id == self.node_id() {
                return Err(ApiError::Conflict(
                    "node cannot remove itself: use `swarm leave` on it".into(),
                ));
            }
            n.id.clone()
        };
        self.propose(Command::RemoveNode { id, force }).await?;
        Ok(())
    }

    // ----- configs and secrets -----

    pub async fn create_config(&self, spec: ConfigSpec) -> Result<String> {
        names::validate_config_name(&spec.name).map_err(|e| ApiError::invalid(e.to_string()))?;
        crate::unsupported::check_templating("config", spec.templating.as_ref())?;
        if spec.data.len() >= MAX_CONFIG_SIZE {
            return Err(ApiError::invalid(format!(
                "config data must be smaller than {} KB",
                MAX_CONFIG_SIZE / 1024
            )));
        }
        let id = new_id();
        self.propose(Command::CreateConfig {
            config: Box::new(Config {
                id: id.clone(),
                spec,
                ..Default::default()
            }),
        })
        .await?;
        Ok(id)
    }

    pub async fn update_config(&self, key: &str, version: u64, spec: ConfigSpec) -> Result<()> {
        let id = self.replica().read().configs.resolve(key)?.id.clone();
        self.propose(Command::UpdateConfig {
            id,
            version,
            spec: Box::new(spec),
        })
        .await?;
        Ok(())
    }

    pub async fn remove_config(&self, key: &str) -> Result<()> {
        let id = self.replica().read().configs.resolve(key)?.id.clone();
        self.propose(Command::RemoveConfig { id }).await?;
        Ok(())
    }

    pub async fn create_secret(&self, mut spec: SecretSpec) -> Result<String> {
        names::validate_secret_name(&spec.name).map_err(|e| ApiError::invalid(e.to_string()))?;
        if spec.driver.as_ref().is_some_and(|d| !d.name.is_empty()) {
            return Err(ApiError::invalid("secret drivers are not supported"));
        }
        crate::unsupported::check_templating("secret", spec.templating.as_ref())?;
        let data = spec.data.take().unwrap_or_default();
        if data.is_empty() || data.len() >= MAX_SECRET_SIZE {
            return Err(ApiError::invalid(format!(
                "secret data must be larger than 0 and less than {} bytes",
                MAX_SECRET_SIZE
            )));
        }
        // Sealed here, before it enters the log: see the keys module.
        spec.data = Some(self.keys.data_key.seal(&data));
        let id = new_id();
        self.propose(Command::CreateSecret {
            secret: Box::new(Secret {
                id: id.clone(),
                spec,
                ..Default::default()
            }),
        })
        .await?;
        Ok(id)
    }

    /// Only labels change. Like Swarm, the same data sent again is no change (a stack deployed
    /// again sends its secrets again); a new name or different data is refused here, before
    /// anything is proposed, so new plaintext never reaches the Raft log.
    pub async fn update_secret(&self, key: &str, version: u64, mut spec: SecretSpec) -> Result<()> {
        let (id, name, sealed) = {
            let state = self.replica().read();
            let s = state.secrets.resolve(key)?;
            (
                s.id.clone(),
                s.spec.name.clone(),
                s.spec.data.clone().unwrap_or_default(),
            )
        };
        let same_data = match spec.data.take().filter(|d| !d.is_empty()) {
            None => true,
            Some(new) => self
                .keys
                .data_key
                .open(&sealed)
                .is_ok_and(|old| bool::from(subtle::ConstantTimeEq::ct_eq(&old[..], &new[..]))),
        };
        if spec.name != name || !same_data {
            return Err(ApiError::invalid(SECRET_UPDATE_REFUSED));
        }
        self.propose(Command::UpdateSecret {
            id,
            version,
            spec: Box::new(spec),
        })
        .await?;
        Ok(())
    }

    pub async fn remove_secret(&self, key: &str) -> Result<()> {
        let id = self.replica().read().secrets.resolve(key)?.id.clone();
        self.propose(Command::RemoveSecret { id }).await?;
        Ok(())
    }

    // ----- networks -----

    pub async fn create_network(&self, req: NetworkCreateRequest) -> Result<String> {
        let id = new_id();
        let network = network_from_request(&id, &req)?;
        self.propose(Command::CreateNetwork {
            network: Box::new(network),
        })
        .await?;
        Ok(id)
    }

    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let id = self.replica().read().networks.resolve(key)?.id.clone();
        self.propose(Command::RemoveNetwork { id }).await?;
        Ok(())
    }

    // ----- the cluster -----

    pub async fn update_cluster(
        &self,
        version: u64,
        mut spec: Spec,
        rotate_worker: bool,
        rotate_manager: bool,
        rotate_unlock_key: bool,
    ) -> Result<()> {
        let expiry = spec.ca_config.node_cert_expiry;
        if expiry != 0
            && (expiry < 0 || (expiry as u64) < crate::ca::MIN_NODE_VALIDITY.as_nanos() as u64)
        {
            return Err(ApiError::invalid(
                "minimum certificate expiry time is 1h0m0s",
            ));
        }
        // A root given is checked whatever it leads to (even back to the current root): a key
        // that is not its key is refused, never passed over.
        let given = &spec.ca_config;
        if !given.signing_ca_cert.trim().is_empty() && !given.signing_ca_key.trim().is_empty() {
            RootCa::from_given(
                given.signing_ca_cert.trim(),
                given.signing_ca_key.trim(),
                chrono::Utc::now().timestamp(),
            )
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        let (mut join_tokens, mut unlock_key, change) = {
            let state = self.replica().read();
            let c = state.cluster()?;
            let change = plan_ca_change(
                Some(&c.info.spec.ca_config),
                &c.info.tls_info.trust_root,
                c.root_rotation
                    .as_ref()
                    .map(|r| r.new_root.cert_pem.as_str()),
                &spec.ca_config,
            )?;
            crate::unsupported::settle_swarm_spec(&c.info.spec, &mut spec)?;
            (self.join_tokens(c)?, c.unlock_key.clone(), change)
        };
        let root_rotation = self.root_rotation_for(change)?;
        // The given root's key is never stored in the spec (the rotation holds it, sealed),
        // nor its certificate (`GET /swarm` shows the root in `TLSInfo`).
        let mut spec = spec;
        spec.ca_config.signing_ca_cert.clear();
        spec.ca_config.signing_ca_key.clear();
        if rotate_worker || rotate_manager {
            let digest = self
                .current_root()?
                .digest()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if rotate_worker {
                join_tokens.worker = tokens::token(&digest);
            }
            if rotate_manager {
                join_tokens.manager = tokens::token(&digest);
            }
        }
        // As SwarmKit: turning autolock on makes a key, rotating makes a new one, turning it
        // off forgets it. Each manager re-wraps its own copy of the data key when it sees the
        // change (`Daemon::secure_keys_at_rest`).
        if !spec.encryption_config.auto_lock_managers {
            unlock_key.clear();
        } else if unlock_key.is_empty() || rotate_unlock_key {
            unlock_key = Kek::generate().seal_for_cluster(&self.keys.data_key);
        }
        self.propose(Command::UpdateCluster {
            version,
            spec: Box::new(spec),
            join_tokens: tokens::seal(&self.keys.data_key, &join_tokens),
            unlock_key,
            root_rotation,
        })
        .await?;
        Ok(())
    }

    /// The rotation a planned CA change starts: the new root (made here, or the one given),
    /// cross-signed by the cluster's current root, its key sealed with the data key.
    fn root_rotation_for(&self, change: CaChange) -> Result<Option<RotationChange>> {
        let new = match change {
            CaChange::None => return Ok(None),
            CaChange::Abort => return Ok(Some(RotationChange::Abort)),
            CaChange::Generate => {
                RootCa::generate().map_err(|e| ApiError::Internal(e.to_string()))?
            }
            CaChange::Given { cert, key } => {
                RootCa::from_given(&cert, &key, chrono::Utc::now().timestamp())
                    .map_err(|e| ApiError::invalid(e.to_string()))?
            }
        };
        let cross_signed = self
            .current_root()?
            .cross_sign(&new)
            .map_err(|e| ApiError::invalid(format!("cannot cross-sign the new root CA: {e}")))?;
        Ok(Some(RotationChange::Start(RootRotation {
            new_root: self.seal_root(&new)?,
            cross_signed,
        })))
    }

    /// The unlock key in Docker's form (`SWMKEY-1-…`), or empty without autolock.
    pub fn unlock_key(&self) -> Result<String> {
        let sealed = self.replica().read().cluster()?.unlock_key.clone();
        if sealed.is_empty() {
            return Ok(String::new());
        }
        let kek = self
            .keys
            .data_key
            .open_unlock_key(&sealed)
            .map_err(|e| ApiError::Internal(format!("the cluster's unlock key: {e}")))?;
        Ok(kek.unlock_key())
    }
}

/// SwarmKit's answer to a demotion that would leave the managers without a quorum.
pub const DEMOTION_LOSES_QUORUM: &str =
    "can't remove member from the raft: this would result in a loss of quorum";

/// Whether the managers other than `leaving` still make a quorum among themselves (SwarmKit's
/// `CanRemoveMember`): a majority of them reachable, as the leader last recorded it in the
/// replicated state. A manager that is down can be demoted while the others keep a majority;
/// a reachable one cannot be demoted when that would leave the unreachable ones a majority.
pub fn demotion_keeps_quorum<'a>(nodes: impl Iterator<Item = &'a Node>, leaving: &str) -> bool {
    let rest: Vec<&ManagerStatus> = nodes
        .filter(|n| n.id != leaving)
        .filter_map(|n| n.manager_status.as_ref())
        .collect();
    let reachable = rest
        .iter()
        .filter(|m| m.reachability == Reachability::Reachable)
        .count();
    // No other manager: the state refuses to demote the last manager with its own message.
    rest.is_empty() || reachable > rest.len() / 2
}

/// `node.labels.storage == raid`, `node.role!=manager`, …
fn validate_constraint(c: &str) -> Result<()> {
    let (k, v) = c
        .split_once("==")
        .or_else(|| c.split_once("!="))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "invalid constraint '{c}': constraint expected one operator from ==, !="
            ))
        })?;
    if k.trim().is_empty() || v.trim().is_empty() || v.contains("==") || v.contains("!=") {
        return Err(ApiError::invalid(format!(
            "invalid constraint '{c}': constraint expected one operator from ==, !="
        )));
    }
    Ok(())
}

/// The network a `POST /networks/create` body asks for, validated, with ID `id`; its subnet,
/// gateway and VXLAN ID are allocated when it is committed.
pub fn network_from_request(id: &str, req: &NetworkCreateRequest) -> Result<Network> {
    if names::is_predefined_network(&req.name) {
        return Err(ApiError::Forbidden(format!(
            "{} is a pre-defined network and cannot be created",
            req.name
        )));
    }
    names::validate_network_name(&req.name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let driver = if req.driver.is_empty() {
        "overlay"
    } else {
        req.driver.as_str()
    };
    if driver != "overlay" {
        return Err(ApiError::invalid(format!(
            "network driver \"{driver}\" is not supported on a shoal cluster: shoal networks are swarm-scoped overlay networks (use --driver overlay)"
        )));
    }
    if !req.scope.is_empty() && req.scope != "swarm" {
        return Err(ApiError::invalid(format!(
            "network scope \"{}\" is not supported: shoal networks are swarm-scoped",
            req.scope
        )));
    }
    crate::network_spec::check_network_options(req)?;
    let configs: Vec<IPAMConfig> = req
        .ipam
        .as_ref()
        .map(|i| {
            i.config
                .iter()
                .map(|c| IPAMConfig {
                    subnet: c.subnet.clone(),
                    range: c.ip_range.clone(),
                    gateway: c.gateway.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    // The subnet (when none was given), the gateway and the VXLAN ID are allocated when
    // the network is committed, so that two networks created at once never share one.
    let ipam = IPAMOptions {
        driver: Driver {
            name: "default".into(),
            options: req
                .ipam
                .as_ref()
                .map(|i| i.options.clone())
                .unwrap_or_default(),
        },
        configs,
    };
    let state_opts = BTreeMap::new();
    let network = Network {
        id: id.to_string(),
        spec: NetworkSpec {
            name: req.name.clone(),
            labels: req.labels.clone(),
            driver_configuration: Some(Driver {
                name: driver.to_string(),
                options: req.options.clone(),
            }),
            ipv6_enabled: req.enable_ipv6.unwrap_or(false),
            internal: req.internal,
            attachable: req.attachable,
            ingress: req.ingress,
            ipam_options: Some(ipam.clone()),
            config_from: None,
            scope: "swarm".into(),
        },
        driver_state: Driver {
            name: driver.to_string(),
            options: state_opts,
        },
        ipam_options: Some(ipam),
        ..Default::default()
    };
    Ok(network)
}

/// Validates a service spec and fills what Docker's daemon fills, without looking at the
/// state: references to networks, configs and secrets are left as they are.
pub fn normalize_spec(spec: &mut ServiceSpec) -> Result<Vec<String>> {
    names::validate_service_name(&spec.name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let warnings = Vec::new();
    crate::unsupported::check_service_spec(spec)?;
    let cs = spec
        .task_template
        .container_spec
        .as_ref()
        .ok_or_else(|| ApiError::invalid("ContainerSpec: ContainerSpec is required"))?;
    if cs.image.trim().is_empty() {
        return Err(ApiError::invalid(
            "ContainerSpec: image reference must be provided",
        ));
    }
    crate::dependencies::validate(&spec.name, &spec.labels).map_err(ApiError::invalid)?;
    // Docker shows the runtime of a container task as "container" even when not sent.
    if spec.task_template.runtime.is_empty() {
        spec.task_template.runtime = "container".into();
    }
    let mut targets = BTreeSet::new();
    for m in &cs.mounts {
        if !targets.insert(m.target.clone()) {
            return Err(ApiError::invalid(format!(
                "duplicate mount point: {}",
                m.target
            )));
        }
    }
    if let Some(res) = &spec.task_template.resources {
        if let Some(l) = &res.limits {
            if l.nano_cpus != 0 && l.nano_cpus < MIN_NANO_CPUS {
                return Err(ApiError::invalid(format!(
                    "invalid cpu value {}: Must be at least 0.001",
                    l.nano_cpus as f64 / 1e9
                )));
            }
            if l.memory_bytes != 0 && l.memory_bytes < MIN_MEMORY {
                return Err(ApiError::invalid(format!(
                    "invalid memory value {}: Must be at least 4MiB",
                    l.memory_bytes
                )));
            }
        }
    }
    if let Some(p) = &spec.task_template.placement {
        for c in &p.constraints {
            validate_constraint(c)?;
        }
    }
    // Mode: replicated with one replica unless told otherwise.
    let m = &mut spec.mode;
    let modes = [
        m.replicated.is_some(),
        m.global.is_some(),
        m.replicated_job.is_some(),
        m.global_job.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if modes > 1 {
        return Err(ApiError::invalid("only one service mode may be set"));
    }
    if modes == 0 {
        m.replicated = Some(ReplicatedService { replicas: Some(1) });
    }
    if let Some(r) = &mut m.replicated {
        if r.replicas.is_none() {
            r.replicas = Some(1);
        }
    }
    if let Some(j) = &mut m.replicated_job {
        if j.total_completions.is_none() {
            j.total_completions = j.max_concurrent.or(Some(1));
        }
        if j.max_concurrent.is_none() {
            j.max_concurrent = Some(1);
        }
    }
    if (m.replicated_job.is_some() || m.global_job.is_some()) && spec.update_config.is_some() {
        return Err(ApiError::invalid("jobs may not have an update config"));
    }
    if let Some(ep) = &spec.endpoint_spec {
        if ep.mode == ResolutionMode::Dnsrr
            && ep
                .ports
                .iter()
                .any(|p| p.publish_mode == shoal_types::swarm::PublishMode::Ingress)
        {
            return Err(ApiError::invalid(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ));
        }
    }
    for a in spec
        .task_template
        .networks
        .iter()
        .chain(spec.networks.iter())
    {
        if !a.driver_opts.is_empty() {
            return Err(ApiError::invalid(format!(
                "network {}: per-service driver options ({}) are not supported by shoal's overlay driver",
                a.target,
                a.driver_opts.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(warnings)
}

/// A Docker-style random name for a service created without one.
fn random_name() -> String {
    use rand::seq::SliceRandom;
    const LEFT: &[&str] = &[
        "admiring", "brave", "clever", "dreamy", "eager", "focused", "gallant", "happy", "jolly",
        "keen", "lucid", "modest", "nifty", "quirky", "serene", "tender", "vibrant", "wizardly",
    ];
    const RIGHT: &[&str] = &[
        "albattani",
        "bell",
        "curie",
        "darwin",
        "euclid",
        "fermi",
        "galileo",
        "hopper",
        "kepler",
        "lovelace",
        "meitner",
        "newton",
        "noether",
        "pascal",
        "ritchie",
        "shannon",
        "turing",
        "wing",
    ];
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}",
        LEFT.choose(&mut rng).unwrap_or(&"brave"),
        RIGHT.choose(&mut rng).unwrap_or(&"turing")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_need_one_operator() {
        assert!(validate_constraint("node.labels.storage == raid").is_ok());
        assert!(validate_constraint("node.role!=manager").is_ok());
        assert!(validate_constraint("node.role").is_err());
        assert!(validate_constraint("==x").is_err());
    }

    fn manager(id: &str, reachability: Reachability) -> Node {
        Node {
            id: id.into(),
            manager_status: Some(ManagerStatus {
                reachability,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_demotion_must_leave_a_reachable_majority() {
        use Reachability::{Reachable, Unreachable};
        let worker = Node {
            id: "w".into(),
            ..Default::default()
        };
        let three = [
            manager("a", Reachable),
            manager("b", Reachable),
            manager("c", Unreachable),
            worker,
        ];
        // b leaves a (reachable) and c (not): one of two is no majority.
        assert!(!demotion_keeps_quorum(three.iter(), "b"));
        // The unreachable one can go: a and b remain, both reachable.
        assert!(demotion_keeps_quorum(three.iter(), "c"));
        let healthy = [
            manager("a", Reachable),
            manager("b", Reachable),
            manager("c", Reachable),
        ];
        assert!(demotion_keeps_quorum(healthy.iter(), "a"));
        // The last manager: the state's own refusal speaks for that case.
        assert!(demotion_keeps_quorum([manager("a", Reachable)].iter(), "a"));
    }

    #[test]
    fn random_names_are_valid_service_names() {
        for _ in 0..20 {
            assert!(names::validate_service_name(&random_name()).is_ok());
        }
    }
}
