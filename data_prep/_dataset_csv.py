"""The `english.csv` contract shared by every data_prep step: columns, split names, writing rows.

Each step writes the same columns so `data_prep.merge` (and training) can read any of them
unchanged; image paths are stored relative to the CSV's folder so a dataset folder can be moved
as a whole.
"""

import csv
import os
from pathlib import Path

from htr.text import SPLIT_NAMES

COLUMNS = ("image", "label", "source", "writer", "split")
REQUIRED = ("image", "label")
SPLITS = ("train", "validation", "test")
# Spellings of the three splits found in published datasets (shard names, file names): those training
# reads, plus "dev", which data_prep rewrites to "validation".
SPLIT_ALIASES = {**SPLIT_NAMES, "dev": "validation"}

Row = dict[str, str]


def relative_path(path: Path, csv_dir: Path) -> str:
    """``path`` relative to ``csv_dir`` with forward slashes, the form the CSV stores; absolute if outside.

    Training refuses relative paths that leave the CSV's folder through ``..`` (see htr.validation), so
    an image outside ``csv_dir`` is stored by its absolute path. Symlinks are not resolved: a dataset
    linked into place keeps pointing through the link.
    """
    relative = Path(os.path.relpath(path, csv_dir))
    if relative.parts and relative.parts[0] == os.pardir:
        return Path(os.path.abspath(path)).as_posix()
    return relative.as_posix()


def write_csv(path: Path, rows: list[Row]) -> None:
    """Write ``rows`` as UTF-8 CSV, creating the folder if needed.

    An optional column (source, writer, split) that is empty in every row is left out: training
    reads an all-empty writer column as a single writer and rejects an empty split value.
    """
    columns = [column for column in COLUMNS if column in REQUIRED or any(row.get(column) for row in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
