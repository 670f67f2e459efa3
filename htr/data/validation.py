"""Check a training CSV and every image it names before training, so bad data fails in seconds with a
list of all problems (file, row, column, what is wrong, how to fix it) instead of hours later with a
traceback on the first one.

How ``run_trocr.py`` uses it::

    report = validate_csv(csv_path, image_column="image", label_column="label", image_root=None,
                          tokenizer=processor.tokenizer, max_target_length=128, num_workers=4)
    if report.warnings:
        logger.warning(report.format("warning"))
    dataset = report.dataset()  # built from the very records checked here
    if report.errors:
        if not args.skip_invalid_rows:
            raise DataValidationError(report)  # message = report.format("error")
        report.write_csv(output_dir / "invalid_rows_train.csv")
        logger.warning(report.summary())
        dataset = dataset.select(report.valid_rows)

``validate_csv`` itself raises :class:`DataValidationError` when the file as a whole is unusable — it
cannot be read, is not UTF-8, lacks a column, repeats one, has a row with more fields than the header,
or ends in an unclosed quote — because skipping rows cannot help there.

Numbering: "row N" is the 0-based data row, ``report.dataset()[N]`` (the header and blank lines are not
rows); "line N" is the 1-based line of the file where the row starts (a quoted newline in a label makes
a row span several lines). Both come from :mod:`htr.data.dataset_csv`, which reads the file once for the
checks and the Dataset alike, so they agree by construction.

Image checks run once per distinct file, in a thread pool: opening files waits on the disk and
Pillow's decoders release the GIL, and threads, unlike forked processes, are safe after torch and
the fast tokenizers have started their own threads. How deep an image is checked is documented in
:mod:`htr.core.images` (``full_decode=True`` decodes every image).
"""

import csv
import difflib
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from typing import Literal

from datasets import Dataset

from htr.core.errors import HTRError
from htr.core.images import (
    IMAGE_SUFFIXES,
    BadImageError,
    ImageInfo,
    check_shape,
    inspect_image,
    resolve_image_path,
)
from htr.core.text import normalize_text
from htr.data.dataset_csv import CSVFileError, Record, Table, read_table

Severity = Literal["error", "warning"]
Tokenizer = Callable[[list[str]], Mapping[str, Sequence[Sequence[int]]]]
"""Anything called like a Hugging Face tokenizer: ``tokenizer(texts)["input_ids"]``."""

_COLUMN_FLAGS = {"image": "--image_column_name", "label": "--label_column_name"}
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape turns undecodable bytes into


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data; ``row`` is None for problems with the file as a whole."""

    severity: Severity
    kind: str
    message: str
    fix: str
    row: int | None = None
    line: int | None = None
    column: str | None = None

    def location(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row} (line {self.line})")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        stop = "" if self.message.endswith(("?", ".", "!")) else "."
        return f"{where + ': ' if where else ''}{self.message}{stop} Fix: {self.fix}"


@dataclass
class ValidationReport:
    """Everything :func:`validate_csv` found; rows with an error are the ones to skip."""

    csv_path: Path
    n_rows: int
    columns: list[str]
    problems: list[Problem] = field(default_factory=list)
    fatal: bool = False  # the file as a whole is unusable; skipping rows cannot help
    table: Table | None = field(default=None, repr=False)  # the records checked; None if unparsable

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "warning"]

    @property
    def valid_rows(self) -> list[int]:
        """0-based indices of the rows without errors, ready for ``Dataset.select``."""
        bad = {problem.row for problem in self.errors}
        return [row for row in range(self.n_rows) if row not in bad]

    def dataset(self) -> Dataset:
        """The rows checked, as the Dataset training reads: built from these very records, so row N of
        this report is ``dataset()[N]``."""
        if self.table is None:  # the file could not be read into rows
            raise DataValidationError(self)
        return self.table.to_dataset()

    def summary(self) -> str:
        if self.fatal:
            return f"{self.csv_path}: cannot be used for training until the errors below are fixed"
        bad_rows = self.n_rows - len(self.valid_rows)
        return (
            f"{self.csv_path}: {self.n_rows} data rows, {len(self.errors)} errors "
            f"({bad_rows} rows unusable), {len(self.warnings)} warnings"
        )

    def format(self, severity: Severity | None = None, max_per_kind: int | None = 10) -> str:
        """Summary plus problems grouped by kind, at most ``max_per_kind`` listed per kind (None: all)."""
        out = [
            self.summary(),
            "(row = 0-based data row, the dataset index; line = line of the file, counted from 1)",
        ]
        for level in ("error", "warning"):
            if severity not in (None, level):
                continue
            by_kind: dict[str, list[Problem]] = {}
            for problem in self.problems:
                if problem.severity == level:
                    by_kind.setdefault(problem.kind, []).append(problem)
            for kind, problems in by_kind.items():
                out.append(f"{level} {kind} ({len(problems)}):")
                shown = problems if max_per_kind is None else problems[:max_per_kind]
                out.extend(f"  {problem}" for problem in shown)
                if len(problems) > len(shown):
                    out.append(f"  ... and {len(problems) - len(shown)} more {kind} {level}s")
        return "\n".join(out)

    def write_csv(self, path: str | Path) -> Path:
        """Write every error (one line per problem) so the skipped rows can be found and fixed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["row", "line", "column", "kind", "message", "fix"])
            for problem in self.errors:
                writer.writerow(
                    [problem.row, problem.line, problem.column, problem.kind, problem.message, problem.fix]
                )
        return path


class DataValidationError(HTRError, ValueError):
    """The data cannot be trained on as it is; the message lists every error with its fix."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(report.format("error"))


def _encoding_problems(table: Table) -> list[Problem]:
    """One error per record (the header included) holding bytes that are not UTF-8."""
    if not any(_NOT_UTF8.search(line) for line in table.lines):
        return []
    sizes = (len(line.encode("utf-8", "surrogateescape")) for line in table.lines)
    starts = list(accumulate(sizes, initial=table.bom_bytes))
    problems = []
    for index, record in enumerate([table.header, *table.rows]):
        for number in range(record.line, record.end_line + 1):
            line = table.lines[number - 1]
            if match := _NOT_UTF8.search(line):
                at = match.start()
                offset = starts[number - 1] + len(line[:at].encode("utf-8", "surrogateescape"))
                near = line[max(0, at - 15) : at + 15].encode("utf-8", "surrogateescape")
                problems.append(
                    Problem(
                        "error",
                        "not_utf8",
                        f"byte 0x{ord(match.group()) - 0xDC00:02X} at byte offset {offset} is not UTF-8 "
                        f"(near {near!r}); the file looks saved as Latin-1/Windows-1252",
                        "re-save the CSV as UTF-8 (spreadsheet: 'CSV UTF-8'; shell: "
                        "iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv)",
                        row=index - 1 if index else None,
                        line=number,
                    )
                )
                break
    return problems


def _missing_column(header: list[str], name: str, role: str) -> Problem:
    """Explain a missing column with the most likely reason: a near-miss name, wrong separator, no header."""
    flag = _COLUMN_FLAGS[role]
    near = [column for column in header if column.strip().casefold() == name.casefold()]
    near = near or difflib.get_close_matches(name, header, n=1, cutoff=0.6)
    if len(header) == 1 and any(separator in header[0] for separator in ";\t"):
        message = f"no column {name!r}: the whole header {header[0]!r} is one column"
        fix = "the file is separated by ';' or tabs; re-save it comma-separated"
    elif near:
        message = f"no column {name!r}; did you mean {near[0]!r}?"
        fix = f"set {flag} {shlex.quote(near[0])} or rename the column to {name!r}"
    elif any(column.strip().lower().endswith(IMAGE_SUFFIXES) for column in header):
        message = f"no column {name!r}: the first line {','.join(header)!r} looks like data, not a header"
        fix = "add a header line naming the columns, e.g. 'image,label'"
    else:
        message = f"no column {name!r} (the columns are {', '.join(map(repr, header))})"
        fix = f"set {flag} to the column that holds the {role}, or rename it to {name!r}"
    return Problem("error", "missing_column", message, fix, line=1)


def _header_problems(
    table: Table, image_column: str, label_column: str, label_required: bool
) -> list[Problem]:
    header, problems = table.columns, []
    for name, role in ((image_column, "image"), (label_column, "label")):
        if name not in header and role == "label" and not label_required:
            missing = _missing_column(header, name, role)
            if "did you mean" in missing.message:  # a near-miss (Label): unscored by mistake, say so
                problems.append(replace(missing, severity="warning", message=f"{missing.message} Not scored"))
        elif name not in header:
            problems.append(_missing_column(header, name, role))
    return problems + [
        Problem(
            "error",
            "duplicate_column",
            f"column {name!r} appears {header.count(name)} times, so its values are ambiguous",
            "rename or remove the extra columns",
            line=1,
        )
        for name in table.repeated_columns()
    ]


def _structure_problems(table: Table) -> list[Problem]:
    """Rows whose values cannot be matched to columns: too many fields, or a quote open to the end."""
    problems = [
        Problem(
            "error",
            "too_many_fields",
            f"the row has {len(table.rows[row].fields)} fields but the header has {len(table.columns)}, "
            "so the extra values belong to no column",
            'put a label that contains a comma in double quotes ("Smith, John"), or remove the extra comma',
            row=row,
            line=table.rows[row].line,
        )
        for row in table.overfull_rows()
    ]
    if table.rows and table.ends_in_quote:
        last = table.rows[-1]
        problems.append(
            Problem(
                "error",
                "unclosed_quote",
                f"a quote opened in this row is never closed, so lines {last.line}-{last.end_line} "
                "were read as one row",
                'close the quote, and double any quote inside a label ("")',
                row=len(table.rows) - 1,
                line=last.line,
            )
        )
    return problems


def _checked_table(
    csv_path: Path, image_column: str, label_column: str, label_required: bool = True
) -> tuple[Table, list[Problem]]:
    """The parsed file and its warnings, or DataValidationError listing every problem of the whole file."""
    try:
        table = read_table(csv_path)
    except CSVFileError as error:
        problem = Problem("error", error.kind, error.reason, error.fix, line=error.line)
        raise DataValidationError(ValidationReport(csv_path, 0, [], [problem], fatal=True)) from None
    problems = _encoding_problems(table)
    problems += _header_problems(table, image_column, label_column, label_required)
    if not table.rows:
        problems.append(Problem("error", "no_rows", "the CSV has a header but no data rows", "add data rows"))
    problems += _structure_problems(table)
    if any(problem.severity == "error" for problem in problems):
        report = ValidationReport(csv_path, len(table.rows), table.columns, problems, fatal=True)
        raise DataValidationError(report)
    return table, problems


def _label_problems(label: str, row: int, line: int, column: str) -> list[Problem]:
    def problem(severity: Severity, kind: str, message: str, fix: str) -> Problem:
        return Problem(severity, kind, message, fix, row=row, line=line, column=column)

    if not normalize_text(label):
        what = "empty" if not label else "only whitespace"
        return [
            problem(
                "error", "empty_label", f"the label is {what}", "write the transcription or remove the row"
            )
        ]
    problems = []
    control = [
        (i, char) for i, char in enumerate(label) if unicodedata.category(char) == "Cc" and not char.isspace()
    ]
    if control:
        i, char = control[0]
        problems.append(
            problem(
                "error",
                "control_character",
                f"the label contains control character U+{ord(char):04X} at position {i}"
                + (f" (and {len(control) - 1} more)" if len(control) > 1 else ""),
                "delete it; it is left over from a copy-paste or a broken conversion, never handwriting",
            )
        )
    if "\ufffd" in label:
        problems.append(
            problem(
                "warning",
                "replacement_character",
                "the label contains U+FFFD '\ufffd', the mark an earlier encoding conversion leaves "
                "where it lost a character",
                "restore the character from the original transcription",
            )
        )
    return problems


def _merged_rows_problems(record: Record, row: int, header: list[str]) -> list[Problem]:
    """An error when a multi-line field continues with a line that looks like another row (a lost quote).

    Left as a warning, training went on with the rows merged into one garbage label and ``htr.inference.predict``
    scored fewer rows than the file has, silently.
    """
    problems = []
    for name, value in zip(header, record.fields, strict=False):
        suspects = [line for line in value.splitlines()[1:] if "," in line]
        if suspects:
            problems.append(
                Problem(
                    "error",
                    "merged_rows",
                    f"this row spans lines {record.line}-{record.end_line} and the field continues with "
                    f"{suspects[0]!r}, which looks like another row",
                    f"check the quotes on line {record.line}: an unclosed quote merges the rows after it",
                    row=row,
                    line=record.line,
                    column=name,
                )
            )
    return problems


def _token_problems(
    labels: dict[int, tuple[int, str]], tokenizer: Tokenizer, max_target_length: int, column: str
) -> list[Problem]:
    """Warn, per row, where training will cut a label off at ``max_target_length`` tokens."""
    rows = list(labels)
    lengths = [len(ids) for ids in tokenizer([labels[row][1] for row in rows])["input_ids"]]
    return [
        Problem(
            "warning",
            "label_too_long",
            f"the label is {length} tokens, more than max_target_length={max_target_length}; "
            f"training truncates it to {max_target_length} and the model never sees the rest",
            "split the line image and its label, or raise max_target_length",
            row=row,
            line=labels[row][0],
            column=column,
        )
        for row, length in zip(rows, lengths, strict=True)
        if length > max_target_length
    ]


def _image_value_problem(value: str, root: Path, row: int, line: int, column: str) -> Problem | None:
    """An empty path, or a relative one climbing out of the data folder with '..' (usually a CSV moved
    away from its images; it would also let a shared CSV read files anywhere on disk)."""
    if not value.strip():
        return Problem(
            "error",
            "empty_path",
            "the image path is empty",
            "fill in the path or remove the row",
            row,
            line,
            column,
        )
    if not Path(value).is_absolute() and os.path.normpath(value).split(os.sep)[0] == os.pardir:
        return Problem(
            "error",
            "path_outside_root",
            f"{value}: the relative path leaves the data folder {root.absolute()} via '..'",
            "use an absolute path, or set image_root to a folder that contains the images "
            "and write the paths relative to it",
            row,
            line,
            column,
        )
    return None


def _image_problem(error: BadImageError, row: int, line: int, column: str) -> Problem:
    return Problem("error", error.kind, f"{error.path}: {error.reason}", error.fix, row, line, column)


def _duplicate_problems(
    paths: dict[int, Path], labels: dict[int, tuple[int, str]], column: str
) -> list[Problem]:
    """Warn about rows repeating an earlier image: same label (double weight) or another (a conflict)."""
    first_use: dict[Path, tuple[int, str]] = {}  # image -> (first row, its label)
    problems = []
    for row, path in paths.items():
        if row not in labels:
            continue  # an empty label is already an error; comparing it would only add noise
        line, text = labels[row]
        other_row, other_text = first_use.setdefault(path, (row, text))
        if other_row == row:
            continue
        if other_text == text:
            problems.append(
                Problem(
                    "warning",
                    "duplicate_row",
                    f"same image and label as row {other_row}",
                    "remove the repeated row; it counts the sample twice",
                    row,
                    line,
                    column,
                )
            )
        else:
            problems.append(
                Problem(
                    "warning",
                    "conflicting_labels",
                    f"row {other_row} gives the same image the label {other_text!r}",
                    "keep the correct transcription and remove the other row",
                    row,
                    line,
                    column,
                )
            )
    return problems


def _image_problems(
    paths: dict[int, Path],
    rows: list[Record],
    column: str,
    num_workers: int,
    full_decode: bool,
    image_processor: object | None,
) -> list[Problem]:
    """Inspect each distinct image once (in threads, see the module docstring) and report per row."""

    def inspect(path: Path) -> ImageInfo | BadImageError:
        try:
            info = inspect_image(path, full_decode=full_decode)
            check_shape(path, info.width, info.height, image_processor)
            return info
        except BadImageError as error:
            return error

    unique = list(dict.fromkeys(paths.values()))
    if num_workers <= 1 or len(unique) < 2:
        results = dict(zip(unique, map(inspect, unique), strict=True))
    else:
        with ThreadPoolExecutor(num_workers, thread_name_prefix="inspect_image") as pool:
            results = dict(zip(unique, pool.map(inspect, unique), strict=True))
    problems = []
    for row, path in paths.items():
        result = results[path]
        if isinstance(result, BadImageError):
            problems.append(_image_problem(result, row, rows[row].line, column))
        elif result.n_frames != 1:
            count = (
                "several frames, the later ones damaged"
                if result.n_frames is None
                else f"{result.n_frames} frames"
            )
            problems.append(
                Problem(
                    "warning",
                    "multi_frame",
                    f"{path} has {count}; only the first is used",
                    "split the frames into separate images if the others hold text",
                    row,
                    rows[row].line,
                    column,
                )
            )
    return problems


def validate_csv(
    csv_path: str | Path,
    *,
    image_column: str = "image",
    label_column: str = "label",
    image_root: str | Path | None = None,
    tokenizer: Tokenizer | None = None,
    image_processor: object | None = None,
    max_target_length: int = 128,
    num_workers: int | None = None,
    full_decode: bool = False,
    label_required: bool = True,
) -> ValidationReport:
    """Check ``csv_path`` and its images; see the module docstring for how to act on the report.

    Raises DataValidationError when the file as a whole is unusable. ``tokenizer`` (optional) enables
    the label-length check, ``image_processor`` the check of shapes it cannot resize; ``num_workers``
    defaults to min(8, CPU count). ``label_required=False`` (``htr.inference.predict``) accepts a CSV without labels.
    """
    csv_path = Path(csv_path)
    table, problems = _checked_table(csv_path, image_column, label_column, label_required)
    header, rows = table.columns, table.rows
    image_index = header.index(image_column)
    label_index = header.index(label_column) if label_column in header else None
    root = Path(image_root) if image_root is not None else csv_path.parent
    paths: dict[int, Path] = {}
    labels: dict[int, tuple[int, str]] = {}  # row -> (line, normalised label), non-empty labels only
    for row, record in enumerate(rows):
        label = table.value(record, label_index) if label_index is not None else ""
        if label_index is not None:
            problems += _label_problems(label, row, record.line, label_column)
        problems += _merged_rows_problems(record, row, header)
        if text := normalize_text(label):
            labels[row] = (record.line, text)
        value = table.value(record, image_index)
        if problem := _image_value_problem(value, root, row, record.line, image_column):
            problems.append(problem)
        else:
            paths[row] = resolve_image_path(value, csv_path.parent, image_root)
    problems += _duplicate_problems(paths, labels, image_column)
    if tokenizer is not None and labels:
        problems += _token_problems(labels, tokenizer, max_target_length, label_column)
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
    problems += _image_problems(paths, rows, image_column, workers, full_decode, image_processor)
    problems.sort(key=lambda problem: (problem.row, problem.severity, problem.kind))
    return ValidationReport(csv_path, len(rows), header, problems, table=table)
