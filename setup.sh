#!/usr/bin/env bash
# Install what the recipe needs: Debian fonts and Tesseract (listed in data_prep/apt-packages.txt), npm
# (unless Node.js already brings it), a virtual environment .venv holding the pinned Python packages and
# this project (`pip install -e .`), and Google Fonts' handwriting fonts from the npm registry into
# data/fonts. Safe to rerun: it installs and fetches only what is missing. Afterwards use .venv/bin/python,
# or `. .venv/bin/activate` first.
#
# A virtual environment because Debian 12 and Ubuntu 24.04 refuse `pip install` into the system Python
# (PEP 668, "externally-managed-environment"). pip honours PIP_FIND_LINKS and PIP_INDEX_URL as usual, so
# a local wheel folder (a CPU-only torch, say) is used when it is set.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

mapfile -t packages < <(grep -v '^\s*#' data_prep/apt-packages.txt | grep -v '^\s*$')
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v npm >/dev/null || missing+=(npm)
# Debian's python3 lacks the venv module until python3-venv is installed; other Pythons bring it.
[ -d .venv ] || "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup.sh: please install these Debian packages (fonts for synthetic handwriting, Tesseract, npm," >&2
    echo "python3-venv):" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt -e .
# Optional extras go here, each one line installing into .venv (e.g. a page-segmentation package).
.venv/bin/python -m data_prep.fonts fetch
