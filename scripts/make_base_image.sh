#!/usr/bin/env bash
# Make a local base image for the Dockerfile where no image registry is reachable:
# debootstrap a minimal Debian with its python3, add a venv on PATH (Debian's own python3
# has no `python` command and refuses pip installs into the system), then `podman import`.
#
#   scripts/make_base_image.sh [IMAGE]      (default localhost/namegen-base:bookworm)
#
# Skips everything when the image already exists. Needs root, debootstrap and podman.
# NAMEGEN_DEBIAN_MIRROR overrides the mirror; by default it is the one the host's apt uses.
set -euo pipefail

IMAGE=${1:-localhost/namegen-base:bookworm}
SUITE=bookworm

if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists; skipping"
    exit 0
fi

# The host's own Debian mirror is the one known to answer here.
host_mirror() {
    local uri
    uri=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | head -n 1 | grep -oE 'https?://[^ ]+' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${NAMEGEN_DEBIAN_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR%/}
SECURITY=${MIRROR%/debian}/debian-security

ROOT=$(mktemp -d /var/tmp/namegen-base.XXXXXX)
trap 'rm -rf "$ROOT" "$ROOT.log"' EXIT

echo "debootstrap $SUITE from $MIRROR into $ROOT"
start=$(date +%s)
LOG=$ROOT.log
debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$ROOT" "$MIRROR" \
    >"$LOG" 2>&1 || { tail -n 30 "$LOG"; exit 1; }

# Security and point-release updates, then nothing the image does not need at run time.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
chroot "$ROOT" /bin/sh -euc '
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update
    apt-get -qq -y upgrade >/dev/null
    apt-get -qq clean
    python3 -m venv /opt/python
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /tmp/* \
        /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
' >>"$LOG" 2>&1 || { tail -n 30 "$LOG"; exit 1; }
rm -f "$LOG"

tar -C "$ROOT" --numeric-owner -c . | podman import --quiet \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python"]' \
    --message "debootstrap $SUITE minbase + python3, python3-venv; venv /opt/python on PATH" \
    - "$IMAGE" >/dev/null
echo "made $IMAGE in $(($(date +%s) - start)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
