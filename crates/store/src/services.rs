//! Services: creation and updates (names, references, published ports and virtual IPs checked against the state; a new task template starts a rolling update), removal (their tasks are told to go) and the progress of updates.

use crate::command::AuthChange;
use crate::error::{Kind, StoreError};
use crate::state::*;
use chrono::{DateTime, Utc};
use shoal_types::swarm::*;
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, StoreError>;

/// A service's registry credentials (Swarm's `PullOptions.RegistryAuth`), sealed with the
/// cluster's data key: those of its spec and of its previous spec (a rollback brings them
/// back with it; `registryAuthFrom=previous-spec` takes them). Empty: none.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceAuth {
    #[serde(
        default,
        with = "shoal_types::bytes_b64",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub spec: Vec<u8>,
    #[serde(
        default,
        with = "shoal_types::bytes_b64",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub previous: Vec<u8>,
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAuth(..)")
    }
}

impl State {
    pub(crate) fn create_service(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        service: &Service,
        registry_auth: &[u8],
    ) -> Result<Option<String>> {
        self.cluster()?;
        let mut svc = service.clone();
        if self.services.name_taken(&svc.spec.name, None) {
            return Err(StoreError::NameConflict {
                kind: Kind::Service,
                name: svc.spec.name.clone(),
            });
        }
        self.check_references(&svc.spec)?;
        svc.endpoint = self.allocate_endpoint(&svc.id, &svc.spec)?;
        svc.endpoint.virtual_ips = self.allocate_vips(&svc.id, &svc.spec)?;
        if is_job(&svc.spec) {
            svc.job_status = Some(JobStatus {
                job_iteration: Version { index },
                last_execution: Some(at),
            });
        }
        stamp_new(
            &mut svc.version,
            &mut svc.created_at,
            &mut svc.updated_at,
            index,
            at,
        );
        let id = svc.id.clone();
        self.services.insert(svc);
        if !registry_auth.is_empty() {
            self.registry_auth.insert(
                id.clone(),
                ServiceAuth {
                    spec: registry_auth.to_vec(),
                    previous: Vec::new(),
                },
            );
        }
        self.event(Kind::Service, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    // The fields of `Command::UpdateService`, one by one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update_service(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        sent: u64,
        spec: &ServiceSpec,
        (rollback, rollback_reason): (bool, Option<&str>),
        registry_auth: &AuthChange,
    ) -> Result<Option<String>> {
        let svc = self
            .services
            .get(id)
            .ok_or_else(|| not_found(Kind::Service, id))?
            .clone();
        check_version(Kind::Service, id, &svc.version, sent)?;
        let new_spec = if rollback {
            svc.previous_spec.clone().ok_or_else(|| {
                StoreError::Invalid(format!("service {id} does not have a previous spec"))
            })?
        } else {
            spec.clone()
        };
        if new_spec.name != svc.spec.name {
            return Err(StoreError::Invalid(
                "renaming services is not supported".into(),
            ));
        }
        if mode_kind(&new_spec.mode) != mode_kind(&svc.spec.mode) {
            return Err(StoreError::Invalid(
                "service mode change is not allowed".into(),
            ));
        }
        self.check_references(&new_spec)?;
        let mut endpoint = self.allocate_endpoint(id, &new_spec)?;
        endpoint.virtual_ips = self.allocate_vips(id, &new_spec)?;
        let mut svc = svc;
        // A new task template starts a rolling update (or a rollback) that the
        // orchestrator carries out and completes.
        if is_job(&new_spec) {
            // Every update of a job runs it again, as a new iteration.
            svc.job_status = Some(JobStatus {
                job_iteration: Version { index },
                last_execution: Some(at),
            });
        } else if rollback {
            svc.update_status = Some(UpdateStatus {
                state: UpdateState::RollbackStarted,
                started_at: Some(at),
                completed_at: None,
                message: rollback_reason
                    .map(str::to_string)
                    .unwrap_or_else(|| "manually requested rollback".into()),
            });
        } else if new_spec.task_template != svc.spec.task_template {
            svc.update_status = Some(UpdateStatus {
                state: UpdateState::Updating,
                started_at: Some(at),
                completed_at: None,
                message: "update in progress".into(),
            });
        }
        let auth = self.registry_auth.get(id).cloned().unwrap_or_default();
        let new_auth = if rollback {
            auth.previous.clone()
        } else {
            match registry_auth {
                AuthChange::Keep => auth.spec.clone(),
                AuthChange::FromPrevious => {
                    if svc.previous_spec.is_none() {
                        return Err(StoreError::Invalid(format!(
                            "service {id} does not have a previous spec"
                        )));
                    }
                    auth.previous.clone()
                }
                AuthChange::Set(sealed) => sealed.clone(),
            }
        };
        let auth = ServiceAuth {
            spec: new_auth,
            previous: auth.spec,
        };
        if auth == ServiceAuth::default() {
            self.registry_auth.remove(id);
        } else {
            self.registry_auth.insert(id.to_string(), auth);
        }
        svc.previous_spec = Some(std::mem::replace(&mut svc.spec, new_spec));
        svc.endpoint = endpoint;
        stamp(&mut svc.version, &mut svc.updated_at, index, at);
        self.services.insert(svc);
        self.event(Kind::Service, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    /// Gives a service whose spec does not change new credentials (a stack deploy with
    /// `--with-registry-auth`): those of its previous spec stay for a rollback.
    pub(crate) fn set_service_auth(&mut self, id: &str, sealed: &[u8]) {
        let mut auth = self.registry_auth.get(id).cloned().unwrap_or_default();
        auth.spec = sealed.to_vec();
        if auth == ServiceAuth::default() {
            self.registry_auth.remove(id);
        } else {
            self.registry_auth.insert(id.to_string(), auth);
        }
    }

    pub(crate) fn remove_service(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
    ) -> Result<Option<String>> {
        self.services
            .remove(id)
            .ok_or_else(|| not_found(Kind::Service, id))?;
        self.registry_auth.remove(id);
        self.event(Kind::Service, EventAction::Remove, id, index);
        // Its tasks are to be shut down and then forgotten (Swarm's desired state REMOVE).
        let orphans: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.service_id == *id && t.desired_state < TaskState::Remove)
            .map(|t| t.id.to_string())
            .collect();
        for tid in orphans {
            if let Some(t) = self.tasks.get_mut(&tid) {
                t.desired_state = TaskState::Remove;
                stamp(&mut t.version, &mut t.updated_at, index, at);
            }
            self.event(Kind::Task, EventAction::Update, &tid, index);
        }
        Ok(Some(id.to_string()))
    }

    pub(crate) fn set_service_update_status(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        update_status: Option<&UpdateStatus>,
    ) -> Result<Option<String>> {
        let svc = self
            .services
            .get_mut(id)
            .ok_or_else(|| not_found(Kind::Service, id))?;
        svc.update_status = update_status.cloned();
        stamp(&mut svc.version, &mut svc.updated_at, index, at);
        self.event(Kind::Service, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    /// Secrets, configs and networks a service refers to must exist.
    pub(crate) fn check_references(&self, spec: &ServiceSpec) -> Result<()> {
        if let Some(cs) = &spec.task_template.container_spec {
            for r in &cs.secrets {
                if self.secrets.get(&r.secret_id).is_none() {
                    return Err(StoreError::Invalid(format!(
                        "secret not found: {}",
                        if r.secret_name.is_empty() {
                            &r.secret_id
                        } else {
                            &r.secret_name
                        }
                    )));
                }
            }
            for r in &cs.configs {
                if self.configs.get(&r.config_id).is_none() {
                    return Err(StoreError::Invalid(format!(
                        "config not found: {}",
                        if r.config_name.is_empty() {
                            &r.config_id
                        } else {
                            &r.config_name
                        }
                    )));
                }
            }
        }
        for a in spec
            .task_template
            .networks
            .iter()
            .chain(spec.networks.iter())
        {
            let net = self
                .networks
                .get(&a.target)
                .or_else(|| self.networks.by_name(&a.target))
                .ok_or_else(|| StoreError::Invalid(format!("network {} not found", a.target)))?;
            if net.spec.ingress {
                return Err(StoreError::Invalid(format!(
                    "service cannot be explicitly attached to the ingress network \"{}\"",
                    net.spec.name
                )));
            }
        }
        Ok(())
    }

    /// Published ports: ingress ports are unique in the cluster; port 0 gets a free one from
    /// [`DYNAMIC_PORTS`], and a service that is updated keeps the ports it had.
    pub(crate) fn allocate_endpoint(
        &self,
        service_id: &str,
        spec: &ServiceSpec,
    ) -> Result<Endpoint> {
        let endpoint_spec = spec.endpoint_spec.clone().unwrap_or_default();
        let mut used: BTreeMap<(String, u32), String> = BTreeMap::new();
        let mut own_dynamic: BTreeMap<(String, u32), u32> = BTreeMap::new();
        for s in self.services.iter() {
            for p in &s.endpoint.ports {
                if p.publish_mode != PublishMode::Ingress || p.published_port == 0 {
                    continue;
                }
                let proto = protocol(p);
                if s.id == service_id {
                    own_dynamic.insert((proto, p.target_port), p.published_port);
                } else {
                    used.insert((proto, p.published_port), s.spec.name.clone());
                }
            }
        }
        let mut ports: Vec<PortConfig> = Vec::new();
        let mut seen: BTreeMap<(String, u32), ()> = BTreeMap::new();
        for p in &endpoint_spec.ports {
            let mut p = p.clone();
            let proto = protocol(&p);
            if p.publish_mode == PublishMode::Ingress && p.published_port == 0 {
                let keep = own_dynamic
                    .get(&(proto.clone(), p.target_port))
                    .copied()
                    .filter(|port| !used.contains_key(&(proto.clone(), *port)));
                let port = keep.or_else(|| {
                    DYNAMIC_PORTS.clone().find(|port| {
                        !used.contains_key(&(proto.clone(), *port))
                            && !seen.contains_key(&(proto.clone(), *port))
                            && !endpoint_spec
                                .ports
                                .iter()
                                .any(|q| q.published_port == *port && protocol(q) == proto)
                    })
                });
                p.published_port = port.ok_or_else(|| {
                    StoreError::Conflict(
                        "no free port left in the dynamic range 30000-32767".into(),
                    )
                })?;
            }
            if p.published_port != 0 {
                let key = (proto.clone(), p.published_port);
                if p.publish_mode == PublishMode::Ingress {
                    if let Some(other) = used.get(&key) {
                        let other_id = self
                            .services
                            .by_name(other)
                            .map(|s| s.id.clone())
                            .unwrap_or_default();
                        return Err(StoreError::Conflict(format!(
                            "port '{}' is already in use by service '{}' ({}) as an ingress port",
                            p.published_port, other, other_id
                        )));
                    }
                }
                if seen.insert(key, ()).is_some() {
                    return Err(StoreError::Invalid(format!(
                        "duplicate published ports provided: {}",
                        p.published_port
                    )));
                }
            }
            ports.push(p);
        }
        Ok(Endpoint {
            spec: EndpointSpec {
                mode: endpoint_spec.mode,
                ports: endpoint_spec.ports.clone(),
            },
            ports,
            virtual_ips: Vec::new(),
        })
    }
}

pub(crate) fn protocol(p: &PortConfig) -> String {
    serde_json::to_value(p.protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "tcp".into())
}

pub(crate) fn mode_kind(m: &ServiceMode) -> u8 {
    if m.global.is_some() {
        1
    } else if m.replicated_job.is_some() {
        2
    } else if m.global_job.is_some() {
        3
    } else {
        0
    }
}

pub(crate) fn is_job(spec: &ServiceSpec) -> bool {
    spec.mode.replicated_job.is_some() || spec.mode.global_job.is_some()
}
