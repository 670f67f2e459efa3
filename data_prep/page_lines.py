"""Transcribed pages (PAGE or ALTO XML beside their images) → ``english.csv`` line crops, and back.

For each XML file found under the inputs, every text line is cut out with ``htr.pages.linecrops``
(masked to its polygon, deskewed along its baseline) and written as a PNG; the rows then go
through ``data_prep.merge``, so the output folder gets the same cleaning report
(``data_report.md``) and ``dropped_rows.csv`` as any merged dataset (empty labels, unreadable
crops, duplicates).

* ``writer`` is the document (the XML file's name up to its first dot, e.g. ``Lettre243``), prefixed with
  ``--source``; a letter is one hand, and a hand must not sit in two splits.
* ``split`` is drawn per document (``--fractions`` train/validation/test, documents ordered by a
  hash of their name, so the draw does not depend on file order), or one split for all.
* ``--line_types`` keeps lines whose type (ALTO ``OtherTag`` label, PAGE ``custom`` structure
  type) matches one of the shell patterns, e.g. ``'*:Handwritten'``.
* ``--document_pattern`` names the document when one hand spans several files: the first match of the
  regular expression in the file name, e.g. ``'imp_wikitexte_[0-9]+'`` makes ``imp_wikitexte_0022_2.xml``
  part of document ``imp_wikitexte_0022``, so both pages of a text land in one split.
* ``--image_dir`` finds page images in another folder (an eScriptorium export's ``jpg/`` beside ``alto/``).
* ``--skip_text`` leaves out lines whose whole text matches a regular expression (a page id the writer
  copied at the top, say), and ``--crossed_out`` says what to do with struck text transcribed
  ``>word sequence<`` and unreadable text ``><``: ``keep`` the marks, ``strip`` the marked text, or
  ``skip`` the line (its ink is on the image, so a label without it teaches the model to drop words).

Lines left out before the merge are listed in ``skipped_lines.csv`` (XML file, line id, reason)
and counted: ``line_type`` (filtered out), ``duplicate_page`` (the page image is byte-identical
to one read earlier: the same photograph transcribed twice would put one line in the data twice,
possibly in two splits; the copy with most wanted lines is kept), ``bad_geometry`` (no usable polygon),
``skip_text`` and ``crossed_out``. ``lines.jsonl`` keeps each crop's
page, polygon, baseline and type so ``--to_page`` can rebuild PAGE XML from the CSV (with its
possibly corrected labels): import → edit labels → export keeps the geometry.
"""

import argparse
import csv
import fnmatch
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from data_prep.merge import DROPPED_NAME, REPORT_NAME, merge
from htr.core.images import open_image, resolve_image_path
from htr.data.dataset_csv import SPLITS, relative_path, write_csv
from htr.pages.layout import LayoutError, Line, Page, Region, read_layout, to_page_xml
from htr.pages.linecrops import CropError, crop_line

RAW_NAME = "lines_raw.csv"
GEOMETRY_NAME = "lines.jsonl"
SKIPPED_NAME = "skipped_lines.csv"
# Struck-through text as Copiste d'un jour (and many eScriptorium projects) transcribe it: ">word sequence<",
# and "><" for text struck out beyond reading.
CROSSED_OUT = re.compile(r">[^<>]*<")
CrossedOut = Literal["keep", "strip", "skip"]


@dataclass(frozen=True)
class Skipped:
    """A line left out before the merge, and why."""

    file: Path
    line: str
    reason: str
    detail: str = ""


def find_layout_files(inputs: list[Path]) -> list[Path]:
    """XML files given or found (recursively, sorted) under the given folders."""
    files = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.xml") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(
                f"error: {path}: no such file or folder (give PAGE/ALTO XML files or folders of them)"
            )
    if not files:
        raise SystemExit(f"error: no .xml files under {', '.join(map(str, inputs))}")
    return files


def document_name(path: Path, pattern: re.Pattern[str] | None = None) -> str:
    """The document a layout file transcribes: ``Lettre243.alto.xml`` → ``Lettre243``.

    With ``pattern``, its first match in the file name (``imp_wikitexte_0022_2.xml`` →
    ``imp_wikitexte_0022``); a name it does not match is an error, since guessing would split a hand.
    """
    if pattern is None:
        return path.name.split(".")[0]
    found = pattern.search(path.name)
    if not found:
        raise SystemExit(
            f"error: {path}: --document_pattern {pattern.pattern!r} does not match this file name "
            "(every file must name its document; widen the pattern)"
        )
    return found.group(0)


def line_label(text: str, crossed_out: CrossedOut) -> str | None:
    """The label to train on, or None to skip the line (``crossed_out='skip'`` and a mark in it)."""
    if crossed_out == "keep" or not CROSSED_OUT.search(text):
        return text
    if crossed_out == "skip":
        return None
    return " ".join(CROSSED_OUT.sub(" ", text).split())


def document_splits(documents: list[str], fractions: tuple[float, float, float]) -> dict[str, str]:
    """Split per document: documents ordered by SHA-1 of their name, cut by ``fractions`` (rounded)."""
    ordered = sorted(documents, key=lambda name: hashlib.sha1(name.encode()).hexdigest())
    total = sum(fractions)
    n_train = round(len(ordered) * fractions[0] / total)
    n_validation = round(len(ordered) * fractions[1] / total)
    splits = {}
    for index, name in enumerate(ordered):
        splits[name] = (
            "train" if index < n_train else "validation" if index < n_train + n_validation else "test"
        )
    return splits


def type_matches(line: Line, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(line.type, pattern) for pattern in patterns)


def import_pages(
    inputs: list[Path],
    output_dir: Path,
    source: str,
    line_types: list[str],
    split: str | None,
    fractions: tuple[float, float, float],
    workers: int = 1,
    document_pattern: re.Pattern[str] | None = None,
    image_dir: Path | None = None,
    skip_text: re.Pattern[str] | None = None,
    crossed_out: CrossedOut = "keep",
):
    """Cut the lines, write crops + ``lines_raw.csv`` + ``lines.jsonl``, then merge into ``english.csv``."""
    files = find_layout_files(inputs)
    pages: list[tuple[Path, Page]] = []
    skipped: list[Skipped] = []
    by_image: dict[str, list[tuple[Path, Page]]] = {}
    for path in files:
        try:
            page = read_layout(path)
        except LayoutError as error:
            raise SystemExit(f"error: {error}") from None
        if image_dir is not None:
            page.image = image_dir / page.image.name
        if not page.image.is_file():
            raise SystemExit(
                f"error: {path}: page image {page.image} not found (put the image beside the XML file, "
                "or give the folder that holds the images with --image_dir)"
            )
        by_image.setdefault(hashlib.sha1(page.image.read_bytes()).hexdigest(), []).append((path, page))
    for copies in by_image.values():
        # The same photograph transcribed twice: keep the fullest transcription of the wanted lines.
        kept = max(copies, key=lambda item: sum(type_matches(line, line_types) for line in item[1].lines))
        pages.append(kept)
        skipped += [
            Skipped(path, line.id, "duplicate_page", f"image identical to that of {kept[0]}, kept instead")
            for path, page in copies
            if path != kept[0]
            for line in page.lines
            if type_matches(line, line_types)
        ]
    documents = sorted({document_name(path, document_pattern) for path, _ in pages})
    splits = {name: split for name in documents} if split else document_splits(documents, fractions)
    rows, geometry = [], []
    for path, page in pages:
        image = open_image(page.image)  # as htr.pages.transcribe reads it: EXIF orientation applied
        document = document_name(path, document_pattern)
        for line in page.lines:
            if not type_matches(line, line_types):
                skipped.append(Skipped(path, line.id, "line_type", line.type or "(no type)"))
                continue
            if skip_text is not None and skip_text.fullmatch(line.text.strip()):
                skipped.append(Skipped(path, line.id, "skip_text", line.text))
                continue
            label = line_label(line.text, crossed_out)
            if label is None:
                skipped.append(Skipped(path, line.id, "crossed_out", line.text))
                continue
            try:
                crop = crop_line(image, line)
            except CropError as error:
                skipped.append(Skipped(path, line.id, "bad_geometry", str(error)))
                continue
            crop_path = output_dir / "images" / document / f"{line.id}.png"
            crop_path.parent.mkdir(parents=True, exist_ok=True)
            crop.save(crop_path)
            rows.append(
                {
                    "image": relative_path(crop_path, output_dir),
                    "label": label,
                    "source": source,
                    "writer": f"{source}-{document}",
                    "split": splits[document],
                }
            )
            geometry.append(
                {
                    "image": relative_path(crop_path, output_dir),
                    "layout": str(path.resolve()),
                    "page_image": str(page.image.resolve()),
                    "width": page.width,
                    "height": page.height,
                    "id": line.id,
                    "region": line.region,
                    "type": line.type,
                    "polygon": line.polygon,
                    "baseline": line.baseline,
                }
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    raw = output_dir / RAW_NAME
    write_csv(raw, rows)
    with (output_dir / GEOMETRY_NAME).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(item) + "\n" for item in geometry)
    with (output_dir / SKIPPED_NAME).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "line", "reason", "detail"])
        writer.writerows([item.file, item.line, item.reason, item.detail] for item in skipped)
    result = merge([raw], output_dir / "english.csv", workers=workers)
    return result, skipped, len(files)


def rebuild_pages(csv_path: Path) -> list[Page]:
    """Pages from an imported ``english.csv`` (its labels) and the ``lines.jsonl`` beside it (geometry)."""
    geometry_path = csv_path.parent / GEOMETRY_NAME
    if not geometry_path.is_file():
        raise SystemExit(
            f"error: {geometry_path} not found: --to_page needs a CSV written by data_prep.page_lines"
        )
    with csv_path.open(encoding="utf-8", newline="") as handle:
        labels = {
            str(resolve_image_path(row["image"], csv_path.parent)): row["label"]
            for row in csv.DictReader(handle)
        }
    pages: dict[str, Page] = {}
    for text in geometry_path.read_text(encoding="utf-8").splitlines():
        item = json.loads(text)
        key = str(resolve_image_path(item["image"], csv_path.parent))
        if key not in labels:  # dropped by the merge (empty label, duplicate): not in the dataset
            continue
        page = pages.setdefault(item["layout"], Page(Path(item["page_image"]), item["width"], item["height"]))
        if item["region"] and all(region.id != item["region"] for region in page.regions):
            page.regions.append(Region(item["region"]))
        page.lines.append(
            Line(
                id=item["id"],
                polygon=[tuple(point) for point in item["polygon"]],
                baseline=[tuple(point) for point in item["baseline"]],
                text=labels[key],
                type=item["type"],
                region=item["region"],
            )
        )
    return list(pages.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.page_lines",
        description="PAGE/ALTO pages → english.csv line crops (writer = document, split by document); "
        "or, with --to_page, an imported english.csv → PAGE XML.",
    )
    parser.add_argument(
        "inputs", type=Path, nargs="+", help="PAGE/ALTO XML files or folders (searched recursively)."
    )
    parser.add_argument(
        "--output_dir", type=Path, required=True, help="Folder for english.csv, crops and reports."
    )
    parser.add_argument(
        "--source", default="pages", help="Source name, also the writer prefix. Default: pages."
    )
    parser.add_argument(
        "--line_types",
        nargs="*",
        default=[],
        metavar="PATTERN",
        help="Keep only lines whose type matches a shell pattern, e.g. '*:Handwritten'. Default: all lines.",
    )
    parser.add_argument(
        "--document_pattern",
        type=re.compile,
        metavar="REGEX",
        help="The document (and so the writer) is the first match of this regular expression in the file "
        "name, for hands that span several files, e.g. 'imp_wikitexte_[0-9]+'. Default: the name up to its "
        "first dot.",
    )
    parser.add_argument(
        "--image_dir",
        type=Path,
        help="Folder holding the page images, when they are not beside the XML files (e.g. an export's jpg/).",
    )
    parser.add_argument(
        "--skip_text",
        type=re.compile,
        metavar="REGEX",
        help="Leave out lines whose whole text matches, e.g. a page id copied at the top of each page.",
    )
    parser.add_argument(
        "--crossed_out",
        choices=["keep", "strip", "skip"],
        default="keep",
        help="Lines with struck text transcribed '>words<' (or unreadable '><'): keep the marks in the label, "
        "strip the marked text, or skip the line. Default: keep.",
    )
    parser.add_argument(
        "--split", choices=SPLITS, help="Put every row in this split instead of drawing per document."
    )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=(0.8, 0.1, 0.1),
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="Share of documents per split. Default: 0.8 0.1 0.1.",
    )
    parser.add_argument(
        "--to_page",
        action="store_true",
        help="Inputs are english.csv files written by this tool: write one PAGE XML per page into --output_dir.",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.to_page:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for csv_path in args.inputs:
            for page in rebuild_pages(csv_path):
                (args.output_dir / f"{page.image.stem}.xml").write_bytes(to_page_xml(page))
                print(f"Wrote {args.output_dir / (page.image.stem + '.xml')} ({len(page.lines)} lines)")
        return
    if min(args.fractions) < 0 or sum(args.fractions) <= 0:
        raise SystemExit("error: --fractions must be three non-negative numbers with a positive sum")
    result, skipped, n_files = import_pages(
        args.inputs,
        args.output_dir,
        args.source,
        args.line_types,
        args.split,
        tuple(args.fractions),
        document_pattern=args.document_pattern,
        image_dir=args.image_dir,
        skip_text=args.skip_text,
        crossed_out=args.crossed_out,
    )
    skips = Counter(item.reason for item in skipped)
    drops = Counter(item.reason for item in result.dropped)
    splits = Counter(record.split for record in result.kept)
    print(
        f"Read {n_files} XML files; skipped {len(skipped)} lines "
        f"({', '.join(f'{k} {v}' for k, v in sorted(skips.items())) or 'none'}; list: "
        f"{args.output_dir / SKIPPED_NAME}); merge dropped {len(result.dropped)} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(drops.items())) or 'none'}; list: {args.output_dir / DROPPED_NAME}). "
        f"Wrote {len(result.kept)} rows to {result.output_csv} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))}); report: {args.output_dir / REPORT_NAME}"
    )


if __name__ == "__main__":
    main()
