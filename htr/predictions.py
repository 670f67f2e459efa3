"""The predictions file that training, inference and the evaluation report share.

One row per image: ``image`` (absolute path, so the file can be opened from anywhere), ``label``
(empty when there is no reference), ``prediction``, ``cer`` (the row's CER in percent, empty
without a label), then any extra columns of the input CSV such as ``source`` or ``writer``, which
the report breaks the error rates down by.
"""

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from htr.metrics import row_cer

COLUMNS = ("image", "label", "prediction", "cer")


def write_predictions(
    path: str | Path, rows: Iterable[Mapping[str, str]], extra_columns: Iterable[str] = ()
) -> Path:
    """Write rows with ``image``, ``label``, ``prediction`` (+ ``extra_columns``), adding each row's CER."""
    path = Path(path)
    extra = [column for column in extra_columns if column not in COLUMNS]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            label = row.get("label") or ""
            cer = f"{row_cer(row['prediction'], label):.2f}" if label else ""
            writer.writerow({**row, "label": label, "cer": cer})
    return path


def read_predictions(path: str | Path) -> list[dict[str, str]]:
    """Read a predictions file back as a list of dicts (all values text).

    A file re-saved by a spreadsheet in another encoding is a ValueError with the conversion to run.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 (byte {error.start}: {error.object[error.start : error.start + 1]!r}); "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path} > fixed.csv"
        ) from None
