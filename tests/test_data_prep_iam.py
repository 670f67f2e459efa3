"""data_prep.iam on format-exact excerpts of the official release and on Hub-style exports."""

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import iam

LINES_TXT = """\
#--- lines.txt ---------------------------------------------------------------#
#
# iam database line information
#
# format: a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from
#
a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from
a01-000u-01 err 156 19 395 932 1850 105 nominating|any|more|Labour|life|Peers
a01-000u-02 ok 157 16 408 1106 1986 70 is|to|be|made|at|a|meeting|of|Labour
b01-000-00 ok 180 20 300 500 1500 80 &quot;|Yes|,|&quot;|he|said|.
"""
WORDS_TXT = """\
#--- words.txt ---------------------------------------------------------------#
#
# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
#
a01-000u-00-00 ok 154 408 768 27 51 AT A
a01-000u-00-01 ok 154 507 766 213 48 NN MOVE
a01-000u-00-02 err 154 796 764 70 50 TO to
b01-000-00-00 ok 180 300 500 40 60 " &quot;
b01-000-00-01 ok 180 350 500 90 60 NP New York
"""
FORMS_TXT = """\
#--- forms.txt ---------------------------------------------------------------#
#
# format: a01-000u 000 2 prt 7 5 52 36
#
a01-000u 000 2 prt 7 5 52 36
b01-000 001 1 prt 8 4 60 40
"""
LINE_IDS = ("a01-000u-00", "a01-000u-01", "b01-000-00")  # a01-000u-02's image is "not downloaded"
WORD_IDS = ("a01-000u-00-00", "a01-000u-00-01", "a01-000u-00-02", "b01-000-00-00", "b01-000-00-01")


def _png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (12, 6), value).save(path)


@pytest.fixture
def iam_dir(tmp_path: Path) -> Path:
    root = tmp_path / "iam"
    (root / "ascii").mkdir(parents=True)
    for name, text in (("lines.txt", LINES_TXT), ("words.txt", WORDS_TXT), ("forms.txt", FORMS_TXT)):
        (root / "ascii" / name).write_text(text, encoding="utf-8")
    for item_id in LINE_IDS:
        _png(iam.image_path(root, "line", item_id))
    for item_id in WORD_IDS:
        _png(iam.image_path(root, "word", item_id))
    return root


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_lines_keep_official_tokens_decode_entities_and_skip_err(iam_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stats = iam.convert_official(iam_dir, out, "line", None, keep_err=False, source="iam-line")
    rows = {Path(row["image"]).stem: row for row in _read(out / "english.csv")}

    assert set(rows) == {"a01-000u-00", "b01-000-00"}
    assert (stats.written, stats.err_rows, stats.skipped_missing_image) == (2, 1, 1)
    assert rows["a01-000u-00"]["label"] == "A MOVE to stop Mr. Gaitskell from"
    assert rows["b01-000-00"]["label"] == '" Yes , " he said .'
    assert rows["a01-000u-00"]["writer"] == "iam-000" and rows["b01-000-00"]["writer"] == "iam-001"
    assert rows["a01-000u-00"]["source"] == "iam-line"
    image = out / rows["a01-000u-00"]["image"]
    assert image.resolve() == (iam_dir / "lines/a01/a01-000u/a01-000u-00.png").resolve()
    assert "split" not in rows["a01-000u-00"]  # no --split_dir: no split column at all


def test_keep_err_keeps_err_rows(iam_dir: Path, tmp_path: Path) -> None:
    stats = iam.convert_official(iam_dir, tmp_path / "out", "line", None, keep_err=True, source="iam-line")
    labels = [row["label"] for row in _read(tmp_path / "out" / "english.csv")]
    assert "nominating any more Labour life Peers" in labels
    assert (stats.written, stats.err_rows) == (3, 1)


def test_words_take_text_after_the_tag(iam_dir: Path, tmp_path: Path) -> None:
    stats = iam.convert_official(iam_dir, tmp_path / "out", "word", None, keep_err=False, source="iam-word")
    labels = {Path(row["image"]).stem: row["label"] for row in _read(tmp_path / "out" / "english.csv")}
    assert labels == {
        "a01-000u-00-00": "A",
        "a01-000u-00-01": "MOVE",
        "b01-000-00-00": '"',
        "b01-000-00-01": "New York",
    }
    assert stats.err_rows == 1


def test_aachen_form_lists_assign_splits_by_form(iam_dir: Path, tmp_path: Path) -> None:
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    (split_dir / "train.uttlist").write_text("a01-000u\n", encoding="utf-8")
    (split_dir / "test.uttlist").write_text("b01-000\n", encoding="utf-8")
    iam.convert_official(iam_dir, tmp_path / "out", "word", split_dir, keep_err=False, source="iam-word")
    splits = {Path(row["image"]).stem: row["split"] for row in _read(tmp_path / "out" / "english.csv")}
    assert splits == {
        "a01-000u-00-00": "train",
        "a01-000u-00-01": "train",
        "b01-000-00-00": "test",
        "b01-000-00-01": "test",
    }


def test_large_writer_independent_task_line_lists(iam_dir: Path, tmp_path: Path) -> None:
    split_dir = tmp_path / "task"
    split_dir.mkdir()
    (split_dir / "trainset.txt").write_text("a01-000u-01\n", encoding="utf-8")
    (split_dir / "validationset2.txt").write_text("a01-000u-00\n", encoding="utf-8")
    (split_dir / "testset.txt").write_text("b01-000-00\n\n", encoding="utf-8")
    stats = iam.convert_official(
        iam_dir, tmp_path / "out", "line", split_dir, keep_err=True, source="iam-line"
    )
    splits = {Path(row["image"]).stem: row["split"] for row in _read(tmp_path / "out" / "english.csv")}
    assert splits == {"a01-000u-00": "validation", "a01-000u-01": "train", "b01-000-00": "test"}
    assert stats.skipped_unlisted == 1  # a01-000u-02 is in no list


def test_an_id_in_two_split_lists_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train.uttlist").write_text("a01-000u\n", encoding="utf-8")
    (tmp_path / "test.uttlist").write_text("a01-000u\n", encoding="utf-8")
    with pytest.raises(ValueError, match="a01-000u"):
        iam.read_split_lists(tmp_path)


def test_split_of_prefers_the_most_specific_listed_id() -> None:
    splits = {"a01-000u": "train", "a01-000u-03": "test"}
    assert iam.split_of("a01-000u-03-01", splits) == "test"
    assert iam.split_of("a01-000u-04-01", splits) == "train"
    assert iam.split_of("b01-000-00", splits) is None


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("# comment\na01-000u-00 ok 154 19 408\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lines\.txt:2"):
        iam.read_transcriptions(path, "line")


def _png_bytes(image: Image.Image, format: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def test_parquet_shards_become_pngs_with_their_split(tmp_path: Path) -> None:
    export = tmp_path / "export" / "data"
    export.mkdir(parents=True)
    dark, light = Image.new("L", (8, 4), 10), Image.new("RGB", (6, 3), (200, 30, 30))
    light.save(export / "light.png")
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    train = pa.table(
        {
            "image": pa.array([{"bytes": _png_bytes(dark), "path": "a.png"}], type=image_type),
            "text": ["Hello  world"],
        }
    )
    test = pa.table(
        {"image": pa.array([{"bytes": None, "path": "light.png"}], type=image_type), "text": ["ok"]}
    )
    pq.write_table(train, export / "train-00000-of-00001.parquet")
    pq.write_table(test, export / "test-00000-of-00001.parquet")

    out = tmp_path / "out"
    iam.main(["--hub_export", str(tmp_path / "export"), "--out_dir", str(out)])

    rows = {row["label"]: row for row in _read(out / "english.csv")}
    assert {label: row["split"] for label, row in rows.items()} == {"Hello world": "train", "ok": "test"}
    assert rows["ok"]["source"] == "iam-line"
    with Image.open(out / rows["Hello world"]["image"]) as image:
        assert image.format == "PNG" and image.mode == "L" and list(image.getdata()) == list(dark.getdata())
    with Image.open(out / rows["ok"]["image"]) as image:
        assert image.format == "PNG" and list(image.getdata()) == list(light.getdata())


def test_imagefolder_metadata_csv_and_jsonl(tmp_path: Path) -> None:
    export = tmp_path / "folder"
    (export / "train").mkdir(parents=True)
    (export / "validation").mkdir()
    # A JPEG whose EXIF says "rotate 90° clockwise to display": the PNG must be stored upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    (export / "train" / "sideways.jpg").write_bytes(_png_bytes(Image.new("RGB", (20, 10)), "JPEG", exif=exif))
    (export / "train" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "sideways.jpg", "text": "turned"}) + "\n", encoding="utf-8"
    )
    Image.new("L", (5, 5), 0).save(export / "validation" / "x.png")
    (export / "validation" / "metadata.csv").write_text('file_name,text\nx.png,"a, b"\n', encoding="utf-8")

    assert iam.convert_hub_export(export, tmp_path / "out", "iam-word") == 2
    rows = {row["label"]: row for row in _read(tmp_path / "out" / "english.csv")}
    assert rows["turned"]["split"] == "train" and rows["a, b"]["split"] == "validation"
    with Image.open(tmp_path / "out" / rows["turned"]["image"]) as image:
        assert image.size == (10, 20)


def test_cli_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        iam.parse_args(["--hub_export", "x.parquet", "--out_dir", "o", "--split_dir", "s"])
