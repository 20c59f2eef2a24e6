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

build() { # tag, then Dockerfile lines on stdin; rebuilt when the Dockerfile changed
  local tag=$1 dir sum
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  cat >"$dir/Dockerfile"
  sum=$(sha256sum "$dir/Dockerfile" | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "shoal.test-image"}}' "$tag" 2>/dev/null)" = "$sum" ]; then
    return
  fi
  echo "LABEL shoal.test-image=$sum" >>"$dir/Dockerfile"
  cp "$busybox" "$dir/busybox"
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
# The example's web front end: serves its files, and /cgi-bin/db asks the database service
# for its items by name over the stack's overlay network (todo-db, or $DB_HOST).
web_dockerfile() { # tag of the page
  cat <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /www/cgi-bin && echo '<h1>$1</h1><p>served by a shoal task</p>' > /www/index.html \
 && printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\nwget -q -O - "http://\${DB_HOST:-todo-db}:5432/" || echo "cannot reach \${DB_HOST:-todo-db}"\n' > /www/cgi-bin/db \
 && chmod +x /www/cgi-bin/db
CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -v -p 80 -h /www & wait"]
DOCKERFILE
}

# The example's database stand-in: answers on 5432 (HTTP, for busybox) with its items, kept
# in $PGDATA (its volume in the book's files), so data survive a new task.
# Both stand-ins stop on SIGTERM (a shell as PID 1 with a trap; busybox httpd as PID 1 would
# ignore it and make every replaced task wait out its 10 s stop grace period).
db_dockerfile() {
  cat <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PGDATA=/var/lib/postgresql/data
CMD ["sh", "-c", "mkdir -p \"$PGDATA\" && [ -f \"$PGDATA/items\" ] || echo 'buy milk' > \"$PGDATA/items\"; mkdir -p /tmp/db && { echo \"todo-db $(hostname) items:\"; cat \"$PGDATA/items\"; } > /tmp/db/index.html && echo 'todo-db ready'; trap 'exit 0' TERM; httpd -f -p 5432 -h /tmp/db & wait"]
DOCKERFILE
}

web_dockerfile todo | build shoal-example/todo-web:latest
db_dockerfile | build shoal-example/todo-db:latest
# Stand-ins for the book's images (fixtures/book-ch13), tagged with the names its files use.
web_dockerfile "todo list" | build diamol/ch06-todo-list:latest
db_dockerfile | build diamol/postgres:11.5
db_dockerfile | build diamol/postgres:11.6
