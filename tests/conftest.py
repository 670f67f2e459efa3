"""Shared fixtures: a tiny TrOCR saved to disk and a few dozen rendered handwriting images.

Both are built offline in seconds and loaded through the same `from_pretrained(path)` / CSV code
paths as the real model and data.
"""

from pathlib import Path

import pytest

from data_prep.synthetic import generate
from htr.training.modeling import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny TrOCR + processor saved with save_pretrained."""
    path = tmp_path_factory.mktemp("tiny-trocr")
    model, processor = build_tiny_model()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def words_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 rendered words in the training fonts, as an english.csv with writer and split columns."""
    return generate(tmp_path_factory.mktemp("words"), 48, fonts="train", seed=0, kind="words", workers=1)
