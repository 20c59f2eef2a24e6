//! Autolock: how a manager's copy of the data key is wrapped at rest, and the unlocking of a
//! manager that restarted locked.
//!
//! The cluster decides (its spec's `EncryptionConfig.AutoLockManagers`, and with it an unlock
//! key sealed with the data key in the replicated state); each manager makes its own disk
//! follow, level-triggered: whenever what wraps its data key differs from what the state asks
//! for, it wraps the key again. A rotation or a change of autolock thus reaches every manager
//! that runs, and a manager that was down catches up once it is unlocked with the key its disk
//! was wrapped with. The root CA's key in `keys.json` follows the cluster's root the same way
//! (a root rotation finished), wrapped like the data key. This module does not decide when
//! autolock changes (`controlapi` does).

use super::*;
use crate::keys::KeyError;
use std::sync::Weak;

/// How often a manager compares its disk with the cluster's autolock.
const CHECK_PERIOD: Duration = Duration::from_millis(500);

impl Daemon {
    pub(super) fn set_at_rest(&self, at_rest: Option<AtRest>) {
        *self.at_rest.lock().unwrap_or_else(|e| e.into_inner()) = at_rest;
    }

    fn at_rest(&self) -> Option<AtRest> {
        self.at_rest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes this manager's keys wrapped as `at_rest` says, and remembers it.
    pub(super) fn save_keys(
        &self,
        keys: &Keys,
        at_rest: AtRest,
    ) -> std::result::Result<(), String> {
        self.files.save_keys(keys, &at_rest)?;
        self.set_at_rest(Some(at_rest));
        Ok(())
    }

    /// `POST /swarm/unlock`: opens a locked manager's data key with the operator's key and
    /// starts the manager, which rejoins the Raft group with its state as it was.
    pub async fn unlock(self: &Arc<Self>, unlock_key: &str) -> Result<()> {
        let _t = self.transition.lock().await;
        let locked = match self.role() {
            Role::Locked(l) => l,
            Role::Manager(_) => return Err(ApiError::Conflict("swarm is not locked".into())),
            Role::Worker(_) => return Err(ApiError::Unavailable(NOT_A_MANAGER.into())),
            Role::Inactive => return Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
        };
        let wrong = || ApiError::Unauthorized(KeyError::WrongKek.to_string());
        let kek = Kek::from_unlock_key(unlock_key).map_err(|e| match e {
            KeyError::UnlockKeyFormat => ApiError::Invalid(e.to_string()),
            _ => wrong(),
        })?;
        let keys = locked.keys.unlock(&kek).map_err(|_| wrong())?;
        let identity = self
            .files
            .open_identity(locked.identity.clone(), &keys.data_key)
            .map_err(internal)?;
        let m = self.start_manager(identity, keys).await?;
        self.set_at_rest(Some(AtRest::UnlockKey(kek)));
        self.set_role(Role::Manager(m));
        tracing::info!("autolock: this manager is unlocked");
        Ok(())
    }

    /// Wraps this manager's data key as the cluster asks: with the unlock key when autolock
    /// is on, with a KEK file of its own when it is off. Nothing to do on other nodes, or
    /// before the replica holds the cluster (a manager that is still catching up).
    pub async fn secure_keys_at_rest(&self) -> std::result::Result<(), String> {
        let _t = self.transition.lock().await;
        let Role::Manager(m) = self.role() else {
            return Ok(());
        };
        let sealed = match m.replica().read().cluster() {
            Ok(c) => c.unlock_key.clone(),
            Err(_) => return Ok(()),
        };
        let wanted = if sealed.is_empty() {
            None
        } else {
            Some(
                m.keys
                    .data_key
                    .open_unlock_key(&sealed)
                    .map_err(|e| format!("the cluster's unlock key: {e}"))?,
            )
        };
        // The root CA's key follows the cluster's root too (a root rotation finished).
        let keys = m
            .keys_now()
            .map_err(|e| format!("the cluster's root CA: {e}"))?;
        let root = keys
            .ca
            .as_ref()
            .map(|c| c.cert_pem.clone())
            .unwrap_or_default();
        let new_root = *m.disk_root.lock().unwrap_or_else(|e| e.into_inner()) != root;
        let next = match (wanted, self.at_rest()) {
            (Some(k), Some(AtRest::UnlockKey(now))) if k == now && !new_root => return Ok(()),
            (Some(k), _) => AtRest::UnlockKey(k),
            (None, Some(AtRest::KekFile(_))) if !new_root => return Ok(()),
            (None, Some(AtRest::KekFile(kek))) => AtRest::KekFile(kek),
            (None, _) => AtRest::KekFile(Kek::generate()),
        };
        let autolock = matches!(next, AtRest::UnlockKey(_));
        self.save_keys(&keys, next)?;
        *m.disk_root.lock().unwrap_or_else(|e| e.into_inner()) = root;
        if new_root {
            tracing::info!("keys at rest: this manager keeps the swarm's new root CA key");
            return Ok(());
        }
        tracing::info!(
            "keys at rest: the data key is now wrapped by {}",
            if autolock {
                "the unlock key (autolock)"
            } else {
                "this manager's own key file"
            }
        );
        Ok(())
    }
}

/// Keeps this node's keys at rest wrapped as the cluster asks, for as long as the daemon runs.
pub(super) async fn keys_at_rest_loop(daemon: Weak<Daemon>) {
    let mut last_error = String::new();
    loop {
        tokio::time::sleep(CHECK_PERIOD).await;
        let Some(d) = daemon.upgrade() else { return };
        match d.secure_keys_at_rest().await {
            Ok(()) => last_error.clear(),
            Err(e) if e != last_error => {
                tracing::error!("cannot wrap this manager's data key as the cluster asks: {e}");
                last_error = e;
            }
            Err(_) => {}
        }
    }
}
