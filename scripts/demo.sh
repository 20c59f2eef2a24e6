#!/usr/bin/env bash
# The main job: start a one-node shoal cluster on this machine (on the local Docker Engine)
# and deploy the example stack to it with the unmodified docker CLI.
#
#   ./scripts/demo.sh         start (or reuse) the node, init the cluster, deploy, show it
#   ./scripts/demo.sh stop    stop the node (its state stays in .shoal/; containers keep running
#                             and are adopted when it starts again)
#   ./scripts/demo.sh clean   stop the node, remove its containers and forget the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.shoal
sock=$state/shoal.sock
listen=127.0.0.1:24377
export DOCKER_HOST=unix://$sock
export DOCKER_CLI_HINTS=false
# A connection the routing mesh closes (no task runs yet) must not kill the script on write.
trap '' PIPE

stop() {
  if [ -f "$state/daemon.pid" ] && kill -0 "$(cat "$state/daemon.pid")" 2>/dev/null; then
    kill "$(cat "$state/daemon.pid")"
    echo "shoal daemon stopped"
  fi
  rm -f "$state/daemon.pid"
}

# Forgetting the cluster also removes the containers its tasks left on the engine.
clean() {
  local node=""
  if [ -f "$state/daemon.pid" ] && kill -0 "$(cat "$state/daemon.pid")" 2>/dev/null; then
    node=$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null || true)
  fi
  stop
  # The node's overlay networks: its network namespaces (named after a hash of its data
  # dir) and its engine networks.
  if [ -d "$state/data" ]; then
    local prefix
    prefix="shoal-$(printf %s "$(realpath "$state/data")" | sha256sum | cut -c1-6)-"
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix" || true); do
      ip netns del "$ns" 2>/dev/null || true
    done
  fi
  if [ -n "$node" ]; then
    docker -H unix:///var/run/docker.sock ps -aq --filter "label=com.docker.swarm.node.id=$node" |
      xargs -r docker -H unix:///var/run/docker.sock rm -f >/dev/null
    # The daemon's own secrets directory on tmpfs (named in its data dir).
    if [ -f "$state/data/secrets-dir" ]; then
      rm -rf "/dev/shm/$(cat "$state/data/secrets-dir")"
    fi
    docker -H unix:///var/run/docker.sock network ls -q --filter driver=shoal |
      xargs -r docker -H unix:///var/run/docker.sock network rm >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
}

# GET on 127.0.0.1:PORT with bash alone; prints the body of a 200 answer.
http_get() {
  local port=$1 path=$2 reply
  exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3 2>/dev/null ||
    { exec 3<&- 3>&-; return 1; }
  reply=$(timeout 2 cat <&3) || true
  exec 3<&- 3>&-
  case "$reply" in
    "HTTP/1."?" 200"*) printf '%s\n' "${reply#*$'\r\n\r\n'}" ;;
    *) return 1 ;;
  esac
}

case "${1:-up}" in
  stop) stop; exit 0 ;;
  clean) clean; exit 0 ;;
  up) ;;
  *) echo "usage: $0 [up|stop|clean]" >&2; exit 2 ;;
esac

./scripts/ensure-docker.sh
echo "== building the example's images on the local engine (scripts/test-images.sh)"
./scripts/test-images.sh
echo "== building shoal (release)"
cargo build --release -p shoal
mkdir -p "$state"
if ! { [ -f "$state/daemon.pid" ] && kill -0 "$(cat "$state/daemon.pid")" 2>/dev/null; }; then
  echo "== starting shoal daemon (log: .shoal/daemon.log)"
  nohup "$root/target/release/shoal" daemon --data-dir "$state/data" --listen-addr "$listen" \
    --mesh-listen-ip 127.0.0.1 \
    -H "unix://$sock" >"$state/daemon.log" 2>&1 </dev/null &
  echo $! >"$state/daemon.pid"
  for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  echo "== docker swarm init"
  docker swarm init --advertise-addr "$listen" --listen-addr "$listen"
fi
echo "== docker stack deploy -c examples/todo/stack.yml todo"
docker stack deploy --detach=true -c examples/todo/stack.yml todo
echo "== waiting for the stack's tasks to run"
for _ in $(seq 1 120); do
  if [ "$(docker stack services todo --format '{{.Replicas}}' | grep -cv '^\([0-9]*\)/\1$')" = 0 ]; then break; fi
  sleep 0.5
done
echo "== docker node ls";             docker node ls
echo "== docker stack ls";            docker stack ls
echo "== docker stack services todo"; docker stack services todo
echo "== docker stack ps todo";       docker stack ps todo
echo "== the containers on the local engine"
docker -H unix:///var/run/docker.sock ps --filter label=com.docker.stack.namespace=todo \
  --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
echo "== GET http://127.0.0.1:8080/config.json: the routing mesh forwards to a todo-web task,"
echo "   which serves the config the stack mounted"
for _ in $(seq 1 50); do
  page=$(http_get 8080 /config.json || true)
  if [ -n "$page" ]; then break; fi
  sleep 0.2
done
if [ -n "$page" ]; then
  echo "$page"
else
  echo "(port 8080 did not answer: is another program using it? see .shoal/daemon.log)"
fi
echo "== GET http://127.0.0.1:8080/cgi-bin/db: a todo-web task asks the database service by its"
echo "   name, todo-db, over the stack's overlay network todo_app-net (shoal's DNS and VIP)"
for _ in $(seq 1 50); do
  items=$(http_get 8080 /cgi-bin/db || true)
  case "$items" in *items:*) break ;; esac
  sleep 0.2
done
# (busybox httpd sends the CGI's own header lines inside the body: skip them)
echo "${items:-(no answer from /cgi-bin/db; see .shoal/daemon.log)}" | sed '/^HTTP\/1/,/^\r\?$/d'

echo "== docker network inspect todo_app-net (its VIPs and the tasks on it)"
docker network inspect todo_app-net --format '{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}'
docker service inspect todo_todo-db --format 'todo-db VIP: {{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}'
echo
echo "The cluster runs in the background. Drive it with the docker CLI or shoal's own:"
echo "  export DOCKER_HOST=$DOCKER_HOST"
echo "  docker service ls            # or: target/release/shoal -H $DOCKER_HOST service ls"
echo "Stop it with ./scripts/demo.sh stop (or clean to forget it)."
