#!/usr/bin/env bash
# Builds the images the tests and the example stack use, on the local Docker Engine. No
# registry is reachable, so they are built from scratch around Debian's static busybox:
#   shoal-test/busybox:latest   FROM scratch + /bin/busybox and its applets
# Idempotent: an image that exists is kept.
set -euo pipefail
export DOCKER_HOST=unix:///var/run/docker.sock
export DOCKER_BUILDKIT=0

busybox=/bin/busybox
if ! file_is_static=$(ldd "$busybox" 2>&1) || ! grep -q "not a dynamic executable" <<<"$file_is_static"; then
  echo "test-images: installing busybox-static" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq busybox-static >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null && apt-get install -y -qq busybox-static >/dev/null
  }
fi

build() { # tag, then Dockerfile lines on stdin
  local tag=$1 dir
  if docker image inspect "$tag" >/dev/null 2>&1; then return; fi
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  cp "$busybox" "$dir/busybox"
  cat >"$dir/Dockerfile"
  docker build -q -t "$tag" "$dir" >/dev/null
  echo "test-images: built $tag" >&2
}

build shoal-test/busybox:latest <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
DOCKERFILE
