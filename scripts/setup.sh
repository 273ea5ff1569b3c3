#!/usr/bin/env bash
# Installs, with apt-get, only the Debian 12 packages that are missing. Safe to run again.
# `setup.sh sanitize` adds what `make sanitize` and `make fuzz` need: clang, its sanitizer and libFuzzer
# runtimes, and llvm-symbolizer for readable reports.
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libopencv-dev libsndfile1-dev
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  nlohmann-json3-dev libyaml-cpp-dev catch2
  libpcre2-dev
)
if [ "${1:-}" = "sanitize" ]; then
  PACKAGES+=(clang libclang-rt-14-dev llvm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
