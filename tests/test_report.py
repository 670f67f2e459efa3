"""htr.evaluation.report: the evaluation report from a small predictions file and trainer_state.json fixture."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure
from PIL import Image

from htr.core.metrics import error_rates
from htr.evaluation.report import (
    build_report,
    charts,
    count_confusions,
    draw_curves,
    highlight,
    length_bucket,
    main,
    render_html,
    training_curves,
)
from htr.inference.predictions import read_predictions, write_predictions

# (label, prediction, source, writer): one row per length bucket, known edits, one unlabelled row.
ROWS = [
    ("cat", "cot", "iam", "w1"),  # a -> o
    ("hello world", "helo world", "iam", "w2"),  # l deleted
    ("a quick brown fox jumps", "a quick brown fox jumps", "imgur", "w1"),  # perfect
    ("abcdefgh", "abcdefghij", "imgur", "w2"),  # i, j inserted
    (
        "This is a long line of handwriting that goes on",
        "This is a lang line of handwritting that goes on",
        "iam",
        "w3",
    ),
    ("x", "", "imgur", "w3"),  # everything deleted
    ("", "zzz", "imgur", "w3"),  # no reference: not scored
]
LOG_HISTORY = [
    {"step": 10, "loss": 4.0, "epoch": 1},
    {"step": 20, "loss": 2.0, "epoch": 2},
    {"step": 20, "eval_loss": 2.5, "eval_cer": 60.0, "eval_wer": 90.0, "epoch": 2},
    {"step": 30, "loss": 1.0, "epoch": 3},
    {"step": 30, "eval_loss": 1.5, "eval_cer": 25.0, "eval_wer": 50.0, "epoch": 3},
    {"step": 30, "train_loss": 2.3, "train_runtime": 9.0, "epoch": 3},
]


@pytest.fixture(scope="module")
def run_dir(words_csv, tmp_path_factory) -> Path:
    """An output dir as run_trocr.py leaves it: predictions_test.csv, trainer_state.json, all_results.json."""
    path = tmp_path_factory.mktemp("run")
    images = sorted((words_csv.parent / "images").iterdir())
    rows = [
        {"image": str(image), "label": label, "prediction": prediction, "source": source, "writer": writer}
        for image, (label, prediction, source, writer) in zip(images, ROWS, strict=False)
    ]
    write_predictions(path / "predictions_test.csv", rows, extra_columns=["source", "writer"])
    state = {"log_history": LOG_HISTORY, "best_global_step": 30, "global_step": 30}
    (path / "trainer_state.json").write_text(json.dumps(state))
    (path / "all_results.json").write_text(json.dumps({"test_cer": 12.5, "train_loss": 2.3}))
    return path


@pytest.fixture(scope="module")
def written(run_dir) -> list[Path]:
    return main([str(run_dir), "--worst", "3"])


def test_writes_a_self_contained_html_page_and_valid_pngs(run_dir, written):
    names = {path.name for path in written}
    assert names == {
        "report.html",
        "report.png",
        "training_curves.png",
        "cer_by_length.png",
        "cer_by_source.png",
        "cer_by_writer.png",
        "confusions.png",
    }
    assert all(path.parent == run_dir / "report" for path in written)
    for path in written[1:]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 600
    page = (run_dir / "report" / "report.html").read_text()
    # Charts and the worst rows' thumbnails are embedded, nothing is linked.
    assert page.count('src="data:image/png;base64,') == 5 + 3
    assert not re.search(r'src="(?!data:)', page)


def test_html_shows_the_worst_rows_with_their_differences(run_dir, written):
    page = (run_dir / "report" / "report.html").read_text()
    visible = re.sub(r"<[^>]+>", "", page)
    for label, prediction in (("cat", "cot"), ("abcdefgh", "abcdefghij")):
        assert label in visible and prediction in visible
    assert "quick brown fox" not in visible  # a perfect row is not among the 3 worst
    assert 'c<span class="sub">a</span>t' in page and 'c<span class="sub">o</span>t' in page
    assert 'abcdefgh<span class="ins">ij</span>' in page


def test_breakdowns_equal_error_rates_on_the_same_rows(run_dir, written):
    rows = read_predictions(run_dir / "predictions_test.csv")
    report = build_report(rows, "t")
    page = (run_dir / "report" / "report.html").read_text()
    labelled = [row for row in rows if row["label"]]
    assert report.overall.rows == 6 and report.unlabelled == 1
    expected_buckets = {"1–5": ["cat", "x"], "6–10": ["abcdefgh"], "11–20": ["hello world"]}
    expected_buckets["21–40"] = ["a quick brown fox jumps"]
    expected_buckets["41+"] = [ROWS[4][0]]
    assert [score.name for score in report.buckets] == list(expected_buckets)
    for score in report.buckets:
        members = [row for row in labelled if row["label"] in expected_buckets[score.name]]
        expected = error_rates([r["prediction"] for r in members], [r["label"] for r in members])
        assert (score.rows, score.cer, score.wer) == (len(members), expected["cer"], expected["wer"])
        assert (
            f'<td>{score.name}</td><td class="num">{score.rows}</td><td class="num">{score.cer:.2f}</td>'
            in page
        )
    by_source = {score.name: score for score in report.groups["source"]}
    iam = [row for row in labelled if row["source"] == "iam"]
    assert (
        by_source["iam"].cer == error_rates([r["prediction"] for r in iam], [r["label"] for r in iam])["cer"]
    )
    assert report.overall.cer == pytest.approx(
        error_rates([r["prediction"] for r in labelled], [r["label"] for r in labelled])["cer"]
    )
    assert [(row["label"], round(cer, 1)) for row, cer in report.worst[:3]] == [
        ("x", 100.0),
        ("cat", 33.3),
        ("abcdefgh", 25.0),
    ]


def test_confusions_alignment_and_buckets():
    rows = [{"label": label, "prediction": prediction} for label, prediction, *_ in ROWS if label]
    confusions = count_confusions(rows)
    assert confusions[("a", "o")] == 1 and confusions[("o", "a")] == 1  # cat -> cot, long -> lang
    assert confusions[("l", "")] == 1 and confusions[("x", "")] == 1
    assert confusions[("", "i")] == 1 and confusions[("", "j")] == 1 and confusions[("", "t")] == 1
    reference, prediction = highlight("an ox", "anox!")
    assert reference == [("", "an"), ("del", "␣"), ("", "ox")]
    assert prediction == [("", "an"), ("", "ox"), ("ins", "!")]
    assert [length_bucket("x" * n) for n in (1, 5, 6, 10, 11, 20, 21, 40, 41)] == [
        "1–5",
        "1–5",
        "6–10",
        "6–10",
        "11–20",
        "11–20",
        "21–40",
        "21–40",
        "41+",
    ]


def test_training_curves_come_from_the_log_history():
    curves = training_curves(LOG_HISTORY)
    assert curves["training loss"] == [(10, 4.0), (20, 2.0), (30, 1.0)]  # not the final train_loss summary
    assert curves["eval CER"] == [(20, 60.0), (30, 25.0)]
    assert curves["eval loss"] == [(20, 2.5), (30, 1.5)]


@pytest.mark.parametrize(
    ("cers", "align"), [((20, 30, 40), "left"), ((40, 20, 30), "center"), ((40, 30, 20), "right")]
)
def test_the_best_cer_label_grows_inwards_at_the_ends_of_the_curve(cers, align):
    """A label centred on the first or last point would stick out over the axis and cover its ticks."""
    history = [{"step": step, "eval_cer": cer} for step, cer in zip((0, 10, 20), cers, strict=True)]
    loss_ax, cer_ax = Figure().subplots(1, 2)
    draw_curves(loss_ax, cer_ax, SimpleNamespace(curves=training_curves(history), best_step=None))
    (label,) = cer_ax.texts
    assert label.get_text().startswith(f"best {min(cers):.2f} %")
    assert label.get_horizontalalignment() == align


def test_a_predictions_file_without_labels_is_refused_with_a_fix(tmp_path, capsys):
    path = write_predictions(tmp_path / "p.csv", [{"image": "/a.png", "label": "", "prediction": "hi"}])
    with pytest.raises(SystemExit):
        main([str(path)])
    assert "no row has a reference label" in capsys.readouterr().err


def test_review_queue_lists_the_least_confident_lines_first():
    rows = [
        {"image": f"{name}.png", "label": "abc", "prediction": pred, "confidence": conf}
        for name, pred, conf in [("a", "abc", "0.9000"), ("b", "xbc", "0.2000"), ("c", "abx", "0.5000")]
    ]
    report = build_report(rows, "t", worst=2)
    assert [row["image"] for row, _ in report.review] == ["b.png", "c.png"]
    assert "Review queue: the 2 least confident lines" in render_html(report, charts(report))
    assert build_report([{**row, "confidence": ""} for row in rows], "t").review == []


def test_a_latin1_predictions_file_is_one_line_with_the_iconv_fix(tmp_path, capsys):
    from htr.evaluation.report import main as report_main

    path = tmp_path / "predictions.csv"
    path.write_bytes("image,label,prediction,cer\nx.png,café,cafe,25.0\n".encode("latin-1"))
    with pytest.raises(SystemExit):
        report_main([str(path)])
    err = capsys.readouterr().err
    assert "is not UTF-8" in err and "iconv -f latin1" in err


def test_labels_and_paths_are_escaped_never_markup():
    """The page is rendered from a template with autoescape: a label cannot inject HTML."""
    from htr.evaluation.report import build_report, render_html

    label = "<script>x</script>"
    rows = [{"image": "<img src=x onerror=alert(1)>.png", "label": label, "prediction": label + "!"}]
    page = render_html(build_report(rows, "<b>a & b</b>"), {"cer_by_length.png": b"", "confusions.png": b""})
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<b>a" not in page and "<img src=x" not in page
    assert "&lt;b&gt;a &amp; b&lt;/b&gt;" in page
