"""IAM Handwriting Database → ``english.csv`` at line or word level, from the official release or a Hub export.

Official release (FKI, https://fki.tic.heia-fr.ch/databases/iam-handwriting-database), read as the
files' own headers document them:

* ``ascii/lines.txt``: ``a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from``
  = line id, word-segmentation result (``ok``/``err``), graylevel, number of components, bounding
  box x y w h, then the transcription with ``|`` between tokens.
* ``ascii/words.txt``: ``a01-000u-00-00 ok 154 408 768 27 51 AT A`` = word id, segmentation result,
  graylevel, bounding box x y w h, grammatical tag, then the transcription. The header also lists a
  "number of components" field that the data lines do not have: the transcription is field 9 on.
* ``ascii/forms.txt``: ``a01-000u 000 2 prt 7 5 52 36`` = form id, writer id, ...; comment lines in
  all three files start with ``#``.
* Images: ``lines/a01/a01-000u/a01-000u-00.png`` and ``words/a01/a01-000u/a01-000u-00-00.png``.

Transcriptions are kept as published, tokens joined by one space: punctuation and split
contractions stand apart (``it , said``, ``he 's``) because that is the text IAM results are
scored against, and "fixing" it would make CER incomparable. The one rewrite: XML entities that
the ASCII files can carry over from the XML ground truth (``&quot;`` for ``"``; also ``&amp;``
``&lt;`` ``&gt;`` ``&apos;``) are decoded, because the label must be the character on the page.

``err`` rows are skipped unless ``--keep_err`` (counted either way). For *lines*, ``err`` only
says that the line's split into words failed; the line image and text are fine (lines.txt header),
so keep them when reproducing line-level benchmarks.

Writers come from forms.txt and are written as ``iam-<id>`` so they stay unique next to other
sources after merging. Splits come from ``--split_dir``, id lists with one form id
(``a01-000u``) or line id (``a01-000u-00``) per line; a row takes the split of the most specific
listed id it belongs to (word → line → form). Recognised files:

* ``train.uttlist`` / ``validation.uttlist`` / ``test.uttlist``: the RWTH Aachen writer-disjoint
  partition ("IAM-B"), split as named;
* ``trainset.txt`` → train, ``validationset1.txt`` and ``validationset2.txt`` → validation,
  ``testset.txt`` → test: the IAM "Large Writer Independent Text Line Recognition Task".

These benchmarks use only the listed ids, so with ``--split_dir`` unlisted rows are skipped
(counted). A Hub-style export (parquet files or an imagefolder, as the ``datasets`` library writes
them) is converted the same way: its images become PNG files and its split comes from the shard or
folder name (``train-00000-of-00001.parquet``, ``validation/metadata.jsonl``).
"""

import argparse
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageOps

from htr.core.text import normalize_text
from htr.data.dataset_csv import SPLIT_ALIASES, Row, relative_path, write_csv

SPLIT_FILES = {
    "train.uttlist": "train",
    "validation.uttlist": "validation",
    "test.uttlist": "test",
    "trainset.txt": "train",
    "validationset1.txt": "validation",
    "validationset2.txt": "validation",
    "testset.txt": "test",
}
_XML_ENTITIES = (("&quot;", '"'), ("&apos;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_TRANSCRIPTION_FIELD = 8  # lines.txt and words.txt data lines both have 8 fields before the text


@dataclass(frozen=True)
class Transcription:
    """One data line of lines.txt or words.txt."""

    item_id: str
    segmentation_ok: bool
    text: str


@dataclass
class IamStats:
    """What the official conversion wrote and skipped (``err`` rows are counted whether kept or not)."""

    written: int = 0
    err_rows: int = 0
    skipped_missing_image: int = 0
    skipped_unlisted: int = 0


def _data_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of every non-comment, non-blank line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip() and not line.startswith("#"):
                yield number, line.split()


def decode_entities(text: str) -> str:
    """Undo the XML escaping of IAM's ASCII ground truth (``&amp;`` last, so it is not decoded twice)."""
    for entity, character in _XML_ENTITIES:
        text = text.replace(entity, character)
    return text


def read_transcriptions(path: Path, level: str) -> list[Transcription]:
    """Parse lines.txt (``level="line"``, ``|`` separates tokens) or words.txt (``level="word"``)."""
    items = []
    for number, fields in _data_lines(path):
        if len(fields) <= _TRANSCRIPTION_FIELD:
            raise ValueError(f"{path}:{number}: expected at least 9 fields, got {len(fields)}: {fields}")
        text = " ".join(fields[_TRANSCRIPTION_FIELD:])
        if level == "line":
            text = text.replace("|", " ")
        items.append(Transcription(fields[0], fields[1] == "ok", normalize_text(decode_entities(text))))
    return items


def read_writers(forms_txt: Path) -> dict[str, str]:
    """Form id → writer id from forms.txt."""
    return {fields[0]: fields[1] for _, fields in _data_lines(forms_txt)}


def read_split_lists(split_dir: Path) -> dict[str, str]:
    """Listed id (form or line) → split, from the recognised files in ``split_dir``."""
    found = [split_dir / name for name in SPLIT_FILES if (split_dir / name).is_file()]
    if not found:
        raise FileNotFoundError(f"{split_dir} holds none of the split lists {sorted(SPLIT_FILES)}")
    splits: dict[str, str] = {}
    for path in found:
        split = SPLIT_FILES[path.name]
        for _, fields in _data_lines(path):
            if splits.setdefault(fields[0], split) != split:
                raise ValueError(f"{fields[0]} is listed in both {splits[fields[0]]} and {split} ({path})")
    return splits


def form_id(item_id: str) -> str:
    """``a01-000u-00-00`` → ``a01-000u``: forms (pages) carry the writer."""
    return "-".join(item_id.split("-")[:2])


def split_of(item_id: str, splits: dict[str, str]) -> str | None:
    """Split of the item itself, else of its line, else of its form; ``None`` if unlisted."""
    parts = item_id.split("-")
    for length in range(len(parts), 1, -1):
        split = splits.get("-".join(parts[:length]))
        if split is not None:
            return split
    return None


def image_path(iam_dir: Path, level: str, item_id: str) -> Path:
    """Where the official archives put the image of a line or word id."""
    return iam_dir / f"{level}s" / item_id.split("-")[0] / form_id(item_id) / f"{item_id}.png"


def convert_official(
    iam_dir: Path, out_dir: Path, level: str, split_dir: Path | None, keep_err: bool, source: str
) -> IamStats:
    """Write ``out_dir/english.csv`` for the official release; images stay where they are."""
    transcriptions = read_transcriptions(iam_dir / "ascii" / f"{level}s.txt", level)
    forms_txt = iam_dir / "ascii" / "forms.txt"
    writers = read_writers(forms_txt) if forms_txt.is_file() else {}
    splits = read_split_lists(split_dir) if split_dir is not None else None
    stats, rows = IamStats(), []
    for item in transcriptions:
        if not item.segmentation_ok:
            stats.err_rows += 1
            if not keep_err:
                continue
        split = split_of(item.item_id, splits) if splits is not None else ""
        if split is None:
            stats.skipped_unlisted += 1
            continue
        path = image_path(iam_dir, level, item.item_id)
        if not path.is_file():
            stats.skipped_missing_image += 1
            continue
        writer = writers.get(form_id(item.item_id))
        rows.append(
            {
                "image": relative_path(path, out_dir),
                "label": item.text,
                "source": source,
                "writer": f"iam-{writer}" if writer else "",
                "split": split,
            }
        )
    write_csv(out_dir / "english.csv", rows)
    stats.written = len(rows)
    if not writers:
        print(f"No {forms_txt}: the writer column is left empty")
    return stats


def _split_from_name(path: Path) -> str:
    """Split named by a shard (``train-00000-of-00001.parquet``) or its folder (``test/``), else ''."""
    for name in (path.stem.split("-")[0], path.parent.name):
        if name.lower() in SPLIT_ALIASES:
            return SPLIT_ALIASES[name.lower()]
    return ""


def _parquet_records(files: list[Path]) -> Iterator[tuple[str, bytes, str]]:
    """(split, image bytes, text) from parquet shards whose ``image`` is a datasets Image struct."""
    for path in files:
        split = _split_from_name(path)
        shard = pq.ParquetFile(path)
        missing = {"image", "text"} - set(shard.schema_arrow.names)
        if missing:
            raise ValueError(f"{path}: no column(s) {sorted(missing)}; has {shard.schema_arrow.names}")
        for batch in shard.iter_batches(batch_size=256, columns=["image", "text"]):
            for record in batch.to_pylist():
                image = record["image"]
                data = image["bytes"]
                if data is None:  # datasets stores only the path for images it did not embed
                    data = (path.parent / image["path"]).read_bytes()
                yield split, data, record["text"]


def _imagefolder_records(metadata_files: list[Path]) -> Iterator[tuple[str, bytes, str]]:
    """(split, image bytes, text) from imagefolder ``metadata.csv`` / ``metadata.jsonl`` files."""
    for path in metadata_files:
        split = _split_from_name(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if path.suffix == ".csv":
                entries = list(csv.DictReader(handle))
            else:
                entries = [json.loads(line) for line in handle if line.strip()]
        for entry in entries:
            yield split, (path.parent / entry["file_name"]).read_bytes(), entry["text"]


def hub_records(export: Path) -> Iterator[tuple[str, bytes, str]]:
    """(split, image bytes, text) from a parquet file, a folder of parquet shards, or an imagefolder."""
    if export.is_file():
        return _parquet_records([export])
    shards = sorted(export.rglob("*.parquet"))
    if shards:
        return _parquet_records(shards)
    metadata = sorted([*export.rglob("metadata.csv"), *export.rglob("metadata.jsonl")])
    if metadata:
        return _imagefolder_records(metadata)
    raise FileNotFoundError(f"{export}: no .parquet file and no imagefolder metadata.csv/metadata.jsonl")


def save_png(data: bytes, path: Path) -> None:
    """Decode image bytes and store them upright as PNG (grayscale and RGB kept, anything else → RGB)."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        if upright.mode not in ("L", "RGB"):
            upright = upright.convert("RGB")
        upright.save(path, format="PNG")


def convert_hub_export(export: Path, out_dir: Path, source: str) -> int:
    """Write every image of a Hub export to ``out_dir/images`` as PNG and list them in english.csv."""
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for index, (split, data, text) in enumerate(hub_records(export)):
        path = image_dir / f"{index:07d}.png"
        save_png(data, path)
        rows.append(
            {
                "image": relative_path(path, out_dir),
                "label": normalize_text(text or ""),
                "source": source,
                "split": split,
            }
        )
    write_csv(out_dir / "english.csv", rows)
    return len(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.iam",
        description="Convert the IAM Handwriting Database (official release or a Hub export) to english.csv.",
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--iam_dir",
        type=Path,
        help="Official release: folder with ascii/lines.txt, ascii/words.txt, lines/, words/.",
    )
    given.add_argument(
        "--hub_export",
        type=Path,
        metavar="PATH",
        help="A parquet file, a folder of parquet shards (columns image, text) or an imagefolder with "
        "metadata.csv/metadata.jsonl (file_name, text). Images are written out as PNG.",
    )
    parser.add_argument(
        "--out_dir", type=Path, required=True, help="Where english.csv (and images/) are written."
    )
    parser.add_argument(
        "--level",
        choices=("line", "word"),
        default="line",
        help="Line or word images (official release; for --hub_export it only names the default source). "
        "Default: line.",
    )
    parser.add_argument(
        "--split_dir",
        type=Path,
        help="Folder with split id lists: train/validation/test.uttlist (Aachen) or trainset.txt, "
        "validationset1.txt, validationset2.txt, testset.txt. Unlisted rows are skipped.",
    )
    parser.add_argument(
        "--keep_err",
        action="store_true",
        help="Keep rows whose segmentation result is 'err' (skipped by default).",
    )
    parser.add_argument("--source", help="Value of the source column (default: iam-LEVEL).")
    args = parser.parse_args(argv)
    if args.hub_export is not None and (args.split_dir is not None or args.keep_err):
        parser.error("--split_dir and --keep_err apply to the official release (--iam_dir) only")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    source = args.source or f"iam-{args.level}"
    if args.hub_export is not None:
        written = convert_hub_export(args.hub_export, args.out_dir, source)
        print(f"Wrote {written} rows and PNG images to {args.out_dir}")
        return
    stats = convert_official(args.iam_dir, args.out_dir, args.level, args.split_dir, args.keep_err, source)
    print(
        f"Wrote {stats.written} rows to {args.out_dir / 'english.csv'}. 'err' rows: {stats.err_rows} "
        f"({'kept' if args.keep_err else 'skipped'}). Skipped: {stats.skipped_missing_image} with a missing "
        f"image, {stats.skipped_unlisted} not in any split list."
    )


if __name__ == "__main__":
    main()
