"""``python -m htr.pages MODEL scans/ --output_dir out``: the page transcriber, by its package's name.

The one command of this subpackage, typed from ``.venv-pages/bin/python`` (kraken lives there, so it has no
``htr-*`` console script); :mod:`htr.pages.transcribe` holds it.
"""

from htr.pages.transcribe import main

if __name__ == "__main__":
    main()
