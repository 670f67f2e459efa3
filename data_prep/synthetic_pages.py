"""Synthetic handwritten pages with known line geometry: the page path's offline test material.

Each line of text is drawn in a handwriting font (one of ``data_prep.fonts.train_fonts()`` by
default) on blank or ruled paper, and the page is turned by a slight skew. Because every line's
polygon (its ink box, padded) and baseline are known before the turn and are turned with it, the
returned :class:`htr.pages.layout.Page` is exact ground truth for segmentation and page-level CER.
"""

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from htr.pages.layout import Line, Page, Point, Region

PAD = 10


def _turn(points: list[Point], degrees: float, centre: tuple[float, float]) -> list[Point]:
    """Where ``Image.rotate(degrees)`` (counter-clockwise, y down) moves each point."""
    a = math.radians(degrees)
    cx, cy = centre
    return [
        (
            round(cx + (x - cx) * math.cos(a) + (y - cy) * math.sin(a)),
            round(cy - (x - cx) * math.sin(a) + (y - cy) * math.cos(a)),
        )
        for x, y in points
    ]


def render_page(
    texts: list[str],
    font_path: Path,
    image_path: Path,
    ruled: int = 0,
    skew: float = 0.0,
    font_size: int = 52,
    width: int = 1240,
) -> Page:
    """Draw ``texts`` one per line (the first ``ruled`` lines on printed rules), save, return the layout.

    The default size is an A4 page at 150 dpi: kraken's segmenter scales every page to a fixed
    height, so a page of unusual proportions would not test what real scans get.
    """
    font = ImageFont.truetype(str(font_path), font_size)
    spacing = int(font_size * 2.0)
    margin = 110
    height = max(round(width * 1.414), margin * 2 + spacing * len(texts))
    image = Image.new("RGB", (width, height), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    lines = []
    for number, text in enumerate(texts, start=1):
        y = margin + number * spacing - spacing // 3
        if number <= ruled:
            draw.line([(0, y + 4), (width, y + 4)], fill=(170, 190, 230), width=2)
        draw.text((margin, y), text, font=font, fill=(20, 20, 60), anchor="ls")
        left, top, right, bottom = draw.textbbox((margin, y), text, font=font, anchor="ls")
        box = [
            (left - PAD, top - PAD),
            (right + PAD, top - PAD),
            (right + PAD, bottom + PAD),
            (left - PAD, bottom + PAD),
        ]
        lines.append(Line(f"l{number}", box, [(left, y), (right, y)], text, "handwritten", "r1"))
    centre = (width / 2, height / 2)
    image = image.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=(250, 248, 240))
    image_path.parent.mkdir(parents=True, exist_ok=True)
    image.save(image_path)
    for line in lines:
        line.polygon, line.baseline = _turn(line.polygon, skew, centre), _turn(line.baseline, skew, centre)
    region = Region(
        "r1",
        [
            (margin // 2, margin // 2),
            (width - margin // 2, margin // 2),
            (width - margin // 2, height - margin // 2),
            (margin // 2, height - margin // 2),
        ],
    )
    return Page(image_path, width, height, lines, [region])
