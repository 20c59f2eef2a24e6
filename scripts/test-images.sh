#!/usr/bin/env bash
# Builds the images the tests and the example stack use, on the local Docker Engine. No
# registry is reachable, so they are built from scratch around Debian's static busybox:
#   shoal-test/busybox:latest   FROM scratch + /bin/busybox and its applets
# Idempotent: an image that exists is kept. Starts dockerd first if none runs.
set -euo pipefail
# Test processes may call this at the same time: one at a time.
exec 9>/tmp/shoal-test-images.lock
flock 9
# The engine must run first (installed and started if missing).
"$(dirname "$0")/ensure-docker.sh"
export DOCKER_HOST=unix:///var/run/docker.sock
export DOCKER_BUILDKIT=0

busybox=/bin/busybox
# ldd fails on a static executable: that is the one we want.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
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
  if ! docker build -q -t "$tag" "$dir" >"$dir/build.log" 2>&1; then
    cat "$dir/build.log" >&2
    return 1
  fi
  echo "test-images: built $tag" >&2
}

build shoal-test/busybox:latest <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
DOCKERFILE

# The example stack's images (examples/todo/stack.yml): a web front end (busybox httpd serving
# /www, where the stack mounts its config) and a stand-in database.
build shoal-example/todo-web:latest <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /www && echo '<h1>todo</h1><p>served by a shoal task</p>' > /www/index.html
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
DOCKERFILE

build shoal-example/todo-db:latest <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh", "-c", "trap 'exit 0' TERM; echo 'todo-db ready'; while :; do sleep 1; done"]
DOCKERFILE
