#!/usr/bin/env bash
# A throwaway single-node Ceph (mon + 1 OSD + radosgw) for the S3 blob driver tests.
#   ceph.sh up     start it; prints `export NAME=value` lines (S3 endpoint, keys, ceph.conf)
#   ceph.sh down   stop the daemons of $CEPH_DIR (only the pids it wrote) and remove the dir
# Needs ceph-mon ceph-osd radosgw ceph-common curl (tests/services/install.sh); runs as root,
# no block devices, no systemd, everything under $CEPH_DIR. Env knobs:
#   CEPH_DIR        (default ${TMPDIR:-/tmp}/ocigate-ceph)
#   RGW_PORT        S3 port (default 7480); MON_PORT / MON_V1_PORT monitor ports (3300 / 6789)
#   OSD_STORE       memstore (default: data in RAM, starts fast) | bluestore (sparse file)
#   MEMSTORE_BYTES  upper bound of the memstore (default 4 GiB; RAM is used as data is written)
#   S3_ACCESS_KEY / S3_SECRET_KEY  credentials of the S3 user it creates
#   KEEP_DATA=1     `down` keeps $CEPH_DIR (logs)
set -euo pipefail

CEPH_DIR=${CEPH_DIR:-${TMPDIR:-/tmp}/ocigate-ceph}
CONF="$CEPH_DIR/ceph.conf"
DAEMONS=(client.rgw.a osd.0 mon.a) # stop order

down() {
  local pids=() name pid
  for name in "${DAEMONS[@]}"; do
    pid=$(cat "$CEPH_DIR/run/$name.pid" 2>/dev/null) || continue
    # signal it only if it really is a daemon of this instance (pid files outlive processes)
    if [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$CONF"; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ "${KEEP_DATA:-0}" = 1 ] || rm -rf "$CEPH_DIR"
}

wait_for() { # seconds, command...: retry every 0.5 s
  local tries=$(($1 * 2))
  shift
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  "$@" >/dev/null
}

up() {
  local missing=() bin
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph rados monmaptool curl; do
    command -v "$bin" >/dev/null || missing+=("$bin")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing ${missing[*]}: apt-get install ceph-mon ceph-osd radosgw ceph-common curl" \
      "(bash tests/services/install.sh)" >&2
    exit 1
  fi
  local rgw_port=${RGW_PORT:-7480} mon_port=${MON_PORT:-3300} mon_v1_port=${MON_V1_PORT:-6789}
  local store=${OSD_STORE:-memstore} access=${S3_ACCESS_KEY:-ocigatetestaccess}
  local secret=${S3_SECRET_KEY:-ocigatetestsecret} t0 fsid osd_uuid osd_id
  local mon_addr="[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1_port]"
  t0=$(date +%s.%N)

  down
  mkdir -p "$CEPH_DIR"/{run,log,mon.a,osd.0,rgw}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  # keys for RGW's "testing" KMS backend (SSE-KMS with key id testkey-1), fresh per instance
  local kms1 kms2
  kms1=$(head -c 32 /dev/urandom | base64)
  kms2=$(head -c 32 /dev/urandom | base64)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = $mon_addr
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
keyring = $CEPH_DIR/keyring
run dir = $CEPH_DIR/run
pid file = $CEPH_DIR/run/\$name.pid
admin socket = $CEPH_DIR/run/\$name.asok
log file = $CEPH_DIR/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $CEPH_DIR/log/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
ms bind ipv6 = false

[mon]
mon data = $CEPH_DIR/mon.\$id

[osd]
osd data = $CEPH_DIR/osd.\$id
osd objectstore = $store
memstore device bytes = ${MEMSTORE_BYTES:-4294967296}
bluestore block path = $CEPH_DIR/osd.\$id.block
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
osd memory target = 939524096
osd op num shards = 2
osd op num threads per shard = 2
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw data = $CEPH_DIR/rgw
# radosgw's built-in defaults ask for cephx + a secure mon connection; auth is off here
auth client required = none
ms mon client mode = crc secure
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw thread pool size = 64
rgw enable usage log = false
# SSE-C over plain HTTP (loopback only) and SSE-KMS without a real KMS
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=$kms1 testkey-2=$kms2
debug rgw = 1
EOF
  : >"$CEPH_DIR/keyring"
  local c=(-c "$CONF")
  trap 'echo "ceph.sh up failed; logs: $CEPH_DIR/log" >&2; KEEP_DATA=1 down' ERR

  monmaptool --create --clobber --fsid "$fsid" --addv a "$mon_addr" "$CEPH_DIR/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$CEPH_DIR/monmap"
  ceph-mon "${c[@]}" -i a
  wait_for 30 ceph "${c[@]}" --connect-timeout 2 mon stat

  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph "${c[@]}" osd new "$osd_uuid")
  ceph-osd "${c[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>>"$CEPH_DIR/log/osd-mkfs.log"
  ceph-osd "${c[@]}" -i "$osd_id"
  osd_up() { ceph "${c[@]}" osd dump | grep -q "^osd.$osd_id up"; }
  wait_for 90 osd_up

  radosgw "${c[@]}" -n client.rgw.a # creates its pools on first start
  wait_for 90 curl -fsS -o /dev/null "http://127.0.0.1:$rgw_port/"
  radosgw-admin "${c[@]}" user create --uid=ocigate --display-name=ocigate \
    --access-key="$access" --secret-key="$secret" >/dev/null
  trap - ERR

  cat <<EOF
export S3_ENDPOINT_URL=http://127.0.0.1:$rgw_port
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_DEFAULT_REGION=us-east-1
export CEPH_CONF=$CONF
export CEPH_KMS_KEY_ID=testkey-1
export CEPH_START_SECONDS=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
EOF
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
