"""The predictions file that training, inference and the evaluation report share.

One row per image: ``image`` (absolute path, so the file can be opened from anywhere), ``label``
(empty when there is no reference), ``prediction``, ``cer`` (the row's CER in percent, empty
without a label), then any extra columns of the input CSV such as ``source`` or ``writer``, which
the report breaks the error rates down by.
"""

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from htr.core.errors import HTRError
from htr.core.metrics import row_cer

# The per-line score column that htr.inference.predict writes (see its ``Reading``) and calibration rescales.
CONFIDENCE_COLUMN = "confidence"

COLUMNS = ("image", "label", "prediction", "cer")
PREDICTIONS_FILE = "predictions_test.csv"  # what run_trocr.py writes into its output dir


class PredictionsError(HTRError, ValueError):
    """A predictions file or output dir that cannot be read as one, with what to do about it."""


def write_predictions(
    path: str | Path,
    rows: Iterable[Mapping[str, str]],
    extra_columns: Iterable[str] = (),
    normalize: bool = True,
) -> Path:
    """Write rows with ``image``, ``label``, ``prediction`` (+ ``extra_columns``), adding each row's CER.

    ``normalize`` is the run's ``text_normalization``: each row's CER is scored the way the run scores.
    """
    path = Path(path)
    extra = [column for column in extra_columns if column not in COLUMNS]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            label = row.get("label") or ""
            cer = f"{row_cer(row['prediction'], label, normalize):.2f}" if label else ""
            writer.writerow({**row, "label": label, "cer": cer})
    return path


def read_predictions(path: str | Path) -> list[dict[str, str]]:
    """Read a predictions file back as a list of dicts (all values text).

    A file re-saved by a spreadsheet in another encoding is a PredictionsError with the conversion to run.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))
    except UnicodeDecodeError as error:
        raise PredictionsError(
            f"{path} is not UTF-8 (byte {error.start}: {error.object[error.start : error.start + 1]!r}); "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path} > fixed.csv"
        ) from None


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_inputs(source: Path) -> tuple[list[dict[str, str]], dict[str, Any] | None, dict[str, Any] | None]:
    """Predictions rows, trainer_state and all_results from an output dir, or the rows of a predictions file."""
    if source.is_dir():
        predictions = source / PREDICTIONS_FILE
        if not predictions.is_file():
            raise PredictionsError(
                f"{source} has no {PREDICTIONS_FILE}: train with --do_predict and a --test_file, or write one "
                f"with python -m htr.inference.predict {source} TEST.csv --output {predictions}"
            )
        return (
            read_predictions(predictions),
            _read_json(source / "trainer_state.json"),
            _read_json(source / "all_results.json"),
        )
    if not source.is_file():
        raise PredictionsError(f"{source}: no such output dir or predictions file")
    rows = read_predictions(source)
    missing = {"image", "label", "prediction"} - set(rows[0] if rows else ())
    if missing:
        raise PredictionsError(
            f"{source} is not a predictions file: it lacks the column(s) {', '.join(sorted(missing))}"
        )
    return rows, None, None
