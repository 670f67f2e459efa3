"""Inference on CPU: PyTorch fp32 vs torch dynamic int8 vs ONNX fp32 vs ONNX int8 (``htr.inference.export``).

    python benchmarks/inference.py                      # shipped tiny model: speed + CER on data/heldout
    python benchmarks/inference.py --part base          # trocr-base-shaped model, random weights: speed

Same images, one process, the backends alternated in ABBA order over the repeats (``_common.interleaved``);
images/s for greedy and beam 4 at batch 1 and 16. The tiny model reads real lines (``read_lines``, its own
stopping); the trocr-base-shaped one has random weights, so every image decodes exactly ``--new_tokens``
tokens (``min_new_tokens = max_new_tokens``), as a trained model stopping at ``</s>`` would. CER: every
backend on all of ``data/heldout`` (greedy and beam 4), and how many rows differ from PyTorch's.
The ONNX exports are cached under ``$TMPDIR/htr-bench`` (the dynamo exporter is slow).
"""

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import (
    CACHE,
    ROOT,
    interleaved,
    median,
    parameters,
    print_table,
    spread,
    start,
    trocr_architecture,
)
from _common import trocr_processor as base_processor

from htr.core.images import open_image
from htr.core.metrics import error_rates
from htr.inference import export, onnx_model
from htr.inference.predict import collect, load, predict, read_lines

TINY = ROOT / "models" / "trocr-tiny-synthetic"
HELDOUT = ROOT / "data" / "heldout" / "english.csv"
BACKENDS = ("PyTorch fp32", "PyTorch dynamic int8", "ONNX fp32", "ONNX int8")


def torch_int8(model: torch.nn.Module) -> torch.nn.Module:
    """torch's own candidate: int8 weights for every Linear, activations quantised on the fly."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def exported(name: str, model: torch.nn.Module, processor, quantize: bool) -> Path:
    """The model's htr.inference.export folder under the cache (fp32, or int8 quantised from the fp32 one)."""
    fp32 = CACHE / f"{name}-onnx-fp32"
    if not (fp32 / onnx_model.MANIFEST_FILE).is_file():
        export.export(model, processor, fp32)
        export.write_manifest(fp32, name, None)
    if not quantize:
        return fp32
    int8 = CACHE / f"{name}-onnx-int8"
    if not (int8 / onnx_model.MANIFEST_FILE).is_file():
        shutil.copytree(fp32, int8, dirs_exist_ok=True)
        export.quantize_int8([int8 / onnx_model.ENCODER_FILE, int8 / onnx_model.DECODER_FILE])
        export.write_manifest(int8, name, "int8")
    return int8


def backends(name: str, model: torch.nn.Module, processor) -> dict[str, object]:
    onnx_fp32 = exported(name, model, processor, quantize=False)
    onnx_int8 = exported(name, model, processor, quantize=True)
    models = {
        "PyTorch fp32": model,
        "PyTorch dynamic int8": torch_int8(model),
        "ONNX fp32": load(str(onnx_fp32), backend="onnx")[0],
        "ONNX int8": load(str(onnx_int8), backend="onnx")[0],
    }
    return models


def speed_table(models: dict, measure: Callable, args: argparse.Namespace, title: str) -> None:
    rows, repeats = [], args.repeats
    modes = [
        (decoding, batch, beams)
        for decoding, beams in (("greedy", 1), ("beam 4", 4))
        for batch in args.batch_sizes
    ]
    for decoding, batch, beams in modes:
        runs = interleaved(
            {name: lambda m=m, b=batch, n=beams: measure(m, b, n) for name, m in models.items()}, repeats
        )
        baseline = median(runs["PyTorch fp32"])
        rows += [
            [decoding, batch, name, spread(runs[name], 2), f"{median(runs[name]) / baseline:.2f}x"]
            for name in models
        ]
        print(rows[-4:], flush=True)
    print_table(title, ["decoding", "batch", "backend", "images/s", "vs PyTorch fp32"], rows)


def tiny(args: argparse.Namespace) -> None:
    model, processor = load(str(TINY), device="cpu")
    models = backends("tiny", model, processor)
    items, _, _ = collect([HELDOUT])
    images = [open_image(item.path) for item in items[: args.num_images]]
    print(f"Model: {TINY.name} ({parameters(model)}); {len(images)} heldout images per run.", flush=True)

    def measure(candidate, batch: int, beams: int) -> float:
        start_time = time.perf_counter()
        read_lines(candidate, processor, images, batch_size=batch, num_beams=beams)
        return len(images) / (time.perf_counter() - start_time)

    speed_table(models, measure, args, f"{TINY.name}: images/s, median (range) of {args.repeats}")
    rows = []
    for beams, rows_read in ((1, len(items)), (4, args.beam_cer_rows)):
        predictions = {}
        for name, candidate in models.items():
            start_time = time.perf_counter()
            result, _ = predict(candidate, processor, items[:rows_read], batch_size=16, num_beams=beams)
            predictions[name] = result
            print(
                f"{name} beam {beams}: {len(result)} rows in {time.perf_counter() - start_time:.0f} s",
                flush=True,
            )
        reference = [row["prediction"] for row in predictions["PyTorch fp32"]]
        for name, result in predictions.items():
            texts = [row["prediction"] for row in result]
            cer = error_rates(texts, [row["label"] for row in result])["cer"]
            differ = sum(a != b for a, b in zip(texts, reference, strict=True))
            rows.append(
                ["greedy" if beams == 1 else "beam 4", name, f"{cer:.2f}", f"{differ} / {len(texts)}"]
            )
    print_table(
        f"CER on data/heldout (greedy: all {len(items)} lines; beam 4: the first {args.beam_cer_rows}), {TINY.name}",
        ["decoding", "backend", "CER %", "rows differing from PyTorch fp32"],
        rows,
    )


def base(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = trocr_architecture("base").eval()
    processor = base_processor()
    models = backends("trocr-base-shaped", model, processor)
    items, _, _ = collect([HELDOUT])
    images = [open_image(item.path) for item in items[: args.base_images]]
    pixel_values = processor.image_processor(images, return_tensors="pt").pixel_values
    print(
        f"Model: trocr-base-shaped, random weights ({parameters(model)}); {len(images)} images.", flush=True
    )

    @torch.inference_mode()
    def measure(candidate, batch: int, beams: int) -> float:
        start_time = time.perf_counter()
        for first in range(0, len(pixel_values), batch):
            candidate.generate(
                pixel_values[first : first + batch],
                num_beams=beams,
                min_new_tokens=args.new_tokens,
                max_new_tokens=args.new_tokens,
            )
        return len(pixel_values) / (time.perf_counter() - start_time)

    speed_table(
        models,
        measure,
        args,
        f"trocr-base-shaped, {args.new_tokens} tokens per line: images/s, median (range) of {args.repeats}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--num_images", type=int, default=64, help="Heldout images per timed run (tiny).")
    parser.add_argument(
        "--base_images", type=int, default=16, help="Images per timed run (trocr-base-shaped)."
    )
    parser.add_argument("--new_tokens", type=int, default=12, help="Tokens per line (trocr-base-shaped).")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16], help="Images per generate().")
    parser.add_argument(
        "--beam_cer_rows", type=int, default=1000, help="Heldout rows read with beam 4 for CER."
    )
    parser.add_argument("--repeats", type=int, default=2, help="Rounds; 2 = one ABBA.")
    args = start(parser)
    tiny(args) if args.part == "tiny" else base(args)


if __name__ == "__main__":
    main()
