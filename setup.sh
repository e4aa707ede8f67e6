#!/usr/bin/env bash
# Installs everything this project needs into ./.venv (idempotent; fast when nothing changed).
# Debian tools (a C++ compiler and make for Verilator's models, iverilog for the Icarus fallback,
# openFPGALoader for flashing) are installed with apt-get when run as root; otherwise the exact
# command to run is printed.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
{ command -v c++ && command -v make; } >/dev/null 2>&1 || missing+=(build-essential)
command -v iverilog >/dev/null 2>&1 || missing+=(iverilog)
command -v openFPGALoader >/dev/null 2>&1 || missing+=(openfpgaloader)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: install them with:  sudo apt-get install ${missing[*]}" >&2
        echo "setup: (simulation tests are skipped until build-essential and iverilog are" \
            "installed)" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    # the CPU wheel first: a bare torch requirement could otherwise pull a multi-GB CUDA build
    .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
echo "setup: ready (.venv)"
