//! What a swarm spec's `CAConfig` asks of the root CA, decided as Swarm decides it: a new
//! `ForceRotate` counter (`docker swarm ca --rotate`) rotates to a root made by the swarm, a
//! `SigningCACert` with its `SigningCAKey` (`--ca-cert`, `--ca-key`) rotates to that root,
//! the current root given again stops a rotation under way (or changes nothing). External
//! CAs are refused: shoal's managers always sign node certificates themselves.
//!
//! Pure: it reads no state and makes no key (`controlapi::update_cluster` does both).

use crate::error::{ApiError, Result};
use shoal_types::swarm::CAConfig;

/// The change a `CAConfig` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaChange {
    /// The root stays as it is (and a rotation under way goes on).
    None,
    /// Rotate to a new root the swarm makes.
    Generate,
    /// Rotate to the root given, certificate and key (PEM).
    Given { cert: String, key: String },
    /// Stop the rotation under way: the current root stays.
    Abort,
}

/// What rotating at `swarm init` gets: there is no root yet to rotate from.
const AT_INIT: &str = "a root CA rotation (ForceRotate, SigningCACert, SigningCAKey) cannot be asked at swarm init: the swarm makes its root CA then; rotate it afterwards with `docker swarm ca --rotate` (with --ca-cert and --ca-key for a root of your own)";

/// Decides what `new` asks of the root CA. `current` is the cluster's `CAConfig` (none at
/// init), `current_root` the cluster's root certificate (PEM), `rotating_to` the certificate
/// of the root a rotation under way goes to.
pub fn plan_ca_change(
    current: Option<&CAConfig>,
    current_root: &str,
    rotating_to: Option<&str>,
    new: &CAConfig,
) -> Result<CaChange> {
    if !new.external_cas.is_empty() {
        return Err(ApiError::invalid(
            "external CAs (--external-ca) are not supported by shoal: the swarm's own root CA signs node certificates",
        ));
    }
    let cert = new.signing_ca_cert.trim();
    let key = new.signing_ca_key.trim();
    if cert.is_empty() && !key.is_empty() {
        return Err(ApiError::invalid(
            "a root CA key (--ca-key, SigningCAKey) needs its certificate (--ca-cert, SigningCACert)",
        ));
    }
    if !cert.is_empty() && key.is_empty() {
        return Err(ApiError::invalid(
            "a root CA certificate (--ca-cert, SigningCACert) needs its key (--ca-key, SigningCAKey): without it only an external CA could sign, which shoal does not support",
        ));
    }
    let Some(current) = current else {
        if new.force_rotate != 0 || !cert.is_empty() {
            return Err(ApiError::invalid(AT_INIT));
        }
        return Ok(CaChange::None);
    };
    if !cert.is_empty() {
        if same_cert(cert, current_root) {
            return Ok(match rotating_to {
                Some(_) => CaChange::Abort,
                None => CaChange::None,
            });
        }
        if rotating_to.is_some_and(|r| same_cert(cert, r)) {
            return Ok(CaChange::None);
        }
        return Ok(CaChange::Given {
            cert: cert.to_string(),
            key: key.to_string(),
        });
    }
    if new.force_rotate != current.force_rotate {
        return Ok(CaChange::Generate);
    }
    Ok(CaChange::None)
}

/// Whether two PEM texts hold the same certificate (compared as DER: line breaks and text
/// around it do not count).
fn same_cert(a: &str, b: &str) -> bool {
    match (shoal_raft::tls::cert_der(a), shoal_raft::tls::cert_der(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::RootCa;

    fn config(force_rotate: u64) -> CAConfig {
        CAConfig {
            force_rotate,
            node_cert_expiry: 7_200_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_force_rotate_counter_rotates_to_a_new_root_and_the_expiry_alone_does_not() {
        let root = RootCa::generate().unwrap().cert_pem;
        let current = config(2);
        let plan = |new: &CAConfig| plan_ca_change(Some(&current), &root, None, new).unwrap();
        assert_eq!(plan(&config(2)), CaChange::None);
        assert_eq!(plan(&config(3)), CaChange::Generate);
        // Swarm rotates on any change of the counter, not only on an increase.
        assert_eq!(plan(&config(1)), CaChange::Generate);
    }

    #[test]
    fn a_given_root_rotates_to_it_and_the_current_root_given_stops_a_rotation() {
        let root = RootCa::generate().unwrap().cert_pem;
        let target = RootCa::generate().unwrap().cert_pem;
        let other = RootCa::generate().unwrap().cert_pem;
        let current = config(0);
        let given = |cert: &str| CAConfig {
            signing_ca_cert: cert.to_string(),
            signing_ca_key: "KEY".into(),
            ..config(0)
        };
        let plan = |rotating: Option<&str>, new: &CAConfig| {
            plan_ca_change(Some(&current), &root, rotating, new).unwrap()
        };
        assert_eq!(
            plan(None, &given(&other)),
            CaChange::Given {
                cert: other.trim().to_string(),
                key: "KEY".into()
            }
        );
        // The same certificate, written with other line breaks, is the same root.
        let rewrapped = root.replace('\n', "\r\n");
        assert_eq!(plan(None, &given(&rewrapped)), CaChange::None);
        assert_eq!(plan(Some(&target), &given(&root)), CaChange::Abort);
        assert_eq!(plan(Some(&target), &given(&target)), CaChange::None);
        assert!(matches!(
            plan(Some(&target), &given(&other)),
            CaChange::Given { .. }
        ));
    }

    #[test]
    fn a_certificate_without_its_key_or_a_key_alone_is_refused() {
        let root = RootCa::generate().unwrap().cert_pem;
        let cert_only = CAConfig {
            signing_ca_cert: root.clone(),
            ..config(0)
        };
        let err = plan_ca_change(Some(&config(0)), &root, None, &cert_only).unwrap_err();
        assert!(err.to_string().contains("needs its key"), "{err}");
        let key_only = CAConfig {
            signing_ca_key: "KEY".into(),
            ..config(0)
        };
        let err = plan_ca_change(Some(&config(0)), &root, None, &key_only).unwrap_err();
        assert!(err.to_string().contains("needs its certificate"), "{err}");
    }

    #[test]
    fn external_cas_and_rotation_at_init_are_refused() {
        let external = CAConfig {
            external_cas: vec![Default::default()],
            ..Default::default()
        };
        let err = plan_ca_change(None, "", None, &external).unwrap_err();
        assert!(err.to_string().contains("external CA"), "{err}");
        let err = plan_ca_change(Some(&config(0)), "", None, &external).unwrap_err();
        assert!(err.to_string().contains("external CA"), "{err}");
        assert_eq!(
            plan_ca_change(None, "", None, &CAConfig::default()).unwrap(),
            CaChange::None
        );
        let err = plan_ca_change(None, "", None, &config(1)).unwrap_err();
        assert!(err.to_string().contains("swarm init"), "{err}");
    }
}
