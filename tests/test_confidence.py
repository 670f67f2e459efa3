"""htr.inference.confidence: AUROC and reliability of per-line confidences on a predictions file."""

import numpy as np
import pytest

from htr.inference.confidence import auroc, main, reliability
from htr.inference.predictions import write_predictions


def test_auroc_ranks_wrong_lines_low_and_is_chance_when_the_score_says_nothing():
    errors = np.array([1, 1, 0, 0, 0])
    assert auroc(np.array([0.1, 0.2, 0.7, 0.8, 0.9]), errors) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), errors) == 0.0
    assert auroc(np.full(5, 0.5), errors) == 0.5
    with pytest.raises(ValueError, match="both"):
        auroc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_reliability_bins_count_every_line_and_report_the_share_right():
    table = reliability(np.array([0.05, 0.95, 0.95, 1.0]), np.array([1, 0, 1, 0]))
    assert [count for _, _, count in table] == [1, 3]
    assert table[1][1] == pytest.approx(2 / 3)


def test_cli_reads_a_predictions_file_and_writes_the_plot(tmp_path, capsys):
    rows = [
        {"image": "a.png", "label": "cat", "prediction": "cat", "confidence": "0.9"},
        {"image": "b.png", "label": "dog", "prediction": "dot", "confidence": "0.3"},
        {"image": "c.png", "label": "owl", "prediction": "owl", "confidence": "0.8"},
    ]
    path = write_predictions(tmp_path / "p.csv", rows, ["confidence"])
    summary = main([str(path), "--plot", str(tmp_path / "r.png")])
    assert summary["auroc"] == 1.0 and summary["lines_with_errors"] == 1
    assert (tmp_path / "r.png").stat().st_size > 0
    assert "auroc: 1.0000" in capsys.readouterr().out
