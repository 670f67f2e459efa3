"""Is the per-line confidence of ``htr.inference.predict`` worth reading? AUROC and reliability on labelled predictions.

A confidence is useful when it ranks the lines that need a human look first: AUROC of (1 - confidence)
for "the line has at least one character error" (0.5 = no better than chance, 1 = perfect ranking).
Reliability: within bins of confidence, the share of lines that are exactly right; a calibrated score
has the two equal.

    python -m htr.inference.confidence predictions.csv [--plot reliability.png]
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from htr.core.metrics import row_cer
from htr.inference.predictions import CONFIDENCE_COLUMN, read_predictions


def line_errors(rows: Sequence[dict[str, str]]) -> np.ndarray:
    """1 where the prediction differs from the label by at least one character, for labelled rows."""
    return np.array([row_cer(row["prediction"], row["label"]) > 0 for row in rows], dtype=int)


def auroc(confidence: np.ndarray, has_error: np.ndarray) -> float:
    """Probability that a random wrong line scores below a random right one (ties count half)."""
    wrong, right = confidence[has_error == 1], confidence[has_error == 0]
    if not len(wrong) or not len(right):
        raise ValueError("AUROC needs both lines with and lines without errors")
    return float(mannwhitneyu(right, wrong).statistic / (len(right) * len(wrong)))


def reliability(
    confidence: np.ndarray, has_error: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int]]:
    """(mean confidence, share exactly right, lines) per equal-width confidence bin that has lines."""
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    return [
        (
            float(confidence[index == b].mean()),
            float(1 - has_error[index == b].mean()),
            int((index == b).sum()),
        )
        for b in range(bins)
        if (index == b).any()
    ]


def expected_calibration_error(table: Sequence[tuple[float, float, int]]) -> float:
    """Line-weighted mean |confidence - accuracy| over the reliability bins."""
    total = sum(count for _, _, count in table)
    return sum(count * abs(conf - acc) for conf, acc, count in table) / total


def plot_reliability(series: dict[str, Sequence[tuple[float, float, int]]], path: Path, title: str) -> Path:
    """One reliability curve per entry (e.g. before/after calibration) against the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfectly calibrated")
    for label, table in series.items():
        axis.plot([t[0] for t in table], [t[1] for t in table], marker="o", label=label)
    axis.set(
        xlabel="confidence (bin mean)",
        ylabel="share of lines exactly right",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def summarise(rows: Sequence[dict[str, str]]) -> dict[str, float]:
    labelled = [row for row in rows if row["label"]]
    confidence = np.array([float(row[CONFIDENCE_COLUMN]) for row in labelled])
    errors = line_errors(labelled)
    table = reliability(confidence, errors)
    return {
        "lines": len(labelled),
        "lines_with_errors": int(errors.sum()),
        "auroc": auroc(confidence, errors),
        "ece": expected_calibration_error(table),
        "mean_confidence": float(confidence.mean()),
        "exact_line_accuracy": float(1 - errors.mean()),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        prog="python -m htr.inference.confidence", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "predictions", type=Path, help="Predictions CSV from htr.inference.predict (with labels)."
    )
    parser.add_argument("--plot", type=Path, help="Write the reliability plot (.png) here.")
    args = parser.parse_args(argv)
    rows = read_predictions(args.predictions)
    if not rows or CONFIDENCE_COLUMN not in rows[0]:
        parser.error(
            f"{args.predictions}: no '{CONFIDENCE_COLUMN}' column; write it with python -m htr.inference.predict --output"
        )
    summary = summarise(rows)
    for key, value in summary.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    if args.plot:
        labelled = [row for row in rows if row["label"]]
        confidence = np.array([float(row[CONFIDENCE_COLUMN]) for row in labelled])
        table = reliability(confidence, line_errors(labelled))
        plot_reliability({"model": table}, args.plot, args.predictions.stem)
        print(f"Wrote {args.plot}")
    return summary


if __name__ == "__main__":
    main()
