//! A service's `image:`: checked as the docker CLI does before it sends anything, and
//! written the way the docker client sends it (familiar form, `:latest` added).

use super::read::{field, opt_text, Entries};
use crate::yaml::Node;
use crate::Error;

/// The image as the docker client sends it: in its familiar form, with `:latest` added when
/// it names neither a tag nor a digest (`nginx` → `nginx:latest`, `docker.io/library/redis`
/// → `redis:latest`). A reference that does not parse is returned unchanged.
pub fn tagged_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (name, tag) = match name.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name, None),
    };
    let valid_path = |p: &str| {
        !p.is_empty()
            && p.split('/').all(|c| {
                !c.is_empty()
                    && c.chars().all(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)
                    })
            })
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    if !valid_path(&path) || tag.is_some_and(str::is_empty) {
        return image.to_string();
    }
    let docker_hub = domain == "docker.io" || domain == "index.docker.io";
    let familiar = if docker_hub {
        match path.strip_prefix("library/") {
            Some(short) if !short.contains('/') => short.to_string(),
            _ => path.clone(),
        }
    } else {
        format!("{domain}/{path}")
    };
    let mut out = familiar;
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// The `image:` of service `name` (declared at `key`), which must be there (a cluster does
/// not build) and hold no whitespace.
pub(super) fn service_image(
    name: &str,
    key: &Node,
    e: Entries<'_>,
    what: &str,
) -> Result<String, Error> {
    let image = opt_text(e, "image", what)?.unwrap_or_default();
    if image.is_empty() {
        if let Some(build) = field(e, "build") {
            return Err(Error::at(
                &build.pos,
                format!(
                    "service {name} has only `build:`, and a cluster does not build images: build it (`docker build -t NAME ...`), make it available to every node (a registry, or `docker load` on each), and give the service `image: NAME`"
                ),
            ));
        }
        return Err(Error::at(
            &key.pos,
            format!("invalid image reference for service {name}: no image specified"),
        ));
    }
    if image.chars().any(char::is_whitespace) {
        let pos = field(e, "image")
            .map(|n| n.pos.clone())
            .unwrap_or(key.pos.clone());
        return Err(Error::at(
            &pos,
            format!("invalid image reference for service {name}: {image:?}"),
        ));
    }

    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::read::entries;
    use crate::convert::testing::{message, node};

    #[test]
    fn images_are_sent_in_familiar_form_with_latest_added() {
        for (given, sent) in [
            ("nginx", "nginx:latest"),
            ("nginx:1.25", "nginx:1.25"),
            ("docker.io/library/redis", "redis:latest"),
            ("index.docker.io/me/app", "me/app:latest"),
            ("localhost:5000/x/y", "localhost:5000/x/y:latest"),
            ("busybox@sha256:abc", "busybox@sha256:abc"),
            ("busybox:1@sha256:abc", "busybox:1@sha256:abc"),
            ("Not/Valid", "Not/Valid"),
            ("x:", "x:"),
        ] {
            assert_eq!(tagged_image(given), sent, "{given}");
        }
    }

    fn image(service: &str) -> Result<String, Error> {
        let key = node("web");
        let n = node(service);
        service_image("web", &key, entries(&n, "s")?, "services.web")
    }

    #[test]
    fn a_service_needs_an_image_without_whitespace_and_build_alone_says_what_to_do() {
        assert_eq!(image("{image: nginx}").unwrap(), "nginx");
        assert_eq!(
            message(image("{deploy: {}}")),
            "t.yml:1:4: invalid image reference for service web: no image specified"
        );
        assert_eq!(
            message(image("{image: \"a b\"}")),
            "t.yml:1:12: invalid image reference for service web: \"a b\""
        );
        assert!(message(image("{build: .}")).starts_with(
            "t.yml:1:12: service web has only `build:`, and a cluster does not build images"
        ));
    }
}
