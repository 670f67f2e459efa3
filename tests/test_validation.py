"""validate_csv reports every problem with row, line, column and fix; whole-file problems raise."""

import csv
from pathlib import Path

import pytest
from PIL import Image

from htr.data.dataset import read_csv
from htr.data.validation import DataValidationError, ValidationReport, validate_csv
from htr.training.modeling import build_tiny_model


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    Image.new("RGB", (32, 8), "white").save(tmp_path / "img/a.png")
    Image.new("RGB", (32, 8), "white").save(tmp_path / "img/b.jpg")
    return tmp_path


def write(folder: Path, content: str | bytes, name: str = "english.csv") -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def fatal(path: Path, **kwargs: object) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate_csv(path, **kwargs)
    assert info.value.report.fatal
    return info.value


def rows_by_kind(report: ValidationReport) -> dict[str, list[int | None]]:
    kinds: dict[str, list[int | None]] = {}
    for problem in report.problems:
        kinds.setdefault(problem.kind, []).append(problem.row)
    return kinds


def word_tokenizer(texts: list[str]) -> dict[str, list[list[str]]]:
    return {"input_ids": [text.split() for text in texts]}


# --- parsing -----------------------------------------------------------------------------------------


def test_quoted_commas_and_newlines_are_data_and_shift_line_numbers(data_dir: Path) -> None:
    path = write(data_dir, 'image,label\nimg/a.png,"Smith, John"\nimg/b.jpg,"two\nlines"\n\nimg/a.png,\n')
    report = validate_csv(path)
    assert report.n_rows == 3
    assert [(p.kind, p.row, p.line, p.column) for p in report.problems] == [("empty_label", 2, 6, "label")]
    assert report.valid_rows == [0, 1]
    assert "row 2 (line 6), column 'label': the label is empty. Fix:" in report.format()


def test_row_numbers_index_the_dataset_that_training_builds(data_dir: Path) -> None:
    """BOM, CRLF, blank and whitespace-only lines, a multi-line label: row N must be dataset[N]."""
    text = 'image,label\r\nimg/a.png,"a,\r\nb"\r\n\r\n  \t\r\nimg/missing.png,x\r\n"",y\r\nimg/b.jpg,NA\r\n'
    path = write(data_dir, b"\xef\xbb\xbf" + text.encode())
    report = validate_csv(path)
    assert report.columns == ["image", "label"]
    dataset = report.dataset()
    assert read_csv(path).to_list() == dataset.to_list()  # training's reader without validation agrees
    assert dataset.column_names == report.columns
    assert len(dataset) == report.n_rows == 4
    problems = rows_by_kind(report)
    assert dataset[problems["missing_file"][0]]["image"] == "img/missing.png"
    assert dataset[problems["empty_path"][0]]["label"] == "y"
    assert dataset[report.valid_rows[-1]]["label"] == "NA"


def test_utf8_bom_does_not_hide_the_first_column(data_dir: Path) -> None:
    report = validate_csv(write(data_dir, b"\xef\xbb\xbfimage,label\nimg/a.png,hi\n"))
    assert report.columns == ["image", "label"]
    assert report.problems == []


def test_misnamed_column_suggests_closest_name_and_flag(data_dir: Path) -> None:
    error = fatal(write(data_dir, "image,Label\nimg/a.png,hi\n"))
    assert "no column 'label'; did you mean 'Label'? Fix: set --label_column_name Label" in str(error)
    error = fatal(write(data_dir, "image_path,transcription\nimg/a.png,hi\n"), image_column="image")
    assert "did you mean 'image_path'?" in str(error)
    assert "--label_column_name" in str(error) and "'image_path', 'transcription'" in str(error)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("image;label\nimg/a.png;hi\n", "separated by ';'"),
        ("img/a.png,hello\nimg/b.jpg,world\n", "looks like data, not a header"),
        ("image,label,label\nimg/a.png,hi,ho\n", "appears 2 times"),
        ("", "the CSV is empty"),
        ("\n  \n", "the CSV is empty"),
        ("image,label\n", "no data rows"),
    ],
)
def test_unusable_header_or_empty_file(data_dir: Path, content: str, expected: str) -> None:
    assert expected in str(fatal(write(data_dir, content)))


def test_missing_csv_file(tmp_path: Path) -> None:
    assert "does not exist" in str(fatal(tmp_path / "nope.csv"))


def test_non_utf8_bytes_name_row_and_byte_offset(data_dir: Path) -> None:
    data = b"\xef\xbb\xbfimage,label\nimg/a.png,caf\xe9\nimg/b.jpg,fine\nimg/a.png,na\xefve\n"
    error = fatal(write(data_dir, data))
    problems = error.report.errors
    assert [(p.kind, p.row, p.line) for p in problems] == [("not_utf8", 0, 2), ("not_utf8", 2, 4)]
    first, second = data.index(b"\xe9"), data.index(b"\xef", 3)  # offsets count the BOM
    assert f"byte 0xE9 at byte offset {first}" in problems[0].message
    assert f"byte 0xEF at byte offset {second}" in problems[1].message
    assert "UTF-8" in problems[0].fix


def test_utf16_file_is_named_as_such(data_dir: Path) -> None:
    error = fatal(write(data_dir, "image,label\nimg/a.png,hi\n".encode("utf-16")))
    assert "UTF-16" in str(error) and "CSV UTF-8" in str(error)


def test_row_with_extra_field_is_fatal_with_row_and_line(data_dir: Path) -> None:
    error = fatal(write(data_dir, 'image,label\nimg/a.png,"two\nlines"\nimg/b.jpg,Smith, John\n'))
    [problem] = error.report.errors
    assert (problem.kind, problem.row, problem.line) == ("too_many_fields", 1, 4)
    assert "double quotes" in problem.fix


def test_quote_never_closed_is_fatal(data_dir: Path) -> None:
    error = fatal(write(data_dir, 'image,label\nimg/a.png,ok\nimg/b.jpg,"he said\nimg/a.png,x\n'))
    [problem] = error.report.errors
    assert (problem.kind, problem.row, problem.line) == ("unclosed_quote", 1, 3)
    assert "lines 3-4" in problem.message


def test_unparsable_field_is_fatal_not_a_csv_traceback(data_dir: Path) -> None:
    error = fatal(write(data_dir, 'image,label\nimg/a.png,"' + "x" * 200_000 + '"\n'))
    assert error.report.errors[0].kind == "unparsable"


def test_empty_first_field_after_a_blank_line_with_bare_cr_keeps_its_columns(data_dir: Path) -> None:
    """Training's pandas reader shifted this row one column left; the shared reader reads it as written."""
    report = validate_csv(write(data_dir, "source,image,label\rx,img/a.png,hi\r\r,img/b.jpg,yo\r"))
    assert report.problems == []
    assert report.dataset().to_list() == [
        {"source": "x", "image": "img/a.png", "label": "hi"},
        {"source": "", "image": "img/b.jpg", "label": "yo"},
    ]


def test_each_row_error_names_the_line_where_the_row_starts(data_dir: Path) -> None:
    labels = [
        "Smith, John",
        "two\nlines",
        "three\r\nlines\rhere",
        "x",
        'a "quote"\n\nand a blank line',
        "end",
    ]
    rows = [(f"img/none{row}.png", label) for row, label in enumerate(labels)]
    path = data_dir / "english.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("image", "label"), *rows])
    report = validate_csv(path)
    assert [problem.row for problem in report.errors] == list(range(len(rows)))
    lines = path.read_bytes().decode().splitlines()
    for problem in report.errors:
        assert lines[problem.line - 1].startswith(rows[problem.row][0] + ","), problem
        assert report.dataset()[problem.row]["label"] == labels[problem.row]


def test_any_repeated_column_is_fatal(data_dir: Path) -> None:
    """Which of two writer columns would training read? Neither, until one is renamed."""
    error = fatal(write(data_dir, "image,label,writer,writer\nimg/a.png,hi,w1,w2\n"))
    [problem] = error.report.errors
    assert (problem.kind, problem.line) == ("duplicate_column", 1)
    assert "'writer' appears 2 times" in problem.message


def test_a_report_without_rows_has_no_dataset(data_dir: Path) -> None:
    error = fatal(write(data_dir, ""))
    with pytest.raises(DataValidationError, match="the CSV is empty"):
        error.report.dataset()


def test_closing_quote_lost_mid_file_is_an_error_naming_the_line(data_dir: Path) -> None:
    """It was a warning: training went on with the rows merged into one garbage label."""
    content = 'image,label\nimg/a.png,ok\nimg/a.png,"hello\nimg/b.jpg,world\nimg/a.png,end"\nimg/b.jpg,x\n'
    report = validate_csv(write(data_dir, content))
    assert report.n_rows == 3
    [error] = report.errors
    assert (error.kind, error.row, error.line, error.column) == ("merged_rows", 1, 3, "label")
    assert "img/b.jpg,world" in error.message and "check the quotes on line 3" in error.fix
    assert report.valid_rows == [0, 2]


# --- rows --------------------------------------------------------------------------------------------


def test_label_problems(data_dir: Path) -> None:
    content = "image,label\nimg/a.png,\nimg/a.png, \t \nimg/b.jpg\nimg/a.png,a\x07b\nimg/b.jpg,caf\ufffd\n"
    report = validate_csv(write(data_dir, content))
    assert rows_by_kind(report) == {
        "empty_label": [0, 1, 2],
        "control_character": [3],
        "replacement_character": [4],
    }
    assert report.valid_rows == [4]  # U+FFFD is only a warning
    assert "U+0007 at position 1" in report.errors[-1].message


def test_long_labels_warn_with_count_and_truncation(data_dir: Path) -> None:
    rows = "".join(f"img/a.png,{' '.join(['word'] * n)} {i}\n" for i, n in enumerate([2, 9, 3, 8]))
    report = validate_csv(
        write(data_dir, "image,label\n" + rows), tokenizer=word_tokenizer, max_target_length=5
    )
    assert rows_by_kind(report)["label_too_long"] == [1, 3]
    assert report.errors == []
    text = report.format("warning")
    assert "label_too_long (2)" in text and "10 tokens" in text and "truncates it to 5" in text


def test_label_length_counts_special_tokens_of_a_real_tokenizer(data_dir: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<s>": 0, "</s>": 1, "<unk>": 2, "word": 3}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")
    path = write(data_dir, "image,label\nimg/a.png,word word word\nimg/b.jpg,word word word word\n")
    report = validate_csv(path, tokenizer=tokenizer, max_target_length=5)
    assert rows_by_kind(report) == {"label_too_long": [1]}
    assert "6 tokens" in report.warnings[0].message


def test_duplicate_and_conflicting_rows_warn(data_dir: Path) -> None:
    content = "image,label\nimg/a.png,hi\nimg/b.jpg,yo\n./img/a.png,hi  \nimg/b.jpg,ya\n"
    report = validate_csv(write(data_dir, content))
    assert rows_by_kind(report) == {"duplicate_row": [2], "conflicting_labels": [3]}
    assert report.errors == []
    assert "row 1 gives the same image the label 'yo'" in report.warnings[1].message


def test_paths_outside_root_absolute_paths_and_image_root(data_dir: Path) -> None:
    sub = data_dir / "splits"
    sub.mkdir()
    content = (
        f"image,label\n../img/a.png,hi\n{data_dir / 'img/b.jpg'},yo\nimg/a.png,ok\n"
        "img/../../x.png,out\nimg/../img/b.jpg,in\n"
    )
    report = validate_csv(write(sub, content))
    assert rows_by_kind(report) == {"path_outside_root": [0, 3], "missing_file": [2, 4]}
    assert str(sub) in report.errors[0].message
    with_root = validate_csv(write(sub, content), image_root=data_dir)
    assert rows_by_kind(with_root) == {"path_outside_root": [0, 3]}
    assert "absolute path" in with_root.errors[0].fix and "image_root" in with_root.errors[0].fix


def test_image_problems_are_reported_per_row(data_dir: Path) -> None:
    (data_dir / "img/empty.png").write_bytes(b"")
    (data_dir / "img/page.png").write_text("<html>404</html>")
    jpeg = (data_dir / "img/b.jpg").read_bytes()
    (data_dir / "img/cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    frames = [Image.new("L", (8, 8), shade) for shade in (0, 255)]
    frames[0].save(data_dir / "img/multi.tif", save_all=True, append_images=frames[1:])
    names = ["a.png", "missing.png", "empty.png", "page.png", "cut.jpg", "multi.tif", "missing2.png"]
    content = "image,label\n" + "".join(f"img/{name},text {i}\n" for i, name in enumerate(names))
    report = validate_csv(write(data_dir, content), num_workers=2)
    assert rows_by_kind(report) == {
        "missing_file": [1, 6],
        "empty_file": [2],
        "not_an_image": [3],
        "corrupt": [4],
        "multi_frame": [5],
    }
    assert report.valid_rows == [0, 5]
    for problem in report.problems:
        assert names[problem.row] in problem.message and problem.fix and problem.column == "image"


def test_threads_and_sequential_agree(data_dir: Path) -> None:
    content = "image,label\n" + "".join(f"img/{n},t{n}\n" for n in ["a.png", "b.jpg", "x.png", "a.png"])
    path = write(data_dir, content)
    assert validate_csv(path, num_workers=1).problems == validate_csv(path, num_workers=4).problems


# --- the report --------------------------------------------------------------------------------------


def test_format_caps_each_kind_and_write_csv_lists_every_error(data_dir: Path) -> None:
    content = "image,label\n" + "".join(f"img/none{i}.png,t\n" for i in range(25))
    report = validate_csv(write(data_dir, content))
    text = report.format(max_per_kind=3)
    assert "error missing_file (25):" in text and "... and 22 more missing_file errors" in text
    assert "row = 0-based data row" in text
    with report.write_csv(data_dir / "out/skipped_rows.csv").open(newline="") as file:
        written = list(csv.DictReader(file))
    assert [int(row["row"]) for row in written] == list(range(25))
    assert written[4]["line"] == "6" and "none4.png" in written[4]["message"] and written[4]["fix"]


def test_data_validation_error_is_a_value_error_with_the_report(data_dir: Path) -> None:
    report = validate_csv(write(data_dir, "image,label\nimg/a.png,\n"))
    error = DataValidationError(report)
    assert isinstance(error, ValueError) and error.report is report
    assert "row 0 (line 2), column 'label': the label is empty. Fix:" in str(error)


def test_shapes_the_processor_cannot_resize_are_row_errors(data_dir: Path) -> None:
    """They passed the check and then crashed inside PIL during training, even with --skip_invalid_rows."""
    Image.new("L", (4097, 32), 255).save(data_dir / "img/wide.png")
    Image.new("L", (40, 2000), 255).save(data_dir / "img/tall.png")
    content = "image,label\nimg/a.png,ok\nimg/wide.png,long\nimg/tall.png,tall\n"
    _, processor = build_tiny_model(seed=0)
    report = validate_csv(write(data_dir, content), image_processor=processor.image_processor)
    assert rows_by_kind(report) == {"extreme_shape": [1, 2]}
    assert report.valid_rows == [0]
    assert "4097×32 px is too wide" in report.errors[0].message
    assert validate_csv(write(data_dir, content)).errors == []  # without the processor nothing is known
