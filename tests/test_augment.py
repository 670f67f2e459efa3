"""Training-time augmentation: train-only, seeded per worker, labels and ink kept; curriculum; early stopping."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage
from transformers import AutoProcessor, TrainerControl, TrainerState

from htr.data.augment import TRANSFORMS, AugmentCurriculum, Augmenter, AugmentError
from htr.data.dataset import ImageTextTransform, read_csv
from tests.test_run_trocr import base_args, run


def transform(processor, csv: Path, augmenter: Augmenter | None) -> ImageTextTransform:
    return ImageTextTransform(
        processor=processor,
        csv_dir=csv.parent,
        image_root=None,
        image_column="image",
        label_column="label",
        max_target_length=32,
        normalize=True,
        augment=augmenter,
    )


def test_train_transform_changes_images_keeps_labels_and_eval_transform_does_not(tiny_model_dir, words_csv):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    batch = read_csv(words_csv)[:8]
    clean = transform(processor, words_csv, None)(batch)
    again = transform(processor, words_csv, None)(batch)
    augmented = transform(processor, words_csv, Augmenter("scan", 1.0, seed=0))(batch)
    assert torch.equal(clean["pixel_values"], again["pixel_values"])  # eval/test: the image as it is
    changed = [
        not torch.equal(a, c) for a, c in zip(augmented["pixel_values"], clean["pixel_values"], strict=True)
    ]
    assert sum(changed) >= 4  # seeded; scan leaves a few images as they are, as scans do
    assert augmented["labels"] == clean["labels"]


class Repeated(torch.utils.data.Dataset):
    """The same image n times, augmented in whichever process loads it."""

    def __init__(self, augmenter: Augmenter, image: Image.Image, n: int) -> None:
        self.augmenter, self.image, self.n = augmenter, image, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.augmenter(self.image).resize((96, 32)))


def line_image() -> Image.Image:
    image = Image.new("RGB", (120, 40), "white")
    ImageDraw.Draw(image).text((8, 12), "Handwriting", fill="black")
    return image


def load_all(augment: str, seed: int) -> list[np.ndarray]:
    loader = torch.utils.data.DataLoader(
        Repeated(Augmenter(augment, 1.0, seed=0), line_image(), 8),
        batch_size=1,
        num_workers=2,
        generator=torch.Generator().manual_seed(seed),
    )
    return [batch[0].numpy() for batch in loader]


def test_two_workers_repeat_under_a_seed_and_draw_from_different_streams():
    first, second, other = load_all("rotate:1", 7), load_all("rotate:1", 7), load_all("rotate:1", 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[1])  # samples 0 and 1 come from workers 0 and 1
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


GEOMETRIC = ("margins", "rotate", "small_rotate", "shear")


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_transforms_never_crop_ink_at_the_edges(name):
    image = Image.new("RGB", (200, 50), "white")
    draw = ImageDraw.Draw(image)
    for x, y in ((0, 0), (194, 0), (0, 44), (194, 44)):  # ink touching every corner
        draw.rectangle((x, y, x + 5, y + 5), fill="black")
    augmenter = Augmenter(f"{name}:1", 1.0, seed=3)
    for _ in range(10):
        out = np.asarray(augmenter(image).convert("L"))
        assert out.shape != (50, 200) or not np.array_equal(out, np.asarray(image.convert("L")))
        assert ndimage.label(out < 128)[1] == 4, f"{name} cut off an ink blob"


def test_every_named_transform_and_preset_builds_and_bad_names_say_what_exists():
    for name in [*TRANSFORMS, "da2", "scan"]:
        assert Augmenter(name if name in ("da2", "scan") else f"{name}:1").pipeline is not None
    assert Augmenter("none").pipeline is None
    with pytest.raises(AugmentError, match=r"unknown transform 'twirl'.*rotate"):
        Augmenter("rotate:0.5,twirl:0.2")
    with pytest.raises(AugmentError, match=r"0\.\.1"):
        Augmenter("blur:2")


class Strength(torch.utils.data.Dataset):
    def __init__(self, augmenter: Augmenter) -> None:
        self.augmenter = augmenter

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> float:
        return self.augmenter.strength.value


def test_curriculum_ramps_from_clean_to_full_and_running_workers_see_it():
    augmenter = Augmenter("scan", 0.8)
    curriculum = AugmentCurriculum(augmenter, target=0.8, warmup_steps=100)
    loader = torch.utils.data.DataLoader(Strength(augmenter), num_workers=1, persistent_workers=True)
    seen = []
    for step in (0, 50, 100, 400):
        curriculum.on_step_end(None, TrainerState(global_step=step), TrainerControl())
        seen.append(next(iter(loader)).item())  # the same worker process every time
    assert seen == pytest.approx([0.0, 0.4, 0.8, 0.8])
    clean = Augmenter("scan", 0.0)
    assert np.array_equal(np.asarray(clean(line_image())), np.asarray(line_image()))


def test_early_stopping_stops_a_run_that_does_not_improve(tiny_model_dir, words_csv, tmp_path):
    output = tmp_path / "out"
    result = run(
        [
            *base_args(tiny_model_dir, words_csv, output),
            "--do_train",
            "--max_steps",
            "40",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--save_steps",
            "2",
            "--early_stopping_patience",
            "1",
            "--early_stopping_threshold",
            "1000",  # no CER change counts as an improvement
            "--augment",
            "da2",
        ]
    )
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # first evaluation sets the best, the second does not beat it
    assert "Early stopping at step 4" in result.stdout + result.stderr
