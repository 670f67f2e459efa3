"""Test set (a): the held-out hands only, deterministic, rendered with margins around every label's ink."""

import csv

import numpy as np
from PIL import Image

from data_prep.fonts import eval_fonts
from data_prep.scan_test import generate_scan_test


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
