#!/usr/bin/env bash
# Install what the recipe needs: Debian fonts and Tesseract (listed in data_prep/apt-packages.txt), npm
# (unless Node.js already brings it), the pinned Python packages, and Google Fonts' handwriting fonts from
# the npm registry into data/fonts. Safe to rerun: it installs and fetches only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

mapfile -t packages < <(grep -v '^\s*#' data_prep/apt-packages.txt | grep -v '^\s*$')
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup.sh: please install these Debian packages (fonts for synthetic handwriting, Tesseract, npm):" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
  fi
fi
python3 -m pip install -q --root-user-action=ignore -r requirements.txt
python3 -m data_prep.fonts fetch
