"""Is the per-line confidence useful, and does temperature scaling calibrate it? AUROC, ECE, reliability.

    python benchmarks/reliability.py      # shipped tiny model; writes docs/reliability_*.png

For greedy and beam 4 separately: fit the temperature on data/heldout (the validation set: it chose the
models) exactly as ``htr.inference.predict --calibrate`` does (``htr.inference.calibration.calibrate``), into a copy of the
model folder; then read data/scan_test (a test set: nothing is fitted or chosen on it) once with the
original folder and once with the calibrated copy (``load`` applies its ``calibration.json``).
AUROC: of the confidence for "the line has >= 1 error"; ECE: |confidence - share exactly right| over
10 bins, line-weighted (``htr.inference.confidence``).
"""

import argparse
import copy
import shutil

from _common import CACHE, ROOT, print_table, start

from htr.inference import calibration
from htr.inference.confidence import line_errors, plot_reliability, reliability, summarise
from htr.inference.predict import collect, load, predict
from htr.inference.predictions import CONFIDENCE_COLUMN

TINY = ROOT / "models" / "trocr-tiny-synthetic"
SETS = {
    "heldout": ROOT / "data" / "heldout" / "english.csv",
    "scan_test": ROOT / "data" / "scan_test" / "english.csv",
}


def table(rows: list[dict[str, str]]) -> list[tuple[float, float, int]]:
    import numpy as np

    return reliability(np.array([float(row[CONFIDENCE_COLUMN]) for row in rows]), line_errors(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plots", default=str(ROOT / "docs"), help="Folder for reliability_*.png.")
    args = start(parser)
    results = []
    for beams, decoding in ((1, "greedy"), (4, "beam 4")):
        folder = CACHE / f"tiny-calibrated-beams{beams}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(TINY, folder)
        model, processor = load(str(folder), device="cpu")
        items, _, _ = collect([SETS["heldout"]])
        grids: list[tuple[float, ...]] = []
        rows, _ = predict(model, processor, items, num_beams=beams, grids=grids)
        before = copy.deepcopy(rows)
        fit = calibration.calibrate(folder, rows, grids, beams)
        curves = {"heldout": (before, rows)}
        items, _, _ = collect([SETS["scan_test"]])
        raw, _ = predict(*load(str(TINY), device="cpu"), items, num_beams=beams)
        calibrated, _ = predict(*load(str(folder), device="cpu"), items, num_beams=beams)
        curves["scan_test"] = (raw, calibrated)
        for name, (old, new) in curves.items():
            old_summary, new_summary = summarise(old), summarise(new)
            results.append(
                [
                    name + (" (fit)" if name == "heldout" else " (test)"),
                    decoding,
                    f"{fit['temperature']:.3f}",
                    f"{old_summary['lines']} ({old_summary['lines_with_errors']} wrong)",
                    f"{old_summary['auroc']:.3f} -> {new_summary['auroc']:.3f}",
                    f"{old_summary['ece']:.3f} -> {new_summary['ece']:.3f}",
                    f"{old_summary['mean_confidence']:.3f} -> {new_summary['mean_confidence']:.3f}",
                    f"{old_summary['exact_line_accuracy']:.3f}",
                ]
            )
            path = f"{args.plots}/reliability_{name}_{'greedy' if beams == 1 else 'beam4'}.png"
            plot_reliability(
                {"raw": table(old), f"T = {fit['temperature']:.2f}": table(new)},
                path,
                f"{TINY.name}, {name}, {decoding}",
            )
            print(results[-1], path, flush=True)
    print_table(
        "Confidence before -> after temperature scaling (fitted on data/heldout)",
        ["set", "decoding", "T", "lines", "AUROC", "ECE", "mean confidence", "lines exactly right"],
        results,
    )


if __name__ == "__main__":
    main()
