"""What the benchmarks share: data, models, side-by-side timing and the printed table.

The machines these run on are shared and noisy (2 CPU cores next to a training job), so no absolute
figure means much on its own. Every benchmark measures its candidate and its baseline in the same
process, alternating them (ABBA order over repeats) so that drift hits both alike, and reports the
median of each and their ratio.
"""

import argparse
import copy
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median
from typing import Any

import datasets
import torch
import transformers
from datasets import Dataset
from PIL import Image
from transformers import (
    PrinterCallback,
    Seq2SeqTrainingArguments,
    TrainerCallback,
    TrOCRConfig,
    TrOCRProcessor,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessorPil,
)

from data_prep.synthetic import generate
from htr.core.reading import LineReading
from htr.data.augment import Augmenter
from htr.data.dataset import ImageTextTransform, TrOCRCollator, label_lengths, read_csv
from htr.training.modeling import build_tiny_model, build_tiny_tokenizer
from htr.training.trainer import TrOCRTrainer

ROOT = Path(__file__).resolve().parent.parent


CACHE = Path(tempfile.gettempdir()) / "htr-bench"
MAX_TARGET_LENGTH = 128  # the recipes' max_target_length: what a naive pipeline pads every label to

# The tiny TrOCR widened until the decoder's cost matters, as it does in trocr-base (1024 wide).
BENCH_MODEL = {"encoder_width": 256, "encoder_layers": 4, "decoder_width": 256, "decoder_layers": 4}
BENCH_MODEL_NAME = "tiny TrOCR, width 256, 4 encoder + 4 decoder layers, 32x128 input, char tokens"

# trocr-base/-large as published: ViT-B/16 or ViT-L/16 at 384x384 + a 12-layer, 1024-wide decoder.
ENCODERS = {
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "large": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
    "dry-run": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
    },
}
DECODERS = {
    "base": {"d_model": 1024, "decoder_layers": 12, "decoder_attention_heads": 16, "decoder_ffn_dim": 4096},
    "large": {"d_model": 1024, "decoder_layers": 12, "decoder_attention_heads": 16, "decoder_ffn_dim": 4096},
    "dry-run": {"d_model": 64, "decoder_layers": 2, "decoder_attention_heads": 2, "decoder_ffn_dim": 128},
}
VOCAB_SIZE = 50265  # trocr-base/-large's RoBERTa vocabulary


def start(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the benchmark's arguments (plus ``--threads``), then quiet the libraries' logs.

    One intra-op thread by default: on a shared 2-core machine, two OpenMP threads that wait on
    each other while another job holds a core made a training step ~8x slower than one thread.
    """
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.disable_progress_bar()
    logging.getLogger("htr").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    return args


def synthetic_csv(
    num_samples: int, kind: str = "mixed", height: int = 64, augment: str = "light", seed: int = 0
) -> Path:
    """Rendered handwriting, made once per parameter set under the temp folder (rendering is slow).

    ``mixed`` is half single words, half 3-6 word lines: the spread of label lengths of IAM lines
    next to Imgur5K words, which is what dynamic padding and length grouping feed on.
    """
    out_dir = CACHE / f"{kind}-{num_samples}-h{height}-{augment}-s{seed}"
    csv_path = out_dir / "english.csv"
    if not csv_path.exists():  # written last by generate(), so its presence means complete
        generate(out_dir, num_samples, fonts="train", seed=seed, kind=kind, augment=augment, height=height)
    return csv_path


def model_inputs(
    csv_path: Path, processor: TrOCRProcessor, augment: str = "none", reading: LineReading | None = None
) -> tuple[Dataset, list[int]]:
    """The recipe's training inputs for a CSV (read_csv + ImageTextTransform, with ``augment`` and then
    ``reading``, a model's deskew and cut to the ink) and its label lengths."""
    rows = read_csv(csv_path)
    transform = ImageTextTransform(
        processor=processor,
        csv_dir=csv_path.parent,
        image_root=None,
        image_column="image",
        label_column="label",
        max_target_length=MAX_TARGET_LENGTH,
        normalize=True,
        augment=Augmenter(augment),
        reading=reading or LineReading(),
    )
    lengths = label_lengths(rows, processor, "label", normalize=True)
    return rows.with_transform(transform, columns=["image", "label"]), lengths


def bench_model() -> tuple[VisionEncoderDecoderModel, TrOCRProcessor]:
    """The benchmark TrOCR (``BENCH_MODEL``), the same weights every call (seeded)."""
    return build_tiny_model(**BENCH_MODEL)


def parameters(model: torch.nn.Module) -> str:
    """The parameter count ("7.6 M parameters"), printed so that a table says which model it measured."""
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters"


def trocr_architecture(
    size: str, image_size: int = 384, encoder_attention: str = "sdpa"
) -> VisionEncoderDecoderModel:
    """A randomly initialised trocr-base/-large (or a tiny "dry-run") built offline from configs.

    The ViT encoder takes ``encoder_attention`` ("sdpa" or "eager"); the TrOCR decoder only has its
    own eager attention (transformers refuses "sdpa" for it).
    """
    encoder = ViTConfig(image_size=image_size, patch_size=16, qkv_bias=False, **ENCODERS[size])
    decoder = TrOCRConfig(
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=512,
        cross_attention_hidden_size=encoder.hidden_size,
        layernorm_embedding=True,
        scale_embedding=False,
        use_learned_position_embeddings=True,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        **DECODERS[size],
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 2, 1, 2
    return VisionEncoderDecoderModel._from_config(
        config, attn_implementation={"encoder": encoder_attention, "decoder": "eager"}
    )


def trocr_processor(image_size: int = 384) -> TrOCRProcessor:
    """trocr-base's image preprocessing (resize to a square, bilinear, mean/std 0.5) without a download.

    The tokenizer is the tiny character-level one: tokenizing is a negligible part of the pipeline.
    """
    image_processor = ViTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        resample=Image.Resampling.BILINEAR,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    return TrOCRProcessor(image_processor=image_processor, tokenizer=build_tiny_tokenizer())


class _StepClock(TrainerCallback):
    """Wall time from the first optimisation step's start to the last one's end."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end = 0.0

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.end = time.perf_counter()


def recipe_trainer(
    model: VisionEncoderDecoderModel,
    dataset: Dataset,
    output_dir: str,
    *,
    batch_size: int,
    collator: TrOCRCollator,
    lengths: list[int] | None = None,
    num_workers: int = 0,
    max_steps: int = -1,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrOCRTrainer:
    """A CPU TrOCRTrainer as run_trocr.py builds it, for one epoch or ``max_steps``.

    ``lengths`` switches on the recipe's group_by_length sampling.
    """
    args = Seq2SeqTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        num_train_epochs=1,
        max_steps=max_steps,
        learning_rate=1e-4,
        train_sampling_strategy="group_by_length" if lengths else "random",
        dataloader_num_workers=num_workers,
        remove_unused_columns=False,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = TrOCRTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        train_label_lengths=lengths,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # it prints the metrics dict under the table
    return trainer


def trainer_samples_per_second(
    model: VisionEncoderDecoderModel, dataset: Dataset, **trainer_kwargs: Any
) -> float:
    """Training samples/s of one epoch through TrOCRTrainer, from a fresh copy of ``model``.

    A whole epoch, because length grouping orders batches longest first: a few steps would see only
    its slowest batches.
    """
    clock = _StepClock()
    with tempfile.TemporaryDirectory() as output_dir:
        recipe_trainer(copy.deepcopy(model), dataset, output_dir, callbacks=[clock], **trainer_kwargs).train()
    return len(dataset) / (clock.end - clock.start)


def interleaved(candidates: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Every candidate's measurements over ``repeats`` rounds, in ABBA order so drift hits all alike."""
    names = list(candidates)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else reversed(names):
            results[name].append(candidates[name]())
    return results


def spread(values: Sequence[float], digits: int = 1) -> str:
    """The median and the range of the repeats, e.g. ``12.3 (11.8-13.0)``."""
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (pasted as is into benchmarks/README.md)."""
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()
