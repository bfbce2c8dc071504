#!/usr/bin/env bash
# Browser for the Aladin view test (tests/test_browser_aladin.py, marker `browser`):
# Debian's chromium, driven by playwright's Python API through executable_path.
# Never `playwright install` (no downloaded browser builds). Idempotent; needs root or
# sudo only when something is missing.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core fonts-liberation)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup_browser: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
test -x /usr/bin/chromium || { echo "setup_browser: /usr/bin/chromium missing after install" >&2; exit 1; }
# headless smoke test: WebGL2 through SwiftShader, no network
/usr/bin/chromium --headless --no-sandbox --enable-unsafe-swiftshader \
    --disable-background-networking --dump-dom about:blank >/dev/null 2>&1 \
    || { echo "setup_browser: chromium does not start headless" >&2; exit 1; }
echo "setup_browser: $(/usr/bin/chromium --version 2>/dev/null)"
