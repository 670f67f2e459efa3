"""Cut one text line out of a page: masked to its boundary polygon, deskewed along its baseline.

TrOCR was trained on tight, horizontal line images. A page's line polygon usually overlaps the
ascenders and descenders of its neighbours, so pixels outside the polygon are painted white; a
slanted line is rotated so its baseline (first to last point) is horizontal. A straight rotation
is cheap and covers the slight skew of photographed pages; curved lines are not dewarped.
"""

import math

from PIL import Image, ImageDraw

from htr.core.errors import HTRError
from htr.pages.layout import Line, bounding_box

MIN_ANGLE_DEGREES = 0.5  # below this a rotation only blurs the crop


class CropError(HTRError, ValueError):
    """A line whose geometry gives no image (fewer than 3 polygon points, outside the page)."""


def baseline_angle(line: Line) -> float:
    """Slope of the baseline in degrees, positive when it falls to the right (image y points down)."""
    if len(line.baseline) < 2:
        return 0.0
    (x0, y0), (x1, y1) = line.baseline[0], line.baseline[-1]
    return math.degrees(math.atan2(y1 - y0, x1 - x0)) if x1 != x0 else 0.0


def crop_line(page: Image.Image, line: Line) -> Image.Image:
    """The RGB line image: polygon mask on white, rotated so the baseline is level, trimmed to the mask."""
    if len(line.polygon) < 3:
        raise CropError(f"line {line.id}: boundary polygon has {len(line.polygon)} points, needs 3")
    left, top, right, bottom = bounding_box(line.polygon)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, page.width - 1), min(bottom, page.height - 1)
    if right <= left or bottom <= top:
        raise CropError(f"line {line.id}: polygon lies outside the {page.width}x{page.height} page")
    box = page.convert("RGB").crop((left, top, right + 1, bottom + 1))
    mask = Image.new("L", box.size, 0)
    ImageDraw.Draw(mask).polygon([(x - left, y - top) for x, y in line.polygon], fill=255)
    crop = Image.composite(box, Image.new("RGB", box.size, "white"), mask)
    angle = baseline_angle(line)
    if abs(angle) >= MIN_ANGLE_DEGREES:
        crop = crop.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
        mask = mask.rotate(angle, resample=Image.Resampling.NEAREST, expand=True, fillcolor=0)
        if mask.getbbox() is not None:
            crop = crop.crop(mask.getbbox())
    if mask.getbbox() is None:
        raise CropError(f"line {line.id}: boundary polygon encloses no pixel")
    return crop
