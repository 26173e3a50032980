#!/usr/bin/env bash
# Build the image and try it as a user would: /health, /ready, /generate, /score, the page
# at / when there is one, the HEALTHCHECK, a non-root user, and a clean quick stop on
# SIGTERM. Prints the build time and the image size. Exits non-zero on the first failure.
#
# Uses docker when a docker engine answers, else podman (`make container-deps` installs
# it). With podman and no NAMEGEN_BASE_IMAGE, the base image is made locally
# (scripts/make_base_image.sh), since no image registry is reachable here.
#
# Environment: NAMEGEN_ENGINE (docker|podman), NAMEGEN_BASE_IMAGE, NAMEGEN_IMAGE (the tag
# built, default localhost/namegen:test), NAMEGEN_CA_BUNDLE (the package index's CA bundle,
# mounted into pip's build steps; default the system bundle), NAMEGEN_MAX_STOP_S (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${NAMEGEN_IMAGE:-localhost/namegen:test}
MAX_STOP_S=${NAMEGEN_MAX_STOP_S:-5}
NAME=namegen-test-$$

say() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

if [ -n "${NAMEGEN_ENGINE:-}" ]; then
    ENGINE=$NAMEGEN_ENGINE
elif docker info >/dev/null 2>&1; then
    ENGINE=docker
else
    ENGINE=podman
fi
command -v "$ENGINE" >/dev/null || fail "$ENGINE not found (make container-deps installs podman)"

if [ "$ENGINE" = podman ]; then
    # What works on these machines (cgroup v1, no systemd, no crun): runc, cgroupfs, and
    # no default ulimits (podman's defaults exceed what this kernel lets a container set).
    if [ -z "${CONTAINERS_CONF:-}" ]; then
        CONTAINERS_CONF=$(mktemp -d)/containers.conf
        cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
        export CONTAINERS_CONF
    fi
    BASE_IMAGE=${NAMEGEN_BASE_IMAGE:-localhost/namegen-base:bookworm}
    [ -n "${NAMEGEN_BASE_IMAGE:-}" ] || scripts/make_base_image.sh "$BASE_IMAGE"
    # --format docker: the OCI image format has no HEALTHCHECK, podman would drop it.
    BUILD=(podman build --format docker)
else
    BASE_IMAGE=${NAMEGEN_BASE_IMAGE:-python:3.11-slim}
    BUILD=(env DOCKER_BUILDKIT=1 docker build)
fi

# The CPU torch wheel from the host, when its pip has one (this machine's finds it on local
# disk); without it the build takes torch from the CPU index instead.
if ! compgen -G 'wheels/torch-2.13.0+cpu-*.whl' >/dev/null; then
    python3 -m pip download -qq --no-deps --dest wheels 'torch==2.13.0+cpu' ||
        say "no CPU torch wheel on this host; the build will use the torch index"
fi

CA=${NAMEGEN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -s "$CA" ] && secret=(--secret "id=cacert,src=$CA")

say "building $IMAGE with $ENGINE on $BASE_IMAGE"
log=$(mktemp)
start=$(date +%s.%N)
"${BUILD[@]}" --network host "${secret[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t "$IMAGE" . >"$log" 2>&1 || {
    tail -n 40 "$log"
    fail "build failed (full log: $log)"
}
build_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')")
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$((size / 1000000))
say "built in ${build_s} s; image size ${size_mb} MB"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { "$ENGINE" rm --force "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# The healthcheck's timer needs systemd under podman; where there is none podman complains
# (filtered out here), and `podman healthcheck run` below runs the check by hand instead.
no_systemd_noise() { grep -v 'unable to get systemd connection' >&2 || true; }
"$ENGINE" run --detach --name "$NAME" --publish "127.0.0.1:$port:8000" "$IMAGE" \
    2> >(no_systemd_noise) >/dev/null
url=http://127.0.0.1:$port

for _ in $(seq 120); do
    curl --silent --fail --max-time 2 "$url/ready" >/dev/null && break
    [ "$("$ENGINE" inspect --format '{{.State.Running}}' "$NAME")" = true ] || {
        "$ENGINE" logs "$NAME" | tail -n 30
        fail "the container stopped before it was ready"
    }
    sleep 0.5
done
ready=$(curl --silent --fail --max-time 2 "$url/ready") || {
    "$ENGINE" logs "$NAME" | tail -n 30
    fail "/ready did not answer 200 within 60 s"
}
say "GET /ready -> $ready"
health=$(curl --silent --fail --max-time 2 "$url/health") || fail "/health"
say "GET /health -> $health"

post() { curl --silent --show-error --fail-with-body --max-time 30 \
    -H 'Content-Type: application/json' -d "$2" "$url$1"; }
generated=$(post /generate '{"n": 5, "seed": 42}') || fail "/generate: $generated"
say "POST /generate {\"n\": 5, \"seed\": 42} -> $generated"
python3 -c '
import json, sys
body = json.loads(sys.argv[1])
names = [item["name"] for item in body["names"]]
assert len(names) == 5 and all(names), names
assert body["seed"] == 42, body["seed"]
' "$generated" || fail "/generate did not give 5 names for seed 42"

scored=$(post /score '{"names": ["emma"]}') || fail "/score: $scored"
say "POST /score {\"names\": [\"emma\"]} -> ${scored:0:200}..."
python3 -c '
import json, math, sys
(score,) = json.loads(sys.argv[1])["scores"]
assert score["name"] == "emma" and math.isfinite(score["logprob"]) and score["logprob"] < 0
' "$scored" || fail "/score did not give one finite logprob for emma"

page_type=$(curl --silent --output /dev/null --max-time 5 \
    --write-out '%{http_code} %{content_type}' "$url/")
if [[ $page_type == "200 text/html"* ]]; then
    page=$(curl --silent --fail --max-time 5 "$url/") || fail "GET / failed"
    grep -qi '<html' <<<"$page" || fail "/ is not an HTML page"
    say "GET / -> $page_type (the web page)"
else
    say "GET / -> $page_type (no web page in this build; not checked)"
fi

if [ "$ENGINE" = podman ]; then
    podman healthcheck run "$NAME" || fail "the HEALTHCHECK failed"
    say "HEALTHCHECK (podman healthcheck run) -> healthy"
else
    for _ in $(seq 90); do
        status=$(docker inspect --format '{{.State.Health.Status}}' "$NAME")
        [ "$status" = starting ] || break
        sleep 1
    done
    [ "$status" = healthy ] || fail "the HEALTHCHECK says $status"
    say "HEALTHCHECK -> $status"
fi

"$ENGINE" exec "$NAME" sh -c '! ls /run/secrets/cacert 2>/dev/null' ||
    fail "the build's CA bundle is in the image"

uid=$("$ENGINE" exec "$NAME" python -c 'import os; print(os.getuid())')
pid1_uid=$("$ENGINE" exec "$NAME" sh -c 'grep ^Uid: /proc/1/status' | awk '{print $2}')
if [ "$uid" = 0 ] || [ "$pid1_uid" = 0 ]; then
    fail "runs as root (uid $uid, PID 1 uid $pid1_uid)"
fi
say "runs as uid $uid (PID 1 too)"

# `stop` sends SIGTERM and waits; 10 s later it would send SIGKILL (exit 137).
start=$(date +%s.%N)
"$ENGINE" stop --time 10 "$NAME" 2> >(no_systemd_noise) >/dev/null
stop_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$NAME")
logs=$("$ENGINE" logs "$NAME" 2>&1)
grep -q 'Finished server process' <<<"$logs" || fail "no graceful shutdown in the logs (exit $code)"
# 0 as PID 1; 143 (SIGTERM re-raised by uvicorn after its shutdown) under an init process.
[ "$code" = 0 ] || [ "$code" = 143 ] || fail "exit status $code after SIGTERM"
python3 -c "import sys; sys.exit(not $stop_s <= $MAX_STOP_S)" ||
    fail "SIGTERM took $stop_s s to stop it (more than $MAX_STOP_S s)"
say "SIGTERM -> stopped in ${stop_s} s, exit status $code, graceful shutdown logged"

echo "container-test passed: $ENGINE, base $BASE_IMAGE, build ${build_s} s, image ${size_mb} MB, stop ${stop_s} s"
