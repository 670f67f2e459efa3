"""How images and transcriptions are read, in one place for training, ``htr.inference.predict`` and the pipeline.

Standalone on purpose (standard library, PIL and numpy only): model folders carry this file beside ``pipeline.py``,
which imports it relatively, so it must not import ``htr`` or anything heavy. ``htr.core.images`` and ``htr.core.text``
import from here too, so the conventions are defined once.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

_WHITESPACE = re.compile(r"\s+")
_WHITE = (255, 255, 255, 255)
# The model config attributes that say how a model reads its lines (set by run_trocr.py, see LineReading).
CROP_TO_INK = "crop_to_ink"
DESKEW = "deskew"
# Deskewing tries every angle up to MAX_SKEW degrees either way, in steps of 1°, then 0.25° around the best.
MAX_SKEW = 5.0


def normalize_text(text: str) -> str:
    """Unicode NFC, every whitespace run to one space, stripped: how labels were cleaned for training."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB the way a reader sees it: transparency becomes white paper (not black), 16-bit gray is scaled.

    Pillow's own ``convert("RGB")``, which transformers' ``load_image`` uses, drops the alpha channel (transparent
    background under dark ink becomes black) and clips 16-bit grayscale to white.
    """
    if image.mode.startswith("I") or image.mode == "F":
        # I;16 has a fixed white point (65535); I and F do not, so their range is stretched.
        low, high = (0.0, 65535.0) if image.mode.startswith("I;16") else image.getextrema()
        scale = 255 / max(high - low, 1)
        # + 0.5 because the F -> L conversion truncates
        image = image.convert("F").point(lambda value: (value - low) * scale + 0.5).convert("L")
    if image.has_transparency_data:
        paper = Image.new("RGBA", image.size, _WHITE)
        paper.alpha_composite(image.convert("RGBA"))
        image = paper
    return image.convert("RGB")


def shape_problem(width: int, height: int, size: Any) -> str | None:
    """Why the image processor cannot resize a ``width`` × ``height`` image (None if it can).

    A processor with ``max_height``/``max_width`` keeps the aspect ratio, so an extreme line (4097×32 for a
    128-wide model) or a tall sliver rounds one side to 0 px and PIL fails deep inside the processor; a
    fixed-size processor (trocr-base's 384×384) stretches any shape and has no limit.
    """
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)  # dict or SizeDict
    max_height, max_width = get("max_height"), get("max_width")
    if not max_height or not max_width:
        return None
    from transformers.image_utils import get_image_size_for_max_height_width  # lazy: this file stays light

    new_height, new_width = get_image_size_for_max_height_width((height, width), max_height, max_width)
    if min(new_height, new_width) >= 1:
        return None
    return (
        f"{width}×{height} px is too {'wide' if width > height else 'tall'} for this model: its processor scales "
        f"images to fit {max_width}×{max_height} keeping the aspect ratio, which makes it {new_width}×{new_height} "
        f"px (the limit is about {max_width}:1 wide or {max_height}:1 tall); crop it into lines or words"
    )


def _percentile(histogram: list[int], share: float) -> int:
    """The gray level below which ``share`` of the pixels lie, from a 256-bin histogram."""
    target, seen = share * sum(histogram), 0
    for level, count in enumerate(histogram):
        seen += count
        if seen >= target:
            return level
    return 255


def _ink(image: Image.Image) -> tuple[Image.Image, float] | None:
    """The 3×3 box-blurred gray image and the level below which it is ink (None: too little contrast).

    Ink is what is darker than halfway from the paper (90th percentile) to the darkest ink: the blur lifts
    specks of noise (up to 2×2 px) above that line but keeps strokes 2 px wide below it, at a sixth of a
    median filter's cost. An image with less than 40 gray levels of contrast (blank, very faint) has no ink.
    """
    gray = image.convert("L").filter(ImageFilter.BoxBlur(1))
    histogram = gray.histogram()
    paper, ink = _percentile(histogram, 0.9), _percentile(histogram, 0.0001)
    return None if paper - ink < 40 else (gray, (paper + ink) / 2)


def crop_to_ink(image: Image.Image, margin: float = 0.1) -> Image.Image:
    """``image`` cut to the box around its ink plus ``margin`` × the ink's height of paper on each side.

    A line model sees every image squeezed to a fixed height, so a scan with wide margins reaches it with
    small text; cropping to the ink makes a phone photo and a tight dataset crop look alike. An image
    without ink (see :func:`_ink`) is left as it is.
    """
    found = _ink(image)
    if found is None:
        return image
    gray, threshold = found
    box = gray.point(lambda value: 255 if value < threshold else 0).getbbox()
    if box is None:
        return image
    left, top, right, bottom = box
    pad = round(margin * (bottom - top)) + 1
    return image.crop(
        (
            max(0, left - pad),
            max(0, top - pad),
            min(image.width, right + pad),
            min(image.height, bottom + pad),
        )
    )


def _row_sharpness(ys: np.ndarray, xs: np.ndarray, degrees: float) -> float:
    """How sharply the ink falls into rows after turning it by ``degrees`` (sum of squared row counts)."""
    radians = np.radians(degrees)
    rows = np.round(ys * np.cos(radians) - xs * np.sin(radians)).astype(np.int64)
    return float(np.square(np.bincount(rows - rows.min()).astype(np.float64)).sum())


def skew_angle(image: Image.Image) -> float:
    """The angle (degrees, counter-clockwise, within ±``MAX_SKEW``) that ``image.rotate`` levels the line by.

    A level line's ink piles into few rows (x-height band, baseline), so the angle whose horizontal
    projection profile is sharpest wins: the classic projection-profile deskew, on the ink's coordinates.
    """
    found = _ink(image)
    if found is None:
        return 0.0
    gray, threshold = found
    ys, xs = np.nonzero(np.asarray(gray) < threshold)
    if len(xs) < 20:
        return 0.0
    step = max(1, len(xs) // 20_000)  # a sample of the ink is plenty for the profile
    ys, xs = ys[::step] - ys.mean(), xs[::step] - xs.mean()
    coarse = max(np.arange(-MAX_SKEW, MAX_SKEW + 0.5), key=lambda degrees: _row_sharpness(ys, xs, degrees))
    fine = np.clip(coarse + np.arange(-0.75, 1.0, 0.25), -MAX_SKEW, MAX_SKEW)
    return float(max(fine, key=lambda degrees: _row_sharpness(ys, xs, degrees)))


def deskew(image: Image.Image) -> Image.Image:
    """``image`` turned so its line of text runs level, the new corners filled with its paper colour.

    A line model squeezes every image to a fixed height, so a line tilted by 3° on a 600 px wide crop is
    about 30 px taller than its text and reaches the model with smaller letters that wander up or down.
    """
    degrees = skew_angle(image)
    if not degrees:
        return image
    rgb = image.convert("RGB")
    bands = rgb.histogram()
    paper = tuple(_percentile(bands[band * 256 : (band + 1) * 256], 0.9) for band in range(3))
    return rgb.rotate(degrees, Image.Resampling.BILINEAR, expand=True, fillcolor=paper)


@dataclass(frozen=True)
class LineReading:
    """How a model reads a line image before its processor resizes it; kept in the model's ``config.json``.

    Microsoft's checkpoints have neither key and read images as they are.
    """

    deskew: bool = False
    crop_to_ink: bool = False

    @classmethod
    def of(cls, config: Any) -> "LineReading":
        """The reading a model with this config expects (set by the run_trocr.py run that saved it)."""
        return cls(bool(getattr(config, DESKEW, False)), bool(getattr(config, CROP_TO_INK, False)))

    def line_image(self, image: Image.Image, size: Any) -> Image.Image:
        """``image`` deskewed and cut to its ink where this reading says so, as the model reads it.

        The line is turned before it is cut, so the cut fits the level line. A step is skipped where it
        would leave a shape the processor (``size``) cannot resize, which the line as it came may still be
        (see :func:`shape_problem`).
        """
        for wanted, step in ((self.deskew, deskew), (self.crop_to_ink, crop_to_ink)):
            if wanted:
                changed = step(image)
                image = image if shape_problem(changed.width, changed.height, size) else changed
        return image
