#!/usr/bin/env bash
# Install what the recipe needs: Debian fonts, Tesseract and Chromium (listed in data_prep/apt-packages.txt), npm
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
    echo "setup.sh: please install these Debian packages (fonts for synthetic handwriting, Tesseract, Chromium, npm):" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
  fi
fi
if python3 -c 'import sys, sysconfig, pathlib; sys.exit(sys.prefix != sys.base_prefix or not (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file())'; then
  echo "setup.sh: $(command -v python3) is the system's Python, which refuses pip installs (PEP 668). Create and" >&2
  echo "  activate a virtual environment, then rerun: python3 -m venv .venv && . .venv/bin/activate && bash setup.sh" >&2
  exit 1
fi
python3 -m pip install -q --root-user-action=ignore -r requirements.txt -e .
python3 -m data_prep.fonts fetch

# --- Page path (issue #24): only with `bash setup.sh --pages`. kraken + PyPI's torch build in .venv-pages,
# which sees the packages above. A local "+cpu" torch build (as on the CI machine)
# cannot load PyPI's torchvision, so there PyPI's torch is installed into the venv past the local wheels.
if [ "${1:-}" = "--pages" ]; then
  [ -x .venv-pages/bin/python ] || python3 -m venv --system-site-packages .venv-pages
  # --system-site-packages sees the base Python's packages; when python3 is itself a virtual environment
  # (an activated .venv), its packages are where requirements.txt went: add them, .pth files included.
  if python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    main_site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    pages_site=$(.venv-pages/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$main_site')" > "$pages_site/htr-main-environment.pth"
  fi
  if ! .venv-pages/bin/python -c 'import kraken, torchvision' >/dev/null 2>&1; then
    extra=()
    if python3 -c 'import sys, torch; sys.exit("+" not in torch.__version__)' 2>/dev/null; then
      export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT=
      extra=(--ignore-installed torch==2.13.0)
    fi
    .venv-pages/bin/python -m pip install -q "${extra[@]}" -r requirements-pages.txt
    .venv-pages/bin/python -m pip install -q --no-deps kraken==7.1.1
  fi
fi
