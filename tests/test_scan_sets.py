"""Test set (a): the held-out hands only, deterministic, rendered with margins around every label's ink."""

import csv

import numpy as np
from PIL import Image

from data_prep.fonts import eval_fonts
from data_prep.scan_sets import generate_scan_test


def test_scan_test_set_is_deterministic_in_held_out_hands_with_ink_inside_margins(tmp_path):
    first = generate_scan_test(tmp_path / "a", 6, seed=13)
    second = generate_scan_test(tmp_path / "b", 6, seed=13)
    rows = list(csv.DictReader(first.open(encoding="utf-8")))
    assert first.read_text() == second.read_text()
    writers = {path.stem for path in eval_fonts()}
    assert len(rows) == 6 and all(row["writer"] in writers and row["split"] == "test" for row in rows)
    assert all(row["label"].strip() for row in rows)
    for row in rows:
        image = (first.parent / row["image"]).read_bytes()
        assert image == (second.parent / row["image"]).read_bytes()
        ink = np.asarray(Image.open(first.parent / row["image"]).convert("L")) < 128
        assert ink.any()
        columns = np.flatnonzero(ink.any(axis=0))
        assert columns[0] > 0 and columns[-1] < ink.shape[1] - 1  # nothing drawn off the image


def test_scan_validation_twin_uses_training_hands_and_other_texts_and_refuses_reserved_ones(tmp_path):
    import pytest

    from data_prep.fonts import train_fonts
    from data_prep.scan_sets import TEXTS, VALIDATION_TEXTS, _phrases

    rows = list(
        csv.DictReader(
            generate_scan_test(tmp_path / "v", 4, seed=17, fonts="train", role="validation").open()
        )
    )
    train_writers = {path.stem for path in train_fonts()}
    assert all(row["writer"] in train_writers and row["split"] == "validation" for row in rows)
    assert not set(VALIDATION_TEXTS) & set(TEXTS)
    validation, test = _phrases(VALIDATION_TEXTS), set(_phrases(TEXTS))
    shared = sum(phrase in test for phrase in validation)
    assert shared < 0.02 * len(validation)  # only stock phrases such as "of the"
    with pytest.raises(ValueError, match="must not use the held-out writers"):
        generate_scan_test(tmp_path / "x", 2, seed=1, fonts="eval", role="validation")
    with pytest.raises(ValueError, match="held-out writers only"):
        generate_scan_test(tmp_path / "y", 2, seed=1, fonts="train")
