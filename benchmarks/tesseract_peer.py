"""TrOCR against Tesseract 5 on the same held-out images: CER, WER and speed side by side.

    python benchmarks/tesseract_peer.py --model outputs/my-model --csv data/heldout.csv [--max_samples 500]

Tesseract is the free OCR engine people already have, built for print; on handwriting it shows what a
fine-tuned TrOCR is worth. Each image is read as one text line (``--psm 7 -l eng``), two Tesseract
processes at a time, each single-threaded (``OMP_THREAD_LIMIT=1``) so they do not fight over the cores.
Both engines get exactly the rows TrOCR could read, are scored with the same corpus-level CER/WER
(``htr.core.metrics.error_rates``), and their predictions are written in the shared predictions format, so
``python -m htr.evaluation.report`` works on either file. Speed is end to end (reading, preprocessing, decoding).
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from htr.core.metrics import error_rates
from htr.core.text import normalize_text
from htr.inference.predict import collect, load, predict
from htr.inference.predictions import write_predictions

logger = logging.getLogger("tesseract_peer")


def tesseract(binary: str, image: str) -> str:
    """One line image through the Tesseract CLI; a failure is logged and scored as an empty prediction."""
    result = subprocess.run(
        [binary, image, "stdout", "--psm", "7", "-l", "eng"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        timeout=120,
    )
    if result.returncode != 0:
        logger.warning("tesseract failed on %s: %s", image, result.stderr.strip())
        return ""
    return normalize_text(result.stdout)


def run_tesseract(binary: str, images: Sequence[str], workers: int) -> list[str]:
    """Threads are enough: each one only waits on its own tesseract process."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda image: tesseract(binary, image), images))


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="run_trocr.py output dir or Hub id.")
    parser.add_argument("--csv", required=True, type=Path, help="Held-out english.csv (image, label, ...).")
    parser.add_argument("--max_samples", type=int, help="Use only the first N rows.")
    parser.add_argument(
        "--output_dir",
        type=Path,
        help="Where to write both predictions files (default: MODEL/peer_tesseract).",
    )
    parser.add_argument("--batch_size", type=int, default=16, help="TrOCR images per generate() call.")
    parser.add_argument("--num_beams", type=int, help="TrOCR beams (default: the model's generation_config).")
    parser.add_argument("--workers", type=int, default=2, help="Tesseract processes at a time.")
    parser.add_argument("--device", default="auto", help="TrOCR device: cpu, cuda or auto.")
    args = parser.parse_args(argv)
    binary = shutil.which("tesseract")
    if binary is None:
        parser.error(
            "no `tesseract` on PATH: install Tesseract 5 (apt-get install tesseract-ocr, or bash setup.sh)"
        )
    output_dir = args.output_dir or (
        Path(args.model) / "peer_tesseract" if Path(args.model).is_dir() else Path("peer_tesseract")
    )

    items, skipped, extra_columns = collect([args.csv])
    items = [item for item in items[: args.max_samples] if item.label]
    if not items:
        parser.error(f"{args.csv} has no labelled rows to score")
    model, processor = load(args.model, args.device)
    start = time.perf_counter()
    trocr_rows, unreadable = predict(model, processor, items, args.batch_size, args.num_beams)
    trocr_seconds = time.perf_counter() - start
    start = time.perf_counter()
    texts = run_tesseract(binary, [row["image"] for row in trocr_rows], args.workers)
    tesseract_seconds = time.perf_counter() - start
    tesseract_rows = [{**row, "prediction": text} for row, text in zip(trocr_rows, texts, strict=True)]

    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    engines = {
        "TrOCR": (trocr_rows, trocr_seconds, "predictions_trocr.csv"),
        version.capitalize(): (tesseract_rows, tesseract_seconds, "predictions_tesseract.csv"),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (rows, seconds, file_name) in engines.items():
        write_predictions(output_dir / file_name, rows, extra_columns)
        rates = error_rates([row["prediction"] for row in rows], [row["label"] for row in rows])
        results[name] = {**rates, "images_per_second": len(rows) / seconds}
    (output_dir / "peer_results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"\n{len(trocr_rows)} held-out images from {args.csv} (model: {args.model})")
    print(f"{'engine':<18}{'CER %':>8}{'WER %':>8}{'images/s':>10}")
    for name, scores in results.items():
        print(f"{name:<18}{scores['cer']:>8.2f}{scores['wer']:>8.2f}{scores['images_per_second']:>10.1f}")
    if skipped or unreadable:
        print(f"Skipped {len(skipped) + len(unreadable)} unreadable image(s) for both engines.")
    print(f"Predictions: {output_dir / 'predictions_trocr.csv'}, {output_dir / 'predictions_tesseract.csv'}")
    return results


if __name__ == "__main__":
    main()
