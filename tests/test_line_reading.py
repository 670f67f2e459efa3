"""How a model reads its lines (``htr.core.reading.LineReading``): the deskew and the ink crop themselves, and
that training and every reader apply them alike."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont
from transformers import AutoProcessor, pipeline

from htr.core.images import open_image
from htr.core.pipeline import ImageToTextPipeline
from htr.core.reading import CROP_TO_INK, DESKEW, LineReading, crop_to_ink, deskew, skew_angle
from htr.data.dataset import ImageTextTransform, read_csv
from htr.inference.predict import load, read_lines
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


def written_line(text: str = "a level line of handwriting, more or less") -> Image.Image:
    """A long line of dark text on off-white paper, drawn with Pillow's own font (no data/ needed)."""
    font = ImageFont.load_default(size=40)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 60, bottom - top + 60), (236, 232, 225))
    ImageDraw.Draw(image).text((30 - left, 30 - top), text, fill=(30, 30, 40), font=font)
    return image


def tilted(image: Image.Image, degrees: float) -> Image.Image:
    """``image`` turned counter-clockwise by ``degrees`` on more of its paper, as a crooked scan is."""
    return image.rotate(degrees, Image.Resampling.BILINEAR, expand=True, fillcolor=(236, 232, 225))


@pytest.fixture(scope="module")
def word(words_csv) -> Image.Image:
    return open_image(words_csv.parent / read_csv(words_csv)["image"][0])


@pytest.mark.parametrize("degrees", [-4.0, -2.5, 2.0, 3.0])
def test_a_tilted_line_is_turned_level_and_its_box_shrinks_to_the_level_lines(degrees):
    line = written_line()
    crooked = tilted(line, degrees)
    assert abs(skew_angle(crooked) + degrees) <= 0.3  # the angle that undoes the tilt, to the 0.25° step
    level_height = crop_to_ink(line).height
    growth = line.width * np.sin(np.radians(abs(degrees)))  # how much taller the tilt makes the ink's box
    assert crop_to_ink(crooked).height > level_height + 0.5 * growth
    levelled = deskew(crooked)
    assert crop_to_ink(levelled).height <= level_height * 1.1
    assert np.asarray(levelled.convert("L")).min(axis=None) < 100  # the ink is still there
    corner = np.asarray(levelled)[0, 0]  # the corners the turn uncovers are paper, not black
    assert np.abs(corner.astype(int) - (236, 232, 225)).max() <= 3


def test_level_lines_single_words_and_blank_images_are_left_alone(word):
    line = written_line()
    assert abs(skew_angle(line)) <= 0.25
    blank = Image.new("RGB", (300, 80), (250, 250, 250))
    assert deskew(blank) is blank
    assert abs(skew_angle(word)) <= 5  # never beyond the search range, whatever a short word suggests
    assert abs(skew_angle(tilted(line, 12))) == 5  # a steeper tilt is turned by the most it may be


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
    assert LineReading(crop_to_ink=True).line_image(hairline, size) is hairline
    assert LineReading().line_image(hairline, size) is hairline
    boxed = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(boxed).rectangle([150, 80, 250, 120], fill="black")
    # 101×41 of ink + 5 px (10 % of 41, + 1) each side
    assert LineReading(crop_to_ink=True).line_image(boxed, size).size == (111, 51)


def test_training_reads_every_split_as_the_model_does(tiny_model_dir, words_csv):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    rows = read_csv(words_csv)[:4]
    folder = words_csv.parent
    loose_dir = folder.parent / "loose"
    loose_dir.mkdir(exist_ok=True)
    for path in rows["image"]:
        tilted(on_paper(open_image(folder / path), 90, 40, 60, 50), 3).save(loose_dir / Path(path).name)
    batch = {"image": [f"../loose/{Path(path).name}" for path in rows["image"]], "label": rows["label"]}
    loose = [open_image(loose_dir / Path(path).name) for path in batch["image"]]

    def pixels(reading: LineReading) -> torch.Tensor:
        transform = ImageTextTransform(processor, folder, None, "image", "label", 32, True, reading=reading)
        return transform(batch)["pixel_values"]

    def expected(images: list[Image.Image]) -> torch.Tensor:
        return processor.image_processor(images, return_tensors="pt").pixel_values

    assert torch.equal(pixels(LineReading(crop_to_ink=True)), expected([crop_to_ink(i) for i in loose]))
    assert torch.equal(pixels(LineReading(deskew=True)), expected([deskew(i) for i in loose]))
    both = expected([crop_to_ink(deskew(i)) for i in loose])
    assert torch.equal(pixels(LineReading(deskew=True, crop_to_ink=True)), both)
    assert torch.equal(pixels(LineReading()), expected(loose))


def test_a_model_trained_to_deskew_and_crop_records_it_and_every_reader_follows(
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
            "--deskew",
            "true",
        ]
    )
    config = json.loads((out / "config.json").read_text())
    assert config[CROP_TO_INK] is True and config[DESKEW] is True
    plain_out = tmp_path / "plain"
    run([*base_args(tiny_model_dir, words_csv, plain_out), "--do_train", "--max_steps", "1"])
    assert not {CROP_TO_INK, DESKEW} & set(json.loads((plain_out / "config.json").read_text()))

    # The noisy test model (whose text changes with its input), switched to both steps: predict reads a
    # crooked loose scan as it deskewed and cut to its ink, and the pipeline in the model folder reads what
    # predict reads.
    model_dir = save_noisy_model(tmp_path / "noisy")
    reading = tmp_path / "reading"
    shutil.copytree(model_dir, reading)
    config = json.loads((reading / "config.json").read_text())
    (reading / "config.json").write_text(json.dumps({**config, CROP_TO_INK: True, DESKEW: True}))
    model, processor = load(str(reading), device="cpu")
    plain_model, _ = load(str(model_dir), device="cpu")
    assert LineReading.of(model.config) == LineReading(deskew=True, crop_to_ink=True)
    assert LineReading.of(plain_model.config) == LineReading()
    rows = read_csv(words_csv)[:6]
    images = [tilted(on_paper(open_image(words_csv.parent / p), 120, 50, 40, 70), 3) for p in rows["image"]]
    loose = read_lines(model, processor, images)
    read_alike = [crop_to_ink(deskew(image)) for image in images]
    assert loose == read_lines(plain_model, processor, read_alike)
    assert [r.text for r in read_lines(plain_model, processor, images)] != [r.text for r in loose]
    reader = pipeline("image-to-text", model=str(reading), pipeline_class=ImageToTextPipeline, device="cpu")
    assert [result[0]["generated_text"] for result in reader(images)] == [r.text for r in loose]
