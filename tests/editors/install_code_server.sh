#!/usr/bin/env bash
# Installs what tests/editors/test_vscode_codeserver.py needs, outside the repository:
#   - code-server (VS Code in a browser) from npm into $CODE_SERVER_PREFIX (default /opt/code-server),
#   - Debian's headless Chromium + chromedriver, ripgrep, and the headers code-server's native modules build against,
#   - selenium into the project's venv (or the python given as $PYTHON).
# Needs root (apt-get), Node.js 20 + npm, and the package registries; nothing else is downloaded.
# code-server's @vscode/ripgrep postinstall fetches rg from GitHub, which is unreachable here: its download
# cache is seeded with Debian's rg instead, so the postinstall "uses the cached download".
set -euo pipefail

VERSION="${CODE_SERVER_VERSION:-4.99.4}"   # the last code-server line that runs on Node 20 is 4.99-4.100
PREFIX="${CODE_SERVER_PREFIX:-/opt/code-server}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium chromium-driver ripgrep build-essential python3 pkg-config \
    libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev
fi

# Seed @vscode/ripgrep's download cache (os.tmpdir()/vscode-ripgrep-cache-<pkg version>/<asset>) with Debian's rg.
RG="$(command -v rg)"
stage="$(mktemp -d)"
cp "$RG" "$stage/rg"
for pkgver in 1.15.9 1.15.10 1.15.11 1.15.12 1.15.13 1.15.14; do
  for tag in v13.0.0-10 v13.0.0-4 v13.0.0-13; do
    cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$pkgver"
    mkdir -p "$cache"
    tar -czf "$cache/ripgrep-$tag-x86_64-unknown-linux-musl.tar.gz" -C "$stage" rg
  done
done
rm -rf "$stage"

# A local (not --global) install: code-server's postinstall runs `npm install` in lib/vscode, and under a global
# install that inner npm inherits npm_config_global=true, reinstalls over the package and fails with
# "ENOENT: Cannot cd into .../lib/vscode/node_modules/...".
BIN="$PREFIX/node_modules/.bin/code-server"
if [ ! -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "^$VERSION "; then
  mkdir -p "$PREFIX"
  [ -f "$PREFIX/package.json" ] || echo '{"private": true}' > "$PREFIX/package.json"
  # node-pty's postinstall runs `npx node-gyp`, which waits for a "yes" without npm_config_yes.
  (cd "$PREFIX" && npm_config_yes=true npm install --unsafe-perm --no-audit --no-fund --no-save "code-server@$VERSION")
fi
mkdir -p "$PREFIX/bin"
ln -sf "$BIN" "$PREFIX/bin/code-server"
"$PREFIX/bin/code-server" --version

if [ -x "$PYTHON" ]; then
  "$PYTHON" -m pip install -q selenium
fi
