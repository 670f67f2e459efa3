"""From `english.csv` files to training batches: loading, splitting, on-the-fly transforms, collation.

Images are never materialised: the datasets hold paths and labels only, and each batch is opened,
resized and tokenized when the DataLoader asks for it (``with_transform``), so memory does not grow
with the number of rows.
"""

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from PIL import Image
from transformers import PreTrainedTokenizerBase, ProcessorMixin

from htr.core.errors import HTRError
from htr.core.images import BadImageError, open_image, resolve_image_path
from htr.core.reading import LineReading
from htr.core.text import normalize_text
from htr.data.dataset_csv import SPLIT_NAMES, read_table

logger = logging.getLogger(__name__)


class DataError(HTRError, ValueError):
    """Data that cannot be split or ordered as asked, with the file and what to change."""


class DataPipelineError(HTRError, RuntimeError):
    """A row that failed while training, reported with its image path instead of a DataLoader traceback."""


def read_csv(path: str | Path) -> Dataset:
    """Read one CSV as a Dataset of its exact text, without validating it (``htr.data.validation`` does).

    ``run_trocr.py`` and ``htr.inference.predict`` take the Dataset from the validation report instead, built from
    the records it checked; this is the same reader (:mod:`htr.data.dataset_csv`) for files known to be clean.
    """
    return read_table(path).to_dataset()


def split_by_writer(dataset: Dataset, percentage: float, seed: int, writer_column: str | None) -> DatasetDict:
    """Hold out ``percentage`` % of the rows for validation; whole writers when a writer column exists.

    A writer seen in training makes validation CER optimistic, so with a writer column the split is
    by writer: writers are shuffled (seeded) and moved to validation until it holds the share asked.
    """
    if writer_column is None or writer_column not in dataset.column_names:
        parts = dataset.train_test_split(test_size=percentage / 100, seed=seed)
        return DatasetDict(train=parts["train"], validation=parts["test"])
    writers = dataset[writer_column]
    counts: dict[str, int] = {}
    for writer in writers:
        counts[writer] = counts.get(writer, 0) + 1
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    target, held_out, total = len(writers) * percentage / 100, set(), 0
    for writer in order:
        if total >= target:
            break
        held_out.add(writer)
        total += counts[writer]
    if len(held_out) == len(counts):
        raise DataError(
            f"validation_split_percentage={percentage} would put all {len(counts)} writers in validation; "
            "lower it or give a validation_file"
        )
    validation = [index for index, writer in enumerate(writers) if writer in held_out]
    train = [index for index, writer in enumerate(writers) if writer not in held_out]
    logger.info("Writer-disjoint split: %d writers / %d rows held out for validation", len(held_out), total)
    return DatasetDict(train=dataset.select(train), validation=dataset.select(validation))


def split_by_column(dataset: Dataset, split_column: str, path: str | Path) -> DatasetDict:
    """Divide a CSV that carries its own split column (as data_prep writes it) into its splits."""
    values = dataset[split_column]
    unknown = sorted({value for value in values if value.strip().lower() not in SPLIT_NAMES})
    if unknown:
        raise DataError(
            f"{path}: column '{split_column}' has values {unknown[:5]}; expected one of "
            f"{sorted(set(SPLIT_NAMES))}. Fix the values or set --split_column_name to another column"
        )
    rows: dict[str, list[int]] = {}
    for index, value in enumerate(values):
        rows.setdefault(SPLIT_NAMES[value.strip().lower()], []).append(index)
    return DatasetDict({name: dataset.select(indices) for name, indices in rows.items()})


@dataclass
class ImageTextTransform:
    """Turn a batch of CSV rows into model inputs: RGB pixel values and label token ids (unpadded).

    ``augment`` (training split only) changes each opened image before the processor resizes it; ``reading``
    (every split: it is how the model reads, see ``htr.core.reading.LineReading``) then deskews it and cuts it
    to its ink where the model's config says so.
    """

    processor: ProcessorMixin
    csv_dir: Path
    image_root: Path | None
    image_column: str
    label_column: str
    max_target_length: int
    normalize: bool
    augment: Callable[[Image.Image], Image.Image] | None = None
    reading: LineReading = field(default_factory=LineReading)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        images = []
        for value in batch[self.image_column]:
            path = resolve_image_path(value, self.csv_dir, self.image_root)
            try:
                image = open_image(path)
            except BadImageError as error:
                raise DataPipelineError(
                    f"Image '{value}' (resolved to {path}) became unusable during the run: {error.reason}. "
                    f"Fix: {error.fix}, then rerun: training resumes from the last checkpoint."
                ) from None
            if self.augment:
                image = self.augment(image)
            images.append(self.reading.line_image(image, self.processor.image_processor.size))
        texts = [normalize_text(text) if self.normalize else text for text in batch[self.label_column]]
        pixel_values = self.processor.image_processor(images, return_tensors="pt").pixel_values
        labels = self.processor.tokenizer(texts, truncation=True, max_length=self.max_target_length).input_ids
        return {"pixel_values": pixel_values, "labels": labels}


@dataclass
class TrOCRCollator:
    """Stack pixel values and pad labels to the longest in the batch with -100 (ignored by the loss).

    Padding to the batch's longest label rather than a fixed 128 keeps the decoder from running
    over padding: handwriting labels are mostly short words and lines.
    """

    label_pad_multiple: int | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(feature["labels"]) for feature in features)
        if self.label_pad_multiple:
            longest = -(-longest // self.label_pad_multiple) * self.label_pad_multiple
        labels = torch.full((len(features), longest), -100, dtype=torch.long)
        for row, feature in enumerate(features):
            labels[row, : len(feature["labels"])] = torch.as_tensor(feature["labels"])
        pixel_values = torch.stack([torch.as_tensor(feature["pixel_values"]) for feature in features])
        return {"pixel_values": pixel_values, "labels": labels}


def load_splits(
    train_file: str | None,
    validation_file: str | None,
    test_file: str | None,
    *,
    split_column: str,
    writer_column: str,
    validation_split_percentage: float,
    seed: int,
    read: Callable[[str], Dataset] = read_csv,
) -> tuple[DatasetDict, dict[str, Path]]:
    """Load the train/validation/test splits and the CSV each came from (image paths are relative to it).

    A train CSV with a split column (as ``data_prep`` writes it) is divided by it; explicit
    validation/test files take precedence. Without any validation rows, a writer-disjoint (or
    random) share of the training rows is held out.
    """
    splits, sources = DatasetDict(), {}
    if train_file:
        train = read(train_file)
        parts = split_by_column(train, split_column, train_file) if split_column in train.column_names else {}
        for name, part in (parts or {"train": train}).items():
            splits[name], sources[name] = part, Path(train_file)
    for name, path in (("validation", validation_file), ("test", test_file)):
        if path:
            splits[name], sources[name] = read(path), Path(path)
    if "train" in splits and "validation" not in splits and validation_split_percentage > 0:
        held_out = split_by_writer(splits["train"], validation_split_percentage, seed, writer_column)
        splits["train"], splits["validation"] = held_out["train"], held_out["validation"]
        sources["validation"] = sources["train"]
    return splits, sources


def label_lengths(
    dataset: Dataset, processor: ProcessorMixin, label_column: str, normalize: bool, chunk_size: int = 1000
) -> list[int]:
    """Token count of every label, from the text alone, for length-grouped batching.

    A chunk at a time, lengths only: the fast tokenizer's full output for every row at once holds
    about 4 KB a row (100k rows: +360 MiB that the process keeps and its DataLoader workers inherit).
    """
    lengths: list[int] = []
    for first in range(0, len(dataset), chunk_size):
        texts = dataset[first : first + chunk_size][label_column]
        texts = [normalize_text(text) if normalize else text for text in texts]
        lengths += token_lengths(texts, processor.tokenizer)
    return lengths


def token_lengths(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens per text, special tokens included: the length a label has in training."""
    return tokenizer(texts, return_attention_mask=False, return_length=True)["length"]


def order_by_difficulty(dataset: Dataset, column: str, path: str | Path) -> Dataset:
    """Sort rows easiest first by a numeric difficulty column, for curriculum training.

    The order is applied through an index mapping: no image is touched and nothing is copied.
    """
    if column not in dataset.column_names:
        raise DataError(
            f"{path}: no column '{column}' for the curriculum; columns are {dataset.column_names}"
        )
    scores = []
    for row, value in enumerate(dataset[column], start=1):
        try:
            scores.append(float(value))
        except ValueError:
            raise DataError(
                f"{path}: row {row} has {column}={value!r}, not a number. Fix the value or drop --curriculum_column"
            ) from None
    return dataset.select(sorted(range(len(scores)), key=scores.__getitem__))
