"""Does memory grow with the number of rows? Peak RSS of a 1k-row vs a 100k-row english.csv.

    python benchmarks/memory.py

Each size runs in a fresh subprocess, with an empty datasets cache as on a first run (``read_csv`` now
parses the CSV with ``htr.data.dataset_csv`` into an in-memory Dataset, so nothing is cached anyway):
``read_csv`` + ``ImageTextTransform`` (``with_transform``) + label lengths for
group_by_length + ``TrOCRTrainer`` with a DataLoader worker, stopped at a fixed step. The rows
point at the same few rendered images, so only the number of rows differs. Reported: the training
process's peak RSS (``ru_maxrss``) and the worker's RSS at that step, sizes alternated over the
repeats.
"""

import argparse
import csv
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from _common import (
    TrainerCallback,
    TrOCRCollator,
    build_tiny_model,
    interleaved,
    median,
    model_inputs,
    print_table,
    recipe_trainer,
    start,
    synthetic_csv,
)

MIB = 1024 * 1024


class _MemoryAtStep(TrainerCallback):
    """Record memory at step ``step`` and stop training there."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.result: dict[str, float] = {}

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.step:
            workers = psutil.Process().children(recursive=True)
            self.result = {
                "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
                "workers_mib": sum(worker.memory_info().rss for worker in workers) / MIB,
            }
            control.should_training_stop = True


def child(csv_path: Path, step: int, batch_size: int) -> None:
    """Train to ``step`` on ``csv_path`` and print the memory measurements as JSON."""
    model, processor = build_tiny_model()
    dataset, lengths = model_inputs(csv_path, processor)
    probe = _MemoryAtStep(step)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = recipe_trainer(
            model,
            dataset,
            output_dir,
            batch_size=batch_size,
            collator=TrOCRCollator(),
            lengths=lengths,
            num_workers=1,
            max_steps=step,
            callbacks=[probe],
        )
        trainer.train()
    print(json.dumps(probe.result))


def write_csv(path: Path, rows: int, images: list[dict[str, str]], image_dir: Path) -> Path:
    """``rows`` rows cycling over ``images`` (absolute paths, their own labels)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label"])
        for row in itertools.islice(itertools.cycle(images), rows):
            writer.writerow([str(image_dir / row["image"]), row["label"]])
    return path


def measure(csv_path: Path, step: int, batch_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache:
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(csv_path),
                "--step",
                str(step),
                "--batch_size",
                str(batch_size),
            ],
            env={**os.environ, "HF_DATASETS_CACHE": cache},
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000], help="rows per CSV")
    parser.add_argument("--step", type=int, default=10, help="training step at which memory is read")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = start(parser)
    if args.child:
        child(args.child, args.step, args.batch_size)
        return

    images_csv = synthetic_csv(16)
    with images_csv.open(newline="", encoding="utf-8") as handle:
        images = list(csv.DictReader(handle))
    with tempfile.TemporaryDirectory() as folder:
        paths = {
            size: write_csv(Path(folder) / f"rows-{size}.csv", size, images, images_csv.parent)
            for size in args.sizes
        }
        results: dict[int, list[dict[str, float]]] = {size: [] for size in args.sizes}

        def run(size: int) -> float:
            results[size].append(measure(paths[size], args.step, args.batch_size))
            return results[size][-1]["main_peak_mib"]

        interleaved({size: lambda size=size: run(size) for size in args.sizes}, args.repeats)

    smallest = median([r["main_peak_mib"] for r in results[args.sizes[0]]])
    rows = []
    for size in args.sizes:
        main_peak = median([r["main_peak_mib"] for r in results[size]])
        workers = median([r["workers_mib"] for r in results[size]])
        rows.append([f"{size:,}", f"{main_peak:.0f}", f"{workers:.0f}", f"{main_peak / smallest:.2f}x"])
    print_table(
        f"Memory at training step {args.step} (batch {args.batch_size}, 1 DataLoader worker), "
        f"median of {args.repeats} fresh processes",
        ["CSV rows", "training process peak RSS (MiB)", "worker RSS (MiB)", f"vs {args.sizes[0]:,} rows"],
        rows,
    )


if __name__ == "__main__":
    main()
