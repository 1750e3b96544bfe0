#!/usr/bin/env bash
# Device side: join the parts copied to /tmp/gpuparts, unpack .whl/ and .gpu/model/ into the repo root,
# install the wheels into /tmp/site. Then: export PYTHONPATH=/tmp/site (gpu_vllm.sh does it itself).
set -euo pipefail
cd "$(dirname "$0")/.."                    # repo root
PARTS="${GPUPARTS:-/tmp/gpuparts}"
SITE="${WHEELS_SITE:-/tmp/site}"
ls -l "$PARTS"/part*
EXPECT="d6e7feec814480573800821f93b95372657a775287e7236985346b2bc0616896"                          # sha256 of the joined stream (part00 part01 ...)
GOT="$(cat "$PARTS"/part* | sha256sum | cut -d' ' -f1)"
[ "$GOT" = "$EXPECT" ] || { echo "parts incomplete or damaged: sha256 $GOT, expected $EXPECT" >&2; exit 1; }
t0=$SECONDS
cat "$PARTS"/part* | xz -dc -T0 | tar -xf -
echo "unpacked $(ls .whl | wc -l) wheels and .gpu/model in $((SECONDS - t0)) s"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
echo "installed in $((SECONDS - t0)) s"
python3 -c "import vllm; print('vllm', vllm.__version__)"
