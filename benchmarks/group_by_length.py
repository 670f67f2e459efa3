"""What length-grouped batching alone buys: padding tokens per batch and training samples/s.

    python benchmarks/group_by_length.py

Both sides pad labels to the longest in the batch (``TrOCRCollator``); they differ only in the
order of the rows: random, or ``TrOCRTrainer``'s group_by_length sampler, which puts rows of similar
label length in the same batch using lengths computed once from the text. Padding is counted over
``--epochs`` epochs of each sampler (the same samplers the training runs use); samples/s over whole
epochs through TrOCRTrainer, alternating the two.
"""

import argparse
import tempfile

import torch
from _common import (
    BENCH_MODEL_NAME,
    TrOCRCollator,
    bench_model,
    interleaved,
    median,
    model_inputs,
    parameters,
    print_table,
    recipe_trainer,
    spread,
    start,
    synthetic_csv,
    trainer_samples_per_second,
)


def padding_per_batch(order: list[int], lengths: list[int], batch_size: int) -> tuple[float, float]:
    """Mean label tokens and mean padding tokens per batch when rows come in ``order``."""
    real = padded = 0
    batches = range(0, len(order), batch_size)
    for first in batches:
        batch = [lengths[index] for index in order[first : first + batch_size]]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return real / len(batches), (padded - real) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_samples", type=int, default=640, help="rows per epoch (mixed words/lines)")
    parser.add_argument("--batch_size", type=int, default=32, help="as recipes/pretrain/02_synthetic.json")
    parser.add_argument("--num_workers", type=int, default=1, help="as recipes/pretrain/02_synthetic.json")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per order, alternated")
    parser.add_argument("--epochs", type=int, default=20, help="sampler epochs to count padding over")
    args = start(parser)
    torch.manual_seed(0)

    model, processor = bench_model()
    dataset, lengths = model_inputs(synthetic_csv(args.num_samples), processor)
    print(f"Model: {BENCH_MODEL_NAME} ({parameters(model)}); batch {args.batch_size}, {len(dataset)} rows.")
    common = {"batch_size": args.batch_size, "collator": TrOCRCollator(), "num_workers": args.num_workers}
    orders = {"random": None, "group_by_length": lengths}

    padding = {}
    with tempfile.TemporaryDirectory() as output_dir:
        for name, grouping in orders.items():
            sampler = recipe_trainer(
                model, dataset, output_dir, lengths=grouping, **common
            )._get_train_sampler()
            counts = [padding_per_batch(list(sampler), lengths, args.batch_size) for _ in range(args.epochs)]
            padding[name] = tuple(sum(values) / len(values) for values in zip(*counts, strict=True))

    runs = interleaved(
        {
            name: lambda grouping=grouping: trainer_samples_per_second(
                model, dataset, lengths=grouping, **common
            )
            for name, grouping in orders.items()
        },
        args.repeats,
    )
    rows = []
    for name in orders:
        real, pad = padding[name]
        rows.append(
            [
                name,
                f"{real:.0f}",
                f"{pad:.0f}",
                f"{pad / (real + pad):.0%}",
                f"{padding['random'][1] / pad:.1f}x" if name != "random" else "1.0x",
                spread(runs[name]),
                f"{median(runs[name]) / median(runs['random']):.2f}x",
            ]
        )
    print_table(
        f"Length grouping alone (dynamic padding on both sides); padding over {args.epochs} epochs, "
        f"samples/s median (range) of {args.repeats} epochs each",
        [
            "batch order",
            "label tokens / batch",
            "padding tokens / batch",
            "padding share",
            "less padding",
            "samples/s",
            "vs random",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
