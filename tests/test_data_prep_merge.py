"""data_prep.merge: path rewriting, every drop reason, long labels, writer leaks, the report."""

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from data_prep import merge as merge_module
from data_prep._parallel import parallel_map
from data_prep.merge import MergeError, fingerprint, merge

HEADER = ["image", "label", "source", "writer", "split"]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 8), value).save(path)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    """Two step outputs with one problem of each kind (row numbers in comments are 1-based)."""
    iam = tmp_path / "iam"
    for name, value in (("a", 10), ("long", 30), ("c", 40), ("cafe", 50)):
        _png(iam / "images" / f"{name}.png", value)
    (iam / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    first = _write_csv(
        iam / "english.csv",
        HEADER,
        [
            ["images/a.png", "hello world", "iam-line", "w1", "train"],  # 1 kept
            ["images/a.png", "hello \u00a0 world", "iam-line", "w1", "train"],  # 2 duplicate of 1
            ["images/c.png", " \t ", "iam-line", "w2", "train"],  # 3 empty label
            ["images/broken.png", "broken", "iam-line", "w2", "train"],  # 4 unreadable
            ["images/missing.png", "gone", "iam-line", "w2", "train"],  # 5 missing
            ["images/long.png", "x" * 30, "iam-line", "w1", "train"],  # 6 long label
            ["images/c.png", "leak", "iam-line", "w1", "test"],  # 7 writer leak
            [
                str((iam / "images" / "cafe.png").resolve()),
                "Cafe\u0301 ñ",
                "iam-line",
                "w2",
                "val",
            ],  # 8 absolute
        ],
    )
    synth = tmp_path / "synth"
    (synth / "images").mkdir(parents=True)
    shutil.copy(iam / "images" / "a.png", synth / "images" / "copy.png")
    _png(synth / "images" / "d.png", 60)
    second = _write_csv(
        synth / "english.csv",
        ["image", "label", "split"],
        [
            ["images/copy.png", "hello world", "train"],  # 1 duplicate: same label, identical bytes
            ["images/d.png", "synthetic line", "train"],  # 2 kept, source from folder name
        ],
    )
    return [first, second]


def test_writer_leak_stops_the_merge_with_the_writer(inputs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(MergeError, match=r"w1 \(train 2, test 1\)"):
        merge(inputs, tmp_path / "out" / "english.csv")
    with pytest.raises(SystemExit, match="w1"):
        merge_module.main([str(tmp_path / "out" / "english.csv"), *map(str, inputs)])


def test_merge_cleans_rewrites_paths_and_lists_every_drop(inputs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "english.csv"  # the usual layout: sources in subfolders of the merged CSV's folder
    result = merge(inputs, out, max_target_length=20, fix_writer_leaks=True)

    rows = _read(out)
    assert [row["label"] for row in rows] == ["hello world", "x" * 30, "leak", "Café ñ", "synthetic line"]
    for row, original in zip(
        rows, ["iam/images/a.png", "iam/images/long.png", "iam/images/c.png"], strict=False
    ):
        assert not Path(row["image"]).is_absolute()
        assert (out.parent / row["image"]).resolve() == (tmp_path / original).resolve()
    assert [row["split"] for row in rows] == ["train", "train", "train", "validation", "train"]
    assert [row["source"] for row in rows] == ["iam-line"] * 4 + ["synth"]
    assert rows[-1]["writer"] == ""

    dropped = [
        (Path(row["file"]).parent.name, row["row"], row["reason"])
        for row in _read(out.parent / "dropped_rows.csv")
    ]
    assert sorted(dropped) == [
        ("iam", "2", "duplicate"),
        ("iam", "3", "empty_label"),
        ("iam", "4", "unreadable_image"),
        ("iam", "5", "missing_image"),
        ("synth", "1", "duplicate"),
    ]
    assert [(record.row, length) for record, length in result.long_labels] == [(6, 30)]
    assert [(move.writer, move.target, move.moved_rows) for move in result.writer_moves] == [
        ("w1", "train", 1)
    ]

    report = (out.parent / "data_report.md").read_text(encoding="utf-8")
    for line in (
        "| duplicate | 2 |",
        "| empty_label | 1 |",
        "| missing_image | 1 |",
        "| unreadable_image | 1 |",
        "| **total** | 5 |",
        "| iam-line | 3 | 1 | 0 | 0 | 4 | 2 |",
        "| synth | 1 | 0 | 0 | 0 | 1 | 0 |",
        "| w1 | test 1, train 2 | train | 1 |",
        "Labels flagged: 1 ",
        "| iam-line | 4 | 4 | 12.8 | 8.5 | 30 | 30 |",
        "| ñ | U+00F1 | 1 |",
        "| é | U+00E9 | 1 |",
    ):
        assert line in report, line
    for plot in ("label_lengths.png", "char_frequencies.png", "dropped_rows.png"):
        assert f"]({plot})" in report
        with Image.open(out.parent / plot) as image:
            assert image.format == "PNG" and image.width > 100


def test_rows_without_split_need_a_default(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.png", 1)
    _png(tmp_path / "b" / "y.png", 2)
    with_split = _write_csv(
        tmp_path / "a" / "english.csv", ["image", "label", "split"], [["x.png", "one", "test"]]
    )
    without = _write_csv(tmp_path / "b" / "english.csv", ["image", "label"], [["y.png", "two"]])
    out = tmp_path / "out" / "english.csv"

    with pytest.raises(MergeError, match="--default_split"):
        merge([with_split, without], out)
    result = merge([with_split, without], out, default_split="train")
    assert result.default_split_rows == 1
    assert {row["label"]: row["split"] for row in _read(out)} == {"one": "test", "two": "train"}
    assert "writer" not in _read(out)[0]  # no writer anywhere: no column to mislead training


def test_long_labels_in_tokens_with_a_local_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "short": 1, "two": 2, "words": 3}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    _png(tmp_path / "x.png", 1)
    _png(tmp_path / "y.png", 2)
    source = _write_csv(tmp_path / "in.csv", ["image", "label"], [["x.png", "short"], ["y.png", "two words"]])

    result = merge(
        [source], tmp_path / "out" / "english.csv", max_target_length=1, tokenizer=str(tmp_path / "tok")
    )
    assert result.length_unit == "tokens"
    assert [(record.label, n) for record, n in result.long_labels] == [("two words", 2)]
    report = (tmp_path / "out" / "data_report.md").read_text(encoding="utf-8")
    assert "## Label length (tokens)" in report and "Labels flagged: 1 " in report


def test_verification_in_a_process_pool_matches_inline(tmp_path: Path) -> None:
    paths = []
    for index in range(80):
        path = tmp_path / f"{index}.png"
        _png(path, index)
        paths.append(path)
    paths[7].write_bytes(b"garbage")
    pooled = parallel_map(fingerprint, paths, workers=2)
    assert pooled == [fingerprint(path) for path in paths]
    assert pooled[7][0] == "" and pooled[7][1] and all(digest for digest, _ in pooled[:7])


def test_images_outside_the_merged_csv_folder_get_absolute_paths(inputs: list[Path], tmp_path: Path) -> None:
    # Training refuses relative paths that climb out of the CSV's folder through '..'.
    out = tmp_path / "elsewhere" / "english.csv"
    merge(inputs, out, max_target_length=20, fix_writer_leaks=True)
    for row in _read(out):
        assert Path(row["image"]).is_absolute() and Path(row["image"]).is_file()
