#!/usr/bin/env bash
# Start/stop private, throwaway containerd and dockerd daemons for the e2e tests.
#   clients.sh up   STATE_DIR [INSECURE_REGISTRY...]
#   clients.sh down STATE_DIR
# `up` starts containerd (private root, native snapshotter, CRI off) and dockerd (vfs, no
# iptables, no bridge, private data root, on that containerd), writes their pids to
# STATE_DIR/*.pid and waits until both answer. Sockets: STATE_DIR/containerd.sock and
# STATE_DIR/docker.sock. Keep STATE_DIR short: a unix socket path is at most 107 bytes.
# `down` stops only the daemons whose pid files are in STATE_DIR.
# Needs tests/e2e/install-clients.sh to have run (docker unpacked in $OCIGATE_E2E_DIR).
set -euo pipefail
E2E_DIR=${OCIGATE_E2E_DIR:-/var/tmp/ocigate-e2e}
DOCKER_PKG=$E2E_DIR/docker-pkg
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
cmd=$1 D=$(realpath -m "$2"); shift 2

die() { echo "clients.sh: $*" >&2; exit 1; }

# stop NAME: SIGTERM the pid in D/NAME.pid if it is still our daemon, then SIGKILL after 15 s.
stop() {
  local pidfile=$D/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  # The pid may have been reused since: only signal a process whose command line names D.
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$D/"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# wait_for NAME PROBE...: run PROBE until it succeeds; fail with the daemon's log if it dies.
wait_for() {
  local name=$1 pid; shift
  pid=$(cat "$D/$name.pid")
  for _ in $(seq 300); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { tail -30 "$D/$name.log" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  tail -30 "$D/$name.log" >&2
  die "$name did not answer in 30 s"
}

up() {
  command -v containerd >/dev/null || die "containerd is not installed: run tests/e2e/install-clients.sh"
  [ -x "$DOCKER_PKG/usr/sbin/dockerd" ] \
    || die "dockerd is not unpacked in $DOCKER_PKG: run tests/e2e/install-clients.sh"
  mkdir -p "$D"

  if ! [ -f "$D/containerd.pid" ]; then
    # CRI and the snapshotters other than native need kernel features or a kubelet we lack.
    cat >"$D/containerd.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
# "isolated": a namespace sees only the blobs it fetched itself, so a pull in a fresh
# namespace really downloads (with the default "shared", blobs another namespace imported
# count as present and the pull skips them).
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
EOF
    setsid containerd --config "$D/containerd.toml" >"$D/containerd.log" 2>&1 </dev/null &
    echo $! >"$D/containerd.pid"
  fi
  wait_for containerd ctr --address "$D/containerd.sock" version

  if ! [ -f "$D/dockerd.pid" ]; then
    # Our own daemon.json, so a machine's /etc/docker/daemon.json never leaks in.
    # 127.0.0.0/8 is insecure (plain HTTP allowed) by default; add any other names asked for.
    python3 -c 'import json, sys; print(json.dumps({"insecure-registries": sys.argv[1:]}))' \
      "$@" >"$D/daemon.json"
    PATH="$DOCKER_PKG/usr/sbin:$DOCKER_PKG/usr/bin:$PATH" setsid "$DOCKER_PKG/usr/sbin/dockerd" \
      --config-file "$D/daemon.json" --data-root "$D/docker/root" --exec-root "$D/docker/exec" \
      --pidfile "$D/docker/dockerd.pid" -H "unix://$D/docker.sock" \
      --containerd "$D/containerd.sock" --storage-driver=vfs \
      --iptables=false --ip6tables=false --bridge=none --userland-proxy=false \
      >"$D/dockerd.log" 2>&1 </dev/null &
    echo $! >"$D/dockerd.pid"
  fi
  wait_for dockerd "$DOCKER_PKG/usr/bin/docker" -H "unix://$D/docker.sock" version
}

case $cmd in
  up)
    # A failed start leaves nothing running: the caller's teardown never runs then.
    trap 'rc=$?; if [ "$rc" != 0 ]; then stop dockerd; stop containerd; fi' EXIT
    up "$@" ;;
  down) stop dockerd; stop containerd ;;
  *) die "unknown command $cmd (up|down)" ;;
esac
