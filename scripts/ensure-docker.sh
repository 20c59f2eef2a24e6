#!/usr/bin/env bash
# Makes sure a Docker Engine runs on this machine: installs Debian's docker.io when dockerd is
# missing (and iproute2, nftables, util-linux for shoal's overlay networks), starts dockerd
# when none answers, and waits for its socket. shoal uses the engine
# only as a container runtime on each node (never Docker's own swarm mode).
set -euo pipefail

sock=/var/run/docker.sock
# shoal's overlay data plane drives ip, bridge, nft and nsenter on every node.
missing=()
command -v ip >/dev/null 2>&1 && command -v bridge >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-docker: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io (dockerd)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi
if docker -H "unix://$sock" version >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-docker: starting dockerd (log: /tmp/shoal-dockerd.log)" >&2
# Its own session and no inherited descriptor: dockerd outlives its caller, and a lock the
# caller holds (test-images.sh's, or `flock LOCK cargo test`) would otherwise stay held for as
# long as dockerd runs, and every later caller would wait on it forever.
(
  for fd in $(ls "/proc/$BASHPID/fd"); do
    [ "$fd" -gt 2 ] && eval "exec $fd>&-"
  done
  exec setsid nohup dockerd
) >/tmp/shoal-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 100); do
  if docker -H "unix://$sock" version >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.2
done
echo "ensure-docker: dockerd did not come up; see /tmp/shoal-dockerd.log" >&2
tail -20 /tmp/shoal-dockerd.log >&2 || true
exit 1
