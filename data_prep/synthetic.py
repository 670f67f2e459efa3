"""Render synthetic handwriting (TextRecognitionDataGenerator-style) into an ``english.csv`` dataset.

    python -m data_prep.synthetic --out data/synthetic --num_samples 2000 --fonts train --grid

Each sample is one word or one line drawn in a handwriting font (one font = one ``writer``), degraded
the way real scans are (slant, rotation, wavy baseline, ink width and colour, blur, noise, paper,
JPEG, elastic warp); ``strong`` also varies the hand itself (a quarter of the text in block capitals,
letters of uneven size, narrower or wider letters), and ``hands`` more so (letters crowded until they
touch or spaced apart, each turned its own way). Each is cropped tight with padding and scaled to a
fixed height. Labels are exactly what is drawn: each font's real coverage (see ``data_prep.fonts``)
decides which characters survive, and capitals-only fonts get uppercased labels. ``--augment none``
writes clean lossless PNGs; ``light`` writes JPEGs of quality 70-95, ``strong`` and ``hands`` of
quality 25-95: the compression artefact real scans carry, and ~10x faster to write than a noisy PNG.

``difficulty`` (for curriculum learning) is ``0.5 * min(len(label) / 60, 1) + 0.5 * distortion``,
where ``distortion`` in [0, 1] is the mean of this sample's drawn augmentation magnitudes, each
relative to the ``strong`` maximum (0 with ``--augment none``). Long, heavily degraded lines are
near 1, short clean words near 0.

Every sample draws from its own generator seeded with ``(seed, index)``, so a seed gives
byte-identical images and CSV whatever ``--workers`` is. Held-out writers (fonts-bwht, fonts-breip)
get split ``test`` unless ``--split`` says otherwise, and are refused for ``--split train``.
"""

import argparse
import csv
import dataclasses
import functools
import math
import multiprocessing
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from data_prep.corpus import DEFAULT_CHARSET, load_corpus
from data_prep.fonts import FontCoverage, check_split, font_coverage, is_eval_font, resolve_fonts
from htr.core.text import normalize_text
from htr.data.dataset_csv import COLUMNS as CSV_COLUMNS
from htr.data.dataset_csv import SPLITS, write_csv

CSV_NAME = "english.csv"
GRID_NAME = "sample_grid.png"
COLUMNS = (*CSV_COLUMNS, "difficulty")  # the shared columns and the curriculum score
KINDS = ("words", "lines", "mixed")
MAX_LINE_CHARS = 60


@dataclass(frozen=True)
class Augment:
    """Upper bounds of each degradation; every sample draws its own values below them."""

    shear: float  # horizontal shear (x shift per unit height); slants mostly to the right
    rotate: float  # degrees
    word_jitter: float  # per-word baseline offset, fraction of the font size
    glyph_jitter: float  # per-glyph offset, fraction of the font size (0: words drawn whole)
    spacing: float  # extra word spacing, fraction of the font size
    stroke: int  # ink width change in dilation/erosion steps
    ink: int  # lightest ink grey level (0 = black)
    paper: int  # darkest paper is 255 - paper; also scales gradient and stains
    fade: float  # ink opacity loss
    blur: float  # Gaussian blur radius at output size
    noise: float  # Gaussian pixel noise sigma
    jpeg_quality: int | None  # lowest JPEG quality (up to 95); None: lossless PNG
    elastic: float  # elastic warp amplitude, fraction of the font size
    caps: float = 0.0  # share of samples written in block capitals, as forms and notes often are
    glyph_scale: float = 0.0  # per-glyph size change (with glyph_jitter): uneven letters, another hand
    x_scale: float = 0.0  # letter width change (narrow to wide hands), fraction of the width
    tracking: float = 0.0  # per-word letter spacing change (with glyph_jitter), fraction of the font size
    glyph_rotate: float = 0.0  # per-glyph rotation in degrees (with glyph_jitter): letters that lean apart


AUGMENTS = {
    "none": Augment(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, 0),
    "light": Augment(0.25, 1.5, 0.04, 0, 0.3, 1, 60, 40, 0.15, 0.7, 5, 70, 0),
    "strong": Augment(0.5, 4, 0.1, 0.04, 0.8, 2, 100, 80, 0.25, 1.3, 14, 25, 0.04, 0.25, 0.12, 0.2),
}
STRONG = AUGMENTS["strong"]
# ``strong`` plus more variation of the hand itself, where the glyphs are drawn one by one: letters
# crowded until they touch or spaced apart, each leaning its own way. The held-out hands fail most where
# letters touch (UN read as W, LL as L) and where one letter's shape is another's in the training hands.
AUGMENTS["hands"] = dataclasses.replace(STRONG, tracking=0.1, glyph_rotate=8)


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render sample ``index``; pickled once per chunk of work."""

    out_dir: Path
    fonts: tuple[FontCoverage, ...]
    seed: int
    kind: str
    min_words: int
    max_words: int
    height: int
    split: str | None
    augment: Augment
    charset: str


@functools.lru_cache(maxsize=4096)  # fonts x sizes, incl. per-glyph sizes
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _sample_label(job: Job, font: FontCoverage, rng: np.random.Generator) -> str:
    """Draw text until the font can show some of it; keep only what it draws and the charset allows."""
    corpus = load_corpus()
    for _ in range(100):
        lines = job.kind == "lines" or (job.kind == "mixed" and rng.random() < 0.5)
        text = (
            corpus.line(rng, job.min_words, job.max_words, MAX_LINE_CHARS, job.charset)
            if lines
            else corpus.word(rng, job.charset)
        )
        if job.augment.caps and rng.random() < job.augment.caps:
            text = text.upper()
        label = normalize_text("".join(c for c in font.drawable_text(text) if c == " " or c in job.charset))
        if label:
            return label
    raise ValueError(f"{font.path.name} draws none of the characters in the charset")


def _draw_text(
    label: str, font: ImageFont.FreeTypeFont, aug: Augment, rng: np.random.Generator
) -> Image.Image:
    """Ink mask (255 = ink) of ``label``: words spaced by ink extent, each on a jittered baseline."""
    size = font.size
    words = label.split(" ")
    boxes = [font.getbbox(word, anchor="ls") for word in words]
    offsets = rng.uniform(-aug.word_jitter, aug.word_jitter, len(words)) * size
    glyphwise = aug.glyph_jitter > 0 and rng.random() < 0.5
    gaps = (0.3 + rng.uniform(0, aug.spacing, len(words))) * size
    tracking = np.zeros(len(words))
    if glyphwise and aug.tracking:
        tracking = rng.uniform(-aug.tracking, aug.tracking, len(words)) * size
    xs, x = [], 0.0
    for word, (left, _, right, _), gap, track in zip(words, boxes, gaps, tracking, strict=True):
        xs.append(x - left)
        x += right - left + track * (len(word) - 1) + gap
    margin = int(size * (0.3 + aug.glyph_jitter + aug.elastic))
    top = min(box[1] + dy for box, dy in zip(boxes, offsets, strict=True))
    bottom = max(box[3] + dy for box, dy in zip(boxes, offsets, strict=True))
    mask = Image.new("L", (int(x - gaps[-1]) + 2 * margin, int(bottom - top) + 2 * margin), 0)
    draw = ImageDraw.Draw(mask)
    for word, word_x, dy, track in zip(words, xs, offsets, tracking, strict=True):
        baseline = margin - top + dy
        if not glyphwise:
            draw.text((margin + word_x, baseline), word, font=font, fill=255, anchor="ls")
            continue
        jitter = rng.uniform(-aug.glyph_jitter, aug.glyph_jitter, (len(word), 2)) * size
        scales = rng.uniform(1 - aug.glyph_scale, 1 + aug.glyph_scale, len(word))
        scales /= scales.mean()  # uneven letters, but the word keeps the width it was placed with
        angles = (
            rng.uniform(-aug.glyph_rotate, aug.glyph_rotate, len(word))
            if aug.glyph_rotate
            else [None] * len(word)
        )
        glyph_x = margin + word_x
        for char, (dx, dy), scale, angle in zip(word, jitter, scales, angles, strict=True):
            glyph = _font(Path(font.path), max(round(size * scale), 4))
            if angle is None:
                draw.text((glyph_x + dx, baseline + dy), char, font=glyph, fill=255, anchor="ls")
            else:
                _draw_turned_glyph(mask, char, glyph, (glyph_x + dx, baseline + dy), angle)
            glyph_x += glyph.getlength(char) + track
    return mask


def _draw_turned_glyph(
    mask: Image.Image, char: str, font: ImageFont.FreeTypeFont, origin: tuple[float, float], degrees: float
) -> None:
    """Add ``char`` to ``mask`` with its baseline origin at ``origin``, turned by ``degrees`` about it."""
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    pad = font.size // 4  # room for the turned corners: 8 degrees moves them by < size / 7
    glyph = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    anchor = (pad - left, pad - top)
    ImageDraw.Draw(glyph).text(anchor, char, font=font, fill=255, anchor="ls")
    glyph = glyph.rotate(degrees, Image.Resampling.BILINEAR, center=anchor)
    x, y = round(origin[0]) - anchor[0], round(origin[1]) - anchor[1]
    box = (x, y, x + glyph.width, y + glyph.height)
    mask.paste(ImageChops.lighter(mask.crop(box), glyph), box)  # overlapping letters keep both inks


def _ink_fraction(mask: Image.Image, box: tuple[int, int, int, int]) -> float:
    histogram = mask.crop(box).histogram()
    return sum(histogram[128:]) / max(sum(histogram), 1)


def _change_stroke(mask: Image.Image, steps: int) -> Image.Image:
    """Thicker (dilate) or thinner (erode) ink, unless that fills the letters' holes or erases thin strokes.

    Limits measured on the training fonts: bold hands (Lobster, Leckerli) are ~40% ink in their box,
    so past 45% counters close up; eroding hairline hands (Ecolier, Kristi) keeps under 30% of their ink.
    """
    box = mask.getbbox()
    if box is None:
        return mask
    size = 2 * abs(steps) + 1
    changed = mask.filter(ImageFilter.MaxFilter(size) if steps > 0 else ImageFilter.MinFilter(size))
    before, after = _ink_fraction(mask, box), _ink_fraction(changed, box)
    keep = after <= 0.45 if steps > 0 else after >= 0.6 * before
    return changed if keep else mask


def _affine(mask: Image.Image, shear: float, degrees: float) -> Image.Image:
    """Slant and rotate in one resampling, into a canvas that holds every transformed corner."""
    angle = math.radians(degrees)
    forward = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ np.array(
        [[1.0, -shear], [0.0, 1.0]]
    )
    width, height = mask.size
    corners = forward @ np.array([[0, width, 0, width], [0, 0, height, height]], float)
    low, high = corners.min(axis=1), corners.max(axis=1)
    inverse = np.linalg.inv(forward)
    shift = inverse @ low
    data = (*inverse[0], shift[0], *inverse[1], shift[1])
    size = (math.ceil(high[0] - low[0]), math.ceil(high[1] - low[1]))
    return mask.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)


def _elastic(mask: Image.Image, amplitude: float, rng: np.random.Generator) -> Image.Image:
    """Smooth wobble: a coarse grid of randomly displaced nodes, each cell warped bilinearly (MESH)."""
    width, height = mask.size
    cell = max(height // 2, 8)
    xs = np.linspace(0, width, max(round(width / cell), 1) + 1)
    ys = np.linspace(0, height, max(round(height / cell), 1) + 1)
    node_x = xs[None, :] + rng.normal(0, amplitude, (len(ys), len(xs)))
    node_y = ys[:, None] + rng.normal(0, amplitude, (len(ys), len(xs)))
    corners = ((0, 0), (1, 0), (1, 1), (0, 1))  # source quad order: NW, SW, SE, NE as (row, column) steps
    mesh = [
        (
            (round(xs[j]), round(ys[i]), round(xs[j + 1]), round(ys[i + 1])),
            tuple(v for di, dj in corners for v in (node_x[i + di, j + dj], node_y[i + di, j + dj])),
        )
        for i in range(len(ys) - 1)
        for j in range(len(xs) - 1)
    ]
    return mask.transform(mask.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)


def _paper(shape: tuple[int, int], aug: Augment, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Paper grey level: base tone, linear lighting gradient and soft stains; returns it and its darkness."""
    height, width = shape
    darkness = rng.uniform(0, aug.paper)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (
        np.cos(angle) * np.linspace(-0.5, 0.5, width)[None, :]
        + np.sin(angle) * np.linspace(-0.5, 0.5, height)[:, None]
    )
    coarse = rng.normal(0, 1, (3, max(width // height * 2, 2))).astype(np.float32)
    stains = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    paper = 255 - darkness + rng.uniform(0, 0.5) * aug.paper * ramp + 0.15 * aug.paper * stains
    return paper, darkness


def render_sample(job: Job, index: int) -> dict[str, str]:
    """Render sample ``index`` to ``job.out_dir/images`` and return its CSV row."""
    rng = np.random.default_rng([job.seed, index])
    aug = job.augment
    coverage = job.fonts[rng.integers(len(job.fonts))]
    label = _sample_label(job, coverage, rng)
    font = _font(coverage.path, round(job.height * rng.uniform(0.9, 1.2)))

    mask = _draw_text(label, font, aug, rng)
    steps = int(rng.integers(-aug.stroke, aug.stroke + 1))
    if steps:
        mask = _change_stroke(mask, steps)
    shear = rng.uniform(-aug.shear / 3, aug.shear)
    degrees = rng.uniform(-aug.rotate, aug.rotate)
    if shear or degrees:
        mask = _affine(mask, shear, degrees)
    elastic = rng.uniform(0, aug.elastic) * font.size if rng.random() < 0.5 else 0.0
    if elastic:
        mask = _elastic(mask, elastic, rng)

    left, top, right, bottom = mask.getbbox() or (0, 0, 1, 1)
    pad_x, pad_y = (bottom - top) * rng.uniform(0.03, 0.12, 2)
    box = (round(left - pad_x), round(top - pad_y), round(right + pad_x), round(bottom + pad_y))
    scale = job.height / (box[3] - box[1])
    scale_x = scale * rng.uniform(1 - aug.x_scale, 1 + aug.x_scale) if aug.x_scale else scale
    mask = mask.crop(box).resize(
        (max(round((box[2] - box[0]) * scale_x), 1), job.height), Image.Resampling.BILINEAR
    )
    blur = rng.uniform(0, aug.blur)
    if blur > 0.2:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))

    paper, darkness = _paper((mask.height, mask.width), aug, rng)
    ink_level = rng.uniform(0, aug.ink)
    alpha = np.asarray(mask, np.float32) / 255 * (1 - rng.uniform(0, aug.fade))
    noise = rng.uniform(0, aug.noise)
    grey = paper * (1 - alpha) + ink_level * alpha + rng.standard_normal(alpha.shape, np.float32) * noise
    tint = rng.uniform(-1, 1, 3) * aug.paper / 25  # faint warm/cool cast, still grayscale-looking
    pixels = np.clip(grey[..., None] + tint, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")

    name = f"images/{index:07d}.{'png' if aug.jpeg_quality is None else 'jpg'}"
    quality = 95 if aug.jpeg_quality is None else int(rng.integers(aug.jpeg_quality, 96))
    image.save(job.out_dir / name, quality=quality)  # PNG ignores quality

    strength = [
        abs(shear) / STRONG.shear,
        abs(degrees) / STRONG.rotate,
        abs(steps) / STRONG.stroke,
        elastic / font.size / STRONG.elastic,
        blur / STRONG.blur,
        noise / STRONG.noise,
        (ink_level + darkness) / (STRONG.ink + STRONG.paper),
        (95 - quality) / (95 - STRONG.jpeg_quality),
    ]
    difficulty = 0.5 * min(len(label) / MAX_LINE_CHARS, 1) + 0.5 * float(np.mean(strength))
    split = job.split or ("test" if is_eval_font(coverage.path) else "train")
    return {
        "image": name,
        "label": label,
        "source": "synthetic",
        "writer": coverage.path.stem,
        "split": split,
        "difficulty": f"{difficulty:.3f}",
    }


def generate(
    out_dir: str | Path,
    num_samples: int,
    fonts: str | Path | Sequence[str | Path] = "train",
    seed: int = 0,
    kind: str = "mixed",
    min_words: int = 3,
    max_words: int = 6,
    height: int = 64,
    workers: int = 2,
    split: str | None = None,
    augment: str = "light",
    charset: str = DEFAULT_CHARSET,
    grid: bool = False,
) -> Path:
    """Render ``num_samples`` images into ``out_dir/images`` and return the path of ``english.csv``.

    ``fonts`` is ``"train"``, ``"eval"``, ``"all"`` or font paths; ``split=None`` labels held-out
    writers ``test`` and the rest ``train``. Prints the rendering speed in images/s.
    """
    if kind not in KINDS or augment not in AUGMENTS or (split is not None and split not in SPLITS):
        raise ValueError(f"kind must be in {KINDS}, augment in {tuple(AUGMENTS)}, split in {SPLITS}")
    if not 1 <= min_words <= max_words:
        raise ValueError("need 1 <= min_words <= max_words")
    font_paths = resolve_fonts(fonts)
    check_split(font_paths, split)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    for stale in (out_dir / "images").glob("[0-9]*.*"):  # a previous run's images, maybe other format
        if re.fullmatch(r"\d{7}\.(png|jpg)", stale.name):
            stale.unlink()
    load_corpus()  # once here, inherited by forked workers
    job = Job(
        out_dir=out_dir,
        fonts=tuple(font_coverage(path) for path in font_paths),
        seed=seed,
        kind=kind,
        min_words=min_words,
        max_words=max_words,
        height=height,
        split=split,
        augment=AUGMENTS[augment],
        charset="".join(sorted(set(charset))),
    )
    render = functools.partial(render_sample, job)
    start = time.perf_counter()
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            rows = pool.map(
                render, range(num_samples), chunksize=max(1, min(64, num_samples // (4 * workers)))
            )
    else:
        rows = [render(index) for index in range(num_samples)]
    elapsed = time.perf_counter() - start
    csv_path = out_dir / CSV_NAME
    write_csv(csv_path, rows, COLUMNS)
    print(
        f"{num_samples} images in {elapsed:.1f} s: {num_samples / elapsed:.0f} images/s ({workers} workers)"
    )
    if grid:
        write_grid(csv_path, out_dir / GRID_NAME)
    return csv_path


def write_grid(csv_path: str | Path, out_path: str | Path, count: int = 24, columns: int = 2) -> Path:
    """Contact sheet of the first ``count`` images with label and writer under each, to eyeball labels."""
    csv_path = Path(csv_path)
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:count]
    cell_width, image_height, caption = 720, 64, 22
    font = ImageFont.load_default(size=16)
    sheet = Image.new(
        "RGB", (cell_width * columns, math.ceil(len(rows) / columns) * (image_height + caption + 8)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x, y = (i % columns) * cell_width, (i // columns) * (image_height + caption + 8)
        with Image.open(csv_path.parent / row["image"]) as image:
            image.thumbnail((cell_width - 10, image_height))
            sheet.paste(image, (x + 4, y + 2))
        draw.text(
            (x + 4, y + image_height + 4), f"{row['label']}   [{row['writer']}]", font=font, fill=(200, 0, 0)
        )
    sheet.save(out_path)
    return Path(out_path)


def main(argv: Sequence[str] | None = None) -> Path:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (images/, english.csv)")
    parser.add_argument("--num_samples", type=int, required=True)
    parser.add_argument(
        "--fonts",
        nargs="+",
        default=["train"],
        help="train | web | web_more | print | eval | all | font files",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", choices=KINDS, default="mixed")
    parser.add_argument("--min_words", type=int, default=3, help="words per line, lower bound")
    parser.add_argument("--max_words", type=int, default=6, help="words per line, upper bound")
    parser.add_argument("--height", type=int, default=64, help="image height in pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--split", choices=SPLITS, help="default: test for held-out writers, else train")
    parser.add_argument("--augment", choices=tuple(AUGMENTS), default="light")
    parser.add_argument("--charset", default=DEFAULT_CHARSET, help="characters labels may contain")
    parser.add_argument("--grid", action="store_true", help=f"also write {GRID_NAME} with 24 samples")
    args = parser.parse_args(argv)
    try:
        return generate(
            args.out,
            args.num_samples,
            fonts=args.fonts,
            seed=args.seed,
            kind=args.kind,
            min_words=args.min_words,
            max_words=args.max_words,
            height=args.height,
            workers=args.workers,
            split=args.split,
            augment=args.augment,
            charset=args.charset,
            grid=args.grid,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
