"""htr.evaluation.compare: the paired bootstrap that says whether B's lower CER is a real difference."""

import random
import string
from pathlib import Path

import pytest

from htr.core.metrics import error_rates
from htr.evaluation.compare import compare, main, paired_rows
from htr.inference.predictions import write_predictions


def _labels(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join("".join(rng.choices(string.ascii_lowercase, k=5)) for _ in range(3)) for _ in range(count)
    ]


def _typo(text: str, position: int) -> str:
    return text[:position] + ("x" if text[position] != "x" else "y") + text[position + 1 :]


def _write(path: Path, labels: list[str], predictions: list[str]) -> Path:
    rows = [
        {"image": f"/data/{index:04d}.png", "label": label, "prediction": prediction}
        for index, (label, prediction) in enumerate(zip(labels, predictions, strict=True))
    ]
    return write_predictions(path, rows)


def test_corpus_figures_match_the_training_metric_and_a_clear_gain_is_measurable():
    labels = _labels(200)
    a = [_typo(label, 2) if index % 2 else label for index, label in enumerate(labels)]  # a typo in half
    b = [_typo(label, 2) if index % 10 == 1 else label for index, label in enumerate(labels)]  # in a tenth
    result = compare(list(zip(labels, a, b, strict=True)), resamples=2000)
    assert result.cer.a == pytest.approx(error_rates(a, labels)["cer"])
    assert result.cer.b == pytest.approx(error_rates(b, labels)["cer"])
    assert result.wer.b == pytest.approx(error_rates(b, labels)["wer"])
    assert result.cer.gain == pytest.approx(result.cer.a - result.cer.b)
    assert 0 < result.cer.low < result.cer.gain < result.cer.high
    assert result.cer.verdict == result.wer.verdict == "B is measurably better"
    assert (result.better, result.worse) == (80, 0)
    swapped = compare(list(zip(labels, b, a, strict=True)), resamples=2000)
    assert swapped.cer.verdict == "B is measurably worse"


def test_a_gain_within_noise_is_called_so():
    labels = _labels(200)
    a = [_typo(label, 2) if index % 4 == 0 else label for index, label in enumerate(labels)]
    b = [_typo(label, 2) if index % 4 == 1 else label for index, label in enumerate(labels)]  # other rows
    b[1] = labels[1]  # one typo fewer than A
    result = compare(list(zip(labels, a, b, strict=True)), resamples=2000)
    assert result.cer.gain > 0
    assert result.cer.low < 0 < result.cer.high
    assert result.cer.verdict == "no measurable difference"
    assert (result.better, result.worse) == (50, 49)
    # Paired: when B differs from A in one row only, no draw can favour A (unpaired draws would).
    one_fixed = [labels[0], *a[1:]]
    paired = compare(list(zip(labels, a, one_fixed, strict=True)), resamples=2000)
    assert paired.cer.low >= 0 and paired.cer.high > 0 and paired.worse == 0


def test_rows_are_paired_by_image_whatever_their_order(tmp_path):
    labels = _labels(30)
    a_path = _write(tmp_path / "a.csv", labels, labels)
    b_path = _write(tmp_path / "b.csv", labels, [_typo(label, 0) for label in labels])
    lines = b_path.read_text().splitlines()
    b_path.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    result = main([str(a_path), str(b_path), "--resamples", "200"])
    assert (result.cer.a, result.worse) == (0, 30)


def test_inputs_that_do_not_pair_are_refused_with_the_reason(tmp_path, capsys):
    labels = _labels(5)
    a_path = _write(tmp_path / "a.csv", labels, labels)
    fewer = _write(tmp_path / "fewer.csv", labels[:4], labels[:4])
    with pytest.raises(SystemExit) as exit_info:
        main([str(a_path), str(fewer)])
    assert exit_info.value.code == 2
    assert (
        "do not cover the same images (1 only in A, 0 only in B, e.g. /data/0004.png)"
        in capsys.readouterr().err
    )
    relabelled = _write(tmp_path / "relabelled.csv", ["other", *labels[1:]], labels)
    with pytest.raises(SystemExit):
        main([str(a_path), str(relabelled)])
    assert "/data/0000.png has label" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"line 2: /data/0000\.png has no label"):
        unlabelled = [{"image": "/data/0000.png", "label": " ", "prediction": "a"}]
        paired_rows(unlabelled, unlabelled, "a.csv", "b.csv")


def test_compare_does_not_load_the_report_and_its_plotting():
    """The comparison needs the predictions files only; matplotlib and the HTML report stay unloaded."""
    import subprocess
    import sys

    code = "import sys, htr.evaluation.compare; print('htr.evaluation.report' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
