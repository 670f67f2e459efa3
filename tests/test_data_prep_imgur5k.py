"""data_prep.imgur5k: upright crops of rotated boxes, and the annotation bookkeeping."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_prep import imgur5k

RED, BLUE, WHITE = (220, 20, 20), (20, 20, 220), (255, 255, 255)
W, H = 90, 36


def _pattern() -> Image.Image:
    """Red word box with a blue block in its top-left corner: any flip or half-turn moves the block."""
    pattern = Image.new("RGB", (W, H), RED)
    ImageDraw.Draw(pattern).rectangle((0, 0, W // 3 - 1, H // 2 - 1), fill=BLUE)
    return pattern


def _photo_with_box(angle: float) -> tuple[Image.Image, list[float]]:
    """A white photo with the pattern turned ``angle`` degrees counter-clockwise (PIL's rotate)."""
    turned = _pattern().rotate(angle, resample=Image.Resampling.NEAREST, expand=True)
    mask = Image.new("L", (W, H), 255).rotate(angle, resample=Image.Resampling.NEAREST, expand=True)
    photo = Image.new("RGB", (240, 200), WHITE)
    left, top = 60, 50
    photo.paste(turned, (left, top), mask)
    return photo, [left + turned.width / 2, top + turned.height / 2, W, H, angle]


@pytest.mark.parametrize("angle", [0.0, 30.0, -65.0, 150.0])
def test_crop_is_the_upright_box(angle: float) -> None:
    photo, box = _photo_with_box(angle)
    crop = imgur5k.crop_upright(photo, imgur5k.parse_box(json.dumps(box)))
    assert crop.size == (W, H)

    pixels = np.asarray(crop, dtype=int)[3:-3, 3:-3]
    expected = np.asarray(_pattern(), dtype=int)[3:-3, 3:-3]
    close = np.abs(pixels - expected).max(axis=2) < 60
    assert close.mean() > 0.97

    def blue_share(region: np.ndarray) -> float:
        return float((np.abs(region - BLUE).max(axis=2) < 60).mean())

    crop_pixels = np.asarray(crop, dtype=int)
    assert blue_share(crop_pixels[4 : H // 2 - 4, 4 : W // 3 - 4]) > 0.95  # top-left: the mark
    assert blue_share(crop_pixels[H // 2 + 4 : -4, 4 : W // 3 - 4]) < 0.05  # bottom-left: not v-flipped
    assert blue_share(crop_pixels[4 : H // 2 - 4, -W // 3 + 4 : -4]) < 0.05  # top-right: not h-flipped/turned


def test_box_may_be_a_list_or_a_json_string() -> None:
    assert imgur5k.parse_box([1, 2, 3, 4, -5.5]) == imgur5k.parse_box("[1.0, 2.0, 3.0, 4.0, -5.5]")


def _annotations(images: dict[str, list[tuple[str, object]]]) -> dict[str, object]:
    """The published layout: index_id, index_to_ann_map, ann_id (ids ``<image>_<n>``)."""
    data: dict[str, dict[str, object]] = {"index_id": {}, "index_to_ann_map": {}, "ann_id": {}}
    for image_id, boxes in images.items():
        data["index_id"][image_id] = {
            "image_url": f"https://i.imgur.com/{image_id}.jpg",
            "image_path": f"images/{image_id}.jpg",
            "image_hash": "0" * 32,
        }
        ann_ids = [f"{image_id}_{n}" for n in range(len(boxes))]
        data["index_to_ann_map"][image_id] = ann_ids
        for ann_id, (word, box) in zip(ann_ids, boxes, strict=True):
            data["ann_id"][ann_id] = {"word": word, "bounding_box": box}
    return data


@pytest.fixture
def imgur_dir(tmp_path: Path) -> Path:
    root = tmp_path / "IMGUR5K"
    (root / "images").mkdir(parents=True)
    (root / "dataset_info").mkdir()
    photo, box = _photo_with_box(30.0)
    photo.save(root / "images" / "rotated.jpg", quality=95)
    Image.new("RGB", (50, 40), WHITE).save(root / "images" / "plain.jpg")
    (root / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    files = {
        "train": {"rotated": [("Hello", json.dumps(box)), (".", "[100.0, 100.0, 20.0, 10.0, 0.0]")]},
        "val": {"plain": [("hi  there", [25, 20, 30, 12, 0]), ("thin", "[25.0, 20.0, 0.2, 12.0, 0.0]")]},
        "test": {
            "gone": [("lost", "[5.0, 5.0, 4.0, 4.0, 0.0]"), ("also", "[9.0, 9.0, 4.0, 4.0, 0.0]")],
            "broken": [("bad", "[5.0, 5.0, 4.0, 4.0, 0.0]")],
        },
    }
    for split, images in files.items():
        path = root / "dataset_info" / f"imgur5k_annotations_{split}.json"
        path.write_text(json.dumps(_annotations(images), indent=4), encoding="utf-8")
    return root


def test_convert_crops_keeps_splits_and_counts_drops(imgur_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stats = imgur5k.convert(imgur_dir, out)

    with (out / "english.csv").open(encoding="utf-8", newline="") as handle:
        rows = {row["label"]: row for row in csv.DictReader(handle)}
    assert {label: row["split"] for label, row in rows.items()} == {
        "Hello": "train",
        "hi there": "validation",
    }
    assert all(row["source"] == "imgur5k" for row in rows.values())
    assert (stats.written, stats.unannotated, stats.degenerate_boxes) == (2, 1, 1)
    assert (stats.missing_images, stats.missing_image_rows) == (1, 2)
    assert (stats.unreadable_images, stats.unreadable_image_rows) == (1, 1)

    with Image.open(out / rows["Hello"]["image"]) as crop:
        assert crop.format == "PNG" and crop.size == (W, H)
        pixels = np.asarray(crop.convert("RGB"), dtype=int)
    assert (np.abs(pixels[4 : H // 2 - 4, 4 : W // 3 - 4] - BLUE).max(axis=2) < 60).mean() > 0.9
    assert (np.abs(pixels[H // 2 + 4 : -4, W // 2 : -4] - RED).max(axis=2) < 60).mean() > 0.9


def test_combined_file_is_used_without_split_files(tmp_path: Path) -> None:
    root = tmp_path / "IMGUR5K"
    (root / "images").mkdir(parents=True)
    (root / "dataset_info").mkdir()
    Image.new("RGB", (50, 40), WHITE).save(root / "images" / "plain.jpg")
    data = _annotations({"plain": [("word", "[25.0, 20.0, 30.0, 12.0, 0.0]")]})
    (root / "dataset_info" / imgur5k.ALL_ANNOTATIONS).write_text(json.dumps(data), encoding="utf-8")

    imgur5k.main(["--imgur5k_dir", str(root), "--out_dir", str(tmp_path / "out"), "--workers", "1"])
    with (tmp_path / "out" / "english.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert [row["label"] for row in rows] == ["word"]
    assert "split" not in (reader.fieldnames or [])
