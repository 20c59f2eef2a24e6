//! Name rules for cluster objects, as SwarmKit's control API enforces them: services and
//! networks need a DNS label, configs and secrets a file-name-like name, networks must not take
//! an engine's predefined names; node names are free. It checks one name at a time; whether a
//! name is already taken is the store's business.

use regex::Regex;
use std::sync::LazyLock;

/// Longest service or network name (a DNS label).
pub const MAX_DNS_NAME_LEN: usize = 63;
/// Longest config or secret name.
pub const MAX_CONFIG_SECRET_NAME_LEN: usize = 64;

/// Networks every engine has; no swarm network may be named like them.
pub const PREDEFINED_NETWORKS: &[&str] = &["bridge", "host", "none", "default"];

static DNS_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$").expect("valid regex"));
static CONFIG_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$").expect("valid regex")
});

/// A name a rule refuses. `kind` is the object kind (`service`, `network`, `config`, `secret`).
/// The wording keeps SwarmKit's phrases so that people searching for them find the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name must be provided")]
    Empty { kind: &'static str },
    #[error(
        "invalid {kind} name {name:?}: name must be valid as a DNS name component \
         (letters, digits, and '-' or '_' between them)"
    )]
    NotDnsName { kind: &'static str, name: String },
    #[error("invalid {kind} name {name:?}: name must be {max} characters or fewer")]
    TooLong {
        kind: &'static str,
        name: String,
        max: usize,
    },
    #[error(
        "invalid {kind} name {name:?}: only {max} [a-zA-Z0-9-_.] characters allowed, \
         and the start and end character must be [a-zA-Z0-9]"
    )]
    NotFileName {
        kind: &'static str,
        name: String,
        max: usize,
    },
    #[error("{name} is a pre-defined network and cannot be created")]
    PredefinedNetwork { name: String },
}

fn dns_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if !DNS_NAME.is_match(name) {
        return Err(NameError::NotDnsName {
            kind,
            name: name.to_string(),
        });
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            name: name.to_string(),
            max: MAX_DNS_NAME_LEN,
        });
    }
    Ok(())
}

fn file_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > MAX_CONFIG_SECRET_NAME_LEN || !CONFIG_SECRET_NAME.is_match(name) {
        return Err(NameError::NotFileName {
            kind,
            name: name.to_string(),
            max: MAX_CONFIG_SECRET_NAME_LEN,
        });
    }
    Ok(())
}

/// A service name: `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most 63 characters.
pub fn validate_service_name(name: &str) -> Result<(), NameError> {
    dns_name("service", name)
}

/// A swarm network name: the service rule, and none of [`PREDEFINED_NETWORKS`].
pub fn validate_network_name(name: &str) -> Result<(), NameError> {
    if is_predefined_network(name) {
        return Err(NameError::PredefinedNetwork {
            name: name.to_string(),
        });
    }
    dns_name("network", name)
}

/// A config name: `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters.
pub fn validate_config_name(name: &str) -> Result<(), NameError> {
    file_name("config", name)
}

/// A secret name: same rule as configs.
pub fn validate_secret_name(name: &str) -> Result<(), NameError> {
    file_name("secret", name)
}

/// Node names (`Spec.Name`) are free-form, empty included; always `Ok`.
pub fn validate_node_name(_name: &str) -> Result<(), NameError> {
    Ok(())
}

/// Whether `name` is one of the networks every engine predefines.
pub fn is_predefined_network(name: &str) -> bool {
    PREDEFINED_NETWORKS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_follow_the_dns_label_rule() {
        for good in [
            "web",
            "a",
            "app_web",
            "my-app--1",
            "A1",
            "x_-_y",
            &"a".repeat(63),
        ] {
            assert_eq!(validate_service_name(good), Ok(()), "{good}");
        }
        for bad in ["-web", "web-", "web_", "my.app", "web app", "wéb", "_x"] {
            assert!(
                matches!(
                    validate_service_name(bad),
                    Err(NameError::NotDnsName { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            validate_service_name(""),
            Err(NameError::Empty { kind: "service" })
        );
        let long = "a".repeat(64);
        assert!(matches!(
            validate_service_name(&long),
            Err(NameError::TooLong { max: 63, .. })
        ));
        assert_eq!(
            validate_service_name("my.app").unwrap_err().to_string(),
            "invalid service name \"my.app\": name must be valid as a DNS name component \
             (letters, digits, and '-' or '_' between them)"
        );
    }

    #[test]
    fn config_and_secret_names_allow_dots_but_not_at_the_ends() {
        for good in [
            "app.conf",
            "db_password",
            "a",
            "tls-cert.v2",
            "A-B_C.D",
            &"s".repeat(64),
        ] {
            assert_eq!(validate_config_name(good), Ok(()), "{good}");
            assert_eq!(validate_secret_name(good), Ok(()), "{good}");
        }
        for bad in [".env", "app.", "-x", "x_", "a b", "a/b", &"s".repeat(65)] {
            assert!(validate_config_name(bad).is_err(), "{bad}");
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_secret_name("a b").unwrap_err().to_string(),
            "invalid secret name \"a b\": only 64 [a-zA-Z0-9-_.] characters allowed, \
             and the start and end character must be [a-zA-Z0-9]"
        );
        assert_eq!(
            validate_config_name("").unwrap_err().to_string(),
            "config name must be provided"
        );
    }

    #[test]
    fn network_names_refuse_predefined_ones() {
        assert_eq!(validate_network_name("app_default"), Ok(()));
        assert_eq!(
            validate_network_name("bridge").unwrap_err().to_string(),
            "bridge is a pre-defined network and cannot be created"
        );
        assert!(validate_network_name("my.net").is_err());
        assert!(is_predefined_network("host"));
        assert!(!is_predefined_network("ingress"));
    }

    #[test]
    fn node_names_are_free() {
        assert_eq!(validate_node_name(""), Ok(()));
        assert_eq!(validate_node_name("node 1.example.com"), Ok(()));
    }
}
