//! Private keys as operators bring them. rcgen (on ring) reads PKCS#8 (`BEGIN PRIVATE KEY`)
//! only; Docker also takes a CA key for `docker swarm ca --rotate --ca-key` in the older
//! formats openssl writes by default: SEC1 for EC keys (`BEGIN EC PRIVATE KEY`, from
//! `openssl ecparam -genkey`) and PKCS#1 for RSA keys (`BEGIN RSA PRIVATE KEY`, from
//! `openssl genrsa -traditional`). Both are the same key in a PKCS#8 envelope (RFC 5208:
//! version, algorithm identifier, the key's own DER as an octet string; RFC 5915 for EC), so
//! they are put in one, the key itself unchanged.

use yasna::models::ObjectIdentifier;
use yasna::Tag;

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
/// rsaEncryption (RFC 8017).
const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("it is not PEM: {0}")]
    NotPem(String),
    #[error("it is encrypted (BEGIN ENCRYPTED PRIVATE KEY): give it unencrypted")]
    Encrypted,
    #[error(
        "its EC key (SEC1) names no curve: give it in PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`)"
    )]
    NoCurve,
    #[error("its EC key (SEC1) holds no public key, which shoal's signer needs: `openssl ec -in KEY` writes the key with it")]
    NoPublicKey,
    #[error("its {0} is not valid DER")]
    BadDer(&'static str),
    #[error("it is a PEM block of type `{0}`, not a private key")]
    NotAKey(String),
}

/// `key_pem` as PKCS#8 PEM: as it is when it already is, else its SEC1 or PKCS#1 key in a
/// PKCS#8 envelope.
pub fn to_pkcs8_pem(key_pem: &str) -> Result<String, KeyFormatError> {
    let block = pem::parse(key_pem.trim()).map_err(|e| KeyFormatError::NotPem(e.to_string()))?;
    let der = block.contents();
    let (algorithm, parameter) = match block.tag() {
        "PRIVATE KEY" => return Ok(key_pem.to_string()),
        "ENCRYPTED PRIVATE KEY" => return Err(KeyFormatError::Encrypted),
        "EC PRIVATE KEY" => (EC_PUBLIC_KEY, Some(sec1_curve(der)?)),
        "RSA PRIVATE KEY" => {
            check_pkcs1(der)?;
            (RSA_ENCRYPTION, None)
        }
        other => return Err(KeyFormatError::NotAKey(other.to_string())),
    };
    let pkcs8 = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                w.next().write_oid(&ObjectIdentifier::from_slice(algorithm));
                match &parameter {
                    Some(curve) => w.next().write_oid(curve),
                    None => w.next().write_null(),
                }
            });
            w.next().write_bytes(der);
        })
    });
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8)))
}

/// The named curve of a SEC1 `ECPrivateKey` (RFC 5915: version 1, the private key, `[0]` the
/// curve, `[1]` the public key).
fn sec1_curve(der: &[u8]) -> Result<ObjectIdentifier, KeyFormatError> {
    let curve = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            r.next().read_bytes()?;
            let curve = r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_oid()))?;
            let public =
                r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_bitvec_bytes()))?;
            Ok((curve, public.is_some()))
        })
    })
    .map_err(|_| KeyFormatError::BadDer("EC key (SEC1)"))?;
    match curve {
        (None, _) => Err(KeyFormatError::NoCurve),
        (Some(_), false) => Err(KeyFormatError::NoPublicKey),
        (Some(c), true) => Ok(c),
    }
}

/// That a PKCS#1 `RSAPrivateKey` is a DER sequence (ring checks the rest when it reads it).
fn check_pkcs1(der: &[u8]) -> Result<(), KeyFormatError> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(())
        })
    })
    .map_err(|_| KeyFormatError::BadDer("RSA key (PKCS#1)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// Throwaway keys made with openssl for these tests (and the public key of each, as
    /// `openssl pkey -pubout -outform DER` gives it).
    const EC_P256: &str = include_str!("testdata/ec-p256-sec1.test-key.pem");
    const EC_P256_SPKI: &str = include_str!("testdata/ec-p256.test-spki.b64");
    const EC_P384: &str = include_str!("testdata/ec-p384-sec1.test-key.pem");
    const EC_P384_SPKI: &str = include_str!("testdata/ec-p384.test-spki.b64");
    const RSA_2048: &str = include_str!("testdata/rsa-2048-pkcs1.test-key.pem");
    const RSA_2048_SPKI: &str = include_str!("testdata/rsa-2048.test-spki.b64");
    const EC_NO_PUBLIC: &str = include_str!("testdata/ec-p256-sec1-nopub.test-key.pem");

    fn spki(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap()
    }

    #[test]
    fn sec1_and_pkcs1_keys_are_the_same_key_in_pkcs8() {
        for (key, public) in [
            (EC_P256, EC_P256_SPKI),
            (EC_P384, EC_P384_SPKI),
            (RSA_2048, RSA_2048_SPKI),
        ] {
            let pkcs8 = to_pkcs8_pem(key).unwrap();
            assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"), "{pkcs8}");
            let pair = rcgen::KeyPair::from_pem(&pkcs8).unwrap();
            assert_eq!(pair.public_key_der(), spki(public));
            // PKCS#8 is taken as it is.
            assert_eq!(to_pkcs8_pem(&pkcs8).unwrap(), pkcs8);
        }
    }

    proptest::proptest! {
        /// Whatever stands in a key's PEM block, the answer is a key or an error, never a panic.
        #[test]
        fn any_block_gives_a_key_or_an_error(
            tag in "(EC|RSA|ENCRYPTED)? ?PRIVATE KEY|CERTIFICATE",
            der in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let block = pem::encode(&pem::Pem::new(tag, der));
            if let Ok(pkcs8) = to_pkcs8_pem(&block) {
                let _ = rcgen::KeyPair::from_pem(&pkcs8);
            }
        }
    }

    #[test]
    fn what_cannot_be_a_signing_key_says_why() {
        assert_eq!(to_pkcs8_pem(EC_NO_PUBLIC), Err(KeyFormatError::NoPublicKey));
        let encrypted = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", vec![1, 2]));
        assert_eq!(to_pkcs8_pem(&encrypted), Err(KeyFormatError::Encrypted));
        let cert = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2]));
        assert_eq!(
            to_pkcs8_pem(&cert),
            Err(KeyFormatError::NotAKey("CERTIFICATE".into()))
        );
        let junk = pem::encode(&pem::Pem::new("EC PRIVATE KEY", vec![0x30, 0x05, 1]));
        assert_eq!(
            to_pkcs8_pem(&junk),
            Err(KeyFormatError::BadDer("EC key (SEC1)"))
        );
        let junk = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", vec![4, 1, 0]));
        assert_eq!(
            to_pkcs8_pem(&junk),
            Err(KeyFormatError::BadDer("RSA key (PKCS#1)"))
        );
        assert!(matches!(
            to_pkcs8_pem("junk"),
            Err(KeyFormatError::NotPem(_))
        ));
    }
}
