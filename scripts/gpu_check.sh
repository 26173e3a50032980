#!/usr/bin/env bash
# The CUDA paths, end to end, in under five minutes on a machine with an NVIDIA GPU:
#   1. a short training run on cuda (300 steps);
#   2. sampling with the cached network at n = 10,000 and 100,000, cuda against cpu;
#   3. the service started with NAMEGEN_DEVICE=cuda: /ready, /generate, /score;
#   4. CUDA and CPU scores of the same checkpoint agree (max |logprob diff| <= 1e-4),
#      through the service's /score and in-process on the checkpoint trained in step 1.
# Prints a summary and exits 1 if any check failed (2 for a usage error).
#
#   scripts/gpu_check.sh                 # on a GPU machine
#   scripts/gpu_check.sh --device cpu    # dry run: every step on the CPU, to test the script
#
# PYTHON picks the interpreter (default .venv/bin/python, else python3): it needs a CUDA
# build of torch and the project's dependencies. MAX_100K_S (default 1.0) is the most
# seconds 100,000 names may take on cuda.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

DEVICE=cuda
while [ $# -gt 0 ]; do
    case $1 in
    --device) DEVICE=${2:-}; shift 2 ;;
    --device=*) DEVICE=${1#--device=}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | cut -c3-; exit 0 ;;
    *) echo "usage: $0 [--device cuda|cpu]" >&2; exit 2 ;;
    esac
done
case $DEVICE in cuda | cpu) ;; *) echo "--device: cuda or cpu, not '$DEVICE'" >&2; exit 2 ;; esac

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export MAX_100K_S=${MAX_100K_S:-1.0} DEVICE
CKPT=checkpoints/default
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

results=()
failed=0
record() { # record NAME STATUS DETAIL
    results+=("$(printf '%-4s  %-28s %s' "$2" "$1" "$3")")
    [ "$2" = ok ] || failed=1
}
step() { printf '\n== %s\n' "$*"; }
began=$(date +%s)

step "environment"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
if ! "$PY" - <<'EOF'; then
import os, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA build {torch.version.cuda}")
missing = []
for mod in ("fastapi", "uvicorn", "pydantic_settings", "safetensors", "numpy"):
    try:
        __import__(mod)
    except ImportError:
        missing.append(mod)
if missing:
    sys.exit(f"missing packages: {', '.join(missing)} (pip install -e . into this Python)")
if os.environ["DEVICE"] == "cuda":
    if not torch.cuda.is_available():
        hint = " (a CPU build: set PYTHON to one with a CUDA torch)" if not torch.version.cuda else ""
        sys.exit(f"torch {torch.__version__} sees no CUDA device{hint}")
    print(f"device: {torch.cuda.get_device_name(0)}")
else:
    print("DRY RUN on the CPU: this checks the script, not a GPU")
EOF
    record environment FAIL "no usable $DEVICE (see above)"
    printf '\n%s\n' "${results[@]}"
    exit 1
fi
record environment ok "$DEVICE"

step "1. training: 300 steps on $DEVICE"
t0=$(date +%s.%N)
if timeout 180 "$PY" -m training --corpus data/babynames-2017.txt --out "$WORK/trained" \
    --device "$DEVICE" --steps 300 --no-progress --no-diagnostics >"$WORK/train.log" 2>&1 &&
    [ -f "$WORK/trained/meta.json" ]; then
    tail -n 12 "$WORK/train.log"
    record "training (300 steps)" ok "$("$PY" -c "import time; print(f'{time.time() - $t0:.1f} s')")"
else
    tail -n 30 "$WORK/train.log"
    record "training (300 steps)" FAIL "see the log above"
fi

step "2. sampling: $DEVICE against cpu, shipped checkpoint"
if timeout 240 "$PY" - "$CKPT" <<'EOF'; then
import os, sys, time
import torch
from model.engine import Engine, GenerateRequest

device, limit = os.environ["DEVICE"], float(os.environ["MAX_100K_S"])
engines = {"cpu": Engine.load(sys.argv[1], "cpu"), device: Engine.load(sys.argv[1], device)}
slow = False
print(f"{'n':>8} " + " ".join(f"{d + ' s':>9}" for d in engines) + "   names/s on " + device)
for n in (10_000, 100_000):
    times = {}
    for name, engine in engines.items():
        engine.generate(GenerateRequest(n=64, seed=1))  # warm-up: kernels, allocator
        if name == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        result = engine.generate(GenerateRequest(n=n, seed=0))
        if name == "cuda":
            torch.cuda.synchronize()
        times[name] = time.perf_counter() - t
        assert len(result.names) == n and all(g.name for g in result.names), (name, n)
    print(f"{n:>8} " + " ".join(f"{s:>9.3f}" for s in times.values())
          + f"   {n / times[device]:>12,.0f}")
    slow |= device == "cuda" and n == 100_000 and times[device] > limit
if slow:
    sys.exit(f"100,000 names took more than {limit} s on cuda")
EOF
    record "sampling 10k / 100k" ok "$DEVICE against cpu, times above"
else
    record "sampling 10k / 100k" FAIL "see above"
fi

step "3. the service with NAMEGEN_DEVICE=$DEVICE, 4. /score against cpu"
if timeout 180 "$PY" - "$CKPT" <<'EOF'; then
import json, os, signal, socket, subprocess, sys, time, urllib.request
from model.engine import Engine

device, ckpt = os.environ["DEVICE"], sys.argv[1]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
base = f"http://127.0.0.1:{port}"
env = {**os.environ, "NAMEGEN_DEVICE": device, "NAMEGEN_CHECKPOINT": ckpt}
proc = subprocess.Popen(
    [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port),
     "--log-level", "warning"], env=env)


def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data, {"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r), time.perf_counter() - t


try:
    for _ in range(240):
        try:
            print("GET /ready ->", call("/ready")[0])
            break
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"the service exited with {proc.returncode}")
            time.sleep(0.25)
    else:
        sys.exit("the service was not ready within 60 s")
    body, s = call("/generate", {"n": 5, "seed": 42})
    print(f"POST /generate n=5 seed=42 ({s * 1000:.0f} ms) ->", [g["name"] for g in body["names"]])
    body, s = call("/generate", {"n": 10_000, "seed": 0})
    assert len(body["names"]) == 10_000
    print(f"POST /generate n=10000 -> 10000 names in {s:.3f} s")
    names = sorted({g["name"] for g in body["names"]})[:1000]
    body, s = call("/score", {"names": names})
    print(f"POST /score, {len(names)} names ({s * 1000:.0f} ms)")
    served = {x["name"]: x for x in body["scores"]}
    cpu = {x.score.name: x.score for x in Engine.load(ckpt, "cpu").score(names)}
    lp = max(abs(served[n]["logprob"] - cpu[n].logprob) for n in names)
    cp = max(abs(a["prob"] - b) for n in names
             for a, b in zip(served[n]["char_probs"], cpu[n].char_probs, strict=True))
    print(f"/score on {device} against cpu: max |logprob diff| {lp:.2e}, max |prob diff| {cp:.2e}")
    if not lp <= 1e-4:
        sys.exit(f"/score on {device} and cpu disagree by {lp:.2e} > 1e-4")
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("the service did not stop within 15 s of SIGTERM")
    # uvicorn shuts down, then re-raises SIGTERM: -15 is a clean stop
    print(f"the service stopped on SIGTERM (status {proc.returncode})")
EOF
    record "service on $DEVICE" ok "/ready, /generate, /score; /score within 1e-4 of cpu"
else
    record "service on $DEVICE" FAIL "see above"
fi

step "4. scores of the trained checkpoint: $DEVICE against cpu"
if [ -f "$WORK/trained/meta.json" ] && timeout 120 "$PY" - "$WORK/trained" <<'EOF'; then
import os, sys
from model.engine import Engine

path, device = sys.argv[1], os.environ["DEVICE"]
with open("data/babynames-2017.txt") as f:
    names = [line.strip() for line in f if line.strip()][:2000] + ["zyxwv", "a", "q" * 30]
cpu = Engine.load(path, "cpu").score(names)
other = Engine.load(path, device).score(names)
diff = max(abs(a.score.logprob - b.score.logprob) for a, b in zip(cpu, other, strict=True))
print(f"{len(names)} names: max |logprob diff| {diff:.2e}")
if not diff <= 1e-4:
    sys.exit(f"{device} and cpu disagree by {diff:.2e} > 1e-4")
EOF
    record "score agreement (trained)" ok "max |logprob diff| <= 1e-4"
else
    record "score agreement (trained)" FAIL "see above"
fi

printf '\n== summary (%s, %s s in all)\n' "$DEVICE" "$(($(date +%s) - began))"
printf '%s\n' "${results[@]}"
[ "$DEVICE" = cuda ] || echo "DRY RUN on the CPU: nothing here was checked on a GPU"
if [ "$failed" = 0 ]; then echo "gpu check passed"; else echo "gpu check FAILED"; fi
exit "$failed"
