#!/usr/bin/env bash
# netlab: several hosts on this machine, for integration tests of overlay networking.
#
# Host hN is a network namespace (shoallab-hN) with 198.51.100.N/24 on its eth0, a veth into the
# bridge shoallab0 (198.51.100.254/24) in the root namespace, and its own dockerd (engine socket
# /run/shoal-lab/hN/docker.sock) started in that namespace and in a mount namespace of its own,
# where /run/shoal-lab/hN/plugins is bind-mounted over /run/docker/plugins (and hN/etc-docker over
# /etc/docker: its own key.json, so its own engine ID, and no daemon.json of the machine's): the
# shoal daemon of that host runs in both namespaces (`exec`) and creates shoal.sock there. The
# test images of the main engine are loaded into every host's engine.
#
#   netlab.sh up [N]            N hosts h1..hN (3 by default); reuses what is healthy
#   netlab.sh down              removes everything the lab made; safe to run twice or after a crash
#   netlab.sh status            one line per host; exits 1 when the lab is absent or unhealthy
#   netlab.sh exec HOST CMD...  CMD in HOST's network namespace and its dockerd's mount namespace
#   netlab.sh docker HOST ARGS  the docker CLI against HOST's engine
#   netlab.sh restart-host HOST stops HOST's dockerd and every process of the host, resets its
#                               network namespace (a reboot's kernel state), starts dockerd again
#
# Quiet unless something fails (NETLAB_VERBOSE=1 prints each step; NETLAB_IMAGES="a b" copies
# those images instead of the test images). Needs root; installs iproute2,
# iptables, util-linux and iputils-ping with apt-get when they are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
STATE=/run/shoal-lab
BR=shoallab0
NET=198.51.100
GW=$NET.254
LOCK=/run/lock/shoal-lab.lock
MAIN_ENGINE=unix:///var/run/docker.sock
# The hosts' engines keep out of shoal's overlay pool (10.0.0.0/8).
BIP=172.31.255.1/24
POOL=base=172.30.0.0/16,size=24

die() {
  echo "netlab: $*" >&2
  exit 1
}
say() { if [ "${NETLAB_VERBOSE:-}" = 1 ]; then echo "netlab: $(date +%T.%N | cut -c1-12) $*" >&2; fi; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

# --- names -------------------------------------------------------------------------------------

host_index() { # h3 -> 3
  [[ $1 =~ ^h([1-9][0-9]{0,2})$ ]] && [ "${BASH_REMATCH[1]}" -le 250 ] ||
    die "no host '$1': hosts are named h1, h2, ..."
  echo "${BASH_REMATCH[1]}"
}
ns_name() { echo "shoallab-h$1"; }
veth_name() { echo "slab-h$1"; }
host_dir() { echo "$STATE/h$1"; }
engine_of() { echo "unix://$STATE/h$1/docker.sock"; }
cgroup_parent() { echo "shoal-lab-h$1"; }

hdocker() { # index, docker args...
  local i=$1
  shift
  env -u DOCKER_CONTEXT -u DOCKER_HOST DOCKER_CLI_HINTS=false docker -H "$(engine_of "$i")" "$@"
}
mdocker() { env -u DOCKER_CONTEXT -u DOCKER_HOST DOCKER_CLI_HINTS=false docker -H "$MAIN_ENGINE" "$@"; }

# --- prerequisites -----------------------------------------------------------------------------

need_root() { [ "$(id -u)" = 0 ] || die "needs root (namespaces, veths, iptables, a dockerd per host)"; }

need_tools() {
  local pkgs=()
  command -v ip >/dev/null || pkgs+=(iproute2)
  command -v iptables >/dev/null || pkgs+=(iptables)
  { command -v nsenter && command -v flock && command -v setsid; } >/dev/null || pkgs+=(util-linux)
  command -v ping >/dev/null || pkgs+=(iputils-ping)
  [ ${#pkgs[@]} -eq 0 ] && return
  say "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${pkgs[@]}" >/dev/null; } ||
    die "cannot install ${pkgs[*]} with apt-get"
}

take_lock() {
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock 9
}

# The main engine and the test images on it, which every host's engine gets a copy of: those
# scripts/test-images.sh builds, or the images NETLAB_IMAGES names (space-separated).
images() {
  if [ -n "${NETLAB_IMAGES:-}" ]; then
    tr ' ' '\n' <<<"$NETLAB_IMAGES" | sed '/^$/d'
  else
    sed -n -e 's/^build \([^ ]*\) <<.*/\1/p' -e 's/.*| build \([^ ]*\)$/\1/p' "$here/test-images.sh"
  fi
}

main_image_ids() {
  local imgs
  mapfile -t imgs < <(images)
  [ ${#imgs[@]} -gt 0 ] || die "no image names found in $here/test-images.sh"
  if ! mdocker image inspect -f '{{.Id}}' "${imgs[@]}" 2>/dev/null; then
    [ -z "${NETLAB_IMAGES:-}" ] || die "the main engine lacks one of $NETLAB_IMAGES"
    command -v dockerd >/dev/null || say "dockerd missing: scripts/ensure-docker.sh installs docker.io"
    "$here/test-images.sh" >&2 || die "the test images are missing and scripts/test-images.sh failed"
    mdocker image inspect -f '{{.Id}}' "${imgs[@]}"
  fi
}

# Saves the test images once; again only when their IDs change.
ensure_image_tar() {
  local ids=$1
  if [ -s "$STATE/images.tar" ] && [ "$(cat "$STATE/images.ids" 2>/dev/null)" = "$ids" ]; then
    return
  fi
  say "docker save $(images | tr '\n' ' ')"
  local imgs
  mapfile -t imgs < <(images)
  mdocker save -o "$STATE/images.tar.tmp" "${imgs[@]}" || die "docker save of the test images failed"
  mv "$STATE/images.tar.tmp" "$STATE/images.tar"
  echo "$ids" >"$STATE/images.ids"
}

# --- underlay ----------------------------------------------------------------------------------

ensure_underlay() {
  if ! ip link show "$BR" >/dev/null 2>&1; then
    say "bridge $BR"
    # A fixed MAC: a bridge otherwise takes the lowest of its ports', and every host's ARP entry
    # for the gateway goes wrong for a while when a host with a lower one joins.
    ip link add "$BR" address 02:53:4c:00:00:fe type bridge
  fi
  ip addr replace "$GW/24" dev "$BR"
  ip link set "$BR" up
  # The root engine's FORWARD policy is DROP and bridged frames pass iptables.
  iptables -C FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD 1 -i "$BR" -o "$BR" -j ACCEPT
}

ensure_netns() {
  local i=$1 ns veth
  ns=$(ns_name "$i")
  veth=$(veth_name "$i")
  [ -e "/run/netns/$ns" ] || ip netns add "$ns"
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    say "h$i: veth $veth <-> $ns eth0"
    ip link del "$veth" >/dev/null 2>&1 || true
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    # A fixed MAC: after restart-host the other hosts' ARP entries stay right.
    ip -n "$ns" link set eth0 address "$(printf '02:53:4c:00:00:%02x' "$i")"
  fi
  ip link set "$veth" master "$BR" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$NET.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  # The root namespace answers on .254: NAT'd egress of containers has somewhere to go.
  ip -n "$ns" route replace default via "$GW"
}

# --- processes of a host -----------------------------------------------------------------------

# The PID of host i's dockerd when it runs in the host's network namespace, else nothing.
dockerd_pid() {
  local i=$1 pid
  pid=$(cat "$(host_dir "$i")/dockerd.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 0
  [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$(ns_name "$i")" 2>/dev/null)" ] || return 0
  echo "$pid"
}

# PIDs of every process in host i's network namespace (`ip netns pids`, without its noise
# about processes that exit while it looks).
netns_pids() {
  local i=$1 ino
  ino=$(stat -L -c %i "/run/netns/$(ns_name "$i")" 2>/dev/null) || return 0
  find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/net' -lname "net:?$ino?" -printf '%h\n' 2>/dev/null |
    sed 's#^/proc/\([0-9]*\)/ns$#\1#' | grep -vx "$$" || true
}

# Mount points of the cgroup hierarchies (v1 controllers, or the v2 root).
cgroup_roots() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts; }

# PIDs in the cgroups of host i's containers (they live in namespaces of their own).
cgroup_pids() {
  local i=$1 root
  for root in $(cgroup_roots); do
    [ -d "$root/$(cgroup_parent "$i")" ] || continue
    find "$root/$(cgroup_parent "$i")" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  done | sort -u
}

remove_cgroups() {
  local i=$1 root
  for root in $(cgroup_roots); do
    [ -d "$root/$(cgroup_parent "$i")" ] || continue
    find "$root/$(cgroup_parent "$i")" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# Signals the processes `lister i` prints: TERM, then KILL after `grace` tenths of a second;
# waits until none is left.
kill_all() {
  local lister=$1 i=$2 grace=$3 pids tries=0
  while pids=$($lister "$i") && [ -n "$pids" ]; do
    [ "$tries" = 0 ] && [ "$grace" != 0 ] && { kill -TERM $pids 2>/dev/null || true; }
    [ "$tries" -ge "$grace" ] && { kill -KILL $pids 2>/dev/null || true; }
    [ "$tries" -ge $((grace + 100)) ] && die "h$i: processes $(echo $pids) do not exit"
    tries=$((tries + 1))
    sleep 0.1
  done
}

# Stops everything of host i: its containers (with rm=1), dockerd, every other process in its
# namespaces and its containers' cgroups.
stop_host() {
  local i=$1 rm=$2 pid t
  pid=$(dockerd_pid "$i")
  if [ -n "$pid" ] && [ "$rm" = 1 ]; then
    local ids
    ids=$(timeout 20 env -u DOCKER_HOST docker -H "$(engine_of "$i")" ps -aq 2>/dev/null) || true
    if [ -n "$ids" ]; then
      say "h$i: docker rm -f $(echo $ids)"
      timeout 60 env -u DOCKER_HOST docker -H "$(engine_of "$i")" rm -f $ids >/dev/null 2>&1 || true
    fi
  fi
  if [ -n "$pid" ]; then
    say "h$i: stopping dockerd $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for t in $(seq 1 300); do
      [ -d "/proc/$pid" ] || break
      # The containers die as in a power cut; dockerd would give each its stop timeout (10 s).
      # Once it shuts down it restarts none of them.
      case $t in 3 | *0) cgroup_pids "$i" | xargs -r kill -KILL 2>/dev/null || true ;; esac
      [ "$t" = 200 ] && kill -KILL "$pid" 2>/dev/null
      sleep 0.1
    done
  fi
  # Containers die as in a power cut; then a process left in the namespace (a shim without its
  # containerd, a shoal daemon) would keep it, and its veth, alive: TERM, and KILL after 2 s.
  kill_all cgroup_pids "$i" 0
  kill_all netns_pids "$i" 20
  remove_cgroups "$i"
}

# Commands that mount the cgroup hierarchies as the root mount namespace has them: `ip netns
# exec` mounts a fresh /sys, without them, and dockerd needs them ("Devices cgroup isn't
# mounted").
cgroup_mount_script() {
  awk '$2 == "/sys/fs/cgroup" || index($2, "/sys/fs/cgroup/") == 1 {
    printf "mkdir -p %s && mount -t %s -o %s %s %s\n", $2, $3, $4, $1, $2 }' /proc/self/mounts
  local l
  for l in /sys/fs/cgroup/*; do
    [ -L "$l" ] && echo "ln -sfn $(readlink "$l") $l"
  done
  return 0
}

start_dockerd() {
  local i=$1 d ns
  d=$(host_dir "$i")
  ns=$(ns_name "$i")
  mkdir -p "$d/data" "$d/exec" "$d/plugins" "$d/etc-docker" /run/docker/plugins /etc/docker
  # Stale after a crash, and a killed process can stay a zombie for a while (its PID alive to
  # kill -0): dockerd would wait for that containerd instead of starting its own.
  rm -f "$d/dockerd.pid" "$d/docker.sock" "$d/exec/containerd/containerd.pid"
  local inner
  inner="set -e
$(cgroup_mount_script)
mount --bind $d/plugins /run/docker/plugins
mount --bind $d/etc-docker /etc/docker
exec dockerd --data-root $d/data --exec-root $d/exec --pidfile $d/dockerd.pid \
  -H unix://$d/docker.sock \
  --bip $BIP --default-address-pool $POOL --dns $GW --iptables=true \
  --cgroup-parent /$(cgroup_parent "$i") --shutdown-timeout 3 --log-level warn"
  say "h$i: starting dockerd"
  echo "--- $(date -Is) dockerd starts" >>"$d/dockerd.log"
  # Own session and no inherited descriptor (a caller's lock, say: `flock LOCK cargo test`
  # would stay locked for as long as the lab runs): the lab outlives this script and its caller.
  (
    for fd in $(ls "/proc/$BASHPID/fd"); do
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid -w ip netns exec "$ns" sh -c "$inner"
  ) >>"$d/dockerd.log" 2>&1 </dev/null &
  echo $! >"$d/starting.pid"
}

wait_dockerd() {
  local i=$1 d starter t
  d=$(host_dir "$i")
  starter=$(cat "$d/starting.pid")
  for t in $(seq 1 300); do
    if [ -S "$d/docker.sock" ] && hdocker "$i" version -f '{{.Server.Version}}' >/dev/null 2>&1; then
      rm -f "$d/starting.pid"
      [ -n "$(dockerd_pid "$i")" ] || die "h$i: dockerd answers but its pidfile does not match it"
      say "h$i: dockerd $(dockerd_pid "$i") answers"
      return
    fi
    if ! [ -d "/proc/$starter" ]; then
      tail -20 "$d/dockerd.log" >&2
      die "h$i: dockerd exited; the log above is $d/dockerd.log"
    fi
    sleep 0.1
  done
  tail -20 "$d/dockerd.log" >&2
  die "h$i: dockerd did not answer on $(engine_of "$i") in 30 s; log: $d/dockerd.log"
}

ensure_images() {
  local i=$1 ids=$2 have imgs
  mapfile -t imgs < <(images)
  have=$(hdocker "$i" image inspect -f '{{.Id}}' "${imgs[@]}" 2>/dev/null) || true
  [ "$have" = "$ids" ] && return
  say "h$i: docker load"
  hdocker "$i" load -q -i "$STATE/images.tar" >/dev/null || die "h$i: docker load failed"
}

check_ping() { # from host i to address
  local i=$1 to=$2 t
  for t in 1 2 3; do
    nsenter --net="/run/netns/$(ns_name "$i")" ping -c1 -W1 -q "$to" >/dev/null 2>&1 && return 0
  done
  return 1
}

check_connectivity() {
  local n=$1 i j fail=0
  for i in $(seq 1 "$n"); do
    for j in $(seq 1 "$n") 254; do
      [ "$i" = "$j" ] && continue
      check_ping "$i" "$NET.$j" || {
        echo "netlab: h$i cannot ping $NET.$j" >&2
        fail=1
      }
    done
  done
  [ $fail = 0 ] || die "the underlay does not connect the hosts (bridge $BR, iptables FORWARD)"
}

host_healthy() {
  local i=$1
  [ -n "$(dockerd_pid "$i")" ] &&
    [ "$(ip -n "$(ns_name "$i")" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')" = "$NET.$i/24" ] &&
    ip link show "$(veth_name "$i")" 2>/dev/null | grep -q "master $BR" &&
    hdocker "$i" version -f '{{.Server.Version}}' >/dev/null 2>&1
}

# --- commands ----------------------------------------------------------------------------------

cmd_up() {
  local n=${1:-3} i ids
  [[ $n =~ ^[1-9][0-9]{0,2}$ ]] && [ "$n" -le 250 ] || die "up: N must be 1..250, not '$n'"
  need_root
  need_tools
  take_lock
  command -v dockerd >/dev/null || "$here/ensure-docker.sh" >&2 || die "dockerd is missing"
  mkdir -p "$STATE"
  ids=$(main_image_ids)
  ensure_image_tar "$ids"
  ensure_underlay
  local started=()
  for i in $(seq 1 "$n"); do
    mkdir -p "$(host_dir "$i")"
    if host_healthy "$i"; then
      continue
    fi
    stop_host "$i" 0
    ensure_netns "$i"
    start_dockerd "$i"
    started+=("$i")
  done
  for i in "${started[@]}"; do wait_dockerd "$i"; done
  local loads=() job
  for i in $(seq 1 "$n"); do
    ensure_images "$i" "$ids" &
    loads+=($!)
  done
  for job in "${loads[@]}"; do wait "$job" || die "loading the test images failed"; done
  check_connectivity "$n"
}

all_hosts() { # every host index anything of the lab's is left for
  local root
  {
    ls -d "$STATE"/h[0-9]* 2>/dev/null | sed 's#.*/h##' || true
    ls /run/netns 2>/dev/null | sed -n 's/^shoallab-h\([0-9]*\)$/\1/p' || true
    ip -o link show | sed -n 's/^[0-9]*: slab-h\([0-9]*\)[@:].*/\1/p' || true
    for root in $(cgroup_roots); do
      ls -d "$root"/shoal-lab-h[0-9]* 2>/dev/null | sed 's#.*/shoal-lab-h##' || true
    done
  } | sort -un
}

cmd_down() {
  local i
  need_root
  take_lock
  local hosts=() failed=0
  mapfile -t hosts < <(all_hosts)
  # The hosts stop side by side: a dockerd takes seconds to stop.
  for i in "${hosts[@]}"; do stop_host "$i" 1 & done
  for i in "${hosts[@]}"; do wait -n || failed=1; done
  [ $failed = 0 ] || die "down: a host did not stop; run it again, or see $STATE/hN/dockerd.log"
  for i in "${hosts[@]}"; do
    ip netns del "$(ns_name "$i")" 2>/dev/null || true
    ip link del "$(veth_name "$i")" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  while iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
  # Anything still mounted under the state dir in this mount namespace (the hosts' own mounts
  # went with their mount namespaces).
  local m
  for m in $(awk -v s="$STATE" '$5 == s || index($5, s "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$STATE"
}

cmd_status() {
  local i pid rss cnt bad=0
  [ -d "$STATE" ] || die "no lab (scripts/netlab.sh up)"
  if ip -4 -o addr show dev "$BR" 2>/dev/null | grep -q "$GW/24"; then
    echo "underlay: $BR $GW/24"
  else
    echo "underlay: $BR missing"
    bad=1
  fi
  for i in $(all_hosts); do
    pid=$(dockerd_pid "$i")
    if [ -z "$pid" ]; then
      echo "h$i $NET.$i: dockerd not running"
      bad=1
      continue
    fi
    rss=$(awk '/VmRSS/ { printf "%d MB", $2 / 1024 }' "/proc/$pid/status")
    if cnt=$(hdocker "$i" ps -q 2>/dev/null | wc -l); then
      echo "h$i $NET.$i: dockerd $pid ($rss) $(engine_of "$i"), $cnt running containers, plugins: $(ls "$(host_dir "$i")/plugins" | tr '\n' ' ')"
    else
      echo "h$i $NET.$i: dockerd $pid does not answer"
      bad=1
    fi
  done
  return $bad
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: netlab.sh exec HOST CMD..."
  local i pid
  i=$(host_index "$1")
  shift
  pid=$(dockerd_pid "$i")
  [ -n "$pid" ] || die "h$i: dockerd is not running (scripts/netlab.sh up)"
  exec nsenter --net="/run/netns/$(ns_name "$i")" --mount="/proc/$pid/ns/mnt" --wd=. -- "$@"
}

cmd_docker() {
  [ $# -ge 1 ] || die "usage: netlab.sh docker HOST ARGS..."
  local i
  i=$(host_index "$1")
  shift
  exec env -u DOCKER_CONTEXT -u DOCKER_HOST DOCKER_CLI_HINTS=false docker -H "$(engine_of "$i")" "$@"
}

cmd_restart_host() {
  [ $# -eq 1 ] || die "usage: netlab.sh restart-host HOST"
  local i d
  i=$(host_index "$1")
  d=$(host_dir "$i")
  need_root
  take_lock
  [ -d "$d" ] || die "h$i: no such host (scripts/netlab.sh up)"
  stop_host "$i" 0
  # What a reboot clears: the kernel's network state and /run.
  ip netns del "$(ns_name "$i")" 2>/dev/null || true
  ip link del "$(veth_name "$i")" 2>/dev/null || true
  rm -rf "$d/exec" "$d/plugins"
  ensure_underlay
  ensure_netns "$i"
  start_dockerd "$i"
  wait_dockerd "$i"
  check_ping "$i" "$GW" || die "h$i: cannot ping $GW after the restart"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
exec) cmd_exec "$@" ;;
docker) cmd_docker "$@" ;;
restart-host) cmd_restart_host "$@" ;;
-h | --help | help) usage ;;
*) die "unknown command '$cmd' (up, down, status, exec, docker, restart-host)" ;;
esac
