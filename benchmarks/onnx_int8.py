"""int8 variants of the ONNX export on a trocr-base-shaped model (random weights): which one beats PyTorch.

    python benchmarks/onnx_int8.py

Variants of the same fp32 export (``htr.inference.export``), each read by ``OnnxTrOCR`` behind ``generate()``:

* ``dynamic``: ``quantize_dynamic``, int8 weights per tensor (what ``--quantize int8`` does today).
* ``pre_dynamic_pc``: onnxruntime's ``quant_pre_process`` (shape inference, graph optimisation), then
  ``quantize_dynamic`` per channel.
* ``static_pc``: ``quant_pre_process``, then ``quantize_static`` (QDQ, u8 activations, s8 weights per
  channel, MinMax) calibrated on synthetic lines: the encoder on 4 lines' pixels, the decoder on the inputs
  the fp32 export's own ``generate()`` feeds it while reading 8 lines (every third step).

Batch 16, ``--new_tokens`` forced per line, backends alternated in ABBA order; also the encoder alone. One
export is open at a time (opened and warmed up on one line before each timing).
The fp32 export is ``benchmarks/inference.py``'s (``$TMPDIR/htr-bench``), the variants are cached under
``$TMPDIR/htr-bench/int8`` (export ~1 min, static calibration several).
"""

import argparse
import gc
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import CACHE, interleaved, median, print_table, spread, start, synthetic_csv, trocr_architecture
from _common import trocr_processor as base_processor
from inference import exported
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from htr.core.images import open_image
from htr.data.dataset import read_csv
from htr.inference import export
from htr.inference.onnx_model import DECODER_FILE, ENCODER_FILE, MANIFEST_FILE, OnnxTrOCR

FOLDER = CACHE / "int8"
GRAPHS = (ENCODER_FILE, DECODER_FILE)


class Feeds(CalibrationDataReader):
    """The calibration inputs of one graph, one feed dict per call."""

    def __init__(self, feeds: list[dict]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def decoder_feeds(folder: Path, pixel_values: torch.Tensor, new_tokens: int) -> list[dict]:
    """What the fp32 decoder graph is fed while ``generate()`` reads these lines (every third step:
    each feed carries the cross keys/values of its batch, ~57 MB per image)."""
    model = OnnxTrOCR(folder)
    session, feeds, steps = model.decoder_session, [], [0]

    class Recorder:
        def run(self, names, inputs):
            if steps[0] % 3 == 0:
                feeds.append({name: value.copy() for name, value in inputs.items()})
            steps[0] += 1
            return session.run(names, inputs)

    model.decoder_session = Recorder()
    with torch.inference_mode():
        for first in range(0, len(pixel_values), 4):
            model.generate(
                pixel_values[first : first + 4], min_new_tokens=new_tokens, max_new_tokens=new_tokens
            )
    return feeds


def dynamic(out: Path, _: torch.Tensor, __: int) -> None:
    export.quantize_int8([out / name for name in GRAPHS])


def pre_dynamic_pc(out: Path, _: torch.Tensor, __: int) -> None:
    for name in GRAPHS:
        quant_pre_process(out / name, out / name)
        quantize_dynamic(out / name, out / name, weight_type=QuantType.QInt8, per_channel=True)


def static_pc(out: Path, calibration: torch.Tensor, new_tokens: int) -> None:
    feeds = {
        # 4 lines, one per feed: MinMax keeps every activation of every feed (GBs per ViT-B image) until the end.
        ENCODER_FILE: [{"pixel_values": calibration[i : i + 1].numpy()} for i in range(4)],
        DECODER_FILE: decoder_feeds(out, calibration[:8], new_tokens),  # out is still fp32 here
    }
    for name in GRAPHS:
        quant_pre_process(out / name, out / name)
        quantize_static(
            out / name,
            out / name,
            Feeds(feeds[name]),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Not CalibMaxIntermediateOutputs: onnxruntime 1.32 discards the batches it clears, unmeasured.
            extra_options={"ActivationSymmetric": False},
        )


VARIANTS: dict[str, Callable[[Path, torch.Tensor, int], None]] = {
    "dynamic": dynamic,
    "pre_dynamic_pc": pre_dynamic_pc,
    "static_pc": static_pc,
}


def variant(name: str, fp32: Path, calibration: torch.Tensor, new_tokens: int) -> Path:
    """The cached export for one variant, quantised from a copy of the fp32 export."""
    out = FOLDER / name
    if not (out / MANIFEST_FILE).is_file():
        shutil.copytree(fp32, out, dirs_exist_ok=True)
        started = time.perf_counter()
        VARIANTS[name](out, calibration, new_tokens)
        print(f"{name}: quantised in {time.perf_counter() - started:.0f} s", flush=True)
        export.write_manifest(out, "trocr-base-shaped", name)
    return out


class OneAtATime:
    """The PyTorch model, and one ONNX export's sessions at a time, warmed up on one line before timing:
    the arenas of four ViT-B export pairs at batch 16 held together outgrew 24 GB (OOM-killed)."""

    def __init__(self, model: torch.nn.Module, folders: dict[str, Path], warm_up: torch.Tensor) -> None:
        self.model, self.folders, self.warm_up = model, folders, warm_up
        self.name: str | None = None
        self.onnx: OnnxTrOCR | None = None

    def __call__(self, name: str) -> torch.nn.Module | OnnxTrOCR:
        if name not in self.folders:
            return self.model
        if name != self.name:
            self.onnx = None  # free the previous sessions before opening the next
            gc.collect()
            self.onnx, self.name = OnnxTrOCR(self.folders[name]), name
            with torch.inference_mode():
                self.onnx.generate(self.warm_up, max_new_tokens=2)
        return self.onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new_tokens", type=int, default=12, help="Tokens per line, forced.")
    parser.add_argument("--images", type=int, default=16, help="Timed lines (one batch).")
    parser.add_argument("--calibration_images", type=int, default=8, help="Synthetic calibration lines.")
    parser.add_argument("--repeats", type=int, default=2, help="Rounds; 2 = one ABBA.")
    args = start(parser)
    torch.manual_seed(0)
    model = trocr_architecture("base").eval()
    processor = base_processor()
    fp32 = exported("trocr-base-shaped", model, processor, quantize=False)
    csv = synthetic_csv(args.calibration_images + args.images, seed=1)
    images = [open_image(csv.parent / row["image"]) for row in read_csv(csv)]
    pixel_values = processor.image_processor(images, return_tensors="pt").pixel_values
    calibration, timed = pixel_values[: args.calibration_images], pixel_values[args.calibration_images :]
    folders = {"ONNX fp32": fp32}
    folders |= {f"ONNX int8 {name}": variant(name, fp32, calibration, args.new_tokens) for name in VARIANTS}
    names = ["PyTorch fp32", *folders]
    loaded = OneAtATime(model, folders, timed[:1])

    tokens = {"min_new_tokens": args.new_tokens, "max_new_tokens": args.new_tokens}
    with torch.inference_mode():
        reference = model.generate(timed[:4], **tokens)
        agree = {
            name: float((loaded(name).generate(timed[:4], **tokens) == reference).float().mean())
            for name in names
        }

    @torch.inference_mode()
    def read(name: str) -> float:
        candidate = loaded(name)
        started = time.perf_counter()
        candidate.generate(timed, **tokens)
        return len(timed) / (time.perf_counter() - started)

    @torch.inference_mode()
    def encode(name: str) -> float:
        candidate = loaded(name)
        started = time.perf_counter()
        if isinstance(candidate, OnnxTrOCR):
            candidate.encoder_session.run(None, {"pixel_values": timed.numpy()})
        else:
            candidate.encoder(pixel_values=timed)
        return len(timed) / (time.perf_counter() - started)

    runs = {
        part: interleaved({n: lambda n=n, f=f: f(n) for n in names}, args.repeats)
        for part, f in (("generate", read), ("encoder", encode))
    }
    rows = []
    for name in names:
        size = sum((folders[name] / g).stat().st_size for g in GRAPHS) / 1e6 if name in folders else None
        rows.append(
            [
                name,
                spread(runs["generate"][name], 2),
                f"{median(runs['generate'][name]) / median(runs['generate']['PyTorch fp32']):.2f}x",
                spread(runs["encoder"][name], 2),
                f"{median(runs['encoder'][name]) / median(runs['encoder']['PyTorch fp32']):.2f}x",
                f"{agree[name]:.2f}",
                "" if size is None else f"{size:.0f}",
            ]
        )
    print_table(
        f"trocr-base-shaped, batch {len(timed)}, {args.new_tokens} tokens: images/s, median (range) of {args.repeats}",
        ["backend", "generate", "vs PyTorch", "encoder alone", "vs PyTorch", "tokens as PyTorch", "MB"],
        rows,
    )


if __name__ == "__main__":
    main()
