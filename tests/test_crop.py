"""Reading lines cropped to their ink: the crop itself, and that training and every reader apply it alike."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoProcessor, pipeline

from htr.data import ImageTextTransform, read_csv
from htr.images import open_image
from htr.pipeline import ImageToTextPipeline
from htr.predict import load, read_lines
from htr.reading import CROP_TO_INK, crop_to_ink, line_image, reads_cropped
from tests.test_predict import save_noisy_model
from tests.test_run_trocr import base_args, run


def on_paper(image: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    """``image`` pasted onto off-white paper with these margins, as a loose scan crop has them."""
    paper = Image.new("RGB", (image.width + left + right, image.height + top + bottom), (236, 232, 225))
    paper.paste(image, (left, top))
    return paper


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box of clearly dark pixels."""
    dark = np.asarray(image.convert("L")) < 128
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.any(0))
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


@pytest.fixture(scope="module")
def word(words_csv) -> Image.Image:
    return open_image(words_csv.parent / read_csv(words_csv)["image"][0])


def test_wide_uneven_margins_are_cut_to_the_ink_and_no_ink_is_lost(word):
    loose = on_paper(word, left=140, top=60, right=25, bottom=90)
    cropped = crop_to_ink(loose)
    left, top, right, bottom = ink_box(loose)
    ink_height = bottom - top
    # all the ink is still there: as many dark pixels, and the cut adds at most 10 % of the ink's height + 1 px
    assert (np.asarray(cropped.convert("L")) < 128).sum() == (np.asarray(loose.convert("L")) < 128).sum()
    assert cropped.height <= ink_height * 1.2 + 4 and cropped.width <= (right - left) + ink_height * 0.2 + 4
    assert cropped.height < loose.height / 2  # the margins are gone
    # a loose crop and a tight one of the same word come out alike
    again = crop_to_ink(on_paper(word, left=3, top=2, right=7, bottom=5))
    assert abs(again.width - cropped.width) <= 2 and abs(again.height - cropped.height) <= 2


def test_specks_of_noise_do_not_widen_the_cut(word):
    loose = on_paper(word, left=200, top=80, right=200, bottom=80)
    speckled = loose.copy()
    rng = np.random.default_rng(0)
    pixels = speckled.load()
    for x, y in zip(rng.integers(0, 150, 40), rng.integers(0, speckled.height, 40), strict=True):
        pixels[int(x), int(y)] = (0, 0, 0)  # single dark pixels in the left margin
    assert crop_to_ink(speckled).size == crop_to_ink(loose).size


def test_blank_and_faint_images_are_left_as_they_are():
    blank = Image.new("RGB", (300, 80), (250, 250, 250))
    faint = blank.copy()
    ImageDraw.Draw(faint).text((100, 30), "faint", fill=(225, 225, 225))
    assert crop_to_ink(blank) is blank
    assert crop_to_ink(faint) is faint


def test_the_crop_is_skipped_where_the_processor_could_not_resize_what_it_leaves():
    size = {"max_height": 32, "max_width": 512}
    hairline = Image.new("RGB", (3000, 400), "white")
    ImageDraw.Draw(hairline).line([(10, 200), (2990, 200)], fill="black", width=2)
    assert crop_to_ink(hairline).height < 10  # 3000×~6 would round to 0 px high
    assert line_image(hairline, True, size) is hairline
    assert line_image(hairline, False, size) is hairline
    boxed = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(boxed).rectangle([150, 80, 250, 120], fill="black")
    assert line_image(boxed, True, size).size == (111, 51)  # 101×41 of ink + 5 px (10 % of 41, + 1) each side


def test_training_crops_every_split_before_augmenting_nothing_else(tiny_model_dir, words_csv):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    rows = read_csv(words_csv)[:4]
    folder = words_csv.parent
    loose_dir = folder.parent / "loose"
    loose_dir.mkdir(exist_ok=True)
    for path in rows["image"]:
        on_paper(open_image(folder / path), 90, 40, 60, 50).save(loose_dir / Path(path).name)
    batch = {"image": [f"../loose/{Path(path).name}" for path in rows["image"]], "label": rows["label"]}

    def pixels(crop: bool) -> torch.Tensor:
        transform = ImageTextTransform(processor, folder, None, "image", "label", 32, True, crop=crop)
        return transform(batch)["pixel_values"]

    expected = processor.image_processor(
        [crop_to_ink(open_image(loose_dir / Path(path).name)) for path in batch["image"]], return_tensors="pt"
    ).pixel_values
    assert torch.equal(pixels(True), expected)
    assert not torch.equal(pixels(False), expected)


def test_a_model_trained_with_crop_to_ink_records_it_and_every_reader_follows(
    tiny_model_dir, words_csv, tmp_path
):
    out = tmp_path / "out"
    run(
        [
            *base_args(tiny_model_dir, words_csv, out),
            "--do_train",
            "--max_steps",
            "1",
            "--crop_to_ink",
            "true",
        ]
    )
    assert json.loads((out / "config.json").read_text())[CROP_TO_INK] is True
    plain_out = tmp_path / "plain"
    run([*base_args(tiny_model_dir, words_csv, plain_out), "--do_train", "--max_steps", "1"])
    assert CROP_TO_INK not in json.loads((plain_out / "config.json").read_text())

    # The noisy test model (whose text changes with its input), switched to cropping: predict reads a loose
    # scan as its crop, and the pipeline in the model folder reads what predict reads.
    model_dir = save_noisy_model(tmp_path / "noisy")
    cropping = tmp_path / "cropping"
    shutil.copytree(model_dir, cropping)
    config = json.loads((cropping / "config.json").read_text())
    (cropping / "config.json").write_text(json.dumps({**config, CROP_TO_INK: True}))
    model, processor = load(str(cropping), device="cpu")
    plain_model, _ = load(str(model_dir), device="cpu")
    assert reads_cropped(model.config) and not reads_cropped(plain_model.config)
    rows = read_csv(words_csv)[:6]
    images = [on_paper(open_image(words_csv.parent / path), 120, 50, 40, 70) for path in rows["image"]]
    loose = read_lines(model, processor, images)
    assert loose == read_lines(plain_model, processor, [crop_to_ink(image) for image in images])
    assert [r.text for r in read_lines(plain_model, processor, images)] != [r.text for r in loose]
    reader = pipeline("image-to-text", model=str(cropping), pipeline_class=ImageToTextPipeline, device="cpu")
    assert [result[0]["generated_text"] for result in reader(images)] == [r.text for r in loose]
