"""Merge data_prep CSVs into one training ``english.csv``, clean it, and write ``data_report.md``.

Inputs are CSVs in the shared format (``image``, ``label``, optional ``source``, ``writer``,
``split``) from ``data_prep.iam``, ``data_prep.imgur5k`` or the synthetic generator. Image paths
are resolved against each input CSV's folder and rewritten relative to the output CSV's folder; a
row without ``source`` takes the name of its CSV's folder. Labels go through
``htr.core.text.normalize_text``.

Nothing is dropped silently: every removed row is listed in ``dropped_rows.csv`` beside the output
(input file, 1-based data row with the header not counted, reason, detail) and counted in the
report. Reasons:

* ``empty_label``: nothing left after normalisation;
* ``invalid_split``: a split value other than train / validation / test (``val``, ``valid``,
  ``dev`` are accepted as validation);
* ``missing_image``: the file does not exist;
* ``unreadable_image``: training would refuse it (``htr.core.images.inspect_image``: missing, empty, truncated,
  corrupt, too large; checked in a process pool);
* ``duplicate``: same normalised label *and* byte-identical image (SHA-1 of the file) as an
  earlier row, which covers the same file listed twice and copies of it under other names. The
  first occurrence in input order is kept. Same label on a different image is not a duplicate.

Labels longer than ``--max_target_length`` (characters, or tokens including special tokens with
``--tokenizer``, as training counts them before truncating) are kept and flagged in the report.

A writer in two splits makes validation/test CER optimistic, so one found among the rows that
survive cleaning stops the merge with the list of such writers, unless ``--fix_writer_leaks`` moves each to the split holding most of its rows
(ties: train, then validation, then test). Writer ids must therefore be unique across sources
(``data_prep.iam`` writes ``iam-<id>``). Training also needs a split on every row once any row
has one: rows without one are an error unless ``--default_split`` names it. ``writer`` and
``split`` columns that would be empty in every row are left out of the output.

The report lists rows per source and split, drops by reason, label-length statistics per source,
the character set (most frequent, rare, non-ASCII), flagged labels, and links three PNG plots
drawn with matplotlib's Agg canvas (no display needed).
"""

import argparse
import csv
import hashlib
import os
import statistics
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_prep._parallel import default_workers, parallel_map
from htr.core.errors import HTRError
from htr.core.images import BadImageError, inspect_image, resolve_image_path
from htr.core.text import normalize_text
from htr.data.dataset_csv import SPLIT_ALIASES, SPLITS, relative_path, write_csv

REPORT_NAME = "data_report.md"
DROPPED_NAME = "dropped_rows.csv"
PLOT_LENGTHS, PLOT_CHARS, PLOT_DROPPED = "label_lengths.png", "char_frequencies.png", "dropped_rows.png"
TOP_CHARS = 40
RARE_MAX_COUNT = 10
LISTED_LONG_LABELS = 50
LISTED_LEAKS = 20


class MergeError(HTRError, ValueError):
    """Input the merge will not guess about: writers in two splits, rows without a split."""


@dataclass
class Record:
    """One input row, with where it came from."""

    file: Path
    row: int  # 1-based data row, header not counted
    image: Path
    label: str
    source: str
    writer: str
    split: str


@dataclass(frozen=True)
class Dropped:
    """A row left out of the output, and why (listed in dropped_rows.csv)."""

    record: Record
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class WriterMove:
    """A writer found in several splits and the split all its rows were moved to."""

    writer: str
    rows_per_split: dict[str, int]
    target: str

    @property
    def moved_rows(self) -> int:
        return sum(self.rows_per_split.values()) - self.rows_per_split[self.target]


@dataclass
class MergeResult:
    """Everything the report needs; also what the tests check."""

    output_csv: Path
    kept: list[Record] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    rows_read: Counter[Path] = field(default_factory=Counter)
    default_split_rows: int = 0
    writer_moves: list[WriterMove] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    length_unit: str = "characters"
    max_target_length: int = 128

    @property
    def long_labels(self) -> list[tuple[Record, int]]:
        return [
            (record, n)
            for record, n in zip(self.kept, self.lengths, strict=True)
            if n > self.max_target_length
        ]


def read_inputs(paths: list[Path]) -> list[Record]:
    """All rows of all inputs, labels normalised, images as absolute paths, splits canonical if known."""
    records = []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"image", "label"} - set(reader.fieldnames or ())
            if missing:
                raise MergeError(f"{path}: no column(s) {sorted(missing)}; has {reader.fieldnames}")
            for number, row in enumerate(reader, start=1):
                split = (row.get("split") or "").strip()
                records.append(
                    Record(
                        file=path,
                        row=number,
                        image=Path(os.path.abspath(resolve_image_path(row["image"] or "", path.parent))),
                        label=normalize_text(row["label"] or ""),
                        source=(row.get("source") or "").strip() or path.resolve().parent.name,
                        writer=(row.get("writer") or "").strip(),
                        split=SPLIT_ALIASES.get(split.lower(), split),
                    )
                )
    return records


def cheap_check(record: Record) -> Dropped | None:
    """The checks that need no image decoding."""
    if not record.label:
        return Dropped(record, "empty_label")
    if record.split and record.split not in SPLITS:
        return Dropped(record, "invalid_split", f"split {record.split!r}")
    if not record.image.is_file():
        return Dropped(record, "missing_image")
    return None


def assign_default_split(records: list[Record], default_split: str | None) -> int:
    """Give rows without a split ``default_split`` when other rows have one; returns how many."""
    without = [record for record in records if not record.split]
    if not without or len(without) == len(records):
        return 0
    if default_split is None:
        files = Counter(str(record.file) for record in without)
        listing = ", ".join(f"{name} ({count} rows)" for name, count in files.most_common())
        raise MergeError(
            f"Some rows have a split and these have none: {listing}. Training needs one on every row: "
            "pass --default_split train|validation|test, or add a split column to those CSVs."
        )
    for record in without:
        record.split = default_split
    return len(without)


def resolve_writer_leaks(records: list[Record], fix: bool) -> list[WriterMove]:
    """Find writers with rows in several splits; raise, or move them to their majority split."""
    per_writer: dict[str, Counter[str]] = {}
    for record in records:
        if record.writer and record.split:
            per_writer.setdefault(record.writer, Counter())[record.split] += 1
    moves = [
        WriterMove(writer, dict(counts), max(SPLITS, key=lambda split: counts[split]))
        for writer, counts in sorted(per_writer.items())
        if len(counts) > 1
    ]
    if moves and not fix:
        listing = "; ".join(
            f"{move.writer} ({', '.join(f'{s} {n}' for s, n in move.rows_per_split.items())})"
            for move in moves[:LISTED_LEAKS]
        )
        more = f" and {len(moves) - LISTED_LEAKS} more" if len(moves) > LISTED_LEAKS else ""
        raise MergeError(
            f"{len(moves)} writer(s) appear in more than one split: {listing}{more}. "
            "Fix the inputs, or pass --fix_writer_leaks to move each writer to the split holding most of its rows."
        )
    targets = {move.writer: move.target for move in moves}
    for record in records:
        if record.writer in targets:
            record.split = targets[record.writer]
    return moves


def fingerprint(path: Path) -> tuple[str, str]:
    """(SHA-1 of the file, "") if training would open it (``htr.core.images.inspect_image``), else ("", why not)."""
    try:
        inspect_image(path)
        data = path.read_bytes()
    except (BadImageError, OSError) as error:
        return "", str(error.reason if isinstance(error, BadImageError) else error)
    return hashlib.sha1(data).hexdigest(), ""


def measured_lengths(labels: list[str], tokenizer: str | None) -> tuple[list[int], str]:
    """Length of each label in characters, or in tokens of ``tokenizer`` counted as training counts them."""
    if tokenizer is None:
        return [len(label) for label in labels], "characters"
    if not labels:
        return [], "tokens"
    from transformers import AutoTokenizer  # imported only when asked: it takes seconds

    from htr.data.dataset import token_lengths

    return token_lengths(labels, AutoTokenizer.from_pretrained(tokenizer)), "tokens"


def merge(
    inputs: list[Path],
    output_csv: Path,
    max_target_length: int = 128,
    tokenizer: str | None = None,
    fix_writer_leaks: bool = False,
    default_split: str | None = None,
    workers: int = 1,
) -> MergeResult:
    """Merge, clean and report; see the module docstring for the rules."""
    result = MergeResult(output_csv=output_csv, max_target_length=max_target_length)
    records = read_inputs(inputs)
    result.rows_read = Counter(dict.fromkeys(inputs, 0))
    result.rows_read.update(record.file for record in records)
    candidates = []
    for record in records:
        dropped = cheap_check(record)
        if dropped is None:
            candidates.append(record)
        else:
            result.dropped.append(dropped)
    first_seen: dict[tuple[str, str], Record] = {}
    for record, (digest, error) in zip(
        candidates, parallel_map(fingerprint, [record.image for record in candidates], workers), strict=True
    ):
        if error:
            result.dropped.append(Dropped(record, "unreadable_image", error))
            continue
        original = first_seen.setdefault((record.label, digest), record)
        if original is record:
            result.kept.append(record)
        else:
            detail = f"same label and identical image bytes as {original.file} row {original.row}"
            result.dropped.append(Dropped(record, "duplicate", detail))
    result.default_split_rows = assign_default_split(result.kept, default_split)
    result.writer_moves = resolve_writer_leaks(result.kept, fix_writer_leaks)
    result.lengths, result.length_unit = measured_lengths([record.label for record in result.kept], tokenizer)
    write_outputs(result)
    return result


def write_outputs(result: MergeResult) -> None:
    """The merged CSV, dropped_rows.csv, the plots and data_report.md, side by side."""
    out_dir = result.output_csv.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "image": relative_path(record.image, out_dir),
            "label": record.label,
            "source": record.source,
            "writer": record.writer,
            "split": record.split,
        }
        for record in result.kept
    ]
    write_csv(result.output_csv, rows)
    with (out_dir / DROPPED_NAME).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "reason", "detail", "image", "label"])
        order = {path: index for index, path in enumerate(result.rows_read)}
        for item in sorted(result.dropped, key=lambda item: (order[item.record.file], item.record.row)):
            record = item.record
            writer.writerow([record.file, record.row, item.reason, item.detail, record.image, record.label])
    lengths_by_source: dict[str, list[int]] = {}
    for record, length in zip(result.kept, result.lengths, strict=True):
        lengths_by_source.setdefault(record.source, []).append(length)
    characters = Counter(character for record in result.kept for character in record.label)
    reasons = Counter(item.reason for item in result.dropped)
    plot_label_lengths(
        lengths_by_source, result.length_unit, result.max_target_length, out_dir / PLOT_LENGTHS
    )
    plot_char_frequencies(characters, out_dir / PLOT_CHARS)
    plot_dropped(reasons, out_dir / PLOT_DROPPED)
    report = render_report(result, lengths_by_source, characters, reasons)
    (out_dir / REPORT_NAME).write_text(report, encoding="utf-8")


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def _tick_label(character: str) -> str:
    """A character as a plot label: visible space, and ``$`` not read as mathtext."""
    return {" ": "␣", "$": r"\$"}.get(character, character)


def plot_label_lengths(lengths_by_source: dict[str, list[int]], unit: str, limit: int, path: Path) -> None:
    """One histogram per source (sources differ by orders of magnitude in size), limit as a line."""
    sources = sorted(lengths_by_source) or ["(no rows)"]
    figure = Figure(figsize=(8, 1.2 + 1.8 * len(sources)), layout="constrained")
    axes = figure.subplots(len(sources), 1, sharex=True, squeeze=False)[:, 0]
    longest = max((max(lengths) for lengths in lengths_by_source.values()), default=0)
    step = max(1, -(-(max(longest, limit) + 1) // 60))
    for ax, source in zip(axes, sources, strict=True):
        ax.hist(lengths_by_source.get(source, []), bins=range(0, max(longest, limit) + step + 1, step))
        ax.axvline(limit, color="tab:red", linestyle="--", label=f"max_target_length={limit}")
        ax.set_ylabel("rows")
        ax.set_title(source, fontsize=10)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel(f"label length ({unit})")
    _save(figure, path)


def plot_char_frequencies(characters: Counter[str], path: Path) -> None:
    """Bar chart of the most frequent characters, log scale: frequencies span orders of magnitude."""
    top = characters.most_common(TOP_CHARS * 2)
    figure = Figure(figsize=(12, 4), layout="constrained")
    ax = figure.subplots()
    ax.bar(range(len(top)), [count for _, count in top], log=bool(top))
    ax.set_xticks(range(len(top)), [_tick_label(character) for character, _ in top])
    ax.set_ylabel("occurrences")
    ax.set_title(f"Most frequent characters ({len(top)} of {len(characters)})")
    with warnings.catch_warnings():  # a glyph missing from the plot font is no reason to stop
        warnings.simplefilter("ignore", UserWarning)
        _save(figure, path)


def plot_dropped(reasons: Counter[str], path: Path) -> None:
    figure = Figure(figsize=(6, 3), layout="constrained")
    ax = figure.subplots()
    names = sorted(reasons)
    ax.barh(names, [reasons[name] for name in names])
    ax.set_xlabel("rows")
    ax.set_title("Rows dropped by reason" if names else "Rows dropped by reason: none")
    _save(figure, path)


def _md_char(character: str) -> str:
    """A character for a markdown table cell: letters and digits as is, the rest as an HTML entity."""
    if character == " ":
        return "(space)"
    return character if character.isalnum() else f"&#{ord(character)};"


def _char_rows(items: list[tuple[str, int]], total: int) -> list[str]:
    rows = ["| char | code point | count | share | name |", "| --- | --- | ---: | ---: | --- |"]
    for character, count in items:
        name = unicodedata.name(character, "")
        share = f"{100 * count / total:.3g}%"
        rows.append(f"| {_md_char(character)} | U+{ord(character):04X} | {count} | {share} | {name} |")
    return rows


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def render_report(
    result: MergeResult,
    lengths_by_source: dict[str, list[int]],
    characters: Counter[str],
    reasons: Counter[str],
) -> str:
    name = result.output_csv.name
    lines = [
        f"# Data report: {name}",
        "",
        f"{len(result.kept)} rows kept in `{name}`, {len(result.dropped)} dropped (each listed with its "
        f"input file and row in [`{DROPPED_NAME}`]({DROPPED_NAME})).",
        "",
        "## Inputs",
        "",
        "| input CSV | rows read | rows kept |",
        "| --- | ---: | ---: |",
    ]
    kept_per_file = Counter(record.file for record in result.kept)
    lines += [
        f"| {_md_cell(str(path))} | {count} | {kept_per_file[path]} |"
        for path, count in result.rows_read.items()
    ]

    split_columns = [*SPLITS, ""]
    per_source: dict[str, Counter[str]] = {}
    writers: dict[str, set[str]] = {}
    for record in result.kept:
        per_source.setdefault(record.source, Counter())[record.split] += 1
        writers.setdefault(record.source, set()).add(record.writer)
    lines += ["", "## Rows per source and split", ""]
    lines += [
        "| source | train | validation | test | no split | total | writers |",
        "| --- |" + " ---: |" * 6,
    ]
    for source in sorted(per_source):
        counts = per_source[source]
        cells = " | ".join(str(counts[split]) for split in split_columns)
        n_writers = len(writers[source] - {""})
        lines.append(f"| {_md_cell(source)} | {cells} | {sum(counts.values())} | {n_writers} |")
    totals = Counter(record.split for record in result.kept)
    cells = " | ".join(str(totals[split]) for split in split_columns)
    lines.append(
        f"| **all** | {cells} | {len(result.kept)} | {len({r.writer for r in result.kept} - {''})} |"
    )
    if result.default_split_rows:
        lines += ["", f"{result.default_split_rows} rows had no split and were given the default split."]

    lines += ["", "## Rows dropped by reason", "", "| reason | rows |", "| --- | ---: |"]
    lines += [f"| {reason} | {count} |" for reason, count in sorted(reasons.items())]
    lines += [f"| **total** | {len(result.dropped)} |", "", f"![Rows dropped by reason]({PLOT_DROPPED})"]

    lines += ["", "## Writer leaks", ""]
    if result.writer_moves:
        moved = sum(move.moved_rows for move in result.writer_moves)
        lines += [
            f"Writers found in more than one split: {len(result.writer_moves)}; rows moved to the writer's "
            f"majority split (--fix_writer_leaks): {moved}.",
            "",
            "| writer | rows per split before | moved to | rows moved |",
            "| --- | --- | --- | ---: |",
        ]
        for move in result.writer_moves:
            before = ", ".join(f"{split} {count}" for split, count in sorted(move.rows_per_split.items()))
            lines.append(f"| {_md_cell(move.writer)} | {before} | {move.target} | {move.moved_rows} |")
    else:
        lines.append("No writer appears in more than one split.")

    unit = result.length_unit
    lines += ["", f"## Label length ({unit})", ""]
    lines += ["| source | rows | min | mean | median | p95 | max |", "| --- |" + " ---: |" * 6]
    for source, lengths in sorted(lengths_by_source.items()):
        ordered = sorted(lengths)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        lines.append(
            f"| {_md_cell(source)} | {len(ordered)} | {ordered[0]} | {statistics.fmean(ordered):.1f} | "
            f"{statistics.median(ordered):g} | {p95} | {ordered[-1]} |"
        )
    lines += ["", f"![Label length per source]({PLOT_LENGTHS})"]

    long_labels = sorted(result.long_labels, key=lambda item: -item[1])
    lines += ["", f"## Labels longer than max_target_length = {result.max_target_length} {unit}", ""]
    lines.append(
        f"Labels flagged: {len(long_labels)} (kept; training truncates them to {result.max_target_length} {unit})."
    )
    if long_labels:
        shown = f" ({LISTED_LONG_LABELS} longest)" if len(long_labels) > LISTED_LONG_LABELS else ""
        lines += ["", f"| input CSV | row | length | label{shown} |", "| --- | ---: | ---: | --- |"]
        for record, length in long_labels[:LISTED_LONG_LABELS]:
            lines.append(
                f"| {_md_cell(str(record.file))} | {record.row} | {length} | {_md_cell(record.label)} |"
            )

    total = sum(characters.values())
    lines += ["", "## Character set", ""]
    lines.append(f"{len(characters)} distinct characters, {total} in all labels.")
    lines += [
        "",
        f"### Most frequent ({TOP_CHARS})",
        "",
        *_char_rows(characters.most_common(TOP_CHARS), total),
    ]
    lines += ["", f"![Character frequencies]({PLOT_CHARS})"]
    rare = sorted(
        (item for item in characters.items() if item[1] <= RARE_MAX_COUNT), key=lambda item: item[1]
    )
    lines += ["", f"### Rare (at most {RARE_MAX_COUNT} occurrences): {len(rare)}", ""]
    if rare:
        lines += _char_rows(rare, total)
    non_ascii = sorted((item for item in characters.items() if ord(item[0]) > 127), key=lambda item: -item[1])
    lines += ["", f"### Non-ASCII: {len(non_ascii)}", ""]
    if non_ascii:
        lines += _char_rows(non_ascii, total)
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.merge",
        description="Merge english.csv files, drop and list unusable rows, and write data_report.md beside the output.",
    )
    parser.add_argument(
        "output_csv",
        type=Path,
        metavar="OUTPUT_CSV",
        help="Merged CSV to write, e.g. data/english/english.csv.",
    )
    parser.add_argument(
        "inputs",
        type=Path,
        nargs="+",
        metavar="INPUT_CSV",
        help="Input CSVs (image, label[, source, writer, split]).",
    )
    parser.add_argument(
        "--max_target_length",
        type=int,
        default=128,
        help="Labels longer than this are flagged in the report (kept). Default: 128.",
    )
    parser.add_argument(
        "--tokenizer",
        type=lambda value: None if value.lower() == "none" else value,
        default=None,
        metavar="PATH_OR_NONE",
        help="Tokenizer folder (AutoTokenizer) to measure label length in tokens; 'none' (default): characters.",
    )
    parser.add_argument(
        "--fix_writer_leaks",
        action="store_true",
        help="Move a writer found in several splits to the split holding most of its rows instead of stopping.",
    )
    parser.add_argument(
        "--default_split",
        choices=SPLITS,
        help="Split for rows that have none when other rows have one (otherwise that is an error).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="Processes verifying images (default: all cores).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        result = merge(
            args.inputs,
            args.output_csv,
            args.max_target_length,
            args.tokenizer,
            args.fix_writer_leaks,
            args.default_split,
            args.workers,
        )
    except MergeError as error:
        raise SystemExit(f"error: {error}") from None
    reasons = Counter(item.reason for item in result.dropped)
    moved = sum(move.moved_rows for move in result.writer_moves)
    print(
        f"Wrote {len(result.kept)} rows to {args.output_csv}; dropped {len(result.dropped)} "
        f"({', '.join(f'{reason} {count}' for reason, count in sorted(reasons.items())) or 'none'}), "
        f"{len(result.long_labels)} long labels flagged, {moved} rows moved for writer leaks. "
        f"Report: {args.output_csv.parent / REPORT_NAME}"
    )


if __name__ == "__main__":
    main()
