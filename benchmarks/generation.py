"""Evaluation speed: batched generate() with the KV cache vs one image at a time, greedy and beam 4.

    python benchmarks/generation.py

Evaluation decodes every validation/test image with ``generate()``, so its images/s sets how long
each epoch's CER takes. The model has random weights, so each image is made to decode exactly as
many tokens as its label has (``min_new_tokens = max_new_tokens``), as a trained model stopping at
``</s>`` would: one at a time, an image costs its own length; in a batch, every image costs the
batch's longest, as in a real batched ``generate()``. Rows in CSV order, as evaluation reads them.
"""

import argparse
import time

import torch
from _common import (
    BENCH_MODEL_NAME,
    bench_model,
    interleaved,
    median,
    model_inputs,
    parameters,
    print_table,
    spread,
    start,
    synthetic_csv,
)
from transformers import VisionEncoderDecoderModel

# (name, images per generate() call, beams, KV cache); 16 = the recipes' per_device_eval_batch_size.
MODES = [
    ("greedy, one by one", 1, 1, True),
    ("greedy, batched", 16, 1, True),
    ("greedy, batched, no KV cache", 16, 1, False),
    ("beam 4, one by one", 1, 4, True),
    ("beam 4, batched", 16, 4, True),
]


@torch.no_grad()
def images_per_second(
    model: VisionEncoderDecoderModel,
    pixel_values: torch.Tensor,
    lengths: list[int],
    batch_size: int,
    num_beams: int,
    use_cache: bool,
) -> float:
    start_time = time.perf_counter()
    for first in range(0, len(lengths), batch_size):
        tokens = max(lengths[first : first + batch_size])
        model.generate(
            pixel_values=pixel_values[first : first + batch_size],
            min_new_tokens=tokens,
            max_new_tokens=tokens,
            num_beams=num_beams,
            use_cache=use_cache,
        )
    return len(lengths) / (time.perf_counter() - start_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = start(parser)

    model, processor = bench_model()
    model.eval()
    dataset, lengths = model_inputs(synthetic_csv(640), processor)
    pixel_values = dataset[: args.num_images]["pixel_values"]
    lengths = lengths[: args.num_images]
    print(
        f"Model: {BENCH_MODEL_NAME} ({parameters(model)}); {args.num_images} images, "
        f"{sum(lengths) / len(lengths):.1f} tokens per label on average."
    )
    runs = interleaved(
        {
            name: lambda batch=batch, beams=beams, cache=cache: images_per_second(
                model, pixel_values, lengths, batch, beams, cache
            )
            for name, batch, beams, cache in MODES
        },
        args.repeats,
    )
    rows = []
    for name, batch, beams, cache in MODES:
        baseline = next(other for other, b, n, _ in MODES if b == 1 and n == beams)
        rows.append(
            [
                name,
                batch,
                "yes" if cache else "no",
                spread(runs[name]),
                f"{median(runs[name]) / median(runs[baseline]):.2f}x",
            ]
        )
    print_table(
        f"generate() speed, median (range) of {args.repeats} runs",
        ["decoding", "images per call", "KV cache", "images/s", "vs one by one, same decoding"],
        rows,
    )


if __name__ == "__main__":
    main()
