"""A test set of the reserved writers rendered the way scans vary, by a path training never uses.

    python -m data_prep.presets scan_test      # data/scan_test/english.csv, 300 rows

``data/heldout`` is rendered by ``data_prep.synthetic`` like the training sets (tight crops, one
height, grey paper); a model chosen on it can learn that rendering instead of handwriting. This set
keeps the writers (fonts-bwht, fonts-breip only) and changes everything else: the text is licence
prose from ``/usr/share/common-licenses`` (the training corpus draws on ``/usr/share/dict/words`` and
generated strings, never on it), glyph heights 34-46 px, wide and uneven margins, a ruled line under
some words, slant by a PIL shear, rotation ±3°, light blur, pixel noise and lighter or blue ink. It is
drawn with PIL and numpy here, not with ``data_prep.synthetic`` or ``htr.data.augment``, so neither a
training set nor training-time augmentation shares its code path. It is a test set: never choose on it.

``role="validation"`` (preset ``scan_val``) renders the same way in the training hands only and on
other licences (``VALIDATION_TEXTS``), so checkpoints can be chosen on scan conditions without ever
looking at the reserved writers or the test texts.
"""

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from data_prep.fonts import font_coverage, is_eval_font, resolve_fonts
from htr.data.dataset_csv import write_csv

LICENSES = Path("/usr/share/common-licenses")
TEXTS = ("GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-3", "Artistic", "GFDL-1.3")
# not revisions of the test licences (GPL-2, LGPL-2.1 and GFDL-1.2 share most sentences with them)
VALIDATION_TEXTS = ("BSD", "CC0-1.0", "MPL-1.1")


def _phrases(texts: tuple[str, ...]) -> list[str]:
    """Runs of 2-7 words of licence prose, in file order (deterministic, no corpus overlap)."""
    words: list[str] = []
    for name in texts:
        path = LICENSES / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install Debian's base-files (it ships the licences)")
        words += re.sub(r"[^A-Za-z0-9.,;:'()\- ]+", " ", path.read_text(encoding="utf-8")).split()
    phrases, start, size = [], 0, 2
    while start + size < len(words):
        phrases.append(" ".join(words[start : start + size]))
        start, size = start + size, 2 + (start * 7 + 3) % 6
    return phrases


def render_line(text: str, font_path: Path, rng: np.random.Generator) -> Image.Image:
    """One line as a scan might show it: margins, an underline, slant, rotation, blur, noise, ink tone."""
    height = int(rng.integers(34, 47))
    font = ImageFont.truetype(str(font_path), height)
    left, top, right, bottom = font.getbbox(text)
    margins = rng.integers(4, 40, 4)  # left, top, right, bottom: wide and uneven
    width, canvas_height = right - left + margins[0] + margins[2], bottom - top + margins[1] + margins[3]
    mask = Image.new("L", (int(width), int(canvas_height)), 0)
    draw = ImageDraw.Draw(mask)
    draw.text((margins[0] - left, margins[1] - top), text, font=font, fill=255)
    if rng.random() < 0.3:  # a ruled line under the words
        y = int(margins[1] + bottom - top + rng.integers(1, 6))
        draw.line((0, y, mask.width, y), fill=int(rng.integers(90, 200)), width=int(rng.integers(1, 3)))
    shear = float(np.tan(np.radians(rng.uniform(-14, 14))))
    grow = int(abs(shear) * mask.height) + 2
    mask = mask.transform(
        (mask.width + grow, mask.height),
        Image.Transform.AFFINE,
        (1, shear, -grow / 2 if shear > 0 else 0, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    mask = mask.rotate(rng.uniform(-3, 3), Image.Resampling.BILINEAR, expand=True)
    if rng.random() < 0.5:
        mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    paper = rng.uniform(225, 255) + rng.uniform(-6, 6, 3)
    ink = rng.uniform(0, 110) + (np.array([10.0, 20.0, 90.0]) if rng.random() < 0.3 else 0)  # grey or blue
    pixels = paper * (1 - alpha) + ink * alpha + rng.normal(0, rng.uniform(0, 8), (*alpha.shape[:2], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def generate_scan_test(
    out_dir: str | Path, num_samples: int, seed: int, fonts: str = "eval", role: str = "test"
) -> Path:
    """Write ``num_samples`` lines in ``fonts`` and their english.csv to ``out_dir``.

    ``role="test"``: held-out writers and ``TEXTS`` only; ``role="validation"``: training writers and
    ``VALIDATION_TEXTS`` only. Each refuses the other's fonts, so the two sets never share a hand.
    """
    out_dir = Path(out_dir)
    fonts = resolve_fonts(fonts)
    if role not in ("test", "validation"):
        raise ValueError(f"role must be 'test' or 'validation', not {role!r}")
    if role == "test" and not all(is_eval_font(font) for font in fonts):
        raise ValueError(
            "the scan test set is for the held-out writers only: install fonts-bwht and fonts-breip "
            "(data_prep/apt-packages.txt) and keep fonts='eval'"
        )
    if role == "validation" and any(is_eval_font(font) for font in fonts):
        raise ValueError(
            "the scan validation set must not use the held-out writers (fonts-bwht, fonts-breip)"
        )
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    phrases, rows = _phrases(TEXTS if role == "test" else VALIDATION_TEXTS), []
    for index in range(num_samples):
        rng = np.random.default_rng([seed, index])
        coverage = font_coverage(fonts[index % len(fonts)])
        text = " ".join(coverage.drawable_text(phrases[int(rng.integers(len(phrases)))]).split())
        name = f"images/{index:05d}.png"
        render_line(text, coverage.path, rng).save(out_dir / name)
        rows.append({"image": name, "label": text, "writer": coverage.path.stem, "split": role})
    csv_path = out_dir / "english.csv"
    write_csv(csv_path, rows)
    print(f"{csv_path}: {num_samples} {role} lines in {len(fonts)} hands")
    return csv_path
