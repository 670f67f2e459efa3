"""How images and transcriptions are read, in one place for training, ``htr.predict`` and the pipeline.

Standalone on purpose (standard library and PIL only): model folders carry this file beside ``pipeline.py``,
which imports it relatively, so it must not import ``htr`` or anything heavy. ``htr.images`` and ``htr.text``
import from here too, so the conventions are defined once.
"""

import re
import unicodedata
from typing import Any

from PIL import Image, ImageFilter

_WHITESPACE = re.compile(r"\s+")
_WHITE = (255, 255, 255, 255)
# The model config attribute that says a model reads its lines cropped to their ink (set by run_trocr.py).
CROP_TO_INK = "crop_to_ink"


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


def crop_to_ink(image: Image.Image, margin: float = 0.1) -> Image.Image:
    """``image`` cut to the box around its ink plus ``margin`` × the ink's height of paper on each side.

    A line model sees every image squeezed to a fixed height, so a scan with wide margins reaches it with
    small text; cropping to the ink makes a phone photo and a tight dataset crop look alike. Ink is what is
    darker than halfway from the paper (90th percentile) to the darkest ink after a 3×3 box blur, which
    lifts specks of noise (up to 2×2 px) above that line but keeps strokes 2 px wide below it, at a sixth of
    a median filter's cost; an image without that much contrast (blank, very faint) is left as it is.
    """
    gray = image.convert("L").filter(ImageFilter.BoxBlur(1))
    histogram = gray.histogram()
    paper, ink = _percentile(histogram, 0.9), _percentile(histogram, 0.0001)
    if paper - ink < 40:
        return image
    threshold = (paper + ink) / 2
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


def reads_cropped(config: Any) -> bool:
    """Whether a model with this config was trained on lines cropped to their ink (Microsoft's were not)."""
    return bool(getattr(config, CROP_TO_INK, False))


def line_image(image: Image.Image, crop: bool, size: Any) -> Image.Image:
    """The image as the model reads it: cropped to its ink if ``crop`` (see :func:`reads_cropped`).

    The crop is skipped where it would leave a shape the processor (``size``) cannot resize, which the
    uncropped line may still be (see :func:`shape_problem`).
    """
    if not crop:
        return image
    cropped = crop_to_ink(image)
    return image if shape_problem(cropped.width, cropped.height, size) else cropped
