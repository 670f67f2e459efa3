"""The one reader and writer of english.csv: what is written reads back identically, row lines are exact."""

from pathlib import Path

import pytest

from htr.data.dataset_csv import CSVFileError, read_table, write_csv

TRICKY = [
    "Smith, John",
    'say "hi"',
    "two\nlines",
    "crlf\r\ninside",
    "bare\rcr",
    "  padded  ",
    "NA",
    "007",
    "",
    "é e\u0301 😀",
    "\ufeffbom first",
]


def test_written_rows_read_back_identically(tmp_path: Path) -> None:
    rows = [
        {"image": f"images/{i}.png", "label": label, "source": "s", "writer": f"w{i % 3}", "split": "train"}
        for i, label in enumerate(TRICKY)
    ]
    path = write_csv(tmp_path / "sub" / "english.csv", rows)
    table = read_table(path)
    assert table.columns == ["image", "label", "source", "writer", "split"]
    assert table.to_dataset().to_list() == rows


def test_writer_leaves_out_optional_columns_empty_in_every_row_and_keeps_extra_ones(tmp_path: Path) -> None:
    rows = [{"image": "a.png", "label": "", "writer": "", "split": "test", "difficulty": "0.5"}]
    path = write_csv(
        tmp_path / "english.csv", rows, ("image", "label", "source", "writer", "split", "difficulty")
    )
    assert path.read_bytes() == b"image,label,split,difficulty\r\na.png,,test,0.5\r\n"


def test_records_know_the_lines_they_span(tmp_path: Path) -> None:
    path = tmp_path / "english.csv"
    path.write_bytes(b'image,label\r\n\r\n \t\r\na.png,"x\r\ny\r\nz"\r\n"",\r\nb.png\r\n')
    table = read_table(path)
    assert [(record.fields, record.line, record.end_line) for record in table.rows] == [
        (["a.png", "x\r\ny\r\nz"], 4, 6),  # blank and whitespace-only lines are not rows
        (["", ""], 7, 7),  # a quoted "" is
        (["b.png"], 8, 8),
    ]
    assert table.to_dataset()[2] == {"image": "b.png", "label": ""}  # a short row's missing field is ''
    assert not table.ends_in_quote


@pytest.mark.parametrize(
    ("content", "last"),
    [
        ('image,label\na.png,"open\nb.png,x\n', ["a.png", "open\nb.png,x\n"]),
        ('image,label\na.png,"', ["a.png", ""]),
        ('image,label\na.png,"a doubled "" quote stays open\n', ["a.png", 'a doubled " quote stays open\n']),
    ],
)
def test_a_quote_open_at_the_end_of_the_file_is_noticed(
    tmp_path: Path, content: str, last: list[str]
) -> None:
    path = tmp_path / "english.csv"
    path.write_text(content)
    table = read_table(path)
    assert table.ends_in_quote and table.rows[-1].fields == last
    assert table.rows[-1].end_line == len(content.splitlines())


def test_unreadable_files_are_one_line_errors_naming_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "english.csv"
    path.write_text('image,label\na.png,ok\nb.png,"' + "x" * 200_000 + '"\n')
    with pytest.raises(CSVFileError) as info:
        read_table(path)
    message = str(info.value)
    assert (
        message.startswith(f"{path}, line 3: the CSV cannot be parsed") and "Fix: check the quotes" in message
    )
    assert "\n" not in message and info.value.kind == "unparsable"
    with pytest.raises(CSVFileError, match=r"does not exist.*Fix: check the CSV path"):
        read_table(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "image,label\na.png,b,c\n",
            r"english.csv, line 2: row 0 has 3 fields but the header has 2\. Fix: put",
        ),
        (
            "image,label,label\na.png,b,c\n",
            r"english.csv, line 1: column 'label' appears 2 times\. Fix: rename",
        ),
    ],
)
def test_a_table_without_a_meaning_as_columns_is_no_dataset(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "english.csv"
    path.write_text(content)
    with pytest.raises(CSVFileError, match=expected):
        read_table(path).to_dataset()
