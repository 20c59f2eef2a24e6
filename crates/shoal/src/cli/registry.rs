//! Registry credentials as the docker CLI keeps them (`docker login`), for
//! `--with-registry-auth`: `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`),
//! `credHelpers` for one registry, then `credsStore`, then the file's own `auths`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::Value;
use shoal_types::registry::{registry_of, RegistryAuth};

/// Where the docker CLI's configuration lives.
fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The docker CLI's configuration (`null` when there is none).
pub fn load_config() -> Result<Value> {
    let Some(path) = config_path() else {
        return Ok(Value::Null);
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the docker CLI's configuration {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Where the credentials of one registry are to be found.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// In the file itself.
    Inline(RegistryAuth),
    /// With the credential helper `docker-credential-NAME`.
    Helper(String),
    None,
}

/// `https://host/path` → `host`, as the docker CLI compares registry keys.
fn hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Where `config` keeps the credentials of `registry` (a host, or Docker Hub's index URL).
pub fn source(config: &Value, registry: &str) -> Result<Source> {
    if let Some(helper) = config["credHelpers"][registry].as_str() {
        return Ok(Source::Helper(helper.to_string()));
    }
    if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty()) {
        return Ok(Source::Helper(store.to_string()));
    }
    let Some(auths) = config["auths"].as_object() else {
        return Ok(Source::None);
    };
    let entry = auths.get(registry).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| hostname(k) == hostname(registry))
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(Source::None);
    };
    let mut auth = RegistryAuth {
        serveraddress: registry.to_string(),
        identitytoken: entry["identitytoken"].as_str().unwrap_or_default().into(),
        ..Default::default()
    };
    if let Some(encoded) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let plain = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .with_context(|| format!("the credentials of {registry} in the docker CLI's configuration are not base64 of user:password"))?;
        let Some((user, password)) = plain.split_once(':') else {
            bail!("the credentials of {registry} in the docker CLI's configuration are not user:password");
        };
        auth.username = user.to_string();
        auth.password = password.to_string();
    }
    Ok(
        if auth.username.is_empty() && auth.identitytoken.is_empty() {
            Source::None
        } else {
            Source::Inline(auth)
        },
    )
}

/// Asks `docker-credential-HELPER get` for `registry`'s credentials.
fn from_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "running the credential helper {program} (named by the docker CLI's configuration)"
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(registry.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("credentials not found") {
            return Ok(None);
        }
        bail!(
            "{program} get {registry}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("{program} get {registry}: the answer is not JSON"))?;
    let user = answer["Username"].as_str().unwrap_or_default();
    let secret = answer["Secret"].as_str().unwrap_or_default().to_string();
    let mut auth = RegistryAuth {
        serveraddress: registry.to_string(),
        ..Default::default()
    };
    if user == "<token>" {
        auth.identitytoken = secret;
    } else {
        auth.username = user.to_string();
        auth.password = secret;
    }
    Ok(Some(auth))
}

/// The credentials the docker CLI would send for pulling `image` (`None`: it has none).
pub fn credentials_for(config: &Value, image: &str) -> Result<Option<RegistryAuth>> {
    let registry = registry_of(image);
    match source(config, &registry)? {
        Source::Inline(auth) => Ok(Some(auth)),
        Source::Helper(helper) => from_helper(&helper, &registry),
        Source::None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal_types::registry::DOCKER_HUB_INDEX;

    #[test]
    fn inline_credentials_are_found_by_host() {
        let config = json!({"auths": {
            "127.0.0.1:5000": {"auth": base64::engine::general_purpose::STANDARD.encode("u:p:q")},
            "https://ghcr.io/v2/": {"identitytoken": "tok"},
        }});
        let Source::Inline(a) = source(&config, "127.0.0.1:5000").unwrap() else {
            panic!()
        };
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p:q"));
        assert_eq!(a.serveraddress, "127.0.0.1:5000");
        let Source::Inline(a) = source(&config, "ghcr.io").unwrap() else {
            panic!()
        };
        assert_eq!(a.identitytoken, "tok");
        assert_eq!(source(&config, DOCKER_HUB_INDEX).unwrap(), Source::None);
        assert_eq!(source(&Value::Null, "x.io").unwrap(), Source::None);
    }

    #[test]
    fn helpers_come_first_and_bad_entries_are_errors() {
        let config = json!({
            "credHelpers": {"x.io": "ecr-login"},
            "credsStore": "pass",
            "auths": {"x.io": {"auth": "dTpw"}},
        });
        assert_eq!(
            source(&config, "x.io").unwrap(),
            Source::Helper("ecr-login".into())
        );
        assert_eq!(
            source(&config, "y.io").unwrap(),
            Source::Helper("pass".into())
        );
        let bad = json!({"auths": {"x.io": {"auth": "not base64!"}}});
        assert!(source(&bad, "x.io").is_err());
    }
}
