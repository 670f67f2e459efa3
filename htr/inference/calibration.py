"""Temperature scaling of the per-line confidence, fitted on a validation set, stored beside the model.

    python -m htr.inference.predict outputs/my-model data/heldout/english.csv --calibrate

The confidence (``htr.inference.predict.Reading``) is exp(mean token log-probability). Temperature scaling divides
the token logits by one number T > 0 before the softmax: T > 1 softens an over-confident model, T < 1
sharpens an under-confident one; the argmax, hence the greedy text, does not change, and ``read_lines``
applies T to the scores only, so the text never changes with beam search either.

T is fitted by minimising the negative log-likelihood of "the line is exactly right" under the line's
confidence, over a grid of temperatures (``TEMPERATURES``). Why that objective and not the tokens'
correctness: what users read, and what the reliability plot and ECE check, is the line's score against
"do I need to fix this line?"; token correctness would need an alignment of predicted to reference tokens
that is undefined after an insertion or deletion. Why a grid: the confidence at every T comes out of the
one prediction pass (``Reading.grid``), so no logits need to be kept for an optimiser; a 6 % step in T
changes ECE in the third decimal.

Fit on validation data only (``data/heldout`` here); measure on a test set that never chose anything.
``calibration.json`` is copied into an ``htr.inference.export`` folder, and ``htr.inference.predict.load`` applies it for
both backends.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from htr.core.errors import HTRError
from htr.core.pipeline import CALIBRATION_FILE, stored_calibration
from htr.inference.confidence import line_errors, summarise
from htr.inference.predictions import CONFIDENCE_COLUMN

# 0.1 ... 10 in 81 log-spaced steps (ratio 1.059); 1.0 is the 41st.
TEMPERATURES = tuple(float(t) for t in np.logspace(-1, 1, 81))


class CalibrationError(HTRError, ValueError):
    """Rows a temperature cannot be fitted on: the model reads all of them right, or none."""


def line_nll(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Mean negative log-likelihood of the 0/1 outcomes ``correct`` under probabilities ``confidence``."""
    p = np.clip(confidence, 1e-6, 1 - 1e-6)
    return float(-np.mean(correct * np.log(p) + (1 - correct) * np.log(1 - p)))


def fit_temperature(grid: np.ndarray, correct: np.ndarray) -> float:
    """The temperature of ``TEMPERATURES`` whose confidences (``grid[:, i]``) have the lowest NLL."""
    losses = [line_nll(grid[:, index], correct) for index in range(grid.shape[1])]
    return TEMPERATURES[int(np.argmin(losses))]


def calibrate(
    model_dir: Path, rows: list[dict[str, str]], grids: Sequence[Sequence[float]], num_beams: int
) -> dict[str, Any]:
    """Fit T on the labelled ``rows``, write ``model_dir/calibration.json``, rescore ``rows`` in place.

    ``num_beams`` is the beam count the rows were read with; it is recorded, since a temperature fitted on
    greedy scores does not fit beam search's (:func:`beams_mismatch`).

    Returns what was written: the temperature and the AUROC/ECE before and after, on these rows.
    """
    labelled = [index for index, row in enumerate(rows) if row["label"]]
    grid = np.array([grids[index] for index in labelled])
    correct = 1 - line_errors([rows[index] for index in labelled])
    if correct.all() or not correct.any():
        raise CalibrationError(
            f"--calibrate: the model reads {int(correct.sum())} of these {len(correct)} labelled lines exactly "
            "right; a temperature is fitted on lines it gets right and lines it gets wrong, so give it a "
            "larger validation set (or train the model further first)"
        )
    before = summarise(rows)
    temperature = fit_temperature(grid, correct)
    column = TEMPERATURES.index(temperature)
    for row, values in zip(rows, grids, strict=True):
        row[CONFIDENCE_COLUMN] = f"{values[column]:.4f}"
    after = summarise(rows)
    record = {
        "temperature": temperature,
        "objective": "NLL of 'line exactly right' under exp(mean token log-prob of logits / T)",
        "lines": len(labelled),
        "num_beams": num_beams,
        "before": {key: before[key] for key in ("auroc", "ece", "mean_confidence", "exact_line_accuracy")},
        "after": {key: after[key] for key in ("auroc", "ece", "mean_confidence")},
        "nll_before": line_nll(grid[:, TEMPERATURES.index(1.0)], correct),
        "nll_after": line_nll(grid[:, column], correct),
    }
    path = model_dir / CALIBRATION_FILE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {**record, "path": path}


def fitted_beams(model: str | os.PathLike) -> int | None:
    """The beam count a model folder's or Hub repo's ``calibration.json`` was fitted at; None without one
    (or for a file from before the beams were recorded)."""
    return (stored_calibration(model) or {}).get("num_beams")


def beams_mismatch(fitted: int | None, num_beams: int) -> str | None:
    """Why a confidence read at ``num_beams`` is not calibrated by a fit at ``fitted``; None when it is."""
    if fitted is None or fitted == num_beams:
        return None
    return (
        f"{CALIBRATION_FILE} was fitted on scores read at num_beams={fitted}, this reading uses {num_beams}: "
        "the confidence is not calibrated for it. Read with --num_beams "
        f"{fitted}, or refit on the validation set: python -m htr.inference.predict MODEL VALIDATION.csv "
        f"--num_beams {num_beams} --calibrate"
    )
