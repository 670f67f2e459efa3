"""Evaluation report: where a TrOCR model goes wrong, as one self-contained HTML page and PNG charts.

    python -m htr.evaluation.report outputs/my-model          # predictions_test.csv + trainer_state.json + all_results.json
    python -m htr.evaluation.report predictions.csv --out report/ --worst 50

One CER number hides where the errors are. The report breaks the corpus-level CER/WER (the same
:func:`htr.core.metrics.error_rates` as training) down by ``source`` and ``writer`` when the predictions file
has those columns and by label length, shows the worst lines with their character differences
highlighted, counts the most frequent character confusions, and plots the training curves from
``trainer_state.json``. ``report.png`` puts the essentials on one image for a README or a model card.
"""

import argparse
import base64
import functools
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jiwer
import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from htr.core.images import BadImageError, open_image
from htr.core.metrics import error_rates, row_cer
from htr.core.text import normalize_text
from htr.inference.predictions import CONFIDENCE_COLUMN, PredictionsError, load_inputs

logger = logging.getLogger(__name__)

LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 40), (41, None))
BUCKET_NAMES = [f"{low}–{high}" if high else f"{low}+" for low, high in LENGTH_BUCKETS]
GROUP_COLUMNS = ("source", "writer")
MAX_BARS = 20  # per-writer charts of a few hundred writers show the worst ones only
THUMBNAIL_SIZE = (720, 64)
SUMMARY_ROWS = 4  # worst rows drawn on report.png

BLUE, ORANGE, GREY, INK = "#2563eb", "#ea580c", "#94a3b8", "#0f172a"
# Highlight colours for aligned text, shared by the HTML and the PNG: (text colour, background).
SEGMENT_COLORS = {
    "sub": ("#92400e", "#fde68a"),
    "del": ("#991b1b", "#fecaca"),
    "ins": ("#166534", "#bbf7d0"),
}
STYLE = {
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": GREY,
    "axes.labelcolor": INK,
    "text.color": INK,
}


class ReportError(PredictionsError):
    """Predictions the report cannot be made from (no labelled row), with what to do about it."""


@dataclass(frozen=True)
class Score:
    """Corpus-level error rates (%) of one group of rows."""

    name: str
    rows: int
    cer: float
    wer: float


@dataclass
class Report:
    """Everything the HTML and the PNGs show, computed once."""

    title: str
    overall: Score
    buckets: list[Score]
    groups: dict[str, list[Score]]  # column -> scores, worst first
    confusions: list[tuple[str, str, int]]  # (reference, prediction, count); "" = deleted / inserted
    worst: list[tuple[dict[str, str], float]]  # (row, its CER), worst first
    curves: dict[str, list[tuple[int, float]]]  # series name -> (step, value)
    best_step: int | None
    results: dict[str, Any]
    unlabelled: int
    # (row, its CER), least confident first: the lines to check by hand; empty without a confidence column.
    review: list[tuple[dict[str, str], float]] = field(default_factory=list)


def score(name: str, rows: Sequence[dict[str, str]]) -> Score:
    rates = error_rates([row["prediction"] for row in rows], [row["label"] for row in rows])
    return Score(name, len(rows), rates["cer"], rates["wer"])


def length_bucket(label: str) -> str:
    """``1–5``, ``6–10``, … ``41+``: the label's length in characters after normalisation."""
    length = len(normalize_text(label))
    for name, (_, high) in zip(BUCKET_NAMES, LENGTH_BUCKETS[:-1], strict=False):
        if length <= high:
            return name
    return BUCKET_NAMES[-1]


def score_groups(
    rows: Sequence[dict[str, str]], key: Callable[[dict[str, str]], str], order: Sequence[str] | None = None
) -> list[Score]:
    """Scores per ``key(row)``: in ``order`` when given (empty groups left out), else worst CER first."""
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    if order is not None:
        return [score(name, groups[name]) for name in order if name in groups]
    return sorted((score(name, group) for name, group in groups.items()), key=lambda s: (-s.cer, s.name))


def align(reference: str, prediction: str) -> list[tuple[str, str, str]]:
    """Character alignment as (kind, reference part, prediction part); kind is jiwer's chunk type."""
    reference, prediction = normalize_text(reference), normalize_text(prediction)
    chunks = jiwer.process_characters(reference, prediction).alignments[0]
    return [
        (
            chunk.type,
            reference[chunk.ref_start_idx : chunk.ref_end_idx],
            prediction[chunk.hyp_start_idx : chunk.hyp_end_idx],
        )
        for chunk in chunks
    ]


def highlight(reference: str, prediction: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The two sides of an alignment as (style, text) pieces; style is "" or a SEGMENT_COLORS key.

    Changed spaces are shown as ``␣`` so a missing or extra space is visible.
    """
    ref_side: list[tuple[str, str]] = []
    hyp_side: list[tuple[str, str]] = []
    for kind, ref, hyp in align(reference, prediction):
        if kind == "equal":
            ref_side.append(("", ref))
            hyp_side.append(("", hyp))
        elif kind == "substitute":
            ref_side.append(("sub", ref.replace(" ", "␣")))
            hyp_side.append(("sub", hyp.replace(" ", "␣")))
        elif kind == "delete":
            ref_side.append(("del", ref.replace(" ", "␣")))
        else:
            hyp_side.append(("ins", hyp.replace(" ", "␣")))
    return ref_side, hyp_side


def count_confusions(rows: Sequence[dict[str, str]]) -> Counter[tuple[str, str]]:
    """How often each reference character became another (substitution), nothing, or appeared from nothing."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for kind, ref, hyp in align(row["label"], row["prediction"]):
            if kind == "substitute":
                counts.update(zip(ref, hyp, strict=True))
            elif kind == "delete":
                counts.update((char, "") for char in ref)
            elif kind == "insert":
                counts.update(("", char) for char in hyp)
    return counts


def training_curves(log_history: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Training loss, eval loss, eval CER and WER against the step, from the Trainer's log_history."""
    keys = {"training loss": "loss", "eval loss": "eval_loss", "eval CER": "eval_cer", "eval WER": "eval_wer"}
    curves = {
        name: [
            (entry["step"], float(entry[key])) for entry in log_history if key in entry and "step" in entry
        ]
        for name, key in keys.items()
    }
    return {name: points for name, points in curves.items() if points}


def build_report(
    rows: Sequence[dict[str, str]],
    title: str,
    trainer_state: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
    worst: int = 50,
) -> Report:
    """Score the labelled rows every way the report shows; unlabelled rows are only counted."""
    labelled = [
        {**row, "label": normalize_text(row["label"]), "prediction": normalize_text(row["prediction"])}
        for row in rows
        if normalize_text(row.get("label") or "")
    ]
    if not labelled:
        raise ReportError(
            "no row has a reference label: the report compares predictions with references. Predict on a "
            "CSV with a label column (python -m htr.inference.predict MODEL data.csv --output predictions.csv)"
        )
    columns = [column for column in GROUP_COLUMNS if any(row.get(column) for row in labelled)]
    with_cer = [(row, row_cer(row["prediction"], row["label"])) for row in labelled]
    worst_rows = sorted(with_cer, key=lambda pair: (-pair[1], -len(pair[0]["label"])))[:worst]
    state = trainer_state or {}
    return Report(
        title=title,
        overall=score("all", labelled),
        buckets=score_groups(labelled, lambda row: length_bucket(row["label"]), BUCKET_NAMES),
        groups={
            column: score_groups(labelled, lambda row, column=column: row.get(column) or "(none)")
            for column in columns
        },
        confusions=[(ref, hyp, n) for (ref, hyp), n in count_confusions(labelled).most_common(25)],
        worst=worst_rows,
        curves=training_curves(state.get("log_history", [])),
        best_step=state.get("best_global_step"),
        results=results or {},
        unlabelled=len(rows) - len(labelled),
        review=review_queue(with_cer, worst),
    )


def review_queue(
    with_cer: Sequence[tuple[dict[str, str], float]], size: int
) -> list[tuple[dict[str, str], float]]:
    """The ``size`` least confident lines (htr.inference.predict's ``confidence`` column), to show what to check first."""
    scored = [pair for pair in with_cer if pair[0].get(CONFIDENCE_COLUMN)]
    return sorted(scored, key=lambda pair: float(pair[0][CONFIDENCE_COLUMN]))[:size]


# ---------------------------------------------------------------- drawing


def _note(ax: Axes, text: str) -> None:
    """An empty panel that says why it is empty, so the layout stays the same."""
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color=GREY, wrap=True, transform=ax.transAxes)


def _symbol(char: str) -> str:
    return {"": "∅", " ": "␣"}.get(char, char)


def draw_curves(loss_ax: Axes, cer_ax: Axes, report: Report) -> None:
    curves = report.curves
    if "training loss" not in curves and "eval loss" not in curves:
        _note(loss_ax, "no training log\n(trainer_state.json)")
    for name, color, style in (("training loss", BLUE, "-"), ("eval loss", ORANGE, "o-")):
        if name in curves:
            steps, values = zip(*curves[name], strict=True)
            loss_ax.plot(steps, values, style, color=color, label=name, markersize=4, linewidth=1.8)
    if loss_ax.lines:
        values = [value for line in loss_ax.lines for value in line.get_ydata()]
        if min(values) > 0 and max(values) / min(values) > 20:
            loss_ax.set_yscale("log")
        loss_ax.set(title="Loss", xlabel="step")
        loss_ax.legend(frameon=False)
    if "eval CER" not in curves:
        _note(cer_ax, "no evaluation during training")
        return
    for name, color, style in (("eval CER", ORANGE, "o-"), ("eval WER", GREY, "s--")):
        if name in curves:
            steps, values = zip(*curves[name], strict=True)
            cer_ax.plot(steps, values, style, color=color, label=f"{name} %", markersize=4, linewidth=1.8)
    best_step, best = min(curves["eval CER"], key=lambda point: point[1])
    first, last = curves["eval CER"][0][0], curves["eval CER"][-1][0]
    # at either end of the curve the label grows inwards, so it never covers the axis and its ticks
    align = "left" if best_step == first else "right" if best_step == last else "center"
    cer_ax.annotate(
        f"best {best:.2f} %\nstep {best_step}",
        (best_step, best),
        textcoords="offset points",
        xytext=(0, 14),
        ha=align,
        fontsize=9,
        color=ORANGE,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
    )
    if report.best_step is not None:
        cer_ax.axvline(report.best_step, color=GREY, linestyle=":", linewidth=1)
    cer_ax.set_ylim(bottom=0)
    cer_ax.set(title="Validation error rate", xlabel="step", ylabel="%")
    cer_ax.legend(frameon=False)


def draw_scores(ax: Axes, scores: Sequence[Score], title: str, total: int | None = None) -> None:
    """Horizontal CER bars, one per group, labelled with the CER and the number of rows."""
    shown = list(scores[:MAX_BARS])
    names = [score.name for score in shown]
    bars = ax.barh(range(len(shown)), [score.cer for score in shown], color=BLUE, height=0.65)
    ax.bar_label(bars, [f" {s.cer:.1f} %  (n={s.rows})" for s in shown], fontsize=8, color=INK)
    ax.set_yticks(range(len(shown)), names)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, max([score.cer for score in shown] + [1]) * 1.45)
    more = f" — worst {len(shown)} of {total}" if total and total > len(shown) else ""
    ax.set(title=title + more, xlabel="CER %")


def draw_confusions(ax: Axes, report: Report, top: int = 12) -> None:
    confusions = report.confusions[:top]
    if not confusions:
        _note(ax, "no character errors")
        return
    labels = [f"{_symbol(ref)} → {_symbol(hyp)}" for ref, hyp, _ in confusions]
    colors = [
        SEGMENT_COLORS["del" if not hyp else "ins" if not ref else "sub"][0] for ref, hyp, _ in confusions
    ]
    bars = ax.barh(range(len(confusions)), [n for *_, n in confusions], color=colors, height=0.65)
    ax.bar_label(bars, [f" {n}" for *_, n in confusions], fontsize=8)
    ax.set_yticks(range(len(confusions)), labels, family="monospace")
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set(title="Most frequent confusions", xlabel="count   (reference → prediction; ∅ nothing, ␣ space)")


def draw_segments(
    ax: Axes, x: float, y: float, caption: str, pieces: Sequence[tuple[str, str]], limit: int
) -> None:
    """Draw text pieces one after another, changed ones on a coloured background (cut at ``limit`` chars)."""
    # Out of the layout: constrained layout would otherwise shrink the axes to make room for them.
    text: Text = ax.text(
        x, y, caption, transform=ax.transAxes, va="center", fontsize=9, color=GREY, in_layout=False
    )
    shown = 0
    for style, piece in pieces:
        piece = piece[: max(limit - shown, 0)] + ("…" if shown + len(piece) > limit else "")
        shown += len(piece)
        if not piece:
            break
        color, background = SEGMENT_COLORS.get(style, (INK, None))
        bbox = {"facecolor": background, "edgecolor": "none", "pad": 0.6} if background else None
        text = ax.annotate(
            piece,
            xy=(1, 0),
            xycoords=text,
            va="bottom",
            family="monospace",
            fontsize=10.5,
            color=color,
            bbox=bbox,
            in_layout=False,
        )


@functools.lru_cache(maxsize=256)  # the PNG and the HTML show the same worst rows: read and warn once
def _thumbnail(path: str) -> Image.Image | None:
    """A small RGB copy of a row's image, or None (with a log line) when it cannot be read any more."""
    try:
        image = open_image(path)
    except BadImageError as error:
        logger.warning("No thumbnail: %s", error)
        return None
    image.thumbnail(THUMBNAIL_SIZE)
    return image


def draw_worst_rows(fig: Figure, spec: Any, rows: Sequence[tuple[dict[str, str], float]]) -> None:
    grid = spec.subgridspec(len(rows), 2, width_ratios=[1, 1.7])
    for index, (row, cer) in enumerate(rows):
        image_ax, text_ax = fig.add_subplot(grid[index, 0]), fig.add_subplot(grid[index, 1])
        image = _thumbnail(row["image"])
        if image is None:
            _note(image_ax, "image not found")
        else:
            image_ax.imshow(np.asarray(image), aspect="equal")
            image_ax.set_anchor("E")  # next to its text, however wide the image
            image_ax.axis("off")
        text_ax.axis("off")
        if index == 0:
            text_ax.set_title("Worst lines", loc="left")
        reference, prediction = highlight(row["label"], row["prediction"])
        draw_segments(text_ax, 0.02, 0.68, "ref  ", reference, limit=56)
        draw_segments(text_ax, 0.02, 0.28, "pred ", prediction, limit=56)
        text_ax.text(
            0.99,
            0.48,
            f"CER {cer:.0f} %",
            transform=text_ax.transAxes,
            ha="right",
            color=GREY,
            fontsize=9,
            in_layout=False,
        )


def summary_figure(report: Report) -> Figure:
    """report.png: the headline numbers, the curves, the breakdowns and a few worst lines on one image."""
    fig = Figure(figsize=(16, 12.5), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1.1, 1.25])
    head = fig.add_subplot(grid[0, 0])
    head.axis("off")
    lines = (
        (0.98, report.title, {"fontsize": 13, "fontweight": "bold"}),
        (0.72, f"CER {report.overall.cer:.2f} %", {"fontsize": 30, "fontweight": "bold", "color": BLUE}),
        (0.40, f"WER {report.overall.wer:.2f} %", {"fontsize": 22}),
        (0.14, f"{report.overall.rows:,} lines · corpus-level rates", {"fontsize": 11, "color": GREY}),
    )
    for y, text, style in lines:
        head.text(0, y, text, va="top", transform=head.transAxes, **style)
    draw_curves(fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[0, 2]), report)
    draw_scores(fig.add_subplot(grid[1, 0]), report.buckets, "CER by label length (characters)")
    group_ax = fig.add_subplot(grid[1, 1])
    # A breakdown with one group says nothing: show the first column that splits the rows.
    split = [(column, scores) for column, scores in report.groups.items() if len(scores) > 1]
    if split:
        column, scores = split[0]
        draw_scores(group_ax, scores, f"CER by {column}", total=len(scores))
    else:
        _note(group_ax, "no source / writer column with more than one value")
    draw_confusions(fig.add_subplot(grid[1, 2]), report)
    draw_worst_rows(fig, grid[2, :], report.worst[:SUMMARY_ROWS])
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, facecolor="white")
    return buffer.getvalue()


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def charts(report: Report) -> dict[str, bytes]:
    """Every PNG of the report by file name; the HTML embeds the same bytes."""
    pngs: dict[str, bytes] = {"report.png": _png(summary_figure(report))}
    if report.curves:
        fig = Figure(figsize=(12, 4), layout="constrained")
        loss_ax, cer_ax = fig.subplots(1, 2)
        draw_curves(loss_ax, cer_ax, report)
        pngs["training_curves.png"] = _png(fig)
    fig, ax = _figure(8, 3.2)
    draw_scores(ax, report.buckets, "CER by label length (characters)")
    pngs["cer_by_length.png"] = _png(fig)
    for column, scores in report.groups.items():
        if len(scores) == 1:  # one bar says nothing the table does not
            continue
        fig, ax = _figure(8, 1.2 + 0.32 * min(len(scores), MAX_BARS))
        draw_scores(ax, scores, f"CER by {column}", total=len(scores))
        pngs[f"cer_by_{column}.png"] = _png(fig)
    fig, ax = _figure(7, 5.5)
    draw_confusions(ax, report, top=20)
    pngs["confusions.png"] = _png(fig)
    return pngs


# ---------------------------------------------------------------- HTML

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #0f172a; margin: 0;
       background: #f8fafc; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 36px 0 12px; }
.muted { color: #64748b; } .cards { display: flex; gap: 14px; flex-wrap: wrap; margin: 18px 0; }
.card { background: white; border: 1px solid #e2e8f0; border-radius: 10px; padding: 14px 20px; min-width: 150px; }
.card b { display: block; font-size: 28px; color: #2563eb; } .card span { color: #64748b; font-size: 13px; }
img.chart { max-width: 100%; background: white; border: 1px solid #e2e8f0; border-radius: 10px; }
.row > img.chart { flex: 1 1 480px; max-width: 640px; min-width: 0; }
table { border-collapse: collapse; background: white; border: 1px solid #e2e8f0; font-size: 14px; }
th, td { padding: 6px 12px; border-bottom: 1px solid #e2e8f0; text-align: left; vertical-align: middle; }
th { background: #f1f5f9; font-weight: 600; white-space: nowrap; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; } .row { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.text { font: 15px/1.7 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
.sub { background: #fde68a; color: #92400e; } .del { background: #fecaca; color: #991b1b; }
.ins { background: #bbf7d0; color: #166534; } .sub, .del, .ins { border-radius: 3px; padding: 0 1px; }
.image img { display: block; max-height: 64px; max-width: 380px; } .legend span { margin-right: 14px; }
.text small { color: #94a3b8; font: 11px system-ui, sans-serif; display: inline-block; width: 34px; }
"""


TEMPLATE = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,  # labels, predictions, paths and titles are data, never markup
    undefined=jinja2.StrictUndefined,
).get_template("report.html.j2")


def _scores(scores: Sequence[Score]) -> list[tuple[str, int, str, str]]:
    return [(s.name, s.rows, f"{s.cer:.2f}", f"{s.wer:.2f}") for s in scores]


def _thumbnail_png(path: str) -> str | None:
    """The row's image as base64 PNG for an ``<img>``, or None when it cannot be opened."""
    image = _thumbnail(path)
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    """One self-contained page: charts and thumbnails are embedded, so it can be mailed or attached."""
    overall = report.overall
    cards = [
        (f"{overall.cer:.2f} %", "CER (corpus)"),
        (f"{overall.wer:.2f} %", "WER (corpus)"),
        (f"{overall.rows:,}", "lines scored"),
    ]
    if report.unlabelled:
        cards.append((f"{report.unlabelled:,}", "rows without a label (not scored)"))
    extra = [column for column in GROUP_COLUMNS if column in report.groups]
    worst = []
    for row, cer in report.worst:
        reference, prediction = highlight(row["label"], row["prediction"])
        worst.append(
            {
                "image": row["image"],
                "thumbnail": _thumbnail_png(row["image"]),
                "reference": reference,
                "prediction": prediction,
                "cer": f"{cer:.1f}",
                "extra": [row.get(column, "") for column in extra],
            }
        )
    review = [
        {
            "image": row["image"],
            "thumbnail": _thumbnail_png(row["image"]),
            "text": row["prediction"],
            "confidence": row[CONFIDENCE_COLUMN],
            "cer": f"{cer:.1f}",
        }
        for row, cer in report.review
    ]
    return (
        TEMPLATE.render(
            title=report.title,
            css=CSS,
            cards=cards,
            charts={name: base64.b64encode(data).decode() for name, data in pngs.items()},
            results=[
                (key, f"{value:.4g}")
                for key, value in sorted(report.results.items())
                if isinstance(value, int | float)
            ],
            buckets=_scores(report.buckets),
            groups=[
                {"column": column, "scores": _scores(scores), "collapsed": len(scores) > MAX_BARS}
                for column, scores in report.groups.items()
            ],
            confusions=[(_symbol(ref), _symbol(hyp), n) for ref, hyp, n in report.confusions],
            worst=worst,
            extra=extra,
            review=review,
        )
        + "\n"
    )


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """Write report.html and every PNG into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with rc_context(STYLE):
        pngs = charts(report)
    written = []
    for name, data in pngs.items():
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    page = out_dir / "report.html"
    page.write_text(render_html(report, pngs), encoding="utf-8")
    return [page, *written]


def main(argv: Sequence[str] | None = None) -> list[Path]:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    parser = argparse.ArgumentParser(
        prog="python -m htr.evaluation.report",
        description="Write an evaluation report (report.html + PNGs) from a run's output dir or a predictions file.",
    )
    parser.add_argument(
        "source", type=Path, help="run_trocr.py output dir, or a predictions .csv (htr.inference.predict)."
    )
    parser.add_argument(
        "--out", type=Path, help="Folder to write to (default: SOURCE/report or NAME_report/)."
    )
    parser.add_argument("--worst", type=int, default=50, help="How many worst lines to show.")
    args = parser.parse_args(argv)
    try:
        rows, trainer_state, results = load_inputs(args.source)
        source = args.source.resolve()
        name = source.name if source.is_dir() else f"{source.parent.name}/{source.name}"
        report = build_report(rows, f"Evaluation of {name}", trainer_state, results, args.worst)
    except PredictionsError as error:
        parser.error(str(error))
    default = (
        args.source / "report"
        if args.source.is_dir()
        else args.source.with_name(f"{args.source.stem}_report")
    )
    written = write_report(report, args.out or default)
    print(f"CER {report.overall.cer:.2f} %  WER {report.overall.wer:.2f} %  on {report.overall.rows} lines")
    print(f"Wrote {written[0]} and {len(written) - 1} PNGs (summary: {written[1]})")
    return written


if __name__ == "__main__":
    main()
