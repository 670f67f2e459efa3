"""The GPU path: trocr-base/-large fine-tuning steps in fp16, and what they mean for the recipe's wall time.

    python benchmarks/gpu_step.py                  # on a CUDA GPU: trocr-base and trocr-large
    python benchmarks/gpu_step.py --models base --skip_compile
    python benchmarks/gpu_step.py --cpu_dry_run    # tiny sizes on CPU: proves the code path runs

Random-init trocr-base/-large architectures (built offline from configs, no download) at 384x384,
trained the way the recipe trains them: fp16 autocast + GradScaler, AdamW (lr 5e-5, weight decay
0.01), gradient clipping at 1.0, labels padded per batch by ``TrOCRCollator``. Label lengths are
drawn like IAM lines (see ``iam_line_lengths``). Reported per model:

* step time, samples/s and peak GPU memory (``torch.cuda.max_memory_allocated``) at ``--batch_size``,
  for the ViT encoder's SDPA attention (the default) vs eager, and SDPA + ``torch.compile``;
* that loss and gradients stay finite (steps GradScaler skips for overflowing gradients are
  counted, not hidden);
* the largest batch that fits (doubling, then bisection, on labels of the longest drawn length);
* batched greedy ``generate()`` images/s, and the projected wall time of recipes/iam_imgur.json
  (10 epochs, evaluation each epoch, test at the end) for the assumed IAM + Imgur5K row counts.
"""

import argparse
import gc
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from _common import ROOT, VOCAB_SIZE, TrOCRCollator, parameters, print_table, start, trocr_architecture
from transformers import VisionEncoderDecoderModel

# Row counts assumed for the projection (override with --train_rows/--eval_rows/--test_rows):
# * IAM lines, RWTH Aachen writer-independent partition (data_prep/iam.py's *.uttlist files):
#   6,482 train / 976 validation / 2,915 test lines.
# * Imgur5K words: ~135,000 words on ~5K images (Krishnan et al., "TextStyleBrush", arXiv:2106.08385);
#   the dataset's README says ~4K more images were added later. All counted as training rows here.
IAM_TRAIN, IAM_VALIDATION, IAM_TEST = 6_482, 976, 2_915
IMGUR5K_WORDS = 135_000
# IAM has 115,320 words in 13,353 lines (IAM database page, fki.tic.heia-fr.ch): 8.6 words a line.
IAM_WORDS_PER_LINE = 115_320 / 13_353
TOKENS_PER_WORD = 1.3  # assumption: RoBERTa BPE on English text, punctuation included
LINE_WORDS_SD = 2.5  # assumption: spread of words per line


def iam_line_lengths(count: int, rng: np.random.Generator) -> list[int]:
    """Label lengths in tokens like IAM lines: words per line around 8.6, 1.3 tokens a word, + <s> </s>."""
    words = np.clip(rng.normal(IAM_WORDS_PER_LINE, LINE_WORDS_SD, count), 1, 30)
    return [min(128, math.ceil(w * TOKENS_PER_WORD) + 2) for w in words]


def make_batch(
    batch_size: int, lengths: list[int], image_size: int, device: torch.device, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """Random images and token ids with the given label lengths, padded as training pads them."""
    features = [
        {
            "pixel_values": torch.randn(3, image_size, image_size),
            "labels": rng.integers(4, VOCAB_SIZE, length).tolist(),
        }
        for length in lengths[:batch_size]
    ]
    return {key: value.to(device) for key, value in TrOCRCollator()(features).items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@dataclass
class StepResult:
    step_seconds: float
    warmup_seconds: float
    peak_gib: float | None
    finite_losses: int
    finite_grads: int
    steps: int


def train_steps(
    model: torch.nn.Module,
    batch_size: int,
    steps: int,
    warmup: int,
    image_size: int,
    device: torch.device,
    fixed_length: int | None = None,
) -> StepResult:
    """``warmup`` + ``steps`` fp16 training steps; median step time of the last ``steps``."""
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    scaler = torch.amp.GradScaler(device.type)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    times, finite_losses, finite_grads = [], 0, 0
    warmup_start = time.perf_counter()
    warmup_seconds = 0.0
    for step in range(warmup + steps):
        lengths = [fixed_length] * batch_size if fixed_length else iam_line_lengths(batch_size, rng)
        batch = make_batch(batch_size, lengths, image_size, device, rng)
        synchronize(device)
        step_start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)  # skipped by the scaler when the gradients overflowed
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        if step == warmup - 1:
            warmup_seconds = time.perf_counter() - warmup_start
        if step >= warmup:
            times.append(time.perf_counter() - step_start)
            finite_losses += bool(torch.isfinite(loss))
            finite_grads += bool(torch.isfinite(grad_norm))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    del optimizer
    return StepResult(float(np.median(times)), warmup_seconds, peak, finite_losses, finite_grads, steps)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def fits(model: torch.nn.Module, batch_size: int, length: int, image_size: int, device: torch.device) -> bool:
    """Whether two training steps at ``batch_size`` (labels of ``length`` tokens) fit in memory."""
    try:
        train_steps(
            model, batch_size, steps=1, warmup=1, image_size=image_size, device=device, fixed_length=length
        )
        fitted = True
    except torch.OutOfMemoryError:
        fitted = False
    model.zero_grad(set_to_none=True)
    free(device)  # after the except block, once the traceback no longer holds the failed step's tensors
    return fitted


def largest_batch(
    model: torch.nn.Module, start_batch: int, cap: int, length: int, image_size: int, device: torch.device
) -> tuple[int, bool]:
    """Largest batch that fits: double from ``start_batch`` until a failure or ``cap``, then bisect."""
    good, bad = start_batch, None
    while bad is None and good < cap:
        trial = min(good * 2, cap)
        if fits(model, trial, length, image_size, device):
            good = trial
        else:
            bad = trial
    if bad is None:
        return good, True  # capped: it may fit more
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(model, middle, length, image_size, device) else (good, middle)
    return good, False


@torch.no_grad()
def generate_images_per_second(
    model: VisionEncoderDecoderModel, batch_size: int, batches: int, image_size: int, device: torch.device
) -> float:
    """Greedy batched generate() images/s; each batch decodes as many tokens as its longest drawn label."""
    rng = np.random.default_rng(1)
    model.eval()
    seconds = 0.0
    for batch_index in range(batches + 1):  # batch 0 warms up
        tokens = max(iam_line_lengths(batch_size, rng))
        pixel_values = torch.randn(batch_size, 3, image_size, image_size, device=device)
        synchronize(device)
        batch_start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16):
            model.generate(
                pixel_values=pixel_values, min_new_tokens=tokens, max_new_tokens=tokens, num_beams=1
            )
        synchronize(device)
        if batch_index:
            seconds += time.perf_counter() - batch_start
    return batches * batch_size / seconds


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=["base", "large"], default=["base", "large"])
    parser.add_argument("--batch_size", type=int, default=4, help="the recipe's per_device_train_batch_size")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile: +10)")
    parser.add_argument("--image_size", type=int, default=384)
    parser.add_argument("--max_batch", type=int, default=512, help="stop the largest-batch search here")
    parser.add_argument("--skip_compile", action="store_true", help="leave out the torch.compile variant")
    parser.add_argument("--train_rows", type=int, default=IAM_TRAIN + IMGUR5K_WORDS)
    parser.add_argument("--eval_rows", type=int, default=IAM_VALIDATION)
    parser.add_argument("--test_rows", type=int, default=IAM_TEST)
    parser.add_argument(
        "--cpu_dry_run", action="store_true", help="tiny model and sizes on CPU, to check the code runs"
    )
    args = start(parser)
    if not torch.cuda.is_available() and not args.cpu_dry_run:
        sys.exit(
            "gpu_step.py: no CUDA GPU found (torch.cuda.is_available() is False). It measures fp16 training "
            "on a GPU; run it on a GPU machine, or add --cpu_dry_run to check the code path on tiny sizes."
        )
    recipe = json.loads((ROOT / "recipes/iam_imgur.json").read_text())
    epochs, eval_batch = recipe["num_train_epochs"], recipe["per_device_eval_batch_size"]
    if args.cpu_dry_run:
        device, sizes, image_size = torch.device("cpu"), ["dry-run"], 64
        print("CPU dry run: a tiny model at 64x64; the figures only show that every code path runs.")
        steps, warmup, cap, generate_batches = 2, 1, 8, 1
    else:
        device, sizes, image_size = torch.device("cuda"), args.models, args.image_size
        steps, warmup, cap, generate_batches = args.steps, args.warmup, args.max_batch, 5
        print(f"Device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    longest = max(iam_line_lengths(10_000, np.random.default_rng(2)))

    rows, notes = [], []
    for size in sizes:
        variants = [("sdpa", False), ("eager", False)] + ([] if args.skip_compile else [("sdpa", True)])
        baseline = None
        for attention, compiled in variants:
            model = trocr_architecture(size, image_size=image_size, encoder_attention=attention).to(device)
            runner = torch.compile(model) if compiled else model
            result = train_steps(
                runner, args.batch_size, steps, warmup + (10 if compiled else 0), image_size, device
            )
            baseline = baseline or result.step_seconds
            rows.append(
                [
                    size,
                    attention + (" + torch.compile" if compiled else ""),
                    f"{result.step_seconds * 1000:.0f}",
                    f"{args.batch_size / result.step_seconds:.1f}",
                    "n/a (CPU)" if result.peak_gib is None else f"{result.peak_gib:.1f}",
                    f"{baseline / result.step_seconds:.2f}x",
                    f"{result.warmup_seconds:.0f}",
                    f"{result.finite_losses}/{result.steps} loss, {result.finite_grads}/{result.steps} grads",
                ]
            )
            if attention == "sdpa" and not compiled:
                step_seconds = result.step_seconds
                batch, capped = largest_batch(model, args.batch_size, cap, longest, image_size, device)
                generated = generate_images_per_second(
                    model, eval_batch, generate_batches, image_size, device
                )
                train_epoch = math.ceil(args.train_rows / args.batch_size) * step_seconds
                eval_epoch = args.eval_rows / generated
                total = epochs * (train_epoch + eval_epoch) + args.test_rows / generated
                notes.append(
                    f"{size} ({parameters(model)}): largest batch {'>= ' if capped else ''}{batch} "
                    f"(labels of {longest} tokens); greedy generate() {generated:.1f} images/s at batch "
                    f"{eval_batch}; recipes/iam_imgur.json projected: {hours(train_epoch)} training + "
                    f"{hours(eval_epoch)} evaluation per epoch, {hours(total)} for {epochs} epochs + test"
                )
            del model, runner
            free(device)

    print_table(
        f"fp16 training steps at batch {args.batch_size}, {image_size}x{image_size}, "
        f"median of {steps} steps after {warmup} warm-up",
        [
            "model",
            "encoder attention",
            "step (ms)",
            "samples/s",
            "peak GPU memory (GiB)",
            "vs sdpa",
            "warm-up (s)",
            "finite",
        ],
        rows,
    )
    for note in notes:
        print(f"- {note}")
    print(
        f"- Rows assumed: {args.train_rows:,} train (IAM {IAM_TRAIN:,} lines + Imgur5K ~{IMGUR5K_WORDS:,} "
        f"words), {args.eval_rows:,} validation, {args.test_rows:,} test (IAM lines); label lengths as IAM "
        "lines (Imgur5K words are shorter, so training time is slightly overestimated); checkpoint saving "
        "and data loading not included."
    )


if __name__ == "__main__":
    main()
