#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian/Ubuntu: system packages by name, a virtual environment in
# .venv, and the project installed into it. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  # torch: the CPU build. PyPI's torch==2.13.0 for Linux x86-64 is a CUDA build (several GB of
  # nvidia-* wheels); ask pip which wheel it would take, and if that one needs CUDA, take the CPU
  # build from PyTorch's own CPU index instead (a machine whose pip already offers a CPU wheel keeps it).
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    report=$(mktemp)
    .venv/bin/pip install -q --disable-pip-version-check --dry-run --no-deps --report "$report" torch==2.13.0 \
      2>/dev/null || true
    if grep -q '"nvidia-' "$report"; then
      echo "bootstrap: pip would take a CUDA build of torch; installing the CPU build from download.pytorch.org"
      .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    fi
    rm -f "$report"
  fi
  echo "bootstrap: pip install (torch==2.13.0 CPU build, numpy, pyserial, construct, pyocd, labgrid, pytest-xdist, ...)"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev,labgrid]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import torch, numpy, serial, construct, pyocd, labgrid.remote.client, xdist" # fail loudly if pip did not
  touch "$stamp"
fi
