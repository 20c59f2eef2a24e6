//! Image references and registry credentials, as the Docker API carries them: the parts of a
//! reference (`[host/]path[:tag][@digest]`) that matter to resolving one on the nodes' engines
//! (`GET /distribution`, the agent's pinned images), and the `X-Registry-Auth` header
//! (`AuthConfig` as base64url JSON) that `--with-registry-auth` sends. Pure: no I/O.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// An image reference split into its parts; `repository` is in Docker's familiar form
/// (`busybox`, not `docker.io/library/busybox`), as engines list `RepoTags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// A reference that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format: {reference:?} {why}")]
pub struct InvalidReference {
    pub reference: String,
    pub why: &'static str,
}

impl ImageRef {
    /// Parses `[host[:port]/]path[:tag][@sha256:hex]`.
    pub fn parse(reference: &str) -> Result<ImageRef, InvalidReference> {
        let bad = |why| InvalidReference {
            reference: reference.to_string(),
            why,
        };
        if reference.is_empty() || reference.len() > 512 {
            return Err(bad("is empty or too long"));
        }
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("has a digest that is not sha256:<hex>"))?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                {
                    return Err(bad("has a digest that is not sha256:<64 hex digits>"));
                }
                (name, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(bad("has an invalid tag"));
            }
        }
        let ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                part.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && part.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
            });
        if !ok {
            return Err(bad("has an invalid repository name"));
        }
        // The first part is a registry host when it looks like one; the path is lowercase.
        let mut parts = repository.split('/');
        let first = parts.next().unwrap_or_default();
        let host = repository.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        let path_parts = if host {
            parts.collect::<Vec<_>>()
        } else {
            repository.split('/').collect()
        };
        if path_parts
            .iter()
            .any(|p| p.chars().any(|c| c.is_ascii_uppercase()) || p.contains(':'))
        {
            return Err(bad("has a repository name that is not lowercase"));
        }
        Ok(ImageRef {
            repository: familiar(repository),
            tag,
            digest,
        })
    }

    /// The reference without its digest (`name[:tag]`), what an engine lists in `RepoTags`.
    pub fn name_and_tag(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// Whether one of an image's `RepoTags` (`repo:tag`) or `RepoDigests` (`repo@digest`)
    /// is of this reference's repository.
    pub fn is_repository_of(&self, entry: &str) -> bool {
        let repo = match entry.split_once('@') {
            Some((repo, _)) => repo,
            None => {
                let last_slash = entry.rfind('/').map(|i| i + 1).unwrap_or(0);
                match entry[last_slash..].rfind(':') {
                    Some(i) => &entry[..last_slash + i],
                    None => entry,
                }
            }
        };
        familiar(repo) == self.repository
    }
}

/// Docker Hub's names in their familiar form: `docker.io/library/x` → `x`,
/// `docker.io/u/x` → `u/x`.
pub fn familiar(repository: &str) -> String {
    let rest = repository
        .strip_prefix("docker.io/")
        .or_else(|| repository.strip_prefix("index.docker.io/"))
        .unwrap_or(repository);
    if rest.len() != repository.len() || !rest.contains('/') {
        rest.strip_prefix("library/").unwrap_or(rest).to_string()
    } else {
        rest.to_string()
    }
}

/// Docker's `AuthConfig`: credentials for one registry, as the CLI sends them in
/// `X-Registry-Auth` and the engine takes them for a pull. `Debug` shows no credential.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(username:password)`, what `docker login` keeps in config.json.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

/// An `X-Registry-Auth` header that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid X-Registry-Auth header: {0}")]
pub struct InvalidAuthHeader(String);

/// The registry an image reference is pulled from, as the docker CLI keys its credentials in
/// `config.json`: the first path component when it names a host (has a `.` or a `:`, or is
/// `localhost`), else Docker Hub's index server.
pub fn registry_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "docker.io" || first == "index.docker.io" {
                DOCKER_HUB_INDEX.to_string()
            } else {
                first.to_string()
            }
        }
        _ => DOCKER_HUB_INDEX.to_string(),
    }
}

/// The key Docker Hub's credentials have in the docker CLI's `config.json`.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

impl RegistryAuth {
    /// The `X-Registry-Auth` header for these credentials: URL-safe base64 of the JSON, as the
    /// docker CLI sends it (and as the engine decodes it).
    pub fn to_header(&self) -> String {
        URL_SAFE.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes an `X-Registry-Auth` header: base64 (URL-safe, as the CLI writes it, or
    /// standard; padded or not) of an `AuthConfig` JSON object. Keys match ignoring case, as
    /// Go's decoder does. `None` for a header that carries no credential (`{}`, what the CLI
    /// sends with `--with-registry-auth` when it has none for that registry).
    pub fn from_header(header: &str) -> Result<Option<RegistryAuth>, InvalidAuthHeader> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(None);
        }
        let bytes = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|e| e.decode(header).ok())
            .ok_or_else(|| InvalidAuthHeader("not base64".into()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| InvalidAuthHeader(format!("not JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(InvalidAuthHeader("not a JSON object".into()));
        };
        let lower: serde_json::Map<String, serde_json::Value> = map
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let auth: RegistryAuth = serde_json::from_value(serde_json::Value::Object(lower))
            .map_err(|e| InvalidAuthHeader(format!("not an AuthConfig: {e}")))?;
        Ok((auth != RegistryAuth::default()).then_some(auth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_registry_of_a_reference_is_its_host_or_docker_hub() {
        assert_eq!(registry_of("busybox"), DOCKER_HUB_INDEX);
        assert_eq!(registry_of("diamol/postgres:11.5"), DOCKER_HUB_INDEX);
        assert_eq!(registry_of("docker.io/library/x"), DOCKER_HUB_INDEX);
        assert_eq!(registry_of("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(registry_of(&format!("ghcr.io/o/x@{D}")), "ghcr.io");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn credentials_round_trip_through_the_header() {
        let a = RegistryAuth {
            username: "u".into(),
            password: "p+/?".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        assert_eq!(RegistryAuth::from_header(&a.to_header()).unwrap(), Some(a));
    }

    #[test]
    fn references_split_into_repository_tag_and_digest() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag, r.digest),
            ("busybox", None, None)
        );
        let r = ImageRef::parse("docker.io/library/busybox:1.36").unwrap();
        assert_eq!(r.repository, "busybox");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/a/b:1@{D}")).unwrap();
        assert_eq!(r.repository, "127.0.0.1:5000/a/b");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.name_and_tag(), "127.0.0.1:5000/a/b:1");
        let r = ImageRef::parse("host:5000/x").unwrap();
        assert_eq!((r.repository.as_str(), r.tag), ("host:5000/x", None));
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "a@sha256:12",
            "a@md5:0123",
            "a:",
            "a:b c",
            "/a",
            "a//b",
            "a b",
            "a:-x",
            "../x",
            "a/./b",
            "Bad/name",
            "a/b:c/d",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repository_matching_uses_familiar_names() {
        let r = ImageRef::parse(&format!("docker.io/shoal-test/busybox@{D}")).unwrap();
        assert!(r.is_repository_of("shoal-test/busybox:latest"));
        assert!(r.is_repository_of(&format!("shoal-test/busybox@{D}")));
        assert!(!r.is_repository_of("shoal-test/busybox2:latest"));
        let r = ImageRef::parse("busybox").unwrap();
        assert!(r.is_repository_of("busybox:1"));
        assert!(!r.is_repository_of("other/busybox:1"));
        let r = ImageRef::parse("127.0.0.1:5000/x").unwrap();
        assert!(r.is_repository_of("127.0.0.1:5000/x:2"));
    }

    #[test]
    fn the_auth_header_decodes_as_the_cli_writes_it() {
        let json = r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#;
        for engine in [URL_SAFE, STANDARD, URL_SAFE_NO_PAD] {
            let a = RegistryAuth::from_header(&engine.encode(json))
                .unwrap()
                .unwrap();
            assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p?>"));
            assert_eq!(a.serveraddress, "127.0.0.1:5000");
        }
        let a = RegistryAuth::from_header(&URL_SAFE.encode(r#"{"Username":"u"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(a.username, "u");
        // No credential at all.
        assert_eq!(RegistryAuth::from_header("e30=").unwrap(), None);
        assert_eq!(RegistryAuth::from_header("").unwrap(), None);
        // No credential shows in Debug.
        let shown = format!(
            "{:?}",
            RegistryAuth {
                password: "hunter2".into(),
                ..Default::default()
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn malformed_auth_headers_are_refused_saying_why() {
        let e = RegistryAuth::from_header("%%%").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = RegistryAuth::from_header(&URL_SAFE.encode("[1]")).unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
        let e = RegistryAuth::from_header(&URL_SAFE.encode(r#"{"username":1}"#)).unwrap_err();
        assert!(e.to_string().contains("AuthConfig"), "{e}");
    }
}
