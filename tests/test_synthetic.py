"""Synthetic handwriting: reproducible, held-out writers kept out of training, labels match the ink."""

import csv
import dataclasses
import random
import re
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib.tables._g_l_y_f import Glyph
from PIL import Image, ImageFont

from data_prep.fonts import (
    FONT_ROOT,
    PRINT_FONT_FILES,
    TRAIN_FONT_FILES,
    eval_fonts,
    font_coverage,
    is_eval_font,
    print_fonts,
    resolve_fonts,
    train_fonts,
)
from data_prep.synthetic import AUGMENTS, COLUMNS, Job, _draw_text, generate, main, render_sample
from htr.core.text import normalize_text
from htr.data.dataset_csv import read_table, write_csv

needs_eval_fonts = pytest.mark.skipif(not eval_fonts(), reason="fonts-bwht/fonts-breip not installed")
needs_train_fonts = pytest.mark.skipif(not train_fonts(), reason="training font packages not installed")


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _polygons(polygons: list[list[tuple[int, int]]]) -> Glyph:
    pen = TTGlyphPen(None)
    for points in polygons:
        pen.moveTo(points[0])
        for point in points[1:]:
            pen.lineTo(point)
        pen.closePath()
    return pen.glyph()


def _glyph(seed: int, height: int) -> Glyph:
    """A distinct blocky glyph: a stem plus a seeded pattern of cells on a 4x5 grid."""
    bits = random.Random(seed).getrandbits(15)
    cells = [(0, row) for row in range(5)] + [(1 + i % 3, i // 3) for i in range(15) if bits >> i & 1]
    step = height // 5
    return _polygons(
        [
            [(x, y), (x, y + step), (x + 120, y + step), (x + 120, y)]
            for x, y in ((50 + col * 120, row * step) for col, row in cells)
        ]
    )


def _build_font(path: Path, family: str, caps_only: bool) -> Path:
    """TrueType font drawing printable ASCII except '?' (missing) and 'x' (empty glyph).

    With ``caps_only`` every lowercase code point maps to its capital's glyph, like fonts that draw
    each letter as a capital.
    """
    chars = [c for c in string.printable.strip() if c != "?"]
    hollow_box = [[(50, 0), (50, 700), (550, 700), (550, 0)], [(100, 50), (500, 50), (500, 650), (100, 650)]]
    glyphs = {".notdef": _polygons(hollow_box), "space": _polygons([])}
    cmap = {32: "space"}
    for char in chars:
        name = f"u{ord(char):04X}"
        if caps_only and char.islower():
            name = f"u{ord(char.upper()):04X}"
        elif char == "x":
            glyphs[name] = _polygons([])
        else:
            glyphs[name] = _glyph(ord(char), 500 if char.islower() else 700)
        cmap[ord(char)] = name
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(list(glyphs))
    builder.setupCharacterMap(cmap)
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({name: (600, 0) for name in glyphs})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))
    return path


@pytest.fixture(scope="module")
def caps_font(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_font(tmp_path_factory.mktemp("fonts") / "CapsOnly.ttf", "Test Caps", caps_only=True)


@pytest.fixture(scope="module")
def mixed_font(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_font(tmp_path_factory.mktemp("fonts") / "Mixed.ttf", "Test Mixed", caps_only=False)


def test_every_font_package_is_installed_by_setup() -> None:
    listed = (Path(__file__).parents[1] / "data_prep/apt-packages.txt").read_text().split()
    packages = {package for package, _ in (*TRAIN_FONT_FILES, *PRINT_FONT_FILES)}
    assert packages | {"fonts-bwht", "fonts-breip", "wamerican"} <= set(listed)


def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path: Path, mixed_font: Path) -> None:
    fonts = [mixed_font, *train_fonts()[:4]]
    one = generate(tmp_path / "one", 24, fonts=fonts, seed=7, augment="strong", workers=1)
    two = generate(tmp_path / "two", 24, fonts=fonts, seed=7, augment="strong", workers=2)
    other = generate(tmp_path / "other", 24, fonts=fonts, seed=8, augment="strong", workers=1)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes() != other.read_bytes()
    for row in _read_rows(one):
        assert (one.parent / row["image"]).read_bytes() == (two.parent / row["image"]).read_bytes()


@needs_eval_fonts
@needs_train_fonts
def test_held_out_writers_never_reach_training(tmp_path: Path) -> None:
    assert set(train_fonts() + print_fonts()).isdisjoint(eval_fonts())
    assert not any(is_eval_font(path) for path in train_fonts() + print_fonts())
    assert set(resolve_fonts(["train", "print"])) == set(train_fonts()) | set(print_fonts())
    assert all(is_eval_font(path) for path in eval_fonts())
    with pytest.raises(ValueError, match="held-out"):
        generate(tmp_path / "leak", 4, fonts="eval", split="train", workers=1)
    # A copied and renamed held-out font is still recognised by its family name.
    disguised = shutil.copy(eval_fonts()[-1], tmp_path / "MyHand.ttf")
    with pytest.raises(ValueError, match="held-out"):
        generate(tmp_path / "leak", 4, fonts=[disguised], split="train", workers=1)

    rows = _read_rows(generate(tmp_path / "all", 40, fonts="all", workers=1))
    eval_stems = {path.stem for path in eval_fonts()}
    assert {row["split"] for row in rows if row["writer"] in eval_stems} == {"test"}
    assert {row["split"] for row in rows if row["writer"] not in eval_stems} == {"train"}
    train_rows = _read_rows(generate(tmp_path / "train", 40, fonts="train", workers=1))
    assert not {row["writer"] for row in train_rows} & eval_stems


def test_capitals_only_font_gets_uppercase_labels(tmp_path: Path, caps_font: Path, mixed_font: Path) -> None:
    assert font_coverage(caps_font).caps_only
    assert not font_coverage(mixed_font).caps_only
    rows = _read_rows(generate(tmp_path, 40, fonts=[caps_font], kind="mixed", workers=1))
    labels = [row["label"] for row in rows]
    assert all(label == label.upper() for label in labels)
    assert any(char.isalpha() for label in labels for char in label)


def test_strong_augment_writes_some_mixed_case_text_in_block_capitals(
    tmp_path: Path, mixed_font: Path
) -> None:
    def capitals_share(augment: str) -> float:
        rows = _read_rows(generate(tmp_path / augment, 120, fonts=[mixed_font], augment=augment, workers=1))
        lettered = [row["label"] for row in rows if any(char.isalpha() for char in row["label"])]
        return sum(label == label.upper() for label in lettered) / len(lettered)

    light, strong = capitals_share("light"), capitals_share("strong")
    assert strong > light + 0.1, (light, strong)
    assert strong < 0.6  # most text keeps its case


def test_letter_width_change_stretches_or_squeezes_the_same_sample(tmp_path: Path, mixed_font: Path) -> None:
    """Same seed, same text and crop: only ``x_scale`` differs, so only the width may change, within its bound."""
    widths = {}
    for name, augment in (
        ("plain", AUGMENTS["none"]),
        ("scaled", dataclasses.replace(AUGMENTS["none"], x_scale=0.2)),
    ):
        (tmp_path / name / "images").mkdir(parents=True)
        job = Job(
            tmp_path / name, (font_coverage(mixed_font),), 3, "words", 3, 6, 48, None, augment, "abcdefgh"
        )
        rows = [render_sample(job, index) for index in range(12)]
        widths[name] = []
        for row in rows:
            with Image.open(tmp_path / name / row["image"]) as image:
                widths[name].append(image.width)
        widths[f"{name} labels"] = [row["label"] for row in rows]
    assert widths["plain labels"] == widths["scaled labels"]
    ratios = [scaled / plain for scaled, plain in zip(widths["scaled"], widths["plain"], strict=True)]
    assert all(0.75 < ratio < 1.25 for ratio in ratios), ratios
    assert sum(abs(ratio - 1) > 0.03 for ratio in ratios) >= 6, ratios


def _ink_width(mask: Image.Image) -> int:
    left, _, right, _ = mask.point(lambda value: 255 * (value > 127)).getbbox()
    return right - left


def test_hands_augment_crowds_spaces_and_turns_letters_without_cutting_any_off(mixed_font: Path) -> None:
    """Same seed and text, drawn glyph by glyph, with and without the ``hands`` variation of the letters."""
    font = ImageFont.truetype(str(mixed_font), 48)
    plain = dataclasses.replace(AUGMENTS["none"], glyph_jitter=1e-9)  # glyph by glyph, nothing else
    hands = AUGMENTS["hands"]
    varied = dataclasses.replace(plain, tracking=hands.tracking, glyph_rotate=hands.glyph_rotate)
    widths, inks = [], []
    for seed in range(24):
        before = _draw_text("abcdefgh", font, plain, np.random.default_rng(seed))
        after = _draw_text("abcdefgh", font, varied, np.random.default_rng(seed))
        ink = np.asarray(after) > 127
        assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any()), seed  # nothing cut
        if after.tobytes() != before.tobytes():  # this seed drew its glyphs one by one
            widths.append(_ink_width(after) - _ink_width(before))
            inks.append(ink.sum() / (np.asarray(before) > 127).sum())
    assert len(widths) >= 6
    assert min(widths) < -6 and max(widths) > 6, widths  # crowded and spaced-out letters
    assert all(0.7 < ratio < 1.3 for ratio in inks), inks  # every letter still there, none doubled


@pytest.mark.skipif(not (FONT_ROOT / "truetype/humor-sans").is_dir(), reason="fonts-humor-sans not installed")
@needs_eval_fonts
def test_debian_capitals_only_fonts_are_detected() -> None:
    assert font_coverage(FONT_ROOT / "truetype/humor-sans/Humor-Sans.ttf").caps_only
    assert all(font_coverage(path).caps_only for path in eval_fonts() if "bwht" in str(path))
    assert not font_coverage(FONT_ROOT / "truetype/breip/Breip.ttf").caps_only
    assert not any(font_coverage(path).caps_only for path in train_fonts() if "comic-neue" in str(path))


def test_missing_and_empty_glyphs_are_never_labelled(tmp_path: Path, mixed_font: Path) -> None:
    coverage = font_coverage(mixed_font)
    assert "?" not in coverage.drawable  # no cmap entry: FreeType draws .notdef
    assert "x" not in coverage.drawable  # mapped to an empty glyph
    assert {"a", "A", "7", "("} <= coverage.drawable
    assert coverage.drawable_text("box? yes") == "bo yes"
    rows = _read_rows(generate(tmp_path, 60, fonts=[mixed_font], charset="abxyz?!", workers=1))
    assert all(set(row["label"]) <= set("abyz! ") and row["label"] for row in rows)


@pytest.mark.skipif(
    not (FONT_ROOT / "truetype/tomsontalks").is_dir(), reason="fonts-tomsontalks not installed"
)
def test_debian_font_with_notdef_parentheses() -> None:
    coverage = font_coverage(FONT_ROOT / "truetype/tomsontalks/TomsonTalks.ttf")
    assert not {"(", ")", '"'} & coverage.drawable
    assert {"A", "Z", "0", "9", ".", "!"} <= coverage.drawable


@needs_train_fonts
def test_the_csv_is_what_the_shared_writer_writes(tmp_path: Path) -> None:
    """Same bytes as htr.data.dataset_csv.write_csv gives for the rows it holds (it wrote LF lines of its own)."""
    csv_path = generate(tmp_path, 4, fonts="train", kind="words", workers=1)
    rows = read_table(csv_path).to_dataset().to_list()
    assert [list(row) for row in rows] == [list(COLUMNS)] * 4
    assert csv_path.read_bytes() == write_csv(tmp_path / "again.csv", rows, COLUMNS).read_bytes()


@needs_train_fonts
def test_csv_format_and_images(tmp_path: Path) -> None:
    csv_path = generate(tmp_path, 30, fonts="all", kind="mixed", height=48, workers=1)
    assert csv_path == tmp_path / "english.csv"
    with csv_path.open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == list(COLUMNS)
    rows = _read_rows(csv_path)
    stems = {path.stem for path in train_fonts() + eval_fonts()}
    assert len(rows) == 30
    for row in rows:
        path = Path(row["image"])
        assert not path.is_absolute() and ".." not in path.parts
        with Image.open(tmp_path / path) as image:
            assert image.mode == "RGB" and image.height == 48 and image.width >= 8
        assert row["label"] and row["label"] == normalize_text(row["label"])
        assert len(row["label"]) <= 60
        assert row["source"] == "synthetic" and row["writer"] in stems
        assert 0.0 <= float(row["difficulty"]) <= 1.0
    assert any(" " in row["label"] for row in rows) and any(" " not in row["label"] for row in rows)


@needs_train_fonts
def test_difficulty_grows_with_augmentation(tmp_path: Path) -> None:
    def mean_difficulty(augment: str) -> float:
        rows = _read_rows(generate(tmp_path / augment, 30, kind="words", augment=augment, workers=1))
        return sum(float(row["difficulty"]) for row in rows) / len(rows)

    assert mean_difficulty("none") < mean_difficulty("light") < mean_difficulty("strong")
    assert all(path.suffix == ".png" for path in (tmp_path / "none/images").iterdir())


@needs_train_fonts
def test_cli_prints_speed_and_writes_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path), "--num_samples", "8", "--kind", "lines", "--workers", "1", "--grid"])
    assert re.search(r"8 images in [\d.]+ s: \d+ images/s", capsys.readouterr().out)
    with Image.open(tmp_path / "sample_grid.png") as grid:
        assert grid.width >= 720 and grid.height >= 4 * 64
    assert len(_read_rows(tmp_path / "english.csv")) == 8
    with pytest.raises(SystemExit):  # held-out writers refused for training, as a usage error
        main(["--out", str(tmp_path), "--num_samples", "2", "--fonts", "eval", "--split", "train"])
