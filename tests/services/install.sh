#!/usr/bin/env bash
# Install the services the test suite starts itself (Debian 12, as root). Idempotent.
set -euo pipefail
packages=(redis-server)
# Ceph RGW for the S3 blob driver tests (tests/services/ceph.sh); `rados` reads its raw objects
packages+=(ceph-mon ceph-osd radosgw ceph-common curl)
# PostgreSQL 15 for the metadata store tests (tests/services/postgres.py runs its own cluster)
packages+=(postgresql)
# promtool (`promtool check metrics` on /metrics scrapes, tests/gateway/test_metrics.py)
packages+=(prometheus)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing packages ${missing[*]}: run as root or install them" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v promtool >/dev/null || { echo "promtool is missing after installing prometheus" >&2; exit 1; }
# only promtool is wanted: not the Prometheus server that the package starts under systemd
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
