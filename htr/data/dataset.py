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


def hold_out(dataset: Dataset, shares: dict[str, float], seed: int, writer_column: str | None) -> DatasetDict:
    """Hold out ``shares`` (split name -> percent of the rows) from ``dataset``; whole writers when it has a writer column.

    A writer seen in training makes held-out CER optimistic, so with a writer column the writers are shuffled
    (seeded) and moved, in the order of ``shares``, to each held-out split until it holds its share; without
    one, rows are drawn at random. Returns ``train`` and one split per share, no row in two of them.
    """
    shares = {name: percent for name, percent in shares.items() if percent > 0}
    by_writer = writer_column is not None and writer_column in dataset.column_names
    units = list(dataset[writer_column]) if by_writer else list(range(len(dataset)))
    counts: dict[Any, int] = {}
    for unit in units:
        counts[unit] = counts.get(unit, 0) + 1
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    assigned: dict[Any, str] = {}
    remaining = iter(order)
    for name, percent in shares.items():
        target, total = len(units) * percent / 100, 0
        while total < target and (unit := next(remaining, None)) is not None:
            assigned[unit] = name
            total += counts[unit]
    if len(assigned) == len(counts):
        kind = f"all {len(counts)} writers" if by_writer else f"all {len(counts)} rows"
        asked = ", ".join(f"{name}_split_percentage={percent:g}" for name, percent in shares.items())
        raise DataError(
            f"{asked} would hold out {kind}, leaving no training rows; lower the percentages or give "
            "--validation_file / --test_file"
        )
    rows: dict[str, list[int]] = {"train": [], **{name: [] for name in shares}}
    for index, unit in enumerate(units):
        rows[assigned.get(unit, "train")].append(index)
    for name in shares:
        held = {units[index] for index in rows[name]}
        logger.info(
            "Held out for %s: %d rows (%s)",
            name,
            len(rows[name]),
            f"{len(held)} writers, none in training" if by_writer else "drawn at random: no writer column",
        )
    return DatasetDict({name: dataset.select(indices) for name, indices in rows.items()})


def column_splits(values: Sequence[str], split_column: str, path: str | Path) -> list[str]:
    """The split each value of a split column names; a value that names none stops with the file and fix."""
    unknown = sorted({value for value in values if value.strip().lower() not in SPLIT_NAMES})
    if unknown:
        raise DataError(
            f"{path}: column '{split_column}' has values {unknown[:5]}; expected one of "
            f"{sorted(set(SPLIT_NAMES))}. Fix the values or set --split_column_name to another column"
        )
    return [SPLIT_NAMES[value.strip().lower()] for value in values]


def split_by_column(dataset: Dataset, split_column: str, path: str | Path) -> DatasetDict:
    """Divide a CSV that carries its own split column (as data_prep writes it) into its splits."""
    rows: dict[str, list[int]] = {}
    for index, name in enumerate(column_splits(dataset[split_column], split_column, path)):
        rows.setdefault(name, []).append(index)
    return DatasetDict({name: dataset.select(indices) for name, indices in rows.items()})


@dataclass(frozen=True)
class SplitPlan:
    """Where each split comes from, decided from the arguments and the CSV's text before anything is loaded.

    ``run_trocr.py`` checks its ``--do_*`` flags against the plan right after parsing (a ``--do_predict`` with
    no test split fails in a second, not after a 1.3 GB download), and :func:`load_splits` follows the same
    plan, so the check and the loading cannot disagree. A split comes from its own file, else from the train
    CSV's split column, else it is drawn from the training rows by writer when its percentage is above 0.
    """

    train_file: str | None
    validation_file: str | None
    test_file: str | None
    split_column: str
    writer_column: str
    in_column: tuple[str, ...]  # the splits that the train CSV's split column provides
    drawn: dict[str, float]  # split -> percent of the training rows held out for it
    by_writer: bool  # the train CSV has the writer column, so held-out splits are whole writers
    seed: int

    @classmethod
    def of(
        cls,
        train_file: str | None,
        validation_file: str | None,
        test_file: str | None,
        *,
        split_column: str,
        writer_column: str,
        validation_split_percentage: float,
        seed: int,
        test_split_percentage: float = 0.0,
    ) -> "SplitPlan":
        in_column: tuple[str, ...] = ()
        by_writer = False
        if train_file:
            table = read_table(train_file)  # the CSV's text only: no image is opened
            by_writer = writer_column in table.columns
            if split_column in table.columns:
                index = table.columns.index(split_column)
                values = [table.value(record, index) for record in table.rows]
                in_column = tuple(dict.fromkeys(column_splits(values, split_column, train_file)))
        given = (("validation", validation_file), ("test", test_file))
        have = set(in_column) | {name for name, path in given if path}
        if not train_file or (in_column and "train" not in in_column):
            drawn = {}
        else:
            wanted = (("test", test_split_percentage), ("validation", validation_split_percentage))
            drawn = {name: percent for name, percent in wanted if name not in have and percent > 0}
        return cls(
            train_file,
            validation_file,
            test_file,
            split_column,
            writer_column,
            in_column,
            drawn,
            by_writer,
            seed,
        )

    def available(self) -> set[str]:
        """The splits this plan yields."""
        named = {name for name, path in self.files().items() if path and name != "train"}
        trains = self.train_file and (not self.in_column or "train" in self.in_column)
        return named | set(self.in_column) | set(self.drawn) | ({"train"} if trains else set())

    def files(self) -> dict[str, str | None]:
        return {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}

    def describe(self) -> dict[str, str]:
        """Each split's set in words, for ``run_config.json`` and the model card."""
        described = {}
        for name in sorted(self.available(), key=("train", "validation", "test").index):
            if name != "train" and self.files()[name]:
                described[name] = str(self.files()[name])
            elif name in self.drawn:
                how = (
                    f"whole writers of column '{self.writer_column}'" if self.by_writer else "rows at random"
                )
                described[name] = (
                    f"{self.drawn[name]:g} % of {self.train_file} held out ({how}, seed {self.seed})"
                )
            elif self.in_column:
                described[name] = f"rows of {self.train_file} whose '{self.split_column}' is {name}"
            else:
                described[name] = str(self.train_file)
        return described


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
    plan: SplitPlan, read: Callable[[str], Dataset] = read_csv
) -> tuple[DatasetDict, dict[str, Path]]:
    """Load the train/validation/test splits as ``plan`` says, and the CSV each came from (image paths are
    relative to it)."""
    splits, sources = DatasetDict(), {}
    if plan.train_file:
        train = read(plan.train_file)
        parts = split_by_column(train, plan.split_column, plan.train_file) if plan.in_column else {}
        for name, part in (parts or {"train": train}).items():
            splits[name], sources[name] = part, Path(plan.train_file)
    for name in ("validation", "test"):
        if path := plan.files()[name]:
            splits[name], sources[name] = read(path), Path(path)
    if plan.drawn:
        held_out = hold_out(splits["train"], plan.drawn, plan.seed, plan.writer_column)
        for name, part in held_out.items():
            splits[name], sources[name] = part, Path(plan.train_file)
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
