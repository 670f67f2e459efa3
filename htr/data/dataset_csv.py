"""The `english.csv` format in one place: its columns and split names, the one reader, the one writer.

Training, validation, ``htr.inference.predict`` and every ``data_prep`` step go through here. Validation checks
the very records training builds its Dataset from (:meth:`Table.to_dataset`), so "row N (line L)" in a
validation report is ``dataset[N]`` and line L of the file by construction, whatever the quoting.

Reading is the stdlib ``csv`` module: quoted commas and newlines are data, a line holding only spaces or
tabs is not a row, a row lacking trailing fields reads them as '', and every value stays the exact text
of the file (a label ``NA`` or ``007`` stays ``NA`` / ``007``; a UTF-8 byte-order mark is not part of the
first column's name). Writing quotes whatever needs it, so a written file reads back value for value.
Image paths are stored relative to the CSV's folder, so a dataset folder can be moved as a whole.
"""

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, Features, Value

from htr.core.errors import HTRError

COLUMNS = ("image", "label", "source", "writer", "split")
REQUIRED = ("image", "label")
SPLITS = ("train", "validation", "test")
# How a split column may name the three splits: what training reads...
SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "test": "test",
}
# ...and, for data_prep, the spellings of published datasets (shard and file names) it rewrites.
SPLIT_ALIASES = {**SPLIT_NAMES, "dev": "validation"}

Row = dict[str, str]

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_END = "\ue000"  # fed to the parser after the last line: only a quote still open swallows it


class CSVFileError(HTRError, ValueError):
    """The file cannot be read into rows at all (missing, UTF-16, broken quoting, empty)."""

    def __init__(self, path: Path, kind: str, reason: str, fix: str, line: int | None = None) -> None:
        self.path, self.kind, self.reason, self.fix, self.line = path, kind, reason, fix, line
        where = str(path) if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {reason}. Fix: {fix}")


@dataclass(frozen=True)
class Record:
    """One record of the file and the lines it spans (a quoted newline makes it span several)."""

    fields: list[str]
    line: int  # first line, counted from 1
    end_line: int


@dataclass(frozen=True)
class Table:
    """A parsed CSV: the header, the data rows (row N is ``to_dataset()[N]``) and the raw lines.

    The lines (undecodable bytes kept as surrogates) let validation name the byte offset of a bad byte.
    """

    path: Path
    header: Record
    rows: list[Record]
    lines: list[str]
    bom_bytes: int
    ends_in_quote: bool  # the file ends inside a quoted field, which then holds all lines to the end

    @property
    def columns(self) -> list[str]:
        return self.header.fields

    def value(self, record: Record, index: int) -> str:
        """Field ``index`` of ``record``; a short row lacks trailing fields, they read as ''."""
        return record.fields[index] if index < len(record.fields) else ""

    def overfull_rows(self) -> list[int]:
        """Rows with more fields than the header: their extra values belong to no column."""
        return [row for row, record in enumerate(self.rows) if len(record.fields) > len(self.columns)]

    def repeated_columns(self) -> list[str]:
        return [name for name in dict.fromkeys(self.columns) if self.columns.count(name) > 1]

    def to_dataset(self) -> Dataset:
        """The rows as training's Dataset, every column a string column, row N from ``rows[N]``.

        A repeated column name or a row with more fields than the header has no Dataset it could mean;
        ``htr.data.validation`` lists them all, this stops at the first.
        """
        if repeated := self.repeated_columns():
            raise CSVFileError(
                self.path,
                "duplicate_column",
                f"column {repeated[0]!r} appears {self.columns.count(repeated[0])} times",
                "rename or remove the extra columns",
                line=self.header.line,
            )
        if overfull := self.overfull_rows():
            record = self.rows[overfull[0]]
            raise CSVFileError(
                self.path,
                "too_many_fields",
                f"row {overfull[0]} has {len(record.fields)} fields but the header has {len(self.columns)}",
                'put a label that contains a comma in double quotes ("Smith, John")',
                line=record.line,
            )
        values = {
            name: [self.value(record, index) for record in self.rows]
            for index, name in enumerate(self.columns)
        }
        return Dataset.from_dict(values, features=Features(dict.fromkeys(values, Value("string"))))


def read_table(path: str | Path) -> Table:
    """Parse ``path`` into records with their line numbers; raise CSVFileError if it has none to give.

    Bytes that are not UTF-8 are kept (as surrogates) for validation to report by row and offset.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = "does not exist" if isinstance(error, FileNotFoundError) else f"cannot be read ({error})"
        raise CSVFileError(
            path, "unreadable_csv", f"{reason} ({path.absolute()})", "check the CSV path"
        ) from None
    if data.startswith(_UTF16_BOMS):
        raise CSVFileError(
            path, "not_utf8", "the file is UTF-16 (Excel's 'Unicode text')", "re-save it as 'CSV UTF-8'"
        )
    bom_bytes = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    text = data[bom_bytes:].decode("utf-8", "surrogateescape")
    lines = list(io.StringIO(text, newline=""))  # splits at \n, \r\n and \r, as the csv module does
    reader = csv.reader([*lines, _END])
    records: list[Record] = []
    ends_in_quote, start = False, 1
    try:
        for fields in reader:
            if start > len(lines):  # _END as a record of its own: every quote was closed
                break
            if reader.line_num > len(lines):  # an open quote swallowed _END
                ends_in_quote = True
                fields[-1] = fields[-1].removesuffix(_END)
            end = min(reader.line_num, len(lines))
            raw = "".join(lines[start - 1 : end]) if len(fields) <= 1 else ","
            if raw.strip(" \t\r\n"):  # a line of spaces or tabs is no row, a quoted "" is
                records.append(Record(fields, start, end))
            start = end + 1
    except csv.Error as error:
        raise CSVFileError(
            path,
            "unparsable",
            f"the CSV cannot be parsed from here on ({error})",
            'check the quotes that open on or before this line: a quote inside a label must be doubled ("")',
            line=start,
        ) from None
    if not records:
        raise CSVFileError(path, "empty_csv", "the CSV is empty", "write a header line and data rows")
    return Table(path, records[0], records[1:], lines, bom_bytes, ends_in_quote)


def relative_path(path: Path, csv_dir: Path) -> str:
    """``path`` relative to ``csv_dir`` with forward slashes, the form the CSV stores; absolute if outside.

    Training refuses relative paths that leave the CSV's folder through ``..`` (see htr.data.validation), so
    an image outside ``csv_dir`` is stored by its absolute path. Symlinks are not resolved: a dataset
    linked into place keeps pointing through the link.
    """
    relative = Path(os.path.relpath(path, csv_dir))
    if relative.parts and relative.parts[0] == os.pardir:
        return Path(os.path.abspath(path)).as_posix()
    return relative.as_posix()


def write_csv(path: Path, rows: Sequence[Mapping[str, str]], columns: Sequence[str] = COLUMNS) -> Path:
    """Write ``rows`` as UTF-8 CSV with ``columns`` in that order, creating the folder if needed.

    An optional column (not image or label) that is empty in every row is left out: training reads an
    all-empty writer column as a single writer and rejects an empty split value. Lines end in CRLF, the
    csv module's default: with it, a value holding a bare CR is quoted and so reads back unchanged.
    """
    kept = [column for column in columns if column in REQUIRED or any(row.get(column) for row in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=kept, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
