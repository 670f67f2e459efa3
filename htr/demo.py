"""Try a model in the browser: drop a line image, read its text and confidence; or a page, see its lines.

    python -m htr.demo models/trocr-tiny-synthetic              # http://127.0.0.1:7860
    python -m htr.demo outputs/my-model --port 8080 --num_beams 4
    .venv-pages/bin/python -m htr.demo MODEL                     # + the page tab (kraken, setup.sh --pages)

A Gradio app that reads through the same code as ``htr.inference.predict`` (``load`` + ``read_lines``), so the page
shows what the command line would print for the same image. It listens on 127.0.0.1 only and makes no
public link unless asked (``--host 0.0.0.0``, ``--share``): uploaded scans stay on this machine. Gradio's
usage analytics and version check are off, and its frontend is served from the wheel, so it runs offline.
A bad upload (not an image, beyond ``HTR_MAX_IMAGE_PIXELS``, too wide or tall for the model) is a one-line
message on the page, not a traceback.
"""

import argparse
import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from htr.core.images import BadImageError, PixelLimitError, open_image, pixel_limit
from htr.core.reading import LineReading, shape_problem
from htr.inference import predict

if TYPE_CHECKING:
    import gradio as gr

# Read by gradio when it is imported: no usage analytics and no PyPI version check (no phone home).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
MAX_BEAMS = 8
NO_SHARE = ["download", "fullscreen"]  # gradio's "share" button posts images to Hugging Face: not from here
PAGES_HINT = (
    "Page reading needs kraken, which this Python cannot import: run `bash setup.sh --pages`, then start "
    "the demo with `.venv-pages/bin/python -m htr.demo MODEL` (see docs/pages.md)."
)


def kraken_available() -> bool:
    """Whether the page tab can segment pages (kraken is optional; see requirements-pages.txt)."""
    return importlib.util.find_spec("kraken") is not None


class Reader:
    """One loaded model and the two things the app does with it; no gradio here, so tests can call it."""

    def __init__(self, model: str, device: str = "auto") -> None:
        self.model, self.processor = predict.load(model, device)

    @property
    def default_beams(self) -> int:
        """The slider's start: the beams the model's generation_config decodes with (what its scores mean)."""
        return min(self.model.generation_config.num_beams or 1, MAX_BEAMS)

    def recognise(self, images: list[Image.Image], num_beams: int) -> list[predict.Reading]:
        return predict.read_lines(self.model, self.processor, images, num_beams=num_beams)

    def open(self, path: str) -> Image.Image:
        """The upload as the model's RGB input, or BadImageError saying why it cannot be read."""
        image = open_image(path)
        if reason := shape_problem(image.width, image.height, self.processor.image_processor.size):
            raise BadImageError(path, reason, "", "extreme_shape")  # the reason says what to do
        return image

    def read_line(
        self, path: str | None, num_beams: int
    ) -> tuple[Image.Image | None, str, float | None, str]:
        """The image as the model gets it (upright RGB, deskewed and cut to its ink if the model reads so),
        its text, confidence and a status line."""
        if not path:
            return None, "", None, "Upload or drop a line image first."
        try:
            image = self.open(path)
        except BadImageError as error:
            return None, "", None, _message(error)
        start = time.perf_counter()
        (reading,) = self.recognise([image], int(num_beams))
        return (
            LineReading.of(self.model.config).line_image(image, self.processor.image_processor.size),
            reading.text,
            round(reading.confidence, 4),
            f"Read {Path(path).name} ({image.width}×{image.height} px) in "
            f"{time.perf_counter() - start:.2f} s, {_beams(num_beams)}.",
        )

    def read_page(self, path: str | None, num_beams: int) -> tuple[Image.Image | None, str, str]:
        """Overlay of the numbered lines, the page text in reading order, and a status line."""
        from htr.pages import transcribe  # kraken is imported inside transcribe.segment

        if not path:
            return None, "", "Upload or drop a page image first."
        try:
            image = open_image(path)
        except BadImageError as error:
            return None, "", _message(error)
        start = time.perf_counter()
        page, fragments = transcribe.segment(image, Path(path))
        skipped, _ = transcribe.recognise_page(
            image,
            page,
            lambda crops: [(r.text, r.confidence) for r in self.recognise(crops, int(num_beams))],
        )
        return (
            transcribe.draw_overlay(image, page),
            page.text,
            f"{len(page.lines)} lines ({fragments} fragments left out, {len(skipped)} without usable "
            f"geometry) in {time.perf_counter() - start:.1f} s, {_beams(num_beams)}.",
        )


def _message(error: BadImageError) -> str:
    """The upload's own file name (not gradio's cache path), why, and what to do."""
    return f"{Path(error.path).name}: {error.reason}" + (f". Fix: {error.fix}." if error.fix else ".")


def _beams(num_beams: int) -> str:
    return "greedy" if int(num_beams) == 1 else f"beam search ({int(num_beams)} beams)"


def build_app(reader: Reader, model_name: str, num_beams: int = 1) -> "gr.Blocks":
    """The two tabs. Uploads are ``gr.File`` rather than ``gr.Image``: gr.Image decodes the file itself and
    turns a bad one into a bare "Error", where this reports the reason through htr.core.images. gradio is imported
    here, not at module level, so importing htr.demo stays light."""
    import gradio as gr

    with gr.Blocks(title="TrOCR handwriting demo", analytics_enabled=False) as app:
        gr.Markdown(f"## Handwriting recognition with `{model_name}`")
        beams = gr.Slider(
            1, MAX_BEAMS, value=num_beams, step=1, label="Beams (1 = greedy; more is slower, often better)"
        )
        with gr.Tab("Line"):
            with gr.Row():
                line_file = gr.File(label="Line image (upload or drop)", type="filepath", elem_id="line-file")
                with gr.Column():
                    line_text = gr.Textbox(label="Text", elem_id="line-text", interactive=False)
                    line_confidence = gr.Number(
                        label="Confidence (geometric mean of token probabilities, 0-1)",
                        elem_id="line-confidence",
                        interactive=False,
                    )
                    line_status = gr.Markdown(elem_id="line-status")
            line_button = gr.Button("Read line", variant="primary", elem_id="line-read")
            line_image = gr.Image(
                label="As the model gets it", type="pil", interactive=False, height=120, buttons=NO_SHARE
            )
            line_button.click(
                reader.read_line, [line_file, beams], [line_image, line_text, line_confidence, line_status]
            )
        with gr.Tab("Page"):
            if not kraken_available():
                gr.Markdown(PAGES_HINT, elem_id="page-unavailable")
            else:
                with gr.Row():
                    page_file = gr.File(label="Page image", type="filepath", elem_id="page-file")
                    page_overlay = gr.Image(
                        label="Lines found", type="pil", interactive=False, buttons=NO_SHARE
                    )
                page_text = gr.Textbox(label="Text (reading order)", lines=8, elem_id="page-text")
                page_status = gr.Markdown(elem_id="page-status")
                page_button = gr.Button("Read page", variant="primary", elem_id="page-read")
                page_button.click(
                    reader.read_page, [page_file, beams], [page_overlay, page_text, page_status]
                )
    return app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m htr.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="run_trocr.py output dir or Hub id.")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 opens it to the network.",
    )
    parser.add_argument("--port", type=int, default=7860, help="Port to listen on. Default: 7860.")
    parser.add_argument(
        "--share", action="store_true", help="Also make a public gradio.live link (off by default)."
    )
    parser.add_argument(
        "--num_beams",
        type=int,
        help=f"Initial beam slider value, 1 (greedy) to {MAX_BEAMS} (default: the model's generation_config).",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (GPU if available).")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_beams is not None and not 1 <= args.num_beams <= MAX_BEAMS:
        parser.error(f"--num_beams must be 1 to {MAX_BEAMS}, got {args.num_beams}")
    try:
        pixel_limit()
        reader = Reader(args.model, args.device)
    except (predict.InputError, PixelLimitError) as error:
        parser.error(str(error))
    # ssr_mode=False: no Node.js server beside the Python one; the prebuilt frontend in the wheel is enough.
    build_app(reader, args.model, args.num_beams or reader.default_beams).launch(
        server_name=args.host, server_port=args.port, share=args.share, ssr_mode=False
    )


if __name__ == "__main__":
    main()
