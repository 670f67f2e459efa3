"""The habitual TrOCR path (``AutoProcessor`` + ``VisionEncoderDecoderModel`` + ``generate``) reads what
``htr.inference.predict`` reads: the processor a model folder carries (``htr/core/processing.py``) applies its
deskew and crop to ink; a folder without it, or a model that reads images as they are, reads as before."""

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, TrOCRProcessor, VisionEncoderDecoderModel

from htr.core import processing as processing_module
from htr.core.processing import MODULE_FILES, attach_processor, processor_attached
from htr.inference import predict as predict_module
from htr.inference.predict import Item, load

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "trocr-tiny-synthetic"


def scanned(word: Image.Image, degrees: float, margin: int, mode: str = "RGB") -> Image.Image:
    """``word`` as a careless scan has it: on a sheet with ``margin`` px of paper around it, tilted by ``degrees``.

    ``RGBA``: the paper is transparent (dark ink on nothing), which plain ``convert("RGB")`` turns black.
    """
    sheet = Image.new("RGB", (word.width + 2 * margin, word.height + 2 * margin), "white")
    sheet.paste(word.convert("RGB"), (margin, margin))
    tilted = sheet.rotate(degrees, Image.Resampling.BILINEAR, expand=True, fillcolor="white")
    if mode != "RGBA":
        return tilted.convert(mode)
    ink = tilted.convert("L").point(lambda value: 255 - value)  # dark ink opaque, white paper transparent
    return Image.merge("RGBA", (*Image.new("RGB", tilted.size, "black").split(), ink))


@pytest.fixture(scope="module")
def scans(words_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six tilted, wide-margin lines saved as files (one gray, the last transparent), as a user has them."""
    words = sorted((words_csv.parent / "images").iterdir())[:6]
    folder = tmp_path_factory.mktemp("scans")
    paths = []
    for index, (path, degrees, margin, mode) in enumerate(
        zip(
            words,
            (3, -4, 2.5, 0, -2, 4),
            (40, 60, 25, 80, 50, 30),
            ("RGB", "RGB", "L", "RGB", "RGB", "RGBA"),
            strict=True,
        )
    ):
        with Image.open(path) as word:
            paths.append(folder / f"scan_{index}.png")
            scanned(word, degrees, margin, mode).save(paths[-1])
    return paths


def predict_reading(model_dir: Path, paths: list[Path]) -> tuple[torch.Tensor, list[str]]:
    """What ``htr.inference.predict`` feeds the model for ``paths`` (one batch), and the texts it reads."""
    model, processor = load(str(model_dir), device="cpu")
    fed = []
    generate = model.generate

    def spy(pixel_values: torch.Tensor, **kwargs):
        fed.append(pixel_values)
        return generate(pixel_values, **kwargs)

    model.generate = spy
    rows, skipped = predict_module.predict(model, processor, [Item(path) for path in paths])
    assert not skipped and len(fed) == 1
    return fed[0], [row["prediction"] for row in rows]


def habitual_reading(model_dir: Path, paths: list[Path], rgb: bool = False) -> tuple[torch.Tensor, list[str]]:
    """Every TrOCR tutorial's path, with ``trust_remote_code=True``: pixel values and texts. ``rgb``: with the
    tutorials' ``.convert("RGB")``, which the plain TrOCRProcessor needs."""
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    model = VisionEncoderDecoderModel.from_pretrained(model_dir).eval()
    images = [Image.open(path).convert("RGB") if rgb else Image.open(path) for path in paths]
    pixel_values = processor(images=images, return_tensors="pt").pixel_values
    with torch.inference_mode():
        ids = model.generate(pixel_values)
    return pixel_values, processor.batch_decode(ids, skip_special_tokens=True)


def test_the_habitual_path_reads_the_shipped_model_exactly_as_predict(scans: list[Path]) -> None:
    """The shipped model was trained on deskewed lines cut to their ink: AutoProcessor + generate must see
    those very pixels (before issue 32 it saw the raw scan and read much worse)."""
    expected_pixels, expected_texts = predict_reading(SHIPPED, scans)
    pixel_values, texts = habitual_reading(SHIPPED, scans)
    assert torch.equal(pixel_values, expected_pixels)
    assert texts == expected_texts
    # The scans are ones where the reading matters: the plain processor feeds other pixels.
    plain = TrOCRProcessor.from_pretrained(SHIPPED)
    raw = plain(images=[Image.open(path).convert("RGB") for path in scans], return_tensors="pt").pixel_values
    assert not torch.equal(raw, expected_pixels)


def test_the_project_s_own_loading_gets_the_standard_processor_without_a_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """run_trocr.py and predict.load call AutoProcessor without trust_remote_code: the auto_map must neither
    prompt nor warn, and they must get TrOCRProcessor (they apply the reading themselves, once)."""
    with caplog.at_level(logging.WARNING):
        processor = AutoProcessor.from_pretrained(SHIPPED)
    assert type(processor) is TrOCRProcessor
    assert caplog.records == []


def test_a_folder_without_the_processor_loads_and_reads_as_before(
    tiny_model_dir: Path, scans: list[Path]
) -> None:
    """Microsoft's checkpoints and folders saved before issue 32: no auto_map, so trust_remote_code changes
    nothing, and the habitual path reads the images as they are, as predict does for such a model."""
    assert not processor_attached(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    assert type(processor) is TrOCRProcessor
    opaque = scans[:-1]  # convert("RGB") blackens the transparent one's paper, as it always did
    expected_pixels, expected_texts = predict_reading(tiny_model_dir, opaque)
    pixel_values, texts = habitual_reading(tiny_model_dir, opaque, rgb=True)
    assert torch.equal(pixel_values, expected_pixels) and texts == expected_texts


def test_a_model_without_reading_keys_reads_images_as_they_are_with_the_processor_attached(
    tiny_model_dir: Path, scans: list[Path], tmp_path: Path
) -> None:
    """run_trocr.py attaches the processor to every run; a model that neither deskews nor crops gets the
    very pixels of the plain TrOCRProcessor (on RGB images) through it."""
    folder = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, folder)
    processing_module.main([str(folder)])  # python -m htr.core.processing FOLDER
    assert processor_attached(folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__name__ == "TrOCRLineProcessor"
    rgb = [Image.open(path).convert("RGB") for path in scans[:-1]]  # the last one is transparent
    plain = TrOCRProcessor.from_pretrained(tiny_model_dir)
    assert torch.equal(
        processor(images=rgb, return_tensors="pt").pixel_values,
        plain(images=rgb, return_tensors="pt").pixel_values,
    )
    assert type(AutoProcessor.from_pretrained(folder)) is TrOCRProcessor


def test_the_processor_reads_the_model_config_s_settings_and_saves_loadable_without_remote_code(
    tiny_model_dir: Path, scans: list[Path], tmp_path: Path
) -> None:
    """config.json is the one home of the reading: switching crop_to_ink there switches the processor. A
    processor saved from the loaded one still loads with and without trust_remote_code."""
    folder = tmp_path / "cropping"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**config, "crop_to_ink": True}), encoding="utf-8")
    attach_processor(folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert (processor.line_reading.deskew, processor.line_reading.crop_to_ink) == (False, True)
    expected_pixels, _ = predict_reading(folder, scans)
    assert torch.equal(
        processor(images=[Image.open(path) for path in scans], return_tensors="pt").pixel_values,
        expected_pixels,
    )

    saved = tmp_path / "saved"
    processor.save_pretrained(saved)
    shutil.copyfile(folder / "config.json", saved / "config.json")
    assert type(AutoProcessor.from_pretrained(saved)) is TrOCRProcessor
    again = AutoProcessor.from_pretrained(saved, trust_remote_code=True)
    assert (again.line_reading.deskew, again.line_reading.crop_to_ink) == (
        False,
        True,
    )  # from saved/'s own module
    assert "line_reading" not in json.loads((saved / "processor_config.json").read_text(encoding="utf-8"))


def test_an_image_the_processor_cannot_resize_is_refused_with_the_reason() -> None:
    processor = AutoProcessor.from_pretrained(SHIPPED, trust_remote_code=True)
    with pytest.raises(ValueError, match="too wide for this model"):
        processor(images=Image.new("RGB", (8000, 10), "white"), return_tensors="pt")


def test_the_shipped_model_carries_this_repository_s_processor_code() -> None:
    """models/trocr-tiny-synthetic holds copies (they travel with the weights); they must not drift."""
    source = Path(processing_module.__file__).parent
    for name in MODULE_FILES:
        assert (SHIPPED / name).read_bytes() == (source / name).read_bytes(), (
            f"{SHIPPED / name} differs from htr/core/{name}: run python -m htr.core.processing {SHIPPED}"
        )
    assert processor_attached(SHIPPED)


def test_the_readme_s_habitual_snippet_reads_as_predict(
    scans: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README promises that this path reads exactly what htr.inference.predict reads: it does."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
        if "AutoProcessor.from_pretrained" in block
    ]
    assert "trust_remote_code=True" in snippet
    _, expected = predict_reading(SHIPPED, scans[:1])
    monkeypatch.chdir(ROOT)

    exec(snippet.replace('"line.png"', repr(str(scans[0]))), {})

    assert capsys.readouterr().out == expected[0] + "\n"
