//! The cluster's certificate authority, as Swarm's: a root CA made at `swarm init` whose key
//! only managers hold, and node certificates issued against a CSR the node made (its private
//! key never leaves it), with the node ID as CN, the role as OU (`swarm-manager` /
//! `swarm-worker`) and the cluster ID as O.
//!
//! This module makes and signs certificates. It does not decide who gets one (the leader's
//! admission and `internal_node_cert` do) nor check peers (that is `shoal_raft::tls`).

use crate::tokens;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use shoal_raft::tls::{MANAGER_OU, WORKER_OU};
use shoal_types::swarm::{NodeRole, TLSInfo};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CSR a node sent cannot be read or its signature is wrong.
    #[error("the certificate signing request is invalid: {0}")]
    Csr(String),
    #[error("the cluster's root CA is unreadable: {0}")]
    Root(String),
    #[error("cannot make a certificate: {0}")]
    Make(String),
}

/// How long the root CA is valid (Swarm: 20 years).
const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Certificates are valid from a little before they were made: clocks of nodes differ.
const BACKDATE: Duration = Duration::from_secs(3600);
/// The shortest node certificate validity a cluster spec may ask (Swarm: 1 hour).
pub const MIN_NODE_VALIDITY: Duration = Duration::from_secs(3600);

/// The root CA: certificate and key, PEM. Kept in a manager's `keys.json` only, wrapped by
/// its key-encryption key as the data key is (`identity::Files::save_keys`).
#[derive(Clone, Serialize, Deserialize)]
pub struct RootCa {
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for RootCa {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootCa(..)")
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl RootCa {
    /// A new root CA (ECDSA P-256), subject `CN=swarm-ca` as Swarm's.
    pub fn generate() -> Result<Self, CaError> {
        let make = |e: rcgen::Error| CaError::Make(e.to_string());
        let key = KeyPair::generate().map_err(make)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "swarm-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now() - BACKDATE;
        params.not_after = now() + ROOT_VALIDITY;
        let cert = params.self_signed(&key).map_err(make)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The root CA's private key, PEM, for tests that search a disk for it.
    pub fn expose_key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The root certificate, DER.
    pub fn cert_der(&self) -> Result<Vec<u8>, CaError> {
        shoal_raft::tls::cert_der(&self.cert_pem)
            .map(|c| c.as_ref().to_vec())
            .map_err(|e| CaError::Root(e.to_string()))
    }

    /// The digest join tokens carry (`SWMTKN-1-<digest>-…`): of the root certificate.
    pub fn digest(&self) -> Result<String, CaError> {
        Ok(tokens::digest(&self.cert_der()?))
    }

    /// Signs a certificate for `node_id` in `role` of cluster `cluster_id`, valid for
    /// `validity`, on the public key of `csr_pem`. What the CSR asks for besides its key
    /// (subject, names) is ignored: the cluster decides who the node is.
    pub fn issue(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<String, CaError> {
        let make = |e: rcgen::Error| CaError::Make(e.to_string());
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::Csr(e.to_string()))?;
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(|e| CaError::Root(e.to_string()))?;
        let ca = CertificateParams::from_ca_cert_pem(&self.cert_pem)
            .map_err(|e| CaError::Root(e.to_string()))?
            .self_signed(&ca_key)
            .map_err(make)?;
        let ou = match role {
            NodeRole::Manager => MANAGER_OU,
            NodeRole::Worker => WORKER_OU,
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_id);
        dn.push(DnType::OrganizationalUnitName, ou);
        dn.push(DnType::OrganizationName, cluster_id);
        params.distinguished_name = dn;
        params.subject_alt_names = [ou, node_id]
            .into_iter()
            .map(|n| {
                n.try_into()
                    .map(SanType::DnsName)
                    .map_err(|e: rcgen::Error| CaError::Make(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = now() - BACKDATE;
        params.not_after = now() + validity.max(MIN_NODE_VALIDITY);
        csr.params = params;
        Ok(csr.signed_by(&ca, &ca_key).map_err(make)?.pem())
    }
}

/// A node's new private key and the CSR for it, PEM: the key stays on the node.
pub fn node_key_and_csr() -> Result<(String, String), CaError> {
    let make = |e: rcgen::Error| CaError::Make(e.to_string());
    let key = KeyPair::generate().map_err(make)?;
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .map_err(make)?
        .pem()
        .map_err(make)?;
    Ok((key.serialize_pem(), csr))
}

/// What Docker shows of a trust root (`TLSInfo` of the swarm and of each node): the root
/// certificate, its raw subject and raw public key.
pub fn tls_info(ca_pem: &str) -> Option<TLSInfo> {
    let der = shoal_raft::tls::cert_der(ca_pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(TLSInfo {
        trust_root: ca_pem.to_string(),
        cert_issuer_subject: cert.tbs_certificate.subject.as_raw().to_vec(),
        cert_issuer_public_key: cert.tbs_certificate.subject_pki.raw.to_vec(),
    })
}

/// When a certificate stops being valid, as seconds since the epoch.
pub fn not_after(cert_pem: &str) -> Option<i64> {
    validity(cert_pem).map(|(_, end)| end)
}

/// A certificate's validity window, as seconds since the epoch.
fn validity(cert_pem: &str) -> Option<(i64, i64)> {
    let der = shoal_raft::tls::cert_der(cert_pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// Whether a certificate is due for renewal at `now` (seconds since the epoch): once it has
/// run through the fraction `at` of its validity. Swarm picks that point at random between
/// half and four fifths, so that nodes do not all renew at once and none runs out. An
/// unreadable certificate is due.
pub fn renewal_due(cert_pem: &str, now: i64, at: f64) -> bool {
    let Some((start, end)) = validity(cert_pem) else {
        return true;
    };
    let span = (end - start).max(1) as f64;
    (now - start) as f64 >= span * at
}

/// Where in its validity a node renews its certificate (see [`renewal_due`]).
pub fn renewal_point() -> f64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0.5..0.8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_raft::tls::{peer_identity, PeerRole};

    #[test]
    fn an_issued_certificate_names_the_node_its_role_and_cluster() {
        let ca = RootCa::generate().unwrap();
        let (_key, csr) = node_key_and_csr().unwrap();
        let cert = ca
            .issue(
                &csr,
                "node1",
                NodeRole::Worker,
                "cluster1",
                Duration::from_secs(7200),
            )
            .unwrap();
        let der = shoal_raft::tls::cert_der(&cert).unwrap();
        let id = peer_identity(der.as_ref()).unwrap();
        assert_eq!(id.node_id, "node1");
        assert_eq!(id.role, PeerRole::Worker);
        assert_eq!(id.cluster_id, "cluster1");
        let left = not_after(&cert).unwrap() - now().unix_timestamp();
        assert!((7000..=7300).contains(&left), "{left}");
    }

    #[test]
    fn a_certificate_is_renewed_past_the_chosen_point_of_its_validity() {
        let ca = RootCa::generate().unwrap();
        let (_key, csr) = node_key_and_csr().unwrap();
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let cert = ca
            .issue(&csr, "n", NodeRole::Worker, "c", hours(10))
            .unwrap();
        // Valid from an hour ago (clocks differ) for ten hours: 11 hours in all.
        let t = now().unix_timestamp();
        assert!(!renewal_due(&cert, t, 0.5));
        assert!(!renewal_due(&cert, t + 4 * 3600, 0.5));
        assert!(renewal_due(&cert, t + 5 * 3600, 0.5));
        assert!(!renewal_due(&cert, t + 7 * 3600, 0.8));
        assert!(renewal_due(&cert, t + 8 * 3600, 0.8));
        assert!(renewal_due("not a certificate", t, 0.5));
        let p = renewal_point();
        assert!((0.5..0.8).contains(&p));
    }

    #[test]
    fn a_damaged_csr_is_refused() {
        let ca = RootCa::generate().unwrap();
        let e = ca
            .issue("garbage", "n", NodeRole::Manager, "c", MIN_NODE_VALIDITY)
            .unwrap_err();
        assert!(matches!(e, CaError::Csr(_)), "{e}");
    }

    #[test]
    fn the_token_digest_is_the_root_certificates() {
        let a = RootCa::generate().unwrap();
        let b = RootCa::generate().unwrap();
        assert_eq!(a.digest().unwrap().len(), 50);
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
    }
}
