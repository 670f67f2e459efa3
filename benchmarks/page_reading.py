"""Pages end to end on CPU: seconds per stage, batched vs line by line, line P/R and page CER vs Tesseract.

    python benchmarks/page_reading.py --model models/trocr-tiny-synthetic --pages ../shared/real/hn2021/data \
        --output_dir outputs/bench_pages [--max_pages 41] [--line_by_line_pages 3]
    python benchmarks/page_reading.py --model OTHER --pages ... --output_dir OUT2 --segmentation outputs/bench_pages

Every PAGE/ALTO file under ``--pages`` is a ground-truth page (image beside it). Per page: kraken's
segmentation, cropping, TrOCR recognition in batches (``--batch_size``) are timed separately; on the first
``--line_by_line_pages`` pages the same crops are also read one at a time (batch size 1). Tesseract 5
(``--psm 7``, as in ``benchmarks/tesseract_peer.py``) reads exactly the same crops. Both engines are
scored on the detected lines (what a user gets) and on the ground-truth lines (recognition alone), with
line detection precision/recall by polygon IoU >= 0.5. Needs kraken (``requirements-pages.txt``).
``--segmentation`` takes the lines of an earlier run's ``NAME.xml`` (and its segmentation time) instead of
segmenting again: another recogniser on exactly the same lines, in minutes instead of most of an hour.
Results: ``OUTPUT_DIR/pages_benchmark.json``, per-page PAGE/ALTO/overlay outputs beside it, and one
predictions file per engine with a row per page (reading-order text against the ground truth's), which
``htr.evaluation.compare`` turns into a paired bootstrap interval over pages (printed at the end).

``--processes 1 2`` times the page command itself instead (``python -m htr.pages`` with ``--ground_truth``,
launched by torchrun for more than one process, default threads: the cores divided among the processes):
pages/min end to end (start-up included) and from its ``summary.json`` (pages only), seconds per page and
stage, line P/R and page CER per launch, and ``htr.evaluation.compare`` of each launch's page texts against
the first launch's; each number of processes at each ``--segment_heights`` value. ``--baseline DIR`` adds the
``htr.pages`` of another checkout (e.g. ``git archive COMMIT | tar -x -C DIR``), one process, first: before and
after in the same window of a shared machine. ``--stride 5`` takes every 5th page, a sample across writers.

    .venv-pages/bin/python benchmarks/page_reading.py --pages ../shared/real/hn2021/data --stride 5 \
        --output_dir outputs/bench_archive --processes 2 1 --segment_heights 1200 1800 --baseline /tmp/before
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from _common import print_table, start
from tesseract_peer import run_tesseract

from htr.core.images import open_image
from htr.evaluation.compare import compare
from htr.inference.predict import load, transcribe
from htr.inference.predictions import write_predictions
from htr.pages.layout import Page, read_layout
from htr.pages.transcribe import (
    SEGMENT_HEIGHT,
    PageResult,
    Timing,
    crop_page,
    evaluate,
    page_text,
    segment,
    summarise,
    write_outputs,
)


def tesseract_texts(crops, workdir: Path, binary: str) -> list[str]:
    paths = []
    for number, crop in enumerate(crops):
        path = workdir / f"{number:04d}.png"
        crop.save(path)
        paths.append(str(path))
    texts = run_tesseract(binary, paths, workers=2)
    for path in paths:
        Path(path).unlink()
    return texts


def with_texts(page: Page, lines, texts: list[str]) -> Page:
    """A copy of ``page`` whose lines carry ``texts`` (lines without a crop get "")."""
    by_id = {line.id: text for line, text in zip(lines, texts, strict=True)}
    return replace(page, lines=[replace(line, text=by_id.get(line.id, "")) for line in page.lines])


ROOT = Path(__file__).resolve().parent.parent
STAGE_PRINT = re.compile(r"segmentation ([\d.]+) s, cropping ([\d.]+) s, recognition ([\d.]+) s")


def page_texts(output_dir: Path, names: list[str]) -> list[str]:
    """The reading-order text of each page's NAME.txt, lines joined as ``page_text`` joins them."""
    texts = []
    for name in names:
        lines = (output_dir / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        texts.append(" ".join(line for line in lines if line))
    return texts


def time_htr_pages(
    label: str,
    checkout: Path,
    model: str,
    truth: list[Path],
    output_dir: Path,
    processes: int,
    options: Sequence[str] = (),
) -> dict:
    """One launch of a checkout's ``python -m htr.pages`` on the pages: wall time, its stage timings and scores.

    Stage seconds come from summary.json, or, for a checkout without one, from its per-page printed lines.
    Paths are made absolute: the command runs in the checkout (``model`` is found there, e.g. its own copy).
    """
    truth, output_dir = [path.resolve() for path in truth], output_dir.resolve()
    shutil.rmtree(output_dir, ignore_errors=True)
    images = [str(read_layout(path).image) for path in truth]
    arguments = [
        model,
        *images,
        "--output_dir",
        str(output_dir),
        "--ground_truth",
        *map(str, truth),
        *options,
    ]
    launcher = [sys.executable]
    if processes > 1:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        launcher += [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(port),
        ]
    start_time = time.perf_counter()
    result = subprocess.run(
        [*launcher, "-m", "htr.pages", *arguments], cwd=checkout, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start_time
    if result.returncode:
        raise SystemExit(f"error: {label}: htr.pages failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    summary_path = output_dir / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        seconds, steady = summary["seconds_per_page"], summary["pages_per_minute"]
        threads = summary["threads_per_process"]
    else:
        printed = [list(map(float, found)) for found in STAGE_PRINT.findall(result.stdout)]
        seconds = {
            stage: statistics.fmean(row[column] for row in printed)
            for column, stage in enumerate(("segmentation", "cropping", "recognition"))
        }
        steady, threads = None, "torch default"
    return {
        "label": label,
        "processes": processes,
        "threads_per_process": threads,
        "pages": len(truth),
        "wall_seconds": wall,
        "pages_per_minute": 60 * len(truth) / wall,
        "pages_per_minute_pages_only": steady,
        "seconds_per_page": seconds,
        "scores": json.loads((output_dir / "evaluation.json").read_text())["overall"],
        "texts": page_texts(output_dir, [Path(image).stem for image in images]),
    }


def time_launches(args: argparse.Namespace, files: list[Path]) -> list[dict]:
    """``--processes``: the page command under each launch (and ``--baseline``), its speed and its scores."""
    runs = []
    if args.baseline:
        runs.append(
            time_htr_pages("baseline", args.baseline, args.model, files, args.output_dir / "baseline", 1)
        )
    for height in args.segment_heights:
        for processes in args.processes:
            label = f"{processes} process(es), height {height}"
            options = ["--segment_height", str(height)]
            out = args.output_dir / f"p{processes}_h{height}"
            runs.append(time_htr_pages(label, ROOT, args.model, files, out, processes, options))
    truths = [page_text(read_layout(path).lines) for path in files]
    for run in runs[1:]:
        gain = compare(list(zip(truths, runs[0]["texts"], run["texts"], strict=True))).cer
        run[f"page_cer_gain_over_{runs[0]['label']}"] = vars(gain)
    uptime = os.getloadavg()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "launches.json").write_text(
        json.dumps({"load_average": uptime, "runs": runs}, indent=1) + "\n"
    )
    stages = ("segmentation", "cropping", "recognition")
    print_table(
        f"{len(files)} pages, python -m htr.pages --ground_truth; load average after: {uptime[0]:.1f}",
        [
            "launch",
            "threads/process",
            "pages/min (end to end)",
            "pages/min (pages only)",
            *stages,
            "P / R",
            "page CER",
        ],
        [
            [
                run["label"],
                run["threads_per_process"],
                f"{run['pages_per_minute']:.2f}",
                f"{run['pages_per_minute_pages_only']:.2f}" if run["pages_per_minute_pages_only"] else "-",
                *(f"{run['seconds_per_page'].get(stage, 0):.2f} s" for stage in stages),
                f"{run['scores']['precision']:.1f} / {run['scores']['recall']:.1f} %",
                f"{run['scores']['cer']:.1f} %",
            ]
            for run in runs
        ],
    )
    for run in runs[1:]:
        gain = run[f"page_cer_gain_over_{runs[0]['label']}"]
        print(
            f"{run['label']} vs {runs[0]['label']}: page CER gain {gain['gain']:+.1f} points "
            f"(95 % {gain['low']:+.1f} to {gain['high']:+.1f}), identical page texts: "
            f"{run['texts'] == runs[0]['texts']}"
        )
    return runs


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/trocr-tiny-synthetic")
    parser.add_argument(
        "--pages", type=Path, required=True, help="Folder of ground-truth PAGE/ALTO + images."
    )
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/bench_pages"))
    parser.add_argument("--max_pages", type=int, default=0, help="0: all pages.")
    parser.add_argument("--line_by_line_pages", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--tesseract", default=shutil.which("tesseract") or "tesseract")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Keep the pages already in OUTPUT_DIR/pages_benchmark.json, do the rest.",
    )
    parser.add_argument(
        "--segmentation",
        type=Path,
        help="Output dir of an earlier run: read its lines (NAME.xml) instead of running kraken again.",
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="*",
        help="Time python -m htr.pages itself with these numbers of processes instead (see above).",
    )
    parser.add_argument(
        "--segment_heights",
        type=int,
        nargs="+",
        default=[SEGMENT_HEIGHT],
        help=f"With --processes: htr.pages --segment_height values to time. Default: {SEGMENT_HEIGHT}.",
    )
    parser.add_argument(
        "--stride", type=int, default=1, help="Every STRIDE-th page (a sample across writers)."
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="With --processes: a checkout whose htr.pages is timed first, one process.",
    )
    args = start(parser)
    if not args.pages.is_dir():
        raise SystemExit(f"error: {args.pages}: not a folder (point --pages at ground-truth PAGE/ALTO pages)")
    files = sorted(args.pages.rglob("*.xml"))[:: args.stride][: args.max_pages or None]
    if args.processes:
        return {"launches": time_launches(args, files)}
    model, processor = load(args.model, "cpu")
    rows, workdir = [], Path(tempfile.mkdtemp())
    results_path = args.output_dir / "pages_benchmark.json"
    if args.resume and results_path.is_file():
        rows = json.loads(results_path.read_text())["pages"]
    done = {row["page"] for row in rows}
    earlier = {}
    if args.segmentation:
        earlier_pages = json.loads((args.segmentation / "pages_benchmark.json").read_text())["pages"]
        earlier = {row["page"]: row for row in earlier_pages}
    for index, path in enumerate(files):
        if str(path) in done:
            continue
        truth = read_layout(path)
        image = open_image(truth.image)
        timing = Timing()
        if args.segmentation:
            detected = read_layout(args.segmentation / f"{truth.image.stem}.xml")
            fragments = earlier[str(path)]["fragments_left_out"]
            timing.segmentation = earlier[str(path)]["timing"]["segmentation"]
        else:
            t = time.perf_counter()
            detected, fragments = segment(image, truth.image)
            timing.segmentation = time.perf_counter() - t
        t = time.perf_counter()
        lines, crops, unusable = crop_page(image, detected)
        timing.cropping = time.perf_counter() - t
        t = time.perf_counter()
        texts = transcribe(model, processor, crops, batch_size=args.batch_size) if crops else []
        timing.recognition = time.perf_counter() - t
        one_by_one = None
        if index < args.line_by_line_pages and crops:
            t = time.perf_counter()
            transcribe(model, processor, crops, batch_size=1)
            one_by_one = time.perf_counter() - t
        truth_lines, truth_crops, _ = crop_page(image, truth)
        truth_texts = (
            transcribe(model, processor, truth_crops, batch_size=args.batch_size) if truth_crops else []
        )
        trocr = evaluate(
            with_texts(detected, lines, texts), truth, with_texts(truth, truth_lines, truth_texts)
        )
        tess_page = with_texts(detected, lines, tesseract_texts(crops, workdir, args.tesseract))
        tess = evaluate(
            tess_page,
            truth,
            with_texts(truth, truth_lines, tesseract_texts(truth_crops, workdir, args.tesseract)),
        )
        write_outputs(
            PageResult(truth.image.stem, with_texts(detected, lines, texts), timing), image, args.output_dir
        )
        rows.append(
            {
                "page": str(path),
                "lines": len(crops),
                "lines_without_geometry": len(unusable),
                "fragments_left_out": fragments,
                "timing": vars(timing),
                "recognition_line_by_line": one_by_one,
                "trocr": trocr,
                "tesseract": tess,
                "texts": {
                    "truth": page_text(truth.lines),
                    "trocr": page_text(with_texts(detected, lines, texts).lines),
                    "tesseract": page_text(tess_page.lines),
                },
            }
        )
        print(
            f"[{index + 1}/{len(files)}] {path.name}: {len(crops)} lines, seg {timing.segmentation:.1f} s, "
            f"crop {timing.cropping:.2f} s, rec {timing.recognition:.1f} s"
            + (f" (line by line {one_by_one:.1f} s)" if one_by_one else "")
            + f"; CER TrOCR {trocr['cer']:.1f} / Tesseract {tess['cer']:.1f}",
            flush=True,
        )
        args.output_dir.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps({"pages": rows}, indent=1) + "\n")
    batched = [r for r in rows if r["recognition_line_by_line"]]
    summary = {
        "model": args.model,
        "pages": len(rows),
        "seconds_per_page": {
            stage: statistics.fmean(r["timing"][stage] for r in rows)
            for stage in ("segmentation", "cropping", "recognition")
        },
        "batched_vs_line_by_line_s": [
            sum(r["timing"]["recognition"] for r in batched),
            sum(r["recognition_line_by_line"] for r in batched),
        ],
        "trocr": summarise([r["trocr"] for r in rows]),
        "tesseract": summarise([r["tesseract"] for r in rows]),
    }
    for engine in ("trocr", "tesseract"):
        write_predictions(
            args.output_dir / f"page_predictions_{engine}.csv",
            [
                {"image": r["page"], "label": r["texts"]["truth"], "prediction": r["texts"][engine]}
                for r in rows
            ],
        )
    scored = [
        (r["texts"]["truth"], r["texts"]["tesseract"], r["texts"]["trocr"])
        for r in rows
        if r["texts"]["truth"]
    ]
    gain = compare(scored).cer
    summary["trocr_vs_tesseract_page_cer"] = vars(gain)
    results_path.write_text(json.dumps({"summary": summary, "pages": rows}, indent=1) + "\n")
    seconds = summary["seconds_per_page"]
    print_table(
        f"{len(rows)} pages, {sum(r['lines'] for r in rows)} detected lines, CPU, one torch thread",
        ["stage", "s/page"],
        [[stage, f"{value:.2f}"] for stage, value in seconds.items()]
        + [
            [
                "recognition batched / line by line (first pages)",
                "{:.1f} s / {:.1f} s".format(*summary["batched_vs_line_by_line_s"]),
            ]
        ],
    )
    print_table(
        "Line detection (polygon IoU >= 0.5) and page CER",
        [
            "engine",
            "line precision",
            "line recall",
            "page CER",
            "CER on ground-truth lines",
            "segmentation's share",
        ],
        [
            [
                name,
                *(
                    f"{summary[name][key]:.1f} %"
                    for key in ("precision", "recall", "cer", "cer_truth_lines", "segmentation_share")
                ),
            ]
            for name in ("trocr", "tesseract")
        ],
    )
    print(
        f"Page CER, TrOCR's gain over Tesseract (htr.evaluation.compare, paired bootstrap over {len(scored)} pages): "
        f"{gain.gain:+.1f} points (95 % {gain.low:+.1f} to {gain.high:+.1f}); "
        f"files: {args.output_dir}/page_predictions_{{trocr,tesseract}}.csv"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()
