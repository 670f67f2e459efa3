"""The model card (``README.md``) of a finished run, written from what the run recorded.

Everything on the card comes from the output dir (``run_config.json``, ``all_results.json``, the saved
processor), never from hand-edited text, so a card cannot claim hyperparameters or scores the run did not
have. The YAML header carries a ``model-index`` so the Hub shows CER/WER in its metrics widget.

    python -m htr.hub.card OUTPUT_DIR [--repo_id USER/NAME] [--print]
"""

import argparse
import json
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from htr.core.errors import HTRError
from htr.core.pipeline import pipeline_attached
from htr.core.processing import processor_attached
from htr.core.reading import LineReading
from htr.training.recipe import RunRecord

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).resolve().parent / "model_card.md"
TAGS = ["trocr", "handwriting", "ocr", "htr", "image-to-text"]
# Trainer metric prefix -> split name on the card and in the model-index.
SPLITS = {"eval": "validation", "test": "test"}
FRAMEWORKS = ("transformers", "torch", "datasets", "tokenizers")
LANGUAGE_NAMES = {"en": "English"}


class CardError(HTRError, ValueError):
    """An output dir the card cannot be written from, with what to do about it."""


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _number(value: float) -> str:
    """``10.0`` -> ``10``, ``5e-05`` stays ``5e-05``: hyperparameters as a person would write them."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _short_path(path: str) -> str:
    """``/home/me/data/iam/english.csv`` -> ``iam/english.csv``: tells the files apart without local paths."""
    file = Path(path)
    return f"{file.parent.name}/{file.name}" if file.parent.name else file.name


def _hub_id(name: str | None) -> str | None:
    """``name`` if it can be a Hub model id, else None: a local path in ``base_model`` fails Hub validation."""
    if not name or Path(name).exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def decoding_setup(num_beams: int | None) -> str:
    """How the scores were decoded; a beam-search CER is not comparable with a greedy one."""
    return f"beam {num_beams}" if num_beams and num_beams > 1 else "greedy"


def processor_image_size(output_dir: Path) -> tuple[str | None, bool]:
    """The input size as ``HxW``, and whether crops are fitted keeping their aspect ratio (then padded).

    Falls back to the encoder config's size (and a plain resize) when no processor config says more.
    """
    processor = _read_json(output_dir / "processor_config.json").get("image_processor") or _read_json(
        output_dir / "preprocessor_config.json"
    )
    size = processor.get("size") or {}
    if "max_height" in size and "max_width" in size:
        return f"{size['max_height']}×{size['max_width']}", bool(processor.get("do_pad"))
    if "height" in size and "width" in size:
        return f"{size['height']}×{size['width']}", False
    encoder_size = _read_json(output_dir / "config.json").get("encoder", {}).get("image_size")
    if isinstance(encoder_size, list):
        return f"{encoder_size[0]}×{encoder_size[1]}", False
    return (f"{encoder_size}×{encoder_size}" if encoder_size else None), False


def framework_versions() -> list[tuple[str, str]]:
    versions = []
    for name in FRAMEWORKS:
        try:
            versions.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return versions


def scores(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per split the run scored: split name, sample count, CER and WER in percent (None if absent)."""
    return [
        {
            "split": split,
            "samples": metrics.get(f"{prefix}_samples"),
            "cer": metrics.get(f"{prefix}_cer"),
            "wer": metrics.get(f"{prefix}_wer"),
        }
        for prefix, split in SPLITS.items()
        if f"{prefix}_cer" in metrics or f"{prefix}_wer" in metrics
    ]


def eval_results(
    rows: list[dict[str, Any]], dataset_names: dict[str, str], dataset_type: str, decoding: str
) -> list[EvalResult]:
    """A CER and a WER result per scored split, in percent, named with the decoding setup."""
    return [
        EvalResult(
            task_type="image-to-text",
            task_name="Handwritten text recognition",
            dataset_type=dataset_type,
            dataset_name=dataset_names[row["split"]],
            dataset_split=row["split"],
            metric_type=metric,
            metric_value=round(float(row[metric]), 2),
            metric_name=f"{row['split'].capitalize()} {metric.upper()} ({decoding})",
        )
        for row in rows
        for metric in ("cer", "wer")
        if row[metric] is not None
    ]


def _hyperparameters(run: RunRecord, image_size: str | None) -> list[tuple[str, str]]:
    """The settings that decide the result, as the run actually used them (effective batch included)."""
    model_args, data_args, training = run.model_args, run.data_args, run.training_args
    per_device = training.get("per_device_train_batch_size", 1)
    accumulation = training.get("gradient_accumulation_steps", 1)
    world_size = run.world_size
    precision = run.precision
    warmup = training.get("warmup_steps", 0)
    max_steps = training.get("max_steps", -1)
    rows = [
        ("Training steps", str(max_steps))
        if max_steps > 0
        else ("Epochs", _number(training["num_train_epochs"])),
        ("Learning rate", _number(training["learning_rate"])),
        (
            "Batch size",
            f"{per_device} per device × {accumulation} accumulation × {world_size} device(s) "
            f"= {per_device * accumulation * world_size} effective",
        ),
        ("Precision", precision),
        ("Optimizer", f"{training.get('optim')}, weight decay {_number(training.get('weight_decay', 0.0))}"),
        ("LR scheduler", training.get("lr_scheduler_type")),
        ("Warmup", f"{warmup:g} of the steps" if 0 < warmup < 1 else f"{warmup} steps"),
        ("Seed", training.get("seed")),
        ("Image size", f"{image_size} pixels (height × width)" if image_size else None),
        (
            "Max target length",
            f"{data_args['max_target_length']} tokens" if data_args.get("max_target_length") else None,
        ),
        ("Encoder", "frozen" if model_args.get("freeze_encoder") else "fine-tuned"),
    ]
    return [(name, str(value)) for name, value in rows if value is not None]


def build_model_card(output_dir: str | Path, repo_id: str | None = None) -> ModelCard:
    """The card of the run in ``output_dir``; ``repo_id`` names the model in the snippet and model-index.

    Without ``repo_id`` the run's ``hub_model_id`` is used, and failing that the local output dir, so the
    usage snippet always loads something that exists.
    """
    output_dir = Path(output_dir)
    try:
        run = RunRecord.read(output_dir)
    except (OSError, ValueError, KeyError, TypeError):
        raise CardError(
            f"{output_dir / RunRecord.FILE} is missing or has no training_args: point at the output dir of "
            "a finished `run_trocr.py` run."
        ) from None
    model_args, data_args, training = run.model_args, run.data_args, run.training_args
    results = scores(_read_json(output_dir / "all_results.json"))
    model_id = repo_id or training.get("hub_model_id") or str(output_dir)
    model_name = model_id.rstrip("/").split("/")[-1]

    files = {split: data_args.get(f"{split}_file") for split in ("train", "validation", "test")}
    data_files = [(split, _short_path(path)) for split, path in files.items() if path]
    dataset_name = data_args.get("dataset_name")
    dataset_ids = list(data_args.get("dataset_ids") or [])
    # Each figure names the set it was measured on: the test CSV, the validation CSV, or training's hold-out
    # as the run recorded it (runs recorded before the record had splits get the general wording).
    train = _short_path(files["train"]) if files["train"] else "the training data"
    dataset_names = {
        "train": dataset_name or (_short_path(files["train"]) if files["train"] else "training data"),
        "validation": _short_path(files["validation"])
        if files["validation"]
        else f"validation rows of {train} (its split column, or drawn by writer)",
        "test": _short_path(files["test"])
        if files["test"]
        else f"test rows of {train} (its split column, or drawn by writer)",
    }
    for split, described in run.splits.items():
        if split != "train" and not files.get(
            split
        ):  # held out from the training CSV: how, in the run's words
            dataset_names[split] = described.replace(str(files["train"]), train)
    # The beams the model decodes with (its generation_config, which run_trocr.py evaluated with).
    num_beams = _read_json(output_dir / "generation_config.json").get("num_beams")
    max_length = training.get("generation_max_length")
    decoding = decoding_setup(num_beams) + (f", max length {max_length}" if max_length else "")
    language = data_args.get("language") or "en"
    image_size, keeps_aspect = processor_image_size(output_dir)
    # The model-index wants a Hub dataset id; several datasets (or CSVs only) have none to name.
    dataset_type = dataset_ids[0] if len(dataset_ids) == 1 else "custom"

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-to-text",
        base_model=_hub_id(model_args.get("model_name_or_path")),
        datasets=dataset_ids or None,
        language=language,
        license=data_args.get("license") or "mit",
        tags=TAGS,
        model_name=model_name,
        eval_results=eval_results(results, dataset_names, dataset_type, decoding_setup(num_beams)) or None,
    )
    generate_kwargs = (f", num_beams={num_beams}" if num_beams and num_beams > 1 else "") + (
        f", max_length={max_length}" if max_length else ""
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_id=model_id,
        model_name=model_name,
        base_model_name=model_args.get("model_name_or_path"),
        language_name=LANGUAGE_NAMES.get(language, language),
        dataset_name=dataset_name,
        dataset_description=dataset_name or ", ".join(f"`{name}`" for _, name in data_files) or "custom data",
        data_files=data_files,
        data_credits=list(data_args.get("data_credits") or []),
        set_names=dataset_names,
        datasets=dataset_ids,
        text_normalization=data_args.get("text_normalization"),
        trained=bool(training.get("do_train")),
        hyperparameters=_hyperparameters(run, image_size),
        image_size=image_size,
        keeps_aspect=keeps_aspect,
        results=results,
        decoding=decoding,
        generate_kwargs=generate_kwargs,
        pipeline=pipeline_attached(output_dir),
        processor=processor_attached(output_dir),
        reading=LineReading.of(SimpleNamespace(**_read_json(output_dir / "config.json"))),
        generation_max_length=max_length,
        recipe=run.recipe,
        framework_versions=framework_versions(),
    )


def write_model_card(output_dir: str | Path, repo_id: str | None = None) -> Path:
    """Write ``output_dir/README.md`` (overwriting it) and return its path."""
    path = Path(output_dir) / "README.md"
    build_model_card(output_dir, repo_id).save(path)
    logger.info("Model card written to %s", path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write OUTPUT_DIR/README.md, the model card of a finished run."
    )
    parser.add_argument("output_dir", type=Path, help="Output dir of run_trocr.py.")
    parser.add_argument(
        "--repo_id", help="Hub id the card's usage snippet loads (default: the run's hub_model_id)."
    )
    parser.add_argument("--print", action="store_true", help="Also print the card to stdout.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = write_model_card(args.output_dir, args.repo_id)
    except CardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.print:
        print(path.read_text(encoding="utf-8"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
