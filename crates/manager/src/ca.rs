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
    /// A root CA the operator gave (`docker swarm ca --rotate --ca-cert --ca-key`) that
    /// cannot be the swarm's root.
    #[error("{0}")]
    Given(String),
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

    /// A root CA the operator gave (`--ca-cert`, `--ca-key`), checked as Swarm checks it: the
    /// certificate is a CA certificate valid at `now` (seconds since the epoch), the key is
    /// its key.
    pub fn from_given(cert_pem: &str, key_pem: &str, now: i64) -> Result<Self, CaError> {
        let given = |m: String| CaError::Given(m);
        let der = shoal_raft::tls::cert_der(cert_pem).map_err(|e| {
            given(format!(
                "the CA certificate (--ca-cert) is not a PEM certificate: {e}"
            ))
        })?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| {
            given(format!(
                "the CA certificate (--ca-cert) cannot be read: {e}"
            ))
        })?;
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| b.value.ca);
        if !is_ca {
            return Err(given(
                "the certificate given with --ca-cert is not a CA certificate (its basic constraints do not say CA:TRUE)".into(),
            ));
        }
        let v = cert.validity();
        if v.not_after.timestamp() <= now {
            return Err(given(format!(
                "the CA certificate (--ca-cert) expired on {}",
                v.not_after
            )));
        }
        if v.not_before.timestamp() > now {
            return Err(given(format!(
                "the CA certificate (--ca-cert) is not valid before {}",
                v.not_before
            )));
        }
        let key_pem = &crate::keyformat::to_pkcs8_pem(key_pem)
            .map_err(|e| given(format!("the CA key (--ca-key) cannot be used: {e}")))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| {
            given(format!(
                "the CA key (--ca-key) is not a private key of a kind shoal signs with (ECDSA P-256/P-384, Ed25519, RSA): {e}"
            ))
        })?;
        if key.public_key_der() != cert.tbs_certificate.subject_pki.raw {
            return Err(given(
                "the CA key (--ca-key) does not match the CA certificate (--ca-cert)".into(),
            ));
        }
        // Certificates are issued with it as rcgen reads it: that must work now, not later.
        CertificateParams::from_ca_cert_pem(cert_pem)
            .map_err(|e| {
                given(format!(
                    "the CA certificate (--ca-cert) cannot be used to sign: {e}"
                ))
            })?
            .self_signed(&key)
            .map_err(|e| {
                given(format!(
                    "the CA certificate (--ca-cert) cannot be used to sign: {e}"
                ))
            })?;
        Ok(Self {
            cert_pem: pem_text(der.as_ref()),
            key_pem: key_pem.to_string(),
        })
    }

    /// The issuer certificate and key to sign with: the root as rcgen rebuilds it.
    fn signer(&self) -> Result<(rcgen::Certificate, KeyPair), CaError> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(|e| CaError::Root(e.to_string()))?;
        let ca = CertificateParams::from_ca_cert_pem(&self.cert_pem)
            .map_err(|e| CaError::Root(e.to_string()))?
            .self_signed(&ca_key)
            .map_err(|e| CaError::Make(e.to_string()))?;
        Ok((ca, ca_key))
    }

    /// `new`'s certificate signed by this root (same subject, same key, same validity): what
    /// nodes present after a certificate `new` issued while a root rotation runs, so that a
    /// node which trusts only this root takes it.
    pub fn cross_sign(&self, new: &RootCa) -> Result<String, CaError> {
        let make = |e: rcgen::Error| CaError::Make(e.to_string());
        let (ca, ca_key) = self.signer()?;
        let new_key = KeyPair::from_pem(&new.key_pem).map_err(|e| CaError::Root(e.to_string()))?;
        let mut params = CertificateParams::from_ca_cert_pem(&new.cert_pem)
            .map_err(|e| CaError::Root(e.to_string()))?;
        params.serial_number = None;
        Ok(params
            .signed_by(&new_key, &ca, &ca_key)
            .map_err(make)?
            .pem())
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
        let (ca, ca_key) = self.signer()?;
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

/// What Docker shows of a node's certificate (`TLSInfo` of `docker node inspect`): the root
/// it trusts (`ca_pem`), and the raw subject and public key of whoever issued its certificate,
/// found among the certificates it presents after its own (`cert_pem` holds the intermediate
/// a root rotation adds) and its root. `None` when the certificate cannot be read.
pub fn node_tls_info(cert_pem: &str, ca_pem: &str) -> Option<TLSInfo> {
    let chain = shoal_raft::tls::cert_chain(cert_pem).ok()?;
    let (leaf, rest) = chain.split_first()?;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let issuer_raw = leaf.tbs_certificate.issuer.as_raw();
    let root = shoal_raft::tls::cert_der(ca_pem).ok();
    let issuer = rest.iter().chain(root.iter()).find_map(|der| {
        let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        (c.tbs_certificate.subject.as_raw() == issuer_raw)
            .then(|| c.tbs_certificate.subject_pki.raw.to_vec())
    });
    Some(TLSInfo {
        trust_root: ca_pem.to_string(),
        cert_issuer_subject: issuer_raw.to_vec(),
        cert_issuer_public_key: issuer.unwrap_or_default(),
    })
}

/// Whether a node certificate (with what it presents after it, see [`node_tls_info`]) was
/// issued by the root CA certificate `issuer_pem`: same subject, same key, as Swarm compares.
pub fn issued_by(cert_pem: &str, ca_pem: &str, issuer_pem: &str) -> bool {
    match (node_tls_info(cert_pem, ca_pem), tls_info(issuer_pem)) {
        (Some(node), Some(want)) => {
            node.cert_issuer_subject == want.cert_issuer_subject
                && node.cert_issuer_public_key == want.cert_issuer_public_key
        }
        _ => false,
    }
}

/// A DER certificate as PEM text.
fn pem_text(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
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

    fn ca_params(
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
        ca: bool,
    ) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "operator-root");
        params.distinguished_name = dn;
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.not_before = not_before;
        params.not_after = not_after;
        params
    }

    #[test]
    fn a_given_root_must_be_a_ca_valid_now_with_its_own_key() {
        let t = now().unix_timestamp();
        let day = time::Duration::days(1);
        let key = KeyPair::generate().unwrap();
        let good = ca_params(now() - day, now() + day * 365, true)
            .self_signed(&key)
            .unwrap();
        let ca = RootCa::from_given(&good.pem(), &key.serialize_pem(), t).unwrap();
        assert_eq!(ca.cert_der().unwrap(), good.der().to_vec());
        // It signs node certificates.
        let (_k, csr) = node_key_and_csr().unwrap();
        let cert = ca
            .issue(&csr, "n", NodeRole::Worker, "c", MIN_NODE_VALIDITY)
            .unwrap();
        assert!(issued_by(&cert, &ca.cert_pem, &ca.cert_pem));

        let err = |cert: &str, key: &str| RootCa::from_given(cert, key, t).unwrap_err().to_string();
        let other = KeyPair::generate().unwrap();
        assert!(err(&good.pem(), &other.serialize_pem()).contains("does not match"));
        assert!(err(&good.pem(), "junk").contains("--ca-key) cannot be used: it is not PEM"));
        assert!(err("junk", &key.serialize_pem()).contains("not a PEM certificate"));
        let leaf = ca_params(now() - day, now() + day, false)
            .self_signed(&key)
            .unwrap();
        assert!(err(&leaf.pem(), &key.serialize_pem()).contains("not a CA certificate"));
        let expired = ca_params(now() - day * 10, now() - day, true)
            .self_signed(&key)
            .unwrap();
        assert!(err(&expired.pem(), &key.serialize_pem()).contains("expired"));
        let future = ca_params(now() + day, now() + day * 10, true)
            .self_signed(&key)
            .unwrap();
        assert!(err(&future.pem(), &key.serialize_pem()).contains("not valid before"));
    }

    #[test]
    fn a_certificate_of_the_new_root_presented_with_the_cross_signed_root_names_the_new_issuer() {
        let old = RootCa::generate().unwrap();
        let new = RootCa::generate().unwrap();
        let cross = old.cross_sign(&new).unwrap();
        // Same subject and key as the new root, issued by the old one.
        let (_, c) = x509_parser::parse_x509_certificate(
            shoal_raft::tls::cert_der(&cross).unwrap().as_ref(),
        )
        .map(|(r, c)| (r.to_vec(), c.tbs_certificate.subject_pki.raw.to_vec()))
        .unwrap();
        assert_eq!(
            Some(c),
            tls_info(&new.cert_pem).map(|t| t.cert_issuer_public_key)
        );
        let (_k, csr) = node_key_and_csr().unwrap();
        let leaf = new
            .issue(&csr, "n", NodeRole::Manager, "c", MIN_NODE_VALIDITY)
            .unwrap();
        let bundle = format!("{leaf}{cross}");
        assert_eq!(shoal_raft::tls::cert_chain(&bundle).unwrap().len(), 2);
        // Trusting the old root only (mid-rotation) or the new one (after): issued by the new.
        assert!(issued_by(&bundle, &old.cert_pem, &new.cert_pem));
        assert!(issued_by(&bundle, &new.cert_pem, &new.cert_pem));
        assert!(!issued_by(&bundle, &old.cert_pem, &old.cert_pem));
        let info = node_tls_info(&bundle, &old.cert_pem).unwrap();
        assert_eq!(info.trust_root, old.cert_pem);
        // The TLS configurations take the chain.
        let node = shoal_raft::tls::NodeCert {
            ca_pem: old.cert_pem.clone(),
            cert_pem: bundle,
            key_pem: _k,
        };
        assert!(shoal_raft::tls::configs(&node).is_ok());
    }

    #[test]
    fn the_token_digest_is_the_root_certificates() {
        let a = RootCa::generate().unwrap();
        let b = RootCa::generate().unwrap();
        assert_eq!(a.digest().unwrap().len(), 50);
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
    }
}
