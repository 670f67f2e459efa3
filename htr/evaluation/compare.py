"""Is model B really better than model A on the same test set? A paired bootstrap over the rows.

    python -m htr.evaluation.compare outputs/before.csv outputs/quickstart     # A, then B: files or output dirs

A CER a few tenths of a point lower on 1,000 lines can be noise. Both inputs are predictions files (from
``run_trocr.py`` or ``htr.inference.predict``, or an output dir holding ``predictions_test.csv``) over the same images
with the same labels. The comparison draws the rows with replacement, scores both models on each draw (the
same rows for both: that pairing is what makes a small difference visible), recomputes each corpus-level
CER and WER, and reports the 95 % interval of B's gain over A. An interval that excludes 0 is a
measurable difference; one that straddles 0 is not, however the two point figures look.
"""

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np

from htr.core.text import normalize_text
from htr.inference.predictions import PredictionsError, load_inputs


@dataclass(frozen=True)
class Gain:
    """A's and B's corpus-level error rate (percent), B's gain (A - B, points) and its 95 % interval."""

    a: float
    b: float
    gain: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "B is measurably better"
        if self.high < 0:
            return "B is measurably worse"
        return "no measurable difference"


@dataclass(frozen=True)
class Comparison:
    rows: int
    cer: Gain
    wer: Gain
    better: int  # rows where B's CER is lower than A's
    worse: int


def paired_rows(
    a_rows: Sequence[dict[str, str]], b_rows: Sequence[dict[str, str]], a_name: str, b_name: str
) -> list[tuple[str, str, str]]:
    """``(label, A's prediction, B's prediction)`` per image, in A's order; both must cover the same labelled images."""
    b_by_image = {row["image"]: row for row in b_rows}
    only_a = [row["image"] for row in a_rows if row["image"] not in b_by_image]
    only_b = set(b_by_image) - {row["image"] for row in a_rows}
    if only_a or only_b:
        example = only_a[0] if only_a else sorted(only_b)[0]
        raise PredictionsError(
            f"{a_name} and {b_name} do not cover the same images ({len(only_a)} only in A, {len(only_b)} only "
            f"in B, e.g. {example}): predict both models on the same test CSV"
        )
    paired = []
    for number, row in enumerate(a_rows, start=2):  # line 1 is the header
        other = b_by_image[row["image"]]
        label = normalize_text(row["label"])
        if not label:
            raise PredictionsError(
                f"{a_name}, line {number}: {row['image']} has no label, so nothing to score"
            )
        if label != normalize_text(other["label"]):
            raise PredictionsError(
                f"{row['image']} has label {row['label']!r} in {a_name} but {other['label']!r} in {b_name}: "
                "the two runs were scored against different references"
            )
        paired.append((row["label"], row["prediction"], other["prediction"]))
    return paired


def _edits(references: Sequence[str], predictions: Sequence[str]) -> np.ndarray:
    """Per row: character edits, reference characters, word edits, reference words."""
    counts = []
    for reference, prediction in zip(references, predictions, strict=True):
        reference, prediction = normalize_text(reference), normalize_text(prediction)
        chars = jiwer.process_characters(reference, prediction)
        words = jiwer.process_words(reference, prediction)
        counts.append(
            (
                chars.substitutions + chars.deletions + chars.insertions,
                chars.hits + chars.substitutions + chars.deletions,
                words.substitutions + words.deletions + words.insertions,
                words.hits + words.substitutions + words.deletions,
            )
        )
    return np.array(counts, dtype=np.int64)


def _rate(edits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Corpus-level error rate in percent over the last axis (the rows)."""
    return 100 * edits.sum(axis=-1) / lengths.sum(axis=-1)


def _gain(a: np.ndarray, b: np.ndarray, draws: np.ndarray) -> Gain:
    """``a``/``b``: per-row (edits, reference length); ``draws``: resampled row indices, one draw per row."""
    rate_a, rate_b = float(_rate(a[:, 0], a[:, 1])), float(_rate(b[:, 0], b[:, 1]))
    gains = _rate(a[draws, 0], a[draws, 1]) - _rate(b[draws, 0], b[draws, 1])
    low, high = np.percentile(gains, [2.5, 97.5])
    return Gain(rate_a, rate_b, rate_a - rate_b, float(low), float(high))


def compare(rows: Sequence[tuple[str, str, str]], resamples: int = 5000, seed: int = 0) -> Comparison:
    """Corpus CER/WER of A and B on ``rows`` and the bootstrap interval of B's gain (fixed ``seed``)."""
    references = [label for label, _, _ in rows]
    a = _edits(references, [prediction for _, prediction, _ in rows])
    b = _edits(references, [prediction for _, _, prediction in rows])
    draws = np.random.default_rng(seed).integers(len(rows), size=(resamples, len(rows)))
    return Comparison(
        rows=len(rows),
        cer=_gain(a[:, :2], b[:, :2], draws),
        wer=_gain(a[:, 2:], b[:, 2:], draws),
        better=int((b[:, 0] < a[:, 0]).sum()),  # same reference, so fewer edits is a lower CER
        worse=int((b[:, 0] > a[:, 0]).sum()),
    )


def main(argv: Sequence[str] | None = None) -> Comparison:
    parser = argparse.ArgumentParser(
        prog="python -m htr.evaluation.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "a", type=Path, help="Predictions of model A (the baseline): a .csv or an output dir."
    )
    parser.add_argument("b", type=Path, help="Predictions of model B on the same images.")
    parser.add_argument("--resamples", type=int, default=5000, help="Bootstrap draws.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the draws, for a reproducible interval.")
    args = parser.parse_args(argv)
    try:
        rows = paired_rows(load_inputs(args.a)[0], load_inputs(args.b)[0], str(args.a), str(args.b))
    except PredictionsError as error:
        parser.error(str(error))
    result = compare(rows, args.resamples, args.seed)
    print(f"{result.rows} rows; A = {args.a}, B = {args.b}")
    for name, gain in (("CER", result.cer), ("WER", result.wer)):
        print(
            f"{name}: A {gain.a:.2f} %, B {gain.b:.2f} %, gain {gain.gain:+.2f} points "
            f"(95 % interval {gain.low:+.2f} to {gain.high:+.2f}): {gain.verdict}"
        )
    print(f"B reads {result.better} rows better and {result.worse} worse than A")
    return result


if __name__ == "__main__":
    main()
