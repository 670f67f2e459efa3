"""Training samples/s: the recipe's pipeline vs the naive one most TrOCR tutorials use.

    python benchmarks/train_throughput.py

* naive: every label padded to max_target_length (128) and batches in random order;
* recipe: labels padded to the longest in the batch (``TrOCRCollator``) and batches of similar
  label length (``TrOCRTrainer`` with ``train_sampling_strategy="group_by_length"``).

Both run one full epoch through ``TrOCRTrainer`` (images opened on the fly by
``ImageTextTransform``) on the same model and the same rendered words and lines, alternating over
the repeats. The model is the tiny TrOCR widened to 256 with 4+4 layers: its decoder over 128
positions costs far more than its encoder over 32 patches, as trocr-base's 1024-wide decoder does
next to labels of a few dozen tokens.
"""

import argparse

from _common import (
    BENCH_MODEL_NAME,
    MAX_TARGET_LENGTH,
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
    trainer_samples_per_second,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_samples", type=int, default=640, help="rows per epoch (mixed words/lines)")
    parser.add_argument("--batch_size", type=int, default=32, help="as recipes/pretrain/02_synthetic.json")
    parser.add_argument("--num_workers", type=int, default=1, help="as recipes/pretrain/02_synthetic.json")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per pipeline, alternated")
    args = start(parser)

    model, processor = bench_model()
    dataset, lengths = model_inputs(synthetic_csv(args.num_samples), processor)
    ordered = sorted(lengths)
    print(f"Model: {BENCH_MODEL_NAME} ({parameters(model)}); batch {args.batch_size}, {len(dataset)} rows.")
    print(
        f"Label tokens: median {median(lengths):.0f}, mean {sum(lengths) / len(lengths):.1f}, "
        f"90th percentile {ordered[int(0.9 * len(ordered))]}, max {ordered[-1]}."
    )

    common = {"batch_size": args.batch_size, "num_workers": args.num_workers}
    runs = interleaved(
        {
            "naive": lambda: trainer_samples_per_second(
                model, dataset, collator=TrOCRCollator(label_pad_multiple=MAX_TARGET_LENGTH), **common
            ),
            "recipe": lambda: trainer_samples_per_second(
                model, dataset, collator=TrOCRCollator(), lengths=lengths, **common
            ),
        },
        args.repeats,
    )
    naive = median(runs["naive"])
    print_table(
        f"Training throughput, median (range) of {args.repeats} epochs each",
        ["pipeline", "labels padded to", "batch order", "samples/s", "vs naive"],
        [
            ["naive", MAX_TARGET_LENGTH, "random", spread(runs["naive"]), "1.00x"],
            [
                "recipe",
                "longest in batch",
                "group_by_length",
                spread(runs["recipe"]),
                f"{median(runs['recipe']) / naive:.2f}x",
            ],
        ],
    )


if __name__ == "__main__":
    main()
