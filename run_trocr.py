#!/usr/bin/env python
"""Fine-tune a TrOCR model (VisionEncoderDecoder) for handwritten text recognition.

    accelerate launch run_trocr.py recipes/iam_imgur.json [--field value ...]

A recipe (JSON) gives the arguments; anything on the command line overrides it. The data are
`english.csv` files (`image`, `label`); images are opened and processed batch by batch, never held
in memory. Evaluation decodes with `generate()` and reports corpus-level CER and WER in percent.
The steps follow transformers' example scripts: parse → log → checkpoint → model → data → train →
evaluate → predict → card/push.
"""

import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets
import torch
import transformers
from transformers import (
    AutoProcessor,
    HfArgumentParser,
    ProcessorMixin,
    Seq2SeqTrainingArguments,
    VisionEncoderDecoderModel,
    set_seed,
)
from transformers.training_args import ParallelMode

from htr.core.errors import HTRError
from htr.core.images import PixelLimitError, pixel_limit, resolve_image_path
from htr.core.metrics import build_compute_metrics, decode
from htr.core.pipeline import attach_pipeline
from htr.core.processing import attach_processor
from htr.core.reading import CROP_TO_INK, DESKEW, LineReading
from htr.core.text import normalize_text
from htr.data.augment import AugmentCurriculum, Augmenter
from htr.data.dataset import (
    DataError,
    ImageTextTransform,
    SplitPlan,
    TrOCRCollator,
    label_lengths,
    load_splits,
    order_by_difficulty,
)
from htr.data.validation import DataValidationError, validate_csv
from htr.hub.card import write_model_card
from htr.hub.publish import publish
from htr.inference.predictions import write_predictions
from htr.training.checkpoints import last_complete_checkpoint
from htr.training.modeling import fix_model_config
from htr.training.output_dir import explain_write_error, lock_output_dir, release
from htr.training.recipe import RecipeError, RunRecord, missing_inputs, parse_recipe_and_cli
from htr.training.trainer import LoggedEarlyStopping, TrOCRTrainer

logger = logging.getLogger("run_trocr")


@dataclass
class ModelArguments:
    """Which model and processor to fine-tune."""

    model_name_or_path: str = field(
        default="microsoft/trocr-base-handwritten",
        metadata={"help": "Hub id or local folder of a VisionEncoderDecoder (TrOCR) checkpoint."},
    )
    processor_name: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the processor, if not the model's own."}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where downloaded models are cached (default: the HF cache)."}
    )
    model_revision: str = field(
        default="main", metadata={"help": "Branch, tag or commit of the model on the Hub."}
    )
    freeze_encoder: bool = field(
        default=False,
        metadata={"help": "Train only the decoder (faster, less memory; helps with very little data)."},
    )
    crop_to_ink: bool | None = field(
        default=None,
        metadata={
            "help": "Cut every image (all splits) to its ink plus a small margin before resizing, so wide "
            "margins do not shrink the text; saved in the model's config, so predict, pages, the pipeline "
            "and the demo read the same way. true or false; default: the model's own setting (off for "
            "Microsoft's checkpoints, on for models/trocr-tiny-synthetic)."
        },
    )
    deskew: bool | None = field(
        default=None,
        metadata={
            "help": "Turn every image (all splits) so its line runs level (up to ±5°) before the ink crop: a "
            "tilted line is taller than its text, so the model would see it smaller. Saved in the model's "
            "config like crop_to_ink. true or false; default: the model's own setting."
        },
    )


@dataclass
class DataTrainingArguments:
    """Which data to train and evaluate on, and how to read and decode it."""

    train_file: str | None = field(
        default=None, metadata={"help": "Training CSV (`image`,`label`; optional `writer`, `split`)."}
    )
    validation_file: str | None = field(
        default=None,
        metadata={
            "help": "Validation CSV. Without it, validation comes from the train CSV's split column "
            "or a writer-disjoint hold-out of validation_split_percentage."
        },
    )
    test_file: str | None = field(default=None, metadata={"help": "Test CSV, scored by --do_predict."})
    image_column_name: str = field(default="image", metadata={"help": "CSV column with image paths."})
    label_column_name: str = field(default="label", metadata={"help": "CSV column with transcriptions."})
    writer_column_name: str = field(
        default="writer", metadata={"help": "CSV column naming the writer; keeps writers out of two splits."}
    )
    split_column_name: str = field(
        default="split", metadata={"help": "CSV column with train/validation/test, used when present."}
    )
    image_root: str | None = field(
        default=None,
        metadata={"help": "Folder that relative image paths start from (default: each CSV's own folder)."},
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Percent of the train CSV held out for validation when there is no validation "
            "file or split column (by writer when a writer column exists)."
        },
    )
    test_split_percentage: float = field(
        default=0.0,
        metadata={
            "help": "Percent of the train CSV held out as a test set, scored once by --do_predict and never "
            "chosen on, when there is no test file and no test rows in the split column (by writer when a "
            "writer column exists, with writers disjoint from validation's). 0: none."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (quick runs, debugging)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only N test rows."})
    max_target_length: int = field(
        default=128, metadata={"help": "Longest label in tokens; longer labels are truncated (and reported)."}
    )
    text_normalization: bool = field(
        default=True,
        metadata={"help": "Unicode NFC and whitespace collapse of labels before training and scoring."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "Name of the training data for the model card, e.g. 'IAM + Imgur5K'."}
    )
    dataset_ids: list[str] = field(
        default_factory=list, metadata={"help": "Hub dataset ids for the model card's metadata."}
    )
    data_credits: list[str] = field(
        default_factory=list,
        metadata={
            "help": "One line per source the card's data section must credit (name, licence, link), as "
            'CC-BY data requires, e.g. "Copiste d\'un jour (BAnQ), CC-BY 4.0, https://...".'
        },
    )
    language: str = field(default="en", metadata={"help": "Language code of the handwriting, for the card."})
    license: str = field(
        default="mit", metadata={"help": "Licence of the trained model, for the card (Hub id)."}
    )
    skip_invalid_rows: bool = field(
        default=False,
        metadata={
            "help": "Skip rows that fail validation (listed with the reason in invalid_rows_<split>.csv "
            "in output_dir) instead of stopping with the list of problems."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Threads for checking images before training (default: up to 8)."}
    )
    curriculum_column: str | None = field(
        default=None,
        metadata={
            "help": "Numeric column (e.g. `difficulty` from data_prep.synthetic): train easiest rows "
            "first, in that order every epoch, instead of shuffling."
        },
    )
    augment: str = field(
        default="none",
        metadata={
            "help": "Training-image augmentation, on the fly, training split only: `none`, `da2` (TrOCR's "
            "IAM set: one of rotate, blur, dilate, erode, downscale, underline, or none), `scan` (margins, "
            "ruled lines, slant, rotation, stroke width, contrast, tint, light, blur, JPEG, "
            "noise), or 'name:probability,...' from htr/data/augment.py's TRANSFORMS, e.g. 'rotate:0.5,blur:0.3'."
        },
    )
    augment_strength: float = field(
        default=1.0, metadata={"help": "Share of training images augmented (0-1)."}
    )
    augment_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "Curriculum: ramp augment_strength linearly from 0 (clean images) to its value over "
            "this many steps (0: full strength from the start)."
        },
    )

    def __post_init__(self) -> None:
        """Settings that cannot work together fail at parsing, before any model or data is loaded."""
        shares = {"validation": self.validation_split_percentage, "test": self.test_split_percentage}
        for name, percent in shares.items():
            if not 0 <= percent < 100:
                raise RecipeError(f"--{name}_split_percentage {percent:g} must be at least 0 and below 100")
        if sum(shares.values()) >= 100:
            raise RecipeError(
                f"--validation_split_percentage {shares['validation']:g} and --test_split_percentage "
                f"{shares['test']:g} hold out everything: together they must stay below 100"
            )


@dataclass
class TrOCRTrainingArguments(Seq2SeqTrainingArguments):
    """Seq2SeqTrainingArguments plus the resume switch the example scripts have (gone from v5's Trainer)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start training from scratch even if output_dir holds checkpoints (default: resume)."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop when metric_for_best_model (default cer) has not improved for this many "
            "evaluations; turns on load_best_model_at_end, so the best checkpoint is what is saved."
        },
    )
    early_stopping_threshold: float = field(
        default=0.0,
        metadata={
            "help": "Least improvement of the metric (CER points for cer) that counts for early stopping."
        },
    )


def adapt_training_args(
    training_args: TrOCRTrainingArguments, data_args: DataTrainingArguments
) -> tuple[TrOCRTrainingArguments, bool]:
    """Fix what a recipe cannot know or should not decide; return the arguments and the push flag.

    * fp16 only on CUDA: fp16 autocast on CPU is ~10x slower than fp32, so CPU runs train in fp32.
    * CER/WER need generated text, so evaluation always uses ``predict_with_generate``.
    * The transform turns image/label columns into pixel_values/labels: the Trainer must keep them.
    * The Trainer's push would upload the whole output dir; we publish an allowlist at the end instead.
    * A curriculum is an order, so the sampler must not shuffle it.
    * Early stopping needs the best model tracked: by CER (lower is better) unless the recipe says otherwise.
    """
    overrides: dict = {"remove_unused_columns": False, "push_to_hub": False}
    if training_args.fp16 and not torch.cuda.is_available():
        logger.warning(
            "fp16 was requested but there is no CUDA GPU: training in fp32 instead (fp16 on CPU crawls)."
        )
        overrides.update(fp16=False, fp16_full_eval=False)
    if not torch.cuda.is_available():
        overrides["dataloader_pin_memory"] = False
    if (training_args.do_eval or training_args.do_predict) and not training_args.predict_with_generate:
        logger.warning("predict_with_generate is off: turning it on, CER/WER need generated text.")
        overrides["predict_with_generate"] = True
    if data_args.curriculum_column:
        overrides["train_sampling_strategy"] = "sequential"
    if training_args.early_stopping_patience and not training_args.metric_for_best_model:
        overrides.update(metric_for_best_model="cer", greater_is_better=False)
    if training_args.early_stopping_patience:
        overrides["load_best_model_at_end"] = True
    overrides["generation_max_length"] = training_args.generation_max_length or data_args.max_target_length
    return replace(training_args, **overrides), training_args.push_to_hub


def user_message(error: Exception) -> str:
    """The one line a user needs from an error; a DataLoader worker's copied traceback is dropped."""
    text = str(error).strip()
    if "Original Traceback" in text:  # torch re-raises worker errors with the worker's traceback as text
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


class LaunchError(HTRError, RuntimeError):
    """A launch that would silently run N independent copies of the training."""


def read_validated_csv(
    path: str, split: str, data_args: DataTrainingArguments, processor: ProcessorMixin, output_dir: Path
) -> datasets.Dataset:
    """Validate one CSV and its images, then read it; invalid rows stop the run or, if asked, are skipped."""
    report = validate_csv(
        path,
        image_column=data_args.image_column_name,
        label_column=data_args.label_column_name,
        image_root=data_args.image_root,
        tokenizer=processor.tokenizer,
        image_processor=processor.image_processor,
        max_target_length=data_args.max_target_length,
        num_workers=data_args.preprocessing_num_workers,
    )
    if report.warnings:
        logger.warning(report.format("warning"))
    dataset = report.dataset()
    if report.errors:
        output_dir.mkdir(parents=True, exist_ok=True)
        listed = report.write_csv(output_dir / f"invalid_rows_{split}.csv")
        if not data_args.skip_invalid_rows:
            raise DataValidationError(report)
        logger.warning("%s; skipped, listed in %s", report.summary(), listed)
        dataset = dataset.select(report.valid_rows)
    return dataset


def plan_splits(data_args: DataTrainingArguments, training_args: TrOCRTrainingArguments) -> SplitPlan:
    """Where each split will come from, checked against the ``--do_*`` flags; a missing split stops the run
    here, from the CSV's text alone, not after the model is downloaded."""
    plan = SplitPlan.of(
        data_args.train_file,
        data_args.validation_file,
        data_args.test_file,
        split_column=data_args.split_column_name,
        writer_column=data_args.writer_column_name,
        validation_split_percentage=data_args.validation_split_percentage,
        test_split_percentage=data_args.test_split_percentage,
        seed=training_args.seed,
    )
    split_column = f"a '{data_args.split_column_name}' column in the train CSV with {{}} rows"
    needed = {
        "train": (training_args.do_train, "--do_train", "--train_file"),
        "validation": (
            training_args.do_eval,
            "--do_eval",
            f"--validation_file, {split_column.format('validation')}, or --validation_split_percentage 10",
        ),
        "test": (
            training_args.do_predict,
            "--do_predict",
            f"--test_file, {split_column.format('test')}, or --test_split_percentage 10 (or --do_predict false)",
        ),
    }
    available = plan.available()
    for name, (wanted, flag, source) in needed.items():
        if wanted and name not in available:
            raise RecipeError(f"{flag} needs a {name} split: give {source}.")
    return plan


def main(argv: list[str] | None = None) -> None:
    # 1. Parse the recipe and the command-line overrides.
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrOCRTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    recipe = argv[0] if argv and argv[0].endswith(".json") else None
    try:
        model_args, data_args, training_args = parse_recipe_and_cli(parser, argv)
        pixel_limit()  # a bad HTR_MAX_IMAGE_PIXELS fails here, in one line, not per image in a worker
    except (RecipeError, PixelLimitError) as error:
        parser.error(str(error))
    if training_args.max_steps == 0:
        parser.error(
            "--max_steps 0 would still take one optimizer step; give a positive number, or -1 for epochs"
        )
    inputs = [data_args.train_file if training_args.do_train else None, data_args.validation_file]
    inputs.append(data_args.test_file if training_args.do_predict else None)
    if recipe and (missing := missing_inputs(recipe, inputs, model_args.model_name_or_path)):
        raise RecipeError(missing)  # "data/smoke/english.csv does not exist; prepare with: ..."

    # 2. Logging: the main process logs at INFO, the others only warnings.
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()  # "passive" then means INFO on the main process
    log_level = training_args.get_process_log_level()
    for library_logger in (logger, logging.getLogger("htr")):
        library_logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    fp16_requested = training_args.fp16
    training_args, push_to_hub = adapt_training_args(training_args, data_args)
    logger.info("Training/evaluation parameters %s", training_args)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.parallel_mode != ParallelMode.DISTRIBUTED:
        raise LaunchError(
            f"{launched} processes were launched (WORLD_SIZE={launched}) but the Trainer is not distributed: "
            "each process would train on all the data and write the same output_dir. "
            + ("On CPU add --use_cpu true. " if not torch.cuda.is_available() else "")
            + "See the README's multi-process section for a working launch line."
        )

    # 3. Detect the last checkpoint to resume from.
    output_dir = Path(training_args.output_dir)
    if training_args.process_index == 0:
        lock_output_dir(output_dir)  # one run per output dir; a crashed run's lock is taken over
    last_checkpoint = None
    if output_dir.is_dir() and training_args.do_train:
        last_checkpoint = last_complete_checkpoint(output_dir)
        if last_checkpoint is not None and training_args.overwrite_output_dir:
            logger.warning(
                "overwrite_output_dir is set: starting from step 0, not from %s, which will be overwritten "
                "(set --overwrite_output_dir false to resume from it).",
                last_checkpoint,
            )
            last_checkpoint = None
        elif last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.info("Resuming from %s (use --overwrite_output_dir to start over).", last_checkpoint)

    # 4. Seed everything that samples. Decide where each split comes from, from the CSVs' text, and build the
    #    augmentation: a missing split, an unknown transform or a strength outside 0-1 stops here, before any
    #    model or image is loaded.
    set_seed(training_args.seed)
    plan = plan_splits(data_args, training_args)
    augmenter = Augmenter(data_args.augment, data_args.augment_strength, seed=training_args.seed)

    # 5. Load the processor and the model; make their token ids and generation settings agree.
    hub_kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    processor = AutoProcessor.from_pretrained(
        model_args.processor_name or model_args.model_name_or_path, **hub_kwargs
    )
    model = VisionEncoderDecoderModel.from_pretrained(model_args.model_name_or_path, **hub_kwargs)
    # The beam count's one home is the model's generation_config: a recipe's generation_num_beams overrides
    # it, evaluation uses it and the saved model keeps it, so predict, pages, the demo and the card decode
    # the way the run's scores were measured. run_config.json records the value used.
    num_beams = training_args.generation_num_beams or model.generation_config.num_beams or 1
    training_args.generation_num_beams = num_beams
    fix_model_config(model, processor.tokenizer, training_args.generation_max_length, num_beams)
    for key, value in ((DESKEW, model_args.deskew), (CROP_TO_INK, model_args.crop_to_ink)):
        if value is not None:
            setattr(model.config, key, value)
    reading = LineReading.of(model.config)
    logger.info(
        "Images are %sdeskewed and %scropped to their ink before resizing.",
        "" if reading.deskew else "not ",
        "" if reading.crop_to_ink else "not ",
    )
    if model_args.freeze_encoder:
        model.encoder.requires_grad_(False)

    # 6. Validate every CSV (all problems at once, with row and fix), load the splits, attach the transform.
    csv_files = {
        name: path
        for name, path in (
            ("train", data_args.train_file),
            ("validation", data_args.validation_file),
            ("test", data_args.test_file),
        )
        if path
    }
    checked: dict[str, datasets.Dataset] = {}
    invalid: list[DataValidationError] = []  # every bad file at once, not one per rerun
    for name, path in csv_files.items():
        if path not in checked:
            try:
                checked[path] = read_validated_csv(path, name, data_args, processor, output_dir)
            except DataValidationError as error:
                invalid.append(error)
    if len(invalid) == 1:
        raise invalid[0]
    if invalid:
        raise DataError("\n\n".join(str(error) for error in invalid))
    splits, sources = load_splits(plan, read=checked.__getitem__)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_predict_samples,
    }
    for name, limit in limits.items():
        if name in splits and limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    if data_args.curriculum_column and "train" in splits:
        splits["train"] = order_by_difficulty(splits["train"], data_args.curriculum_column, sources["train"])
        logger.info("Curriculum: training rows ordered by '%s', easiest first.", data_args.curriculum_column)
    model_inputs = {
        name: dataset.with_transform(
            ImageTextTransform(
                processor=processor,
                csv_dir=sources[name].parent,
                image_root=Path(data_args.image_root) if data_args.image_root else None,
                image_column=data_args.image_column_name,
                label_column=data_args.label_column_name,
                max_target_length=data_args.max_target_length,
                normalize=data_args.text_normalization,
                augment=augmenter if name == "train" else None,
                reading=reading,
            ),
            columns=[data_args.image_column_name, data_args.label_column_name],
        )
        for name, dataset in splits.items()
    }

    # 7. Build the trainer, with early stopping and the augmentation curriculum when asked.
    callbacks = []
    if training_args.early_stopping_patience:
        callbacks.append(
            LoggedEarlyStopping(training_args.early_stopping_patience, training_args.early_stopping_threshold)
        )
    if augmenter.pipeline is not None:
        logger.info("Augmentation '%s' on the training split only", data_args.augment)
        if data_args.augment_warmup_steps:
            callbacks.append(
                AugmentCurriculum(augmenter, data_args.augment_strength, data_args.augment_warmup_steps)
            )
    group_by_length = training_args.do_train and training_args.train_sampling_strategy == "group_by_length"
    trainer = TrOCRTrainer(
        model=model,
        args=training_args,
        train_dataset=model_inputs.get("train") if training_args.do_train else None,
        eval_dataset=model_inputs.get("validation") if training_args.do_eval else None,
        processing_class=processor,
        data_collator=TrOCRCollator(),
        compute_metrics=build_compute_metrics(processor.tokenizer, data_args.text_normalization),
        callbacks=callbacks,
        train_label_lengths=label_lengths(
            splits["train"], processor, data_args.label_column_name, data_args.text_normalization
        )
        if group_by_length
        else None,
    )
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        RunRecord.of(
            model_args,
            data_args,
            training_args,
            recipe=recipe,
            world_size=training_args.world_size,
            fp16_requested=fp16_requested,
            splits=plan.describe(),
        ).write(output_dir)

    # 8. Train; save the model with its processor, its image-to-text pipeline (htr/core/pipeline.py) and the
    # processor that reads lines the model's way (htr/core/processing.py).
    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or (
            str(last_checkpoint) if last_checkpoint else None
        )
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()  # also saves the processor
        if trainer.is_world_process_zero():
            attach_pipeline(output_dir)  # so that pipeline("image-to-text", model=output_dir) works
            attach_processor(output_dir)  # and AutoProcessor(..., trust_remote_code=True) reads the same way
        metrics = train_result.metrics
        metrics["train_samples"] = len(splits["train"])
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    # 9. Evaluate on the validation split with generate().
    if training_args.do_eval:
        logger.info(
            "*** Evaluate (%s) ***", "greedy" if num_beams == 1 else f"beam search, {num_beams} beams"
        )
        metrics = trainer.evaluate(metric_key_prefix="eval")
        metrics["eval_samples"] = len(splits["validation"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    # 10. Predict on the test split and write every prediction next to its reference.
    if training_args.do_predict:
        logger.info("*** Predict ***")
        results = trainer.predict(model_inputs["test"], metric_key_prefix="test")
        metrics = results.metrics
        metrics["test_samples"] = len(splits["test"])
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)
        if trainer.is_world_process_zero():
            test, image_root = splits["test"], data_args.image_root
            predictions = decode(results.predictions, processor.tokenizer)
            clean = normalize_text if data_args.text_normalization else str  # as trained and scored
            rows = (
                {
                    **row,
                    "image": str(
                        resolve_image_path(
                            row[data_args.image_column_name], sources["test"].parent, image_root
                        ).resolve()
                    ),
                    "label": clean(row[data_args.label_column_name]),
                    "prediction": clean(prediction),
                }
                for row, prediction in zip(test, predictions, strict=True)
            )
            extra = [
                c
                for c in test.column_names
                if c not in (data_args.image_column_name, data_args.label_column_name)
            ]
            write_predictions(
                output_dir / "predictions_test.csv", rows, extra, normalize=data_args.text_normalization
            )

    # 11. Write the model card, and publish what the user means to publish.
    if trainer.is_world_process_zero():
        if not training_args.do_train:
            trainer.save_model()  # an evaluation-only run still leaves a loadable, card-carrying folder
            attach_pipeline(output_dir)
            attach_processor(output_dir)
        write_model_card(output_dir)
        if push_to_hub:
            repo_id = training_args.hub_model_id or output_dir.name
            publish(
                output_dir,
                repo_id,
                private=bool(training_args.hub_private_repo),
                revision=training_args.hub_revision,
            )
    release(output_dir)


if __name__ == "__main__":
    try:
        main()
    except HTRError as error:
        # Problems the user can fix: one clear message (the model stays on disk), no deep traceback.
        sys.exit(f"error: {user_message(error)}")
    except (OSError, RuntimeError) as error:
        if (message := explain_write_error(error)) is None:  # disk full, read-only: one line; else re-raise
            raise
        sys.exit(f"error: {message}")
