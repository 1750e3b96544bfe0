#!/usr/bin/env bash
# GPU benchmark for a machine with an NVIDIA GPU (not runnable on the CPU dev box).
# Installs vLLM, serves Qwen2.5-Coder-7B (or $MODEL) with the flags `server-kit launch` chooses, puts the
# gateway in front, and runs `server-kit bench` at 1, 8 and 32 req/s (700-token prompts, 128 tokens, streaming)
# through the gateway and direct. Figures go to benchmarks/results/gpu_vllm_<gpu>_<date>/.
# Target on one H100: p99 E2E <= 0.7 s and TTFT p99 <= 100 ms at 32 req/s.
#   usage: benchmarks/gpu_vllm.sh [MODEL]     env: DURATION (s, default 60), RATES (default "1 8 32")
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-${MODEL:-Qwen/Qwen2.5-Coder-7B}}"
DURATION="${DURATION:-60}"
RATES="${RATES:-1 8 32}"
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this script needs a GPU machine" >&2; exit 1; }
GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')"
OUT="benchmarks/results/gpu_vllm_${GPU}_$(date +%Y%m%d_%H%M)"
mkdir -p "$OUT"

python -m venv .venv-gpu && . .venv-gpu/bin/activate
pip install -q -U pip && pip install -q vllm && pip install -q -e '.[test]'
nvidia-smi > "$OUT/nvidia-smi.txt"
server-kit launch --dry-run --developers 100 --model "$MODEL" | tee "$OUT/launch-dry-run.txt"

# vLLM exactly as planned (first replica only; loopback), with a key that never reaches argv.
VLLM_CMD="$(grep -m1 'vllm.entrypoints.openai.api_server' "$OUT/launch-dry-run.txt")"
export VLLM_API_KEY="$(python -c 'import secrets; print(secrets.token_hex(16))')"
export CODEASSIST_UPSTREAM_KEY="$VLLM_API_KEY"
bash -c "$VLLM_CMD" > "$OUT/vllm.log" 2>&1 &
VLLM_PID=$!
STATE="$(mktemp -d)"
cleanup() { kill "$GW_PID" "$VLLM_PID" 2>/dev/null || true; rm -rf "$STATE"; }
GW_PID=""
trap cleanup EXIT
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; sleep 2; done
NAME="$(curl -s -H "Authorization: Bearer $VLLM_API_KEY" http://127.0.0.1:8000/v1/models | python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"

export CODEASSIST_SERVER_DIR="$STATE"
server-kit keys add bench 2>/dev/null | tail -1 > "$STATE/key" && chmod 600 "$STATE/key"
server-kit gateway --upstream http://127.0.0.1:8000/v1 --port 8080 --max-inflight 64 \
  --rpm 1e7 --burst 1e6 --tpm 1e12 --audit-log "$STATE/audit.jsonl" > "$OUT/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8080/health >/dev/null && break; sleep 0.2; done

# warm-up (CUDA graphs, prefix cache)
server-kit bench --url http://127.0.0.1:8080/v1 --key-file "$STATE/key" --model "$NAME" --rate 2 --duration 10 --quiet >/dev/null
for RATE in $RATES; do
  server-kit bench --url http://127.0.0.1:8080/v1 --key-file "$STATE/key" --model "$NAME" --rate "$RATE" \
    --duration "$DURATION" --json "$OUT/gateway_${RATE}rps.json" --png "$OUT/gateway_${RATE}rps.png" --quiet \
    | tee "$OUT/gateway_${RATE}rps.txt"
  CODEASSIST_API_KEY="$VLLM_API_KEY" server-kit bench --url http://127.0.0.1:8000/v1 --model "$NAME" \
    --rate "$RATE" --duration "$DURATION" --json "$OUT/direct_${RATE}rps.json" --png "$OUT/direct_${RATE}rps.png" \
    --quiet | tee "$OUT/direct_${RATE}rps.txt"
done
curl -s http://127.0.0.1:8080/metrics > "$OUT/gateway-metrics.txt"
python - "$OUT" <<'PY'
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
echo "results in $OUT"
