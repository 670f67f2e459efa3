"""Full pages in, PAGE / ALTO / text out: segment with kraken, crop, read the lines with TrOCR.

    python -m htr.pages models/trocr-tiny-synthetic scans/ --output_dir pages_out
    python -m htr.pages MODEL letter.alto.xml --output_dir out          # re-read the file's own lines
    python -m htr.pages MODEL scans/ --output_dir out --ground_truth gt/  # + line P/R, page CER/WER
    torchrun --nproc_per_node 2 -m htr.pages MODEL scans/ --output_dir out  # pages shared by 2 processes

For each page: lines come from kraken's bundled baseline segmenter (``kraken/blla.mlmodel``, shipped
in the kraken wheel, so this works offline) or from a given PAGE/ALTO file; each line is cut by
``htr.pages.linecrops`` and all lines of the page are read in batches by ``htr.inference.predict.read_lines``. The
outputs, per page ``NAME``: ``NAME.xml`` (PAGE 2019), ``NAME.alto.xml`` (ALTO 4), ``NAME.txt`` (reading
order) and ``NAME.overlay.png`` (numbered line polygons, the text beside). eScriptorium and
Transkribus import the XML files with the image. kraken is an optional dependency
(``requirements-pages.txt``); without it only XML inputs work, and an image input says how to install it.

``--ground_truth`` (PAGE/ALTO files or folders, matched to pages by image file name) adds evaluation:
a detected line matches a ground-truth line when their polygons overlap with IoU >= 0.5 (one-to-one,
greedy by IoU); precision and recall count matches. Page CER/WER compare the reading-order texts. The
ground-truth lines are also cropped and read, so "CER on ground-truth lines" is what recognition alone
costs and the difference is the segmentation's share (missed, split or merged lines, reading order).

A run is an archive run (:mod:`htr.pages.archive`): a rerun skips the pages already complete, a page that
fails is listed in ``OUT/failures.csv`` while the others go on (exit status 1), ``OUT/summary.json`` and one
printed line sum the run up, and the processes of ``torchrun`` or ``accelerate launch`` share the pages.
"""

import argparse
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from htr.core.images import IMAGE_SUFFIXES, open_image
from htr.core.metrics import error_rates
from htr.pages import archive
from htr.pages.layout import (
    LayoutError,
    Line,
    Page,
    Region,
    bounding_box,
    read_layout,
    to_alto_xml,
    to_page_xml,
)
from htr.pages.linecrops import CropError, crop_line

IOU_MATCH = 0.5
IOU_SCALE = 0.25  # polygons are rasterised at this scale for IoU: exact enough at page resolution
XML_SUFFIXES = (".xml",)
INSTALL_HINT = "pip install -r requirements-pages.txt (see docs/pages.md)"
# Pixels high a page is scaled to for kraken's network (its model's own: 1800). Over the 41 hn2021 pages 1500
# segments 1.4x faster with better line P/R and the same page CER; 1200 is faster still but misses lines of
# dense pages (docs/pages.md, "An archive").
SEGMENT_HEIGHT = 1500


@dataclass
class Timing:
    """Seconds spent per stage on one page (``scoring``: reading the ground-truth lines for --ground_truth)."""

    reading: float = 0.0
    segmentation: float = 0.0
    cropping: float = 0.0
    recognition: float = 0.0
    scoring: float = 0.0
    writing: float = 0.0


@dataclass
class PageResult:
    """One page read: the page with its lines' text, timings and, with ground truth, the scores."""

    name: str
    page: Page
    timing: Timing
    skipped: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    fragments: int = 0


def is_fragment(line: Line) -> bool:
    """A detected "line" whose baseline is shorter than its polygon is tall: a stray stroke or one letter
    split off a line (kraken does this at wide word gaps), not a line to read."""
    if len(line.baseline) < 2 or len(line.polygon) < 3:
        return True
    _, top, _, bottom = bounding_box(line.polygon)
    length = sum(math.dist(a, b) for a, b in zip(line.baseline, line.baseline[1:], strict=False))
    return length < bottom - top


@functools.cache
def segmenter(height: int = SEGMENT_HEIGHT) -> Any:
    """kraken's bundled baseline model, loaded once per process (``blla.segment`` without a model loads it
    again for every page), scaling pages to ``height`` pixels before its network.

    The height is the one size knob kraken has: ``blla.segment`` scales every page to its model's input
    height (1800 in the bundled model's metadata), so shrinking a page beforehand changes nothing, and the
    lines come back in the page's own pixels whatever the height.
    """
    from kraken.lib import vgsl

    model = vgsl.TorchVGSLModel.load_model(resources.files("kraken").joinpath("blla.mlmodel"))
    batch, channels, _, width = model.input
    model.input = (batch, channels, height, width)
    return model


def segment(
    image: Image.Image, path: Path, device: str = "cpu", height: int = SEGMENT_HEIGHT
) -> tuple[Page, int]:
    """kraken's default baseline segmentation: lines in kraken's reading order, and how many fragments
    (see :func:`is_fragment`) were left out."""
    try:
        from kraken import blla
    except ImportError as error:
        raise SystemExit(
            f"error: {path}: segmenting a page image needs kraken ({error}); {INSTALL_HINT}"
        ) from None
    result = blla.segment(image, model=segmenter(height), device=device)
    page = Page(path, image.width, image.height)
    region_of = {}
    for kind, regions in result.regions.items():
        for region in regions:
            page.regions.append(Region(region.id, [tuple(map(int, point)) for point in region.boundary]))
            region_of[region.id] = kind
    for number, line in enumerate(result.lines, start=1):
        page.lines.append(
            Line(
                id=f"line_{number}",
                polygon=[tuple(map(int, point)) for point in (line.boundary or [])],
                baseline=[tuple(map(int, point)) for point in line.baseline],
                type=_kraken_type(line.tags),
                region=(line.regions or [""])[0],
            )
        )
    kept = [line for line in page.lines if not is_fragment(line)]
    fragments = len(page.lines) - len(kept)
    page.lines = kept
    return page, fragments


def _kraken_type(tags: dict | None) -> str:
    """kraken's line type tag (``{"type": [{"type": "default"}]}`` in kraken 5+) as a plain string."""
    value = (tags or {}).get("type")
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("type", "")
    return str(value or "")


def crop_page(image: Image.Image, page: Page) -> tuple[list[Line], list[Image.Image], list[str]]:
    """Crops of the lines that have usable geometry; the others are reported, not dropped silently."""
    lines, crops, skipped = [], [], []
    for line in page.lines:
        try:
            crops.append(crop_line(image, line))
            lines.append(line)
        except CropError as error:
            skipped.append(str(error))
    return lines, crops, skipped


# Reads a batch of line images: texts, or (text, confidence in 0..1) pairs when the recogniser scores them.
Recogniser = Callable[[list[Image.Image]], list[str] | list[tuple[str, float]]]


def recognise_page(image: Image.Image, page: Page, recognise: Recogniser) -> tuple[list[str], Timing]:
    """Crop and recognise ``page``'s lines in place; returns why lines were not read, and the timings.

    Lines without usable geometry get "" (and are listed); a confidence is kept when given.
    """
    timing = Timing()
    start = time.perf_counter()
    lines, crops, skipped = crop_page(image, page)
    timing.cropping = time.perf_counter() - start
    start = time.perf_counter()
    texts = recognise(crops) if crops else []
    timing.recognition = time.perf_counter() - start
    for line in page.lines:
        line.text, line.confidence = "", None
    for line, output in zip(lines, texts, strict=True):
        line.text, line.confidence = output if isinstance(output, tuple) else (output, None)
    return skipped, timing


def _mask(points: list[tuple[int, int]], size: tuple[int, int], origin: tuple[int, int]) -> np.ndarray:
    mask = Image.new("1", size, 0)
    scaled = [((x - origin[0]) * IOU_SCALE, (y - origin[1]) * IOU_SCALE) for x, y in points]
    ImageDraw.Draw(mask).polygon(scaled, fill=1)
    return np.asarray(mask, dtype=bool)


def polygon_iou(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> float:
    """Intersection over union of two polygons, rasterised at ``IOU_SCALE`` over their joint box."""
    if len(a) < 3 or len(b) < 3:
        return 0.0
    left, top, right, bottom = bounding_box(a + b)
    size = (max(1, int((right - left) * IOU_SCALE) + 2), max(1, int((bottom - top) * IOU_SCALE) + 2))
    mask_a, mask_b = _mask(a, size, (left, top)), _mask(b, size, (left, top))
    union = np.logical_or(mask_a, mask_b).sum()
    return float(np.logical_and(mask_a, mask_b).sum() / union) if union else 0.0


def match_lines(
    detected: list[Line], truth: list[Line], threshold: float = IOU_MATCH
) -> list[tuple[int, int]]:
    """One-to-one (detected index, truth index) pairs with IoU >= threshold, greedy by IoU."""
    pairs = []
    for i, line in enumerate(detected):
        box = bounding_box(line.polygon) if line.polygon else None
        for j, other in enumerate(truth):
            if box is None or not other.polygon:
                continue
            other_box = bounding_box(other.polygon)
            if (
                box[0] > other_box[2]
                or other_box[0] > box[2]
                or box[1] > other_box[3]
                or other_box[1] > box[3]
            ):
                continue
            iou = polygon_iou(line.polygon, other.polygon)
            if iou >= threshold:
                pairs.append((iou, i, j))
    used_detected, used_truth, matches = set(), set(), []
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_detected and j not in used_truth:
            used_detected.add(i)
            used_truth.add(j)
            matches.append((i, j))
    return matches


def page_text(lines: Sequence[Line]) -> str:
    """Reading-order text for scoring: lines joined by a space (a line break is not a character to get right)."""
    return " ".join(line.text for line in lines if line.text)


def evaluate(detected: Page, truth: Page, truth_read: Page) -> dict[str, float]:
    """Line detection counts and page CER/WER for automatic lines and for ground-truth lines."""
    matches = match_lines(detected.lines, truth.lines)
    auto = error_rates([page_text(detected.lines)], [page_text(truth.lines)])
    oracle = error_rates([page_text(truth_read.lines)], [page_text(truth.lines)])
    return {
        "detected": len(detected.lines),
        "truth": len(truth.lines),
        "matched": len(matches),
        "reference_chars": len(page_text(truth.lines)),
        "cer": auto["cer"],
        "wer": auto["wer"],
        "cer_truth_lines": oracle["cer"],
        "wer_truth_lines": oracle["wer"],
    }


def summarise(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Overall precision/recall (pooled counts) and CER weighted by reference characters."""
    detected = sum(s["detected"] for s in scores)
    truth = sum(s["truth"] for s in scores)
    matched = sum(s["matched"] for s in scores)
    chars = sum(s["reference_chars"] for s in scores) or 1
    cer = sum(s["cer"] * s["reference_chars"] for s in scores) / chars
    cer_truth = sum(s["cer_truth_lines"] * s["reference_chars"] for s in scores) / chars
    return {
        "pages": len(scores),
        "precision": 100 * matched / detected if detected else 0.0,
        "recall": 100 * matched / truth if truth else 0.0,
        "cer": cer,
        "cer_truth_lines": cer_truth,
        "segmentation_share": 100 * max(cer - cer_truth, 0.0) / cer if cer else 0.0,
    }


def draw_overlay(image: Image.Image, page: Page, max_side: int = 1600) -> Image.Image:
    """The page with numbered line polygons, and each line's text beside it at the line's height."""
    scale = min(1.0, max_side / max(image.size))
    small = image.convert("RGB").resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    font = ImageFont.load_default(size=max(10, int(14 * max(small.height, 800) / 1600)))
    canvas = Image.new("RGB", (small.width * 2, small.height), "white")
    canvas.paste(small, (0, 0))
    draw = ImageDraw.Draw(canvas, "RGBA")
    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    for number, line in enumerate(page.lines, start=1):
        if len(line.polygon) < 3:
            continue
        colour = palette[number % len(palette)]
        points = [(x * scale, y * scale) for x, y in line.polygon]
        draw.polygon(points, fill=(*colour, 50), outline=(*colour, 255))
        left, top, _, bottom = bounding_box(line.polygon)
        draw.text((left * scale, top * scale), str(number), fill=(*colour, 255), font=font, anchor="rb")
        draw.text(
            (small.width + 10, (top + bottom) / 2 * scale),
            f"{number}. {line.text}",
            fill=(*colour, 255),
            font=font,
            anchor="lm",
        )
    return canvas


def write_outputs(result: PageResult, image: Image.Image, output_dir: Path) -> None:
    """NAME.overlay.png, NAME.txt, NAME.alto.xml (ALTO), NAME.xml (PAGE), each written whole or not at all,
    in ``archive.OUTPUT_SUFFIXES``' order (see :mod:`htr.pages.archive`)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        ".overlay.png": archive.png_bytes(draw_overlay(image, result.page)),
        ".txt": (result.page.text + "\n").encode("utf-8"),
        ".alto.xml": to_alto_xml(result.page),
        ".xml": to_page_xml(result.page),
    }
    for path, suffix in zip(
        archive.output_paths(output_dir, result.name), archive.OUTPUT_SUFFIXES, strict=True
    ):
        archive.atomic_write(path, contents[suffix])


def collect_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Page images and PAGE/ALTO files given, or page images found (recursively) in given folders."""
    found = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise SystemExit(
                f"error: {path}: no such file or folder (give page images, folders or PAGE/ALTO XML)"
            )
    if not found:
        raise SystemExit(f"error: no page images under {', '.join(map(str, inputs))}")
    return found


def ground_truth_index(paths: Sequence[Path]) -> dict[str, Path]:
    """PAGE/ALTO files by their page image's file stem."""
    index = {}
    for path in paths:
        files = sorted(path.rglob("*.xml")) if path.is_dir() else [path]
        for file in files:
            try:
                index[read_layout(file).image.stem] = file
            except LayoutError as error:
                raise SystemExit(f"error: --ground_truth: {error}") from None
    return index


def page_name(path: Path) -> str:
    """The NAME of a page's outputs: its image's file stem (for a PAGE/ALTO input, the image the file names)."""
    return read_layout(path).image.stem if path.suffix.lower() in XML_SUFFIXES else path.stem


def read_page(
    path: Path, recognise: Recogniser, truth_files: dict[str, Path], device: str, segment_height: int
) -> tuple[PageResult, Image.Image]:
    """One page read, segmented (an image input), cropped, recognised and, with ground truth, scored; each
    stage timed, and its error raised as ``archive.PageFailed`` naming the stage."""
    timing = Timing()
    start = time.perf_counter()
    with archive.stage("reading"):
        page = read_layout(path) if path.suffix.lower() in XML_SUFFIXES else None
        image = open_image(page.image if page else path)
    timing.reading = time.perf_counter() - start
    fragments = 0
    if page is None:
        start = time.perf_counter()
        with archive.stage("segmentation"):
            page, fragments = segment(image, path, device, segment_height)
        timing.segmentation = time.perf_counter() - start
    with archive.stage("recognition"):
        skipped, stages = recognise_page(image, page, recognise)
    timing.cropping, timing.recognition = stages.cropping, stages.recognition
    result = PageResult(page.image.stem, page, timing, skipped, fragments=fragments)
    truth_path = truth_files.get(page.image.stem)
    if truth_files and truth_path is None:
        tqdm.write(f"{path}: no ground truth for image {page.image.name} among --ground_truth files")
    elif truth_path is not None:
        start = time.perf_counter()
        with archive.stage("scoring"):
            truth, truth_read = read_layout(truth_path), read_layout(truth_path)
            recognise_page(image, truth_read, recognise)
            result.scores = evaluate(page, truth, truth_read)
        timing.scoring = time.perf_counter() - start
    return result, image


def page_record(path: Path, result: PageResult, process: int) -> dict:
    """What ``records/NAME.json`` keeps of a done page: enough for the summary and evaluation of later runs."""
    return {
        "page": result.name,
        "source": str(path),
        "process": process,
        "lines": len(result.page.lines),
        "fragments_left_out": result.fragments,
        "lines_without_geometry": len(result.skipped),
        "timing": vars(result.timing),
        "scores": result.scores,
    }


def write_evaluation(output_dir: Path, entries: Sequence[archive.Entry]) -> None:
    """evaluation.json over every complete page's scores, this run's and earlier runs'."""
    records = [
        archive.read_record(output_dir, entry.name)
        for entry in entries
        if entry.failure is None and archive.is_complete(output_dir, entry.name)
    ]
    scored = {record["page"]: record["scores"] for record in records if record["scores"]}
    if len(scored) < len(records):
        print(
            f"{len(records) - len(scored)} complete pages have no scores (done without --ground_truth "
            "or without a matching file): --overwrite scores them"
        )
    if not scored:
        return
    summary = summarise(list(scored.values()))
    report = {"matching": f"polygon IoU >= {IOU_MATCH}, one-to-one", "overall": summary, "pages": scored}
    archive.atomic_write(output_dir / "evaluation.json", (json.dumps(report, indent=2) + "\n").encode())
    print(
        f"{summary['pages']} pages: line precision {summary['precision']:.1f} %, recall {summary['recall']:.1f} % "
        f"(IoU >= {IOU_MATCH}); page CER {summary['cer']:.1f} % "
        f"(on ground-truth lines {summary['cer_truth_lines']:.1f} %: segmentation's share "
        f"{summary['segmentation_share']:.0f} %). Per page: {output_dir / 'evaluation.json'}"
    )


def run(args: argparse.Namespace) -> list[PageResult]:
    """Every page of this process's shard not yet complete; the merged summary; exit 1 if pages failed."""
    started = time.perf_counter()
    import torch

    from htr.inference import predict  # torch + transformers: imported when a model is used

    gpu = args.device != "cpu" and torch.cuda.is_available()
    state = archive.launch(cpu=not gpu)
    threads = archive.set_threads(args.threads, state)
    device = str(state.device) if gpu and args.device == "auto" else args.device
    model, processor = predict.load(args.model, device, args.backend)

    def recognise(crops: list[Image.Image]) -> list[tuple[str, float]]:
        readings = predict.read_lines(
            model, processor, crops, batch_size=args.batch_size, num_beams=args.num_beams
        )
        return [(reading.text, reading.confidence) for reading in readings]

    truth_files = ground_truth_index(args.ground_truth) if args.ground_truth else {}
    entries = archive.plan(collect_inputs(args.inputs), page_name)
    output_dir, segment_device = args.output_dir, "cpu" if args.device == "auto" else args.device
    output_dir.mkdir(parents=True, exist_ok=True)
    tally, results = archive.Tally(state.process_index), []
    startup = time.perf_counter() - started
    pages = archive.shard(entries, state)
    for entry in tqdm(pages, unit="page", desc="pages", disable=not state.is_local_main_process):
        if entry.failure is not None:
            tally.failures.append(entry.failure)
            continue
        if not args.overwrite and archive.is_complete(output_dir, entry.name):
            tally.skipped.append(entry.name)
            continue
        archive.begin_page(output_dir, entry.name)
        try:
            result, image = read_page(entry.path, recognise, truth_files, segment_device, args.segment_height)
            start = time.perf_counter()
            with archive.stage("writing"):
                write_outputs(result, image, output_dir)
                result.timing.writing = time.perf_counter() - start
                tally.record(output_dir, page_record(entry.path, result, state.process_index))
        except archive.PageFailed as error:
            tally.failures.append(error.failure(entry.path))
            tqdm.write(f"{entry.path}: failed at {error.stage}: {error.reason}")
            continue
        results.append(result)
        timing = result.timing
        tqdm.write(
            f"{entry.path}: {len(result.page.lines)} lines ({result.fragments} fragments left out, "
            f"{len(result.skipped)} without usable geometry) -> {output_dir / result.name}.xml; "
            f"segmentation {timing.segmentation:.1f} s, cropping {timing.cropping:.1f} s, "
            f"recognition {timing.recognition:.1f} s"
        )
    settings = {
        "backend": args.backend,
        "device": str(model.device),
        "processes": state.num_processes,
        "threads_per_process": threads,
        "segment_height": args.segment_height,
        "startup_seconds": startup,  # the main process's imports, model and plan
    }
    summary = archive.finish(output_dir, tally, state, settings)
    if state.is_main_process:
        if truth_files:
            write_evaluation(output_dir, entries)
        print(archive.summary_line(summary, output_dir))
    if summary["failed"]:
        raise SystemExit(
            f"error: {summary['failed']} of {summary['pages']} pages failed; see {output_dir / archive.FAILURES_NAME}"
            if state.is_main_process
            else 1
        )
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m htr.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="run_trocr.py output dir or Hub id.")
    parser.add_argument(
        "inputs", type=Path, nargs="+", help="Page images, folders of them, or PAGE/ALTO files."
    )
    parser.add_argument(
        "--output_dir", type=Path, required=True, help="Where NAME.xml, .alto.xml, .txt, .png go."
    )
    parser.add_argument(
        "--ground_truth", type=Path, nargs="*", help="PAGE/ALTO files or folders to score against."
    )
    parser.add_argument("--batch_size", type=int, default=16, help="Lines per generate() call. Default: 16.")
    parser.add_argument(
        "--num_beams", type=int, help="Beam search width (default: the model's generation_config)."
    )
    parser.add_argument("--device", default="auto", help="auto (GPU if any), cpu or cuda. Default: auto.")
    parser.add_argument(
        "--segment_height",
        type=int,
        default=SEGMENT_HEIGHT,
        help="Pixels high kraken scales a page to before its network (lower is faster, see docs/pages.md). "
        f"Default: {SEGMENT_HEIGHT} (the model's own: 1800).",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Redo every page; by default pages whose outputs are complete are skipped (a rerun resumes).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="Torch threads per process. Default: the machine's cores divided by its launched processes.",
    )
    parser.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default="torch",
        help="Recognition backend: torch (a model folder) or onnx (a folder written by python -m htr.inference.export).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[PageResult]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
