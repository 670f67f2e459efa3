"""Transcribe handwriting with a trained TrOCR: single images, folders of images, or a labelled CSV.

    python -m htr.inference.predict outputs/my-model scans/ page_017.png --output predictions.csv
    python -m htr.inference.predict outputs/my-model data/test.csv --num_beams 4   # labelled: prints CER/WER
    python -m htr.inference.predict outputs/my-model-onnx scans/ --backend onnx   # an htr.inference.export folder, onnxruntime
    python -m htr.inference.predict outputs/my-model data/heldout/english.csv --calibrate   # fit the confidence

MODEL is a ``run_trocr.py`` output dir or a Hub id (``microsoft/trocr-base-handwritten``). Folders are
searched recursively for images; a CSV is read like training's ``english.csv``, and when it has labels
the corpus-level CER/WER is printed at the end. One unreadable image is skipped with its reason rather
than stopping the run (a folder of scans usually holds a stray bad file), and the skips are counted and
listed at the end. ``--output`` writes the shared predictions file (``.csv``, the format
``predictions_test.csv`` and ``htr.evaluation.report`` use) or a JSON list of the same rows.

``--calibrate`` fits the confidence's temperature on the labelled rows (a validation set, never the test
set) and stores it in the model folder's ``calibration.json``; every later run reads it (see
``htr.inference.calibration``).

Python API: ``model, processor = load(name)`` then ``transcribe(model, processor, images)``, or
``collect(paths)`` + ``predict(...)`` for the CLI's skipping and bookkeeping.
"""

import argparse
import functools
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoProcessor, ProcessorMixin, VisionEncoderDecoderModel

from htr.core.errors import HTRError
from htr.core.images import (
    IMAGE_SUFFIXES,
    BadImageError,
    PixelLimitError,
    check_shape,
    open_image,
    pixel_limit,
    resolve_image_path,
)
from htr.core.metrics import decode, error_rates, row_cer
from htr.core.pipeline import line_confidences, stored_temperature
from htr.core.reading import LineReading
from htr.core.text import normalize_text
from htr.data.dataset_csv import SPLIT_NAMES, SPLITS
from htr.data.validation import DataValidationError, validate_csv
from htr.inference import calibration
from htr.inference.onnx_model import OnnxTrOCR, is_onnx_folder
from htr.inference.predictions import CONFIDENCE_COLUMN, write_predictions

logger = logging.getLogger(__name__)

# Used when a checkpoint's generation_config sets no max_length: generate() would stop at 20 tokens
# and cut every longer line; 128 is the recipes' max_target_length.
DEFAULT_MAX_LENGTH = 128
BACKENDS = ("torch", "onnx")
# What read_lines and friends accept: a PyTorch model or an htr.inference.export folder on onnxruntime.
Model = VisionEncoderDecoderModel | OnnxTrOCR


class InputError(HTRError, ValueError):
    """An input that cannot be used at all (missing path, CSV without the image column)."""


@dataclass(frozen=True)
class Item:
    """One image to transcribe; ``label`` and ``extra`` (other CSV columns) when it came from a CSV."""

    path: Path
    label: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    """What a prediction run produced: rows in the predictions-file layout, and the skipped images."""

    rows: list[dict[str, str]]
    skipped: list[BadImageError]
    extra_columns: list[str]
    seconds: float
    calibration: dict[str, Any] | None = None  # what --calibrate fitted and measured

    @property
    def metrics(self) -> dict[str, float] | None:
        """Corpus CER/WER (%) over the rows that have a reference; None when none has."""
        labelled = [row for row in self.rows if row["label"]]
        if not labelled:
            return None
        return error_rates([row["prediction"] for row in labelled], [row["label"] for row in labelled])


def resolve_device(device: str) -> torch.device:
    """``auto`` means the GPU when there is one: beam search over a test set is slow on CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _load_onnx(path: Path, device: str) -> tuple[OnnxTrOCR, ProcessorMixin]:
    """An ``htr.inference.export`` folder on onnxruntime's CPU provider, and the processor saved beside it."""
    if device not in ("auto", "cpu"):
        raise InputError(
            f"--backend onnx runs on the CPU here; drop --device {device} or use --backend torch"
        )
    return OnnxTrOCR(path), AutoProcessor.from_pretrained(path)


def load(
    model_name_or_path: str, device: str = "auto", backend: str = "torch"
) -> tuple[Model, ProcessorMixin]:
    """Load a TrOCR model (output dir or Hub id; an ``htr.inference.export`` folder with ``backend="onnx"``) and its
    processor, ready for ``generate()``, with the confidence temperature of its ``calibration.json``.

    A missing folder or a folder without weights/processor files is an InputError naming what is missing,
    not transformers' "Repo id must be in the form..." or a deep OSError; so is a folder of the other backend.
    """
    path = Path(model_name_or_path)
    if backend == "onnx" and not is_onnx_folder(path):
        raise InputError(
            f"{model_name_or_path} is not an htr.inference.export folder (no onnx_export.json): export it first with "
            f"`python -m htr.inference.export {model_name_or_path} OUT`, or drop --backend onnx to run it with PyTorch"
        )
    if backend == "torch" and is_onnx_folder(path):
        raise InputError(f"{model_name_or_path} is an ONNX export (htr.inference.export): add --backend onnx")
    if backend == "onnx":
        model, processor = _load_onnx(path, device)
    else:
        model, processor = _load_torch(model_name_or_path, device)
    if model.generation_config.max_length is None:
        logger.info("The model's generation_config sets no max_length: using %d tokens.", DEFAULT_MAX_LENGTH)
        model.generation_config.max_length = DEFAULT_MAX_LENGTH
    # Read by read_lines, so every caller (the page command, the demo) gets the calibrated confidence and
    # hears when it reads with other beams than the temperature was fitted at.
    model.confidence_temperature = stored_temperature(model_name_or_path)
    model.calibrated_beams = calibration.fitted_beams(model_name_or_path)
    return model, processor


def _load_torch(model_name_or_path: str, device: str) -> tuple[VisionEncoderDecoderModel, ProcessorMixin]:
    path = Path(model_name_or_path)
    looks_local = (
        path.is_absolute() or model_name_or_path.startswith(".") or model_name_or_path.count("/") > 1
    )
    if (looks_local or path.exists()) and not path.is_dir():
        raise InputError(
            f"{model_name_or_path}: no such model folder (a run_trocr.py output dir or a Hub id)"
        )
    try:
        processor = AutoProcessor.from_pretrained(model_name_or_path)
        model = VisionEncoderDecoderModel.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as error:
        if not path.is_dir():
            raise InputError(
                f"{model_name_or_path}: no such model folder, and loading it as a Hub id failed "
                f"({str(error).splitlines()[0]})"
            ) from None
        present = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise InputError(
            f"{model_name_or_path} is not a complete model folder ({str(error).splitlines()[0]}); it holds: "
            f"{present}. A run_trocr.py output dir has model.safetensors, config.json and the processor files "
            "(processor_config.json, tokenizer files): point at the run's output dir or a checkpoint-* in it"
        ) from None
    return model.to(resolve_device(device)).eval(), processor


@dataclass(frozen=True)
class Reading:
    """One transcribed line and its confidence: exp(mean log-probability of the emitted tokens).

    The mean (not the sum) so long lines are not penalised for their length; exp so it reads as a
    probability-like number in (0, 1] (the geometric mean of the token probabilities, EOS included).
    With beam search it is the chosen beam's own token log-probabilities, not the beam score. The
    log-probabilities are those of the logits divided by the model's calibrated temperature (1 without
    ``calibration.json``). ``grid``: the confidence at each of ``read_lines``' ``temperatures``, for fitting.
    """

    text: str
    confidence: float
    grid: tuple[float, ...] = ()


def read_lines(
    model: Model,
    processor: ProcessorMixin,
    images: Sequence[Image.Image],
    batch_size: int = 16,
    num_beams: int | None = None,
    max_length: int | None = None,
    temperatures: Sequence[float] = (),
) -> list[Reading]:
    """Batched ``generate()`` on RGB images with a confidence per line (see ``Reading``); either backend.

    ``num_beams`` and ``max_length`` override the model's generation_config, the one home of both defaults.
    """
    overrides = {"num_beams": num_beams, "max_length": max_length}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    temperature = getattr(model, "confidence_temperature", 1.0)
    if not temperatures:  # a fit (temperatures given) reads raw scores at whatever beams it is fitted at
        fitted = getattr(model, "calibrated_beams", None)
        if problem := calibration.beams_mismatch(fitted, num_beams or model.generation_config.num_beams or 1):
            _warn_once(problem)
    reading, size = LineReading.of(model.config), processor.image_processor.size
    readings: list[Reading] = []
    for start in range(0, len(images), batch_size):
        batch = [reading.line_image(image, size) for image in images[start : start + batch_size]]
        pixel_values = processor.image_processor(batch, return_tensors="pt").pixel_values
        with torch.inference_mode():
            output = model.generate(
                pixel_values.to(model.device, model.dtype),
                output_scores=True,
                return_dict_in_generate=True,
                **overrides,
            )
            confidences = line_confidences(model, output, temperature)
            grid = [line_confidences(model, output, value) for value in temperatures]
        texts = decode(output.sequences.cpu().numpy(), processor.tokenizer)
        readings += [
            Reading(normalize_text(text), confidence, tuple(column[index] for column in grid))
            for index, (text, confidence) in enumerate(zip(texts, confidences, strict=True))
        ]
    return readings


@functools.cache
def _warn_once(message: str) -> None:
    """A warning per process, not per batch, page or demo request."""
    logger.warning(message)


def transcribe(
    model: Model,
    processor: ProcessorMixin,
    images: Sequence[Image.Image],
    batch_size: int = 16,
    num_beams: int | None = None,
    max_length: int | None = None,
) -> list[str]:
    """Batched ``generate()`` on RGB images; ``num_beams``/``max_length`` override the generation_config."""
    return [
        reading.text for reading in read_lines(model, processor, images, batch_size, num_beams, max_length)
    ]


def _csv_items(
    path: Path, image_column: str, label_column: str
) -> tuple[list[Item], list[BadImageError], list[str]]:
    """Rows of a CSV checked by training's reader: the same errors, rows and fixes as ``run_trocr.py``.

    A file-level problem (encoding, quoting, columns) stops the run; a bad image is skipped and listed.
    """
    try:
        report = validate_csv(
            path, image_column=image_column, label_column=label_column, label_required=False
        )
    except DataValidationError as error:
        raise InputError(error.report.format("error")) from None
    if row_errors := [p for p in report.errors if p.column != image_column]:
        raise InputError(replace(report, problems=row_errors).format("error"))
    for warning in report.warnings:
        logger.warning("%s: %s", path, warning)
    bad_rows = {problem.row: problem for problem in report.errors}
    dataset = report.dataset()
    extra = [column for column in dataset.column_names if column not in (image_column, label_column)]
    items, skipped = [], []
    for row, record in enumerate(dataset):
        if problem := bad_rows.get(row):
            skipped.append(BadImageError(record[image_column], problem.message, problem.fix, problem.kind))
            continue
        image = resolve_image_path(record[image_column], path.parent)
        label = normalize_text(record.get(label_column) or "")
        items.append(Item(image.resolve(), label, {column: record[column] for column in extra}))
    return items, skipped, extra


def of_split(items: Sequence[Item], split: str) -> list[Item]:
    """The items whose CSV row is in ``split`` (any spelling training reads: ``val`` is ``validation``).

    So one ``english.csv`` with a split column serves as its validation set (``--calibrate``) and its test set.
    """
    kept = [item for item in items if SPLIT_NAMES.get(item.extra.get("split", "").strip().lower()) == split]
    if not kept:
        found = sorted({item.extra.get("split", "") for item in items})
        raise InputError(
            f"--split {split}: no input row is in that split (split column values: {found or 'no column'}); "
            "give a CSV whose split column names it, or leave --split out"
        )
    return kept


def collect(
    inputs: Iterable[str | Path], image_column: str = "image", label_column: str = "label"
) -> tuple[list[Item], list[BadImageError], list[str]]:
    """Expand image files, folders (recursive, sorted) and CSVs into items; return CSV extra columns too.

    A path that does not exist raises InputError: that is a typo on the command line, not a bad image
    among many to skip.
    """
    items: list[Item] = []
    skipped: list[BadImageError] = []
    extra_columns: list[str] = []
    for value in inputs:
        path = Path(value)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            items.extend(Item(p.resolve()) for p in sorted(found))
        elif path.suffix.lower() == ".csv" and path.is_file():
            csv_items, csv_skipped, csv_extra = _csv_items(path, image_column, label_column)
            items += csv_items
            skipped += csv_skipped
            extra_columns += [column for column in csv_extra if column not in extra_columns]
        elif path.exists():
            items.append(Item(path.resolve()))
        else:
            raise InputError(f"{path}: no such image, folder or CSV")
    return items, skipped, extra_columns


def predict(
    model: Model,
    processor: ProcessorMixin,
    items: Sequence[Item],
    batch_size: int = 16,
    num_beams: int | None = None,
    max_length: int | None = None,
    grids: list[tuple[float, ...]] | None = None,
) -> tuple[list[dict[str, str]], list[BadImageError]]:
    """Transcribe items batch by batch (only one batch of images in memory), skipping unreadable ones.

    ``grids``, when given, receives each row's confidences at ``calibration.TEMPERATURES`` (for fitting).
    """
    temperatures = calibration.TEMPERATURES if grids is not None else ()
    rows, skipped = [], []
    for start in range(0, len(items), batch_size):
        batch, images = [], []
        for item in items[start : start + batch_size]:
            try:
                image = open_image(item.path)
                check_shape(item.path, image.width, image.height, processor.image_processor)
            except BadImageError as error:
                logger.warning("Skipped %s", error)
                skipped.append(error)
                continue
            images.append(image)
            batch.append(item)
        readings = read_lines(model, processor, images, batch_size, num_beams, max_length, temperatures)
        if grids is not None:
            grids += [reading.grid for reading in readings]
        rows += [
            {
                **item.extra,
                "image": str(item.path),
                "label": item.label,
                "prediction": reading.text,
                CONFIDENCE_COLUMN: f"{reading.confidence:.4f}",
            }
            for item, reading in zip(batch, readings, strict=True)
        ]
    return rows, skipped


def write_json(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """The predictions-file rows as a JSON list, with ``cer`` a number (null without a label)."""
    records = [
        {
            **row,
            "cer": round(row_cer(row["prediction"], row["label"]), 2) if row["label"] else None,
            CONFIDENCE_COLUMN: float(row[CONFIDENCE_COLUMN]),
        }
        for row in rows
    ]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _print_table(rows: Sequence[dict[str, str]], width: int = 40) -> None:
    """The results at a glance in the terminal: file name, prediction, and reference + CER if any."""
    labelled = any(row["label"] for row in rows)
    lines = [["image", "prediction", *(["label", "cer %"] if labelled else [])]]
    for row in rows:
        line = [Path(row["image"]).name, row["prediction"]]
        if labelled:
            line += [row["label"], f"{row_cer(row['prediction'], row['label']):.1f}" if row["label"] else ""]
        lines.append([cell if len(cell) <= width else cell[: width - 1] + "…" for cell in line])
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    lines.insert(1, ["-" * w for w in widths])
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _check_writable(path: Path) -> None:
    """Fail before hours of transcription, not after them, when the output cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    existed = path.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:  # a run that then fails on its inputs leaves no empty file behind
            path.unlink()
    except OSError as error:
        raise InputError(
            f"--output {path}: cannot write there ({error.strerror}); choose a writable folder"
        ) from None


def run(args: argparse.Namespace) -> Result:
    """Load, collect, predict and write: the CLI without its printing, so tests and scripts reuse it."""
    pixel_limit()
    if args.output:
        _check_writable(args.output)
    items, skipped, extra_columns = collect(args.inputs, args.image_column, args.label_column)
    if args.split:
        items = of_split(items, args.split)
    if args.calibrate and not Path(args.model).is_dir():
        raise InputError(f"--calibrate writes {args.model}/calibration.json: MODEL must be a local folder")
    if args.calibrate and not any(item.label for item in items):
        raise InputError("--calibrate needs labelled rows: give the validation set's english.csv")
    model, processor = load(args.model, args.device, args.backend)
    grids: list[tuple[float, ...]] | None = None
    if args.calibrate:
        model.confidence_temperature = 1.0  # fit from the raw scores, not from an earlier fit
        grids = []
    start = time.perf_counter()
    rows, unreadable = predict(
        model, processor, items, args.batch_size, args.num_beams, args.max_length, grids
    )
    result = Result(rows, skipped + unreadable, extra_columns, time.perf_counter() - start)
    if grids is not None:
        num_beams = args.num_beams or model.generation_config.num_beams or 1
        result.calibration = calibration.calibrate(Path(args.model), rows, grids, num_beams)
    if args.output and args.output.suffix.lower() == ".json":
        write_json(args.output, rows)
    elif args.output:
        write_predictions(args.output, rows, [CONFIDENCE_COLUMN, *extra_columns])
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m htr.inference.predict",
        description="Transcribe handwriting images with a TrOCR model; score them when a CSV has labels.",
    )
    parser.add_argument("model", help="run_trocr.py output dir or Hub id (microsoft/trocr-base-handwritten).")
    parser.add_argument(
        "inputs", nargs="+", help="Image files, folders (searched recursively) and/or english.csv files."
    )
    parser.add_argument(
        "--output", type=Path, help="Write predictions to .csv (the shared predictions file) or .json."
    )
    parser.add_argument("--batch_size", type=int, default=16, help="Images per generate() call.")
    parser.add_argument(
        "--num_beams", type=int, help="1 = greedy, N = beam search (default: the model's generation_config)."
    )
    parser.add_argument(
        "--max_length", type=int, help="Longest output in tokens (default: the model's generation_config)."
    )
    parser.add_argument(
        "--image_column", "--image_column_name", default="image", help="CSV column with image paths."
    )
    parser.add_argument(
        "--label_column",
        "--label_column_name",
        default="label",
        help="CSV column with references (optional).",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (GPU if available).")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch: a run_trocr.py output dir or Hub id; onnx: a folder written by python -m htr.inference.export.",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="Only the CSV rows of this split (its split column), e.g. a validation split to --calibrate on.",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="Fit the confidence's temperature on these labelled rows (the validation set, not the test set) "
        "and store it in MODEL/calibration.json, which later runs apply; the output gets calibrated scores.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output and args.output.suffix.lower() not in (".csv", ".json"):
        parser.error(f"--output must end in .csv or .json, got {args.output}")
    try:
        result = run(args)
    except (InputError, PixelLimitError, calibration.CalibrationError) as error:
        parser.error(str(error))
    if args.output:
        print(f"Wrote {len(result.rows)} predictions to {args.output}")
    else:
        _print_table(result.rows)
    speed = len(result.rows) / result.seconds if result.seconds else 0.0
    print(f"Transcribed {len(result.rows)} images in {result.seconds:.1f} s ({speed:.1f} images/s).")
    metrics = result.metrics
    if metrics is not None:
        labelled = sum(1 for row in result.rows if row["label"])
        print(f"CER {metrics['cer']:.2f} %  WER {metrics['wer']:.2f} %  (corpus-level, {labelled} labelled)")
    if result.calibration:
        fit = result.calibration
        print(
            f"Calibration: temperature {fit['temperature']:.3f} written to {fit['path']}; on these "
            f"{fit['lines']} lines ECE {fit['before']['ece']:.4f} -> {fit['after']['ece']:.4f}, "
            f"AUROC {fit['before']['auroc']:.4f} -> {fit['after']['auroc']:.4f}"
        )
    if result.skipped:
        print(f"Skipped {len(result.skipped)} unusable image(s):")
        for error in result.skipped:
            print(f"  {error.path}: {error.reason}")
    return result


if __name__ == "__main__":
    main()
