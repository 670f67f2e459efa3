"""Training-time augmentation: what scans and phone photos do to a line, applied on the fly to training images.

``augment`` names a preset or a list of named transforms with probabilities:

* ``none``: no augmentation.
* ``da2``: TrOCR's IAM set (unilm ``trocr/data_aug.py``): one of rotation ±10°, Gaussian blur, dilation,
  erosion, downscaling to ⅓–½ and back, an underline, or the image as it is.
* ``scan``: margins, ruled lines and underlines, slant, small rotation, stroke width, ink and
  paper contrast, uneven light, blur, JPEG and noise, each with its own probability.
* ``rotate:0.5,blur:0.3``: the named transforms of ``TRANSFORMS``, each applied with its probability.

The ops are albumentations' (maintained, fast, OpenCV); only ruled lines are drawn here, as albumentations
has none. albumentations' Perspective is left out: with ``fit_output`` it fills corners black and
clips ink there (tests/test_augment.py caught it). Geometric ops pad with paper and grow the canvas (``fit_output``) and margins only ever add
paper, so ink is never cropped away. ``strength`` (0–1) is the share of images augmented at all; the
curriculum ramps it from 0 to the recipe's value through a value shared with the DataLoader workers.
Each process (main or worker) draws from its own stream, seeded from the DataLoader's per-worker seed,
so runs repeat under a seed and two workers never repeat each other's draws.
"""

import argparse
import logging
import multiprocessing
import random
from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from htr.core.errors import HTRError

logger = logging.getLogger(__name__)

PAPER = 255  # fill for everything a transform uncovers: white paper, never black bars


class AugmentError(HTRError, ValueError):
    """An ``augment`` value that names no preset or transform, with the names that exist."""


class RuledLines(A.ImageOnlyTransform):
    """Draw an underline below the ink, or ruled lines across the whole line image, in a random grey."""

    def __init__(self, ruled_probability: float = 0.5, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.ruled_probability = ruled_probability

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        out = img.copy()
        height, width = out.shape[:2]
        grey = int(self.py_random.uniform(60, 190))
        thickness = self.py_random.choice((1, 1, 2))
        ink_rows = np.flatnonzero((out.min(axis=2) if out.ndim == 3 else out).min(axis=1) < 128)
        bottom = int(ink_rows[-1]) if ink_rows.size else height - 2
        if self.py_random.random() < self.ruled_probability:
            spacing = max(8, int(height * self.py_random.uniform(0.5, 0.9)))
            rows = range(min(height - 1, bottom + 1) % spacing, height, spacing)
        else:
            rows = [min(height - 1, bottom + self.py_random.randint(0, 3))]
        for row in rows:
            cv2.line(out, (0, row), (width - 1, row), (grey, grey, grey), thickness)
        return np.minimum(out, img)  # a line never lightens ink

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("ruled_probability",)


def _margins(p: float) -> A.BasicTransform:
    """Wider and uneven margins: padding with paper only (never a crop into ink)."""
    return A.CropAndPad(percent=(0.0, 0.25), keep_size=False, fill=PAPER, p=p)


TRANSFORMS: dict[str, Callable[[float], A.BasicTransform]] = {
    "margins": _margins,
    "rotate": lambda p: A.Affine(rotate=(-10, 10), fit_output=True, fill=PAPER, p=p),
    "small_rotate": lambda p: A.Affine(rotate=(-3, 3), fit_output=True, fill=PAPER, p=p),
    "shear": lambda p: A.Affine(shear={"x": (-15, 15), "y": (0, 0)}, fit_output=True, fill=PAPER, p=p),
    "dilate": lambda p: A.Morphological(scale=(2, 3), operation="erosion", p=p),  # dark ink grows
    "erode": lambda p: A.Morphological(scale=(2, 2), operation="dilation", p=p),  # dark ink thins
    "downscale": lambda p: A.Downscale(scale_range=(0.33, 0.5), p=p),
    "underline": lambda p: RuledLines(ruled_probability=0.0, p=p),
    "ruled": lambda p: RuledLines(ruled_probability=1.0, p=p),
    "contrast": lambda p: A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=(-0.5, 0.1), p=p),
    "tint": lambda p: A.RGBShift(r_shift_limit=15, g_shift_limit=15, b_shift_limit=25, p=p),
    "light": lambda p: A.Illumination(intensity_range=(0.05, 0.2), p=p),
    "shadow": lambda p: A.RandomShadow(shadow_intensity_range=(0.2, 0.4), p=p),
    "blur": lambda p: A.GaussianBlur(sigma_limit=(0.5, 1.5), p=p),
    "jpeg": lambda p: A.ImageCompression(quality_range=(30, 90), p=p),
    "noise": lambda p: A.GaussNoise(std_range=(0.02, 0.08), p=p),
}

_SCAN = {
    "margins": 0.5,
    "ruled": 0.15,
    "underline": 0.15,
    "shear": 0.3,
    "small_rotate": 0.3,
    "dilate": 0.1,
    "erode": 0.1,
    "contrast": 0.4,
    "tint": 0.2,
    "light": 0.2,
    "shadow": 0.1,
    "blur": 0.2,
    "jpeg": 0.2,
    "noise": 0.2,
}
PRESETS = ("none", "da2", "scan")


def build_pipeline(augment: str) -> A.Compose | None:
    """The albumentations pipeline an ``augment`` value names (None for ``none``)."""
    name = augment.strip().lower()
    if name in ("", "none"):
        return None
    if name == "da2":
        da2 = ("rotate", "blur", "dilate", "erode", "downscale", "underline")
        return A.Compose([A.OneOf([*(TRANSFORMS[op](1.0) for op in da2), A.NoOp()], p=1.0)])
    if name == "scan":
        return A.Compose([TRANSFORMS[op](p) for op, p in _SCAN.items()])
    ops = []
    for item in name.split(","):
        op, _, probability = item.strip().partition(":")
        if op not in TRANSFORMS:
            raise AugmentError(
                f"augment={augment!r}: unknown transform {op!r}; use one of {list(PRESETS)} or a list of "
                f"'name:probability' with names from {sorted(TRANSFORMS)}"
            )
        try:
            p = float(probability or 1.0)
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise AugmentError(f"augment={augment!r}: probability of {op!r} must be a number in 0..1")
        ops.append(TRANSFORMS[op](p))
    return A.Compose(ops)


class Augmenter:
    """Apply a pipeline to a share ``strength`` of PIL images, from a per-process seeded stream.

    ``strength`` lives in shared memory so that the curriculum callback in the main process reaches
    DataLoader workers (forked or spawned: the value travels with the dataset when a worker starts).
    """

    def __init__(self, augment: str, strength: float = 1.0, seed: int = 42) -> None:
        if not 0.0 <= strength <= 1.0:
            raise AugmentError(f"augment_strength={strength}: must be in 0..1 (share of images augmented)")
        self.augment, self.seed = augment, seed
        self.pipeline = build_pipeline(augment)
        self.strength = multiprocessing.Value("d", strength, lock=False)
        self._stream: tuple[int, random.Random] | None = None

    def _rng(self) -> random.Random:
        """This process's stream: the DataLoader's seed for this worker (set by the Trainer's seed)."""
        info = torch.utils.data.get_worker_info()
        key = info.seed if info is not None else self.seed
        if self._stream is None or self._stream[0] != key:
            self.pipeline.set_random_seed(key % 2**32)
            self._stream = (key, random.Random(key))
        return self._stream[1]

    def __call__(self, image: Image.Image) -> Image.Image:
        if self.pipeline is None:
            return image
        rng = self._rng()
        if rng.random() >= self.strength.value:
            return image
        array = self.pipeline(image=np.asarray(image.convert("RGB")))["image"]
        return Image.fromarray(array)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_stream"] = None  # a worker seeds its own stream
        return state


class AugmentCurriculum(TrainerCallback):
    """Ramp augmentation strength linearly from 0 (clean) to ``target`` over ``warmup_steps`` steps."""

    def __init__(self, augmenter: Augmenter, target: float, warmup_steps: int) -> None:
        self.augmenter, self.target, self.warmup_steps = augmenter, target, warmup_steps

    def strength_at(self, step: int) -> float:
        return self.target * min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else self.target

    def _update(self, state: TrainerState) -> None:
        self.augmenter.strength.value = self.strength_at(state.global_step)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs
    ) -> None:
        self._update(state)
        logger.info(
            "Augmentation curriculum: strength %.2f at step %d, %.2f from step %d",
            self.augmenter.strength.value,
            state.global_step,
            self.target,
            self.warmup_steps,
        )

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs
    ) -> None:
        self._update(state)


def write_sheet(image_path: str, out_path: str, seed: int = 0) -> None:
    """One line under each named transform and preset, captioned: what the README's picture shows."""
    image = Image.open(image_path).convert("RGB")
    names = [*TRANSFORMS, "da2", "scan"]
    tiles = []
    for name in names:
        augmenter = Augmenter(name if name in PRESETS else f"{name}:1", 1.0, seed=seed)
        tiles.append((name, augmenter(image)))
    width = max(tile.width for _, tile in tiles) + 16
    height = sum(tile.height + 22 for _, tile in tiles) + 8
    sheet = Image.new("RGB", (width, height), (200, 200, 200))
    draw, y = ImageDraw.Draw(sheet), 4
    for name, tile in tiles:
        draw.text((8, y), name, fill="black")
        sheet.paste(tile, (8, y + 14))
        y += tile.height + 22
    sheet.save(out_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write a picture of one line under each augmentation.")
    parser.add_argument("image", help="a line image, e.g. one of data/heldout/images")
    parser.add_argument("out", help="where to write the picture (PNG)")
    arguments = parser.parse_args()
    write_sheet(arguments.image, arguments.out)
