"""How images and transcriptions are read, in one place for training, ``htr.predict`` and the pipeline.

Standalone on purpose (standard library and PIL only): model folders carry this file beside ``pipeline.py``,
which imports it relatively, so it must not import ``htr`` or anything heavy. ``htr.images`` and ``htr.text``
import from here too, so the conventions are defined once.
"""

import re
import unicodedata

from PIL import Image

_WHITESPACE = re.compile(r"\s+")
_WHITE = (255, 255, 255, 255)


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
