#!/usr/bin/env bash
# Install the real registry clients the e2e tests drive, on Debian 12 as root.
# Idempotent: run it again and it only checks.
#   skopeo, podman, containerd (+ ctr), buildah, debootstrap, docker-compose, chromium: from Debian,
#   installed normally.
#   docker: Debian's docker.io is downloaded and unpacked (dpkg -x) under
#   $OCIGATE_E2E_DIR/docker-pkg, NOT installed: installing it would start a
#   system dockerd; the tests run their own private one (tests/e2e/clients.sh).
set -euo pipefail
E2E_DIR=${OCIGATE_E2E_DIR:-/var/tmp/ocigate-e2e}
PKG_DIR=$E2E_DIR/docker-pkg

die() { echo "install-clients.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get install, dpkg -x)"
command -v apt-get >/dev/null || die "apt-get not found: Debian 12 expected"

# libdevmapper1.02.1 and libsystemd0 are what the unpacked dockerd links to
# (docker.io's Depends); runc is what containerd would run containers with.
packages=(ca-certificates skopeo podman containerd runc iptables libdevmapper1.02.1 libsystemd0)
# deploy/image/build.sh (tests/deploy/test_image.py): a Debian root, built into an image
packages+=(debootstrap buildah)
# deploy/compose.yaml is checked with `docker-compose config` (tests/deploy/test_compose.py)
packages+=(docker-compose)
# the web console's browser tests (tests/e2e/test_console*.py): headless Chromium, driven by
# playwright (pyproject's test extras) through its own driver; chromium-driver for selenium users
packages+=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
fi

if [ ! -x "$PKG_DIR/usr/sbin/dockerd" ] || [ ! -x "$PKG_DIR/usr/bin/docker" ]; then
  mkdir -p "$E2E_DIR"
  dl=$(mktemp -d "$E2E_DIR/download.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  # apt-get download drops to user _apt, which must be able to write here
  chown _apt "$dl" 2>/dev/null || true
  (cd "$dl" && apt-get download docker.io) \
    || { apt-get update -q && (cd "$dl" && apt-get download docker.io); } \
    || die "apt-get download docker.io failed"
  rm -rf "$PKG_DIR.tmp"
  dpkg -x "$dl"/docker.io_*.deb "$PKG_DIR.tmp" || die "dpkg -x of docker.io failed"
  rm -rf "$PKG_DIR" && mv "$PKG_DIR.tmp" "$PKG_DIR"
fi

for bin in skopeo containerd ctr chromium chromedriver "$PKG_DIR/usr/bin/docker" "$PKG_DIR/usr/sbin/dockerd"; do
  command -v "$bin" >/dev/null || die "$bin is missing after install"
done
"$PKG_DIR/usr/sbin/dockerd" --version >/dev/null || die "unpacked dockerd does not run"
echo "skopeo: $(skopeo --version)"
echo "containerd: $(containerd --version)"
echo "chromium: $(chromium --version 2>/dev/null)"
echo "docker: $("$PKG_DIR/usr/bin/docker" --version) (unpacked in $PKG_DIR)"
