#!/usr/bin/env bash
# GPU benchmark for a machine with an NVIDIA GPU (not runnable on the CPU dev box).
# Installs vLLM, serves Qwen2.5-Coder-7B (or $MODEL) with the flags `server-kit launch` chooses, puts the
# gateway in front, and runs `server-kit bench` at 1, 8 and 32 req/s (700-token prompts, 128 tokens, streaming)
# through the gateway and direct. Figures go to benchmarks/results/gpu_vllm_<gpu>_<date>/.
# Target on one H100: p99 E2E <= 0.7 s and TTFT p99 <= 100 ms at 32 req/s.
#   usage: benchmarks/gpu_vllm.sh [MODEL]
#   env:   DURATION (s per run, default 60), RATES (default "1 8 32"), WARMUP (s, default 10)
#          MODEL            a hub name or a local model directory (served as given, whatever the sizing
#                           table would pick for the card)
#          VLLM_EXTRA_ARGS  appended to the planned vLLM command, e.g.
#                           "--load-format dummy --served-model-name qwen2.5-coder-7b-dummy"
#          WHEELS_INSTALLED=1  offline machine: no venv, no pip; vLLM and the gateway's packages are already
#                           importable by python3 (PYTHONPATH; WHEELS_SITE, default /tmp/site, is put in front
#                           when it exists); codeassist runs from this tree
#          OUT_DIR          also copy the results there (at most 8 files: summary.json, summary.txt,
#                           launch-dry-run.txt, nvidia-smi.txt, vllm.log and gateway.log tails, gateway-metrics.txt)
#          VLLM_START_TIMEOUT  seconds to wait for vLLM's /health (default 1800: the first start downloads)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
MODEL="${1:-${MODEL:-Qwen/Qwen2.5-Coder-7B}}"
DURATION="${DURATION:-60}"
RATES="${RATES:-1 8 32}"
WARMUP="${WARMUP:-10}"
VLLM_EXTRA_ARGS="${VLLM_EXTRA_ARGS:-}"
WHEELS_INSTALLED="${WHEELS_INSTALLED:-0}"
OUT_DIR="${OUT_DIR:-}"
VLLM_START_TIMEOUT="${VLLM_START_TIMEOUT:-1800}"
[ -d "$MODEL" ] && MODEL="$(cd "$MODEL" && pwd)"   # a local directory: absolute, so vLLM finds it anywhere
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this script needs a GPU machine" >&2; exit 1; }
GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')"
RES="benchmarks/results/gpu_vllm_${GPU}_$(date +%Y%m%d_%H%M)"
mkdir -p "$RES"
STATE="$(mktemp -d)"
GW_PID=""
VLLM_PID=""

if [ "$WHEELS_INSTALLED" = 1 ]; then
  PY="${PYTHON:-python3}"
  site="${WHEELS_SITE:-/tmp/site}"
  [ -d "$site" ] && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  # pyproject maps codeassist.serverkit -> server-kit/ etc.: links give the same package layout, no install.
  mkdir -p "$STATE/shim/codeassist"
  for p in client lsp context; do ln -s "$ROOT/$p" "$STATE/shim/codeassist/$p"; done
  ln -s "$ROOT/server-kit" "$STATE/shim/codeassist/serverkit"
  export PYTHONPATH="$STATE/shim${PYTHONPATH:+:$PYTHONPATH}"
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
  # The offline bundle leaves flashinfer out; vLLM 0.26 imports it for top-k/top-p sampling unless told not to.
  "$PY" -c 'import flashinfer' 2>/dev/null || export VLLM_USE_FLASHINFER_SAMPLER=0
  "$PY" -c 'import vllm, starlette, uvicorn, httpx; print("vllm", vllm.__version__)'
else
  python3 -m venv .venv-gpu && . .venv-gpu/bin/activate
  pip install -q -U pip && pip install -q vllm && pip install -q -e '.[test]'
  PY=python
fi
server-kit() { "$PY" -m codeassist.serverkit.cli "$@"; }

# GET a URL (optionally with a bearer key); exit status 0 on HTTP 2xx. No curl needed.
http_get() {
  "$PY" - "$@" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception:
    sys.exit(1)
PY
}

export_results() {
  [ -n "$OUT_DIR" ] || return 0
  mkdir -p "$OUT_DIR"
  for f in summary.json summary.txt launch-dry-run.txt nvidia-smi.txt gateway-metrics.txt; do
    [ -f "$RES/$f" ] && cp "$RES/$f" "$OUT_DIR/"
  done
  [ -f "$RES/vllm.log" ] && tail -n 400 "$RES/vllm.log" > "$OUT_DIR/vllm.log"
  [ -f "$RES/gateway.log" ] && tail -n 100 "$RES/gateway.log" > "$OUT_DIR/gateway.log"
  return 0
}
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$VLLM_PID" ] && kill "$VLLM_PID" 2>/dev/null || true
  sleep 1
  export_results
  rm -rf "$STATE"
  return 0
}
trap cleanup EXIT

nvidia-smi > "$RES/nvidia-smi.txt"
server-kit launch --dry-run --developers 100 --model "$MODEL" | tee "$RES/launch-dry-run.txt"

# vLLM exactly as planned (first replica only; loopback) plus VLLM_EXTRA_ARGS, with a key that never reaches argv.
VLLM_CMD="$(grep -m1 'vllm.entrypoints.openai.api_server' "$RES/launch-dry-run.txt")"
VLLM_CMD="${VLLM_CMD/python -m vllm./$PY -m vllm.}"
[ -n "$VLLM_EXTRA_ARGS" ] && VLLM_CMD="$VLLM_CMD $VLLM_EXTRA_ARGS"
echo "vLLM: $VLLM_CMD" | tee -a "$RES/launch-dry-run.txt"
VLLM_API_KEY="$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
export VLLM_API_KEY CODEASSIST_UPSTREAM_KEY="$VLLM_API_KEY"
T0=$SECONDS
bash -c "exec env $VLLM_CMD" > "$RES/vllm.log" 2>&1 &
VLLM_PID=$!
until http_get http://127.0.0.1:8000/health >/dev/null; do
  if ! kill -0 "$VLLM_PID" 2>/dev/null; then echo "vLLM exited; end of its log:" >&2; tail -n 60 "$RES/vllm.log" >&2; exit 1; fi
  if (( SECONDS - T0 > VLLM_START_TIMEOUT )); then echo "vLLM not healthy after ${VLLM_START_TIMEOUT}s" >&2; tail -n 60 "$RES/vllm.log" >&2; exit 1; fi
  sleep 2
done
echo "vLLM healthy after $((SECONDS - T0)) s" | tee "$RES/summary.txt"
NAME="$(http_get http://127.0.0.1:8000/v1/models "$VLLM_API_KEY" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"

export CODEASSIST_SERVER_DIR="$STATE"
server-kit keys add bench 2>/dev/null | tail -1 > "$STATE/key" && chmod 600 "$STATE/key"
# "$PY" itself, not the server-kit function, so that $GW_PID is the gateway's own pid
"$PY" -m codeassist.serverkit.cli gateway --upstream http://127.0.0.1:8000/v1 --port 8080 --max-inflight 64 \
  --rpm 1e7 --burst 1e6 --tpm 1e12 --audit-log "$STATE/audit.jsonl" > "$RES/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do http_get http://127.0.0.1:8080/health >/dev/null && break; sleep 0.2; done

# warm-up (CUDA graphs, prefix cache)
server-kit bench --url http://127.0.0.1:8080/v1 --key-file "$STATE/key" --model "$NAME" --rate 2 --duration "$WARMUP" \
  --quiet >/dev/null
for RATE in $RATES; do
  server-kit bench --url http://127.0.0.1:8080/v1 --key-file "$STATE/key" --model "$NAME" --rate "$RATE" \
    --duration "$DURATION" --json "$RES/gateway_${RATE}rps.json" --png "$RES/gateway_${RATE}rps.png" --quiet \
    | tee "$RES/gateway_${RATE}rps.txt" | tee -a "$RES/summary.txt"
  CODEASSIST_API_KEY="$VLLM_API_KEY" server-kit bench --url http://127.0.0.1:8000/v1 --model "$NAME" \
    --rate "$RATE" --duration "$DURATION" --json "$RES/direct_${RATE}rps.json" --png "$RES/direct_${RATE}rps.png" \
    --quiet | tee "$RES/direct_${RATE}rps.txt" | tee -a "$RES/summary.txt"
done
http_get http://127.0.0.1:8080/metrics > "$RES/gateway-metrics.txt" || true
"$PY" - "$RES" <<'PY' | tee -a "$RES/summary.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = []
for f in sorted(out.glob("*rps.json")):
    s = json.loads(f.read_text())["summary"]
    rows.append({"run": f.stem, "ttft_ms": s["ttft_ms"], "e2e_ms": s["e2e_ms"], "itl_ms": s["itl_ms"],
                 "goodput_fraction": s["goodput_fraction"], "errors": s["errors"]})
(out / "summary.json").write_text(json.dumps(rows, indent=1))
for r in rows:
    print(f"{r['run']:<20} TTFT p50/p99 {r['ttft_ms']['p50']}/{r['ttft_ms']['p99']} ms  "
          f"E2E p50/p99 {r['e2e_ms']['p50']}/{r['e2e_ms']['p99']} ms  goodput {r['goodput_fraction']:.0%}")
PY
echo "results in $RES"
