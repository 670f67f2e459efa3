"""Is the data pipeline ever the bottleneck? Images/s it delivers vs samples/s the model trains on.

    python benchmarks/data_pipeline.py            # tiny model, then trocr-base (a few minutes)
    python benchmarks/data_pipeline.py --models tiny --augment none da2 scan --crop_to_ink --deskew

* pipeline: a DataLoader over ``read_csv`` + ``ImageTextTransform`` (open the image, the training
  augmentation of ``--augment``, with ``--crop_to_ink`` also each one cut to its ink, with ``--deskew``
  also each one deskewed and cut to its ink, the model's image
  processor, tokenize) + ``TrOCRCollator``, with the recipe's batch size and
  ``dataloader_num_workers``, timed over a whole epoch from worker start-up (so slightly
  pessimistic);
* model: forward + backward + AdamW step on one such batch, already in memory.

``tiny`` is the benchmark TrOCR at 32x128 with recipes/pretrain/02_synthetic.json's batch and workers;
``base`` is trocr-base's architecture (ViT-B/16 at 384x384 + 12-layer 1024-wide decoder, random
weights, built offline) with recipes/iam_imgur.json's. Images are rendered words and lines
128 px high saved as PNG, like IAM's line images (``--height 64``: as high as the pretraining sets' lines). A ratio above 1 means the model, not the data,
sets the pace.
"""

import argparse
import time

import torch
from _common import (
    BENCH_MODEL_NAME,
    ROOT,
    TrOCRCollator,
    bench_model,
    interleaved,
    median,
    model_inputs,
    parameters,
    print_table,
    spread,
    start,
    synthetic_csv,
    trocr_architecture,
    trocr_processor,
)
from torch.utils.data import DataLoader

from htr.core.reading import LineReading
from htr.training.recipe import load_recipe

SETUPS = {
    "tiny": ("recipes/pretrain/02_synthetic.json", 3, 5),  # recipe, repeats, timed steps per repeat
    "base": ("recipes/iam_imgur.json", 2, 1),  # a trocr-base step takes about a minute on 2 CPU cores
}


def pipeline_images_per_second(loader: DataLoader) -> float:
    """One epoch of the DataLoader, timed from worker start-up to the last batch."""
    start = time.perf_counter()
    images = sum(len(batch["pixel_values"]) for batch in loader)
    return images / (time.perf_counter() - start)


def model_samples_per_second(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> float:
    """Median training samples/s over ``steps`` optimisation steps on an in-memory batch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    rates = []
    for _ in range(steps):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        rates.append(len(batch["labels"]) / (time.perf_counter() - start))
    return median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--num_samples", type=int, default=192, help="images per pipeline epoch")
    parser.add_argument(
        "--height",
        type=int,
        default=128,
        help="line height in px: 128 like IAM's lines, 64 like the tiny model's pretraining sets",
    )
    parser.add_argument(
        "--augment", nargs="+", default=["none", "da2", "scan"], help="training augmentations to time"
    )
    parser.add_argument(
        "--crop_to_ink",
        action="store_true",
        help="also time each augmentation followed by the cut to the ink",
    )
    parser.add_argument(
        "--deskew",
        action="store_true",
        help="also time each augmentation followed by the deskew and the cut to the ink",
    )
    args = start(parser)
    readings = {"": LineReading()}
    if args.crop_to_ink:
        readings[" + crop"] = LineReading(crop_to_ink=True)
    if args.deskew:
        readings[" + deskew + crop"] = LineReading(deskew=True, crop_to_ink=True)
    setups = [(augment, suffix) for suffix in readings for augment in args.augment]
    csv_path = synthetic_csv(args.num_samples, height=args.height, augment="none")

    rows = []
    for name in args.models:
        recipe_path, repeats, steps = SETUPS[name]
        recipe = load_recipe(ROOT / recipe_path)
        batch_size, workers = recipe["per_device_train_batch_size"], recipe["dataloader_num_workers"]
        if name == "tiny":
            model, processor = bench_model()
            description = BENCH_MODEL_NAME
        else:
            model, processor = trocr_architecture("base"), trocr_processor()
            description = "trocr-base architecture, 384x384, random weights"
        print(f"{name}: {description} ({parameters(model)}); batch {batch_size}, {workers} workers.")
        loaders = {
            augment + suffix: DataLoader(
                model_inputs(csv_path, processor, augment, readings[suffix])[0],
                batch_size=batch_size,
                shuffle=True,
                num_workers=workers,
                collate_fn=TrOCRCollator(),
            )
            for augment, suffix in setups
        }
        batch = next(iter(loaders[args.augment[0]]))
        model.train()
        model_samples_per_second(model, batch, steps=1)  # warm-up: first-step allocations
        timers = {
            augment: lambda loader=loader: pipeline_images_per_second(loader)
            for augment, loader in loaders.items()
        }
        timers["model"] = lambda model=model, batch=batch, steps=steps: model_samples_per_second(
            model, batch, steps
        )
        runs = interleaved(timers, repeats)
        for augment in loaders:
            ratio = median(runs[augment]) / median(runs["model"])
            rows.append(
                [
                    name,
                    augment,
                    f"{batch_size} / {workers}",
                    spread(runs[augment]),
                    spread(runs["model"], digits=2),
                    f"{ratio:.1f}x",
                    "model" if ratio > 1 else "DATA PIPELINE",
                ]
            )
        del model
    print_table(
        "Data pipeline vs training step (2 shared CPU cores), median (range)",
        [
            "model",
            "augment",
            "batch / workers",
            "pipeline images/s",
            "model samples/s",
            "pipeline / model",
            "bottleneck",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
