#!/usr/bin/env bash
# Build ocigate's image with buildah, without Docker Hub (Debian 12, as root):
#   bash deploy/image/build.sh [TAG]          TAG default localhost/ocigate:<version>
# 1. a Debian bookworm root: debootstrap --variant=minbase with python3 and ca-certificates,
#    security updates applied, slimmed by slim.sh. It is cached as a tarball under
#    $IMAGE_BASE_CACHE (default /var/tmp/ocigate-image), keyed by what goes into it (suite,
#    packages, slim.sh, this recipe), and made again once it is a week old (fresh updates);
# 2. imported into buildah's storage as an image, the BASE of deploy/image/Dockerfile;
# 3. buildah builds that Dockerfile (docker format, which keeps the HEALTHCHECK), so an image
#    built with docker from Debian's bookworm-slim has the same layout.
# Then push it anywhere: `buildah --storage-driver vfs push TAG docker://host/ocigate:1`.
# Environment: STORAGE_DRIVER (default vfs: works on any filesystem, no kernel overlay needed),
# BUILDAH_ROOT and BUILDAH_RUNROOT (a storage of its own; default buildah's), DEBIAN_MIRROR,
# DEBIAN_SECURITY_MIRROR, IMAGE_BASE_CACHE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap and buildah's chroot isolation need it)"
for tool in debootstrap buildah unshare; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap buildah"
done

suite=bookworm
packages=python3,ca-certificates
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${IMAGE_BASE_CACHE:-/var/tmp/ocigate-image}
max_age_days=7
storage=(--storage-driver "${STORAGE_DRIVER:-vfs}")
[ -z "${BUILDAH_ROOT:-}" ] || storage+=(--root "$BUILDAH_ROOT")
[ -z "${BUILDAH_RUNROOT:-}" ] || storage+=(--runroot "$BUILDAH_RUNROOT")
bah() { buildah "${storage[@]}" "$@"; }

# Run a command in the root being made, with its own /proc (gone with the namespace).
in_root() {
  unshare --mount --pid --fork --mount-proc="$1/proc" \
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "${@:2}"
}

make_base() {
  local root=$1
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
  in_root "$root" apt-get update -q
  in_root "$root" apt-get upgrade -y -q
  cp "$here/slim.sh" "$root/slim.sh"
  in_root "$root" sh /slim.sh
  rm "$root/slim.sh" "$root/etc/resolv.conf" "$root/etc/hostname"
  # container runtimes provide these
  find "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/tmp" -mindepth 1 -delete
}

key=$({ echo "$suite $packages"; cat "$here/slim.sh"; declare -f make_base in_root; } | sha256sum | cut -c1-16)
tarball=$cache/base-$suite-$key.tar
mkdir -p "$cache"
exec 9>"$tarball.lock"
flock 9  # one build makes the root; builds running beside it wait and reuse it
if [ ! -s "$tarball" ] || [ -n "$(find "$tarball" -mtime +"$max_age_days")" ]; then
  echo "build.sh: making the Debian $suite root ($tarball)"
  work=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  make_base "$work/root"
  tar --numeric-owner -C "$work/root" -cf "$work/base.tar" .
  mv "$work/base.tar" "$tarball"
  rm -rf "$work"
fi
find "$cache" -maxdepth 1 -name "base-*.tar*" -mtime +$((max_age_days * 2)) -delete  # old recipes
flock -u 9

base=localhost/ocigate-base:$suite-$key
if ! bah inspect --type image "$base" >/dev/null 2>&1; then
  container=$(bah from scratch)
  bah add --quiet "$container" "$tarball" /
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$container"
  bah commit --quiet --rm "$container" "$base" >/dev/null
fi

version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$repo/pyproject.toml")
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
tag=${1:-localhost/ocigate:$version}
# chroot isolation: RUN steps need no OCI runtime, only root. They see this machine's CA bundle
# (pip trusts what the machine trusts, e.g. a TLS-inspecting proxy), which stays out of the image.
bah build --format docker --isolation chroot --pull=never \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  --build-arg BASE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -f "$here/Dockerfile" -t "$tag" "$repo"
echo "built $tag"
