"""Model set-up: the config fixes every TrOCR fine-tune needs, and a tiny offline TrOCR for tests.

Three pitfalls bite people who fine-tune TrOCR by hand, and all three are designed out here:

* TrOCR starts decoding from ``</s>`` (id 2 in the RoBERTa vocabulary), not ``<s>``. A checkpoint or
  tutorial that sets ``decoder_start_token_id = cls_token_id`` (0) trains and decodes with a shifted
  first token.
* ``generate()`` defaults to ``max_length=20`` tokens, which silently cuts every longer line short,
  and the CER looks merely "bad" rather than broken.
* Without ``pad_token_id`` / ``decoder_start_token_id`` on the config, the loss's label shifting and
  ``generate()`` crash far from the cause.
"""

import argparse
import logging
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerBase,
    RobertaTokenizer,
    TrOCRConfig,
    TrOCRForCausalLM,
    TrOCRProcessor,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessorPil,
    ViTModel,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

logger = logging.getLogger(__name__)

# The special tokens in the order and at the ids of trocr-base's RoBERTa vocabulary.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")


def fix_model_config(
    model: VisionEncoderDecoderModel,
    tokenizer: PreTrainedTokenizerBase,
    generation_max_length: int,
    num_beams: int,
) -> list[str]:
    """Make the model's token ids and generation settings agree with the tokenizer; return what changed.

    Everything that is changed is logged, so a user reading the log sees which checkpoint fields
    were missing or wrong.
    """
    changes: list[str] = []
    config = model.config

    def set_id(name: str, value: int) -> None:
        if getattr(config, name, None) != value:
            changes.append(f"{name}: {getattr(config, name, None)} -> {value}")
            setattr(config, name, value)

    if len(tokenizer) > model.decoder.get_input_embeddings().num_embeddings:
        old = model.decoder.get_input_embeddings().num_embeddings
        model.decoder.resize_token_embeddings(len(tokenizer))
        changes.append(f"decoder embeddings resized: {old} -> {len(tokenizer)} (tokenizer is larger)")
    set_id("vocab_size", model.decoder.get_input_embeddings().num_embeddings)

    # `</s>` is TrOCR's start token: the decoder was pretrained to read it before `<s>` and the text.
    start_id = getattr(config, "decoder_start_token_id", None)
    if start_id is None:
        set_id("decoder_start_token_id", tokenizer.eos_token_id)
    elif start_id != tokenizer.eos_token_id:
        logger.warning(
            "decoder_start_token_id is %d (%r) but TrOCR checkpoints start from </s> (%d). Keeping %d "
            "because this checkpoint was trained with it; a model fine-tuned from microsoft/trocr-* "
            "should use %d.",
            start_id,
            tokenizer.convert_ids_to_tokens(start_id),
            tokenizer.eos_token_id,
            start_id,
            tokenizer.eos_token_id,
        )
    set_id("pad_token_id", tokenizer.pad_token_id)
    set_id("eos_token_id", tokenizer.eos_token_id)

    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=config.pad_token_id,
        eos_token_id=config.eos_token_id,
        max_length=generation_max_length,
        num_beams=num_beams,
        early_stopping=num_beams > 1,
    )
    old_generation = model.generation_config
    for key in ("decoder_start_token_id", "pad_token_id", "eos_token_id", "max_length", "num_beams"):
        if getattr(old_generation, key, None) != getattr(generation, key):
            changes.append(
                f"generation_config.{key}: {getattr(old_generation, key, None)} -> {getattr(generation, key)}"
            )
    model.generation_config = generation
    for change in changes:
        logger.info("Model config fixed: %s", change)
    return changes


def build_tiny_tokenizer() -> RobertaTokenizer:
    """A byte-level BPE tokenizer laid out like trocr-base's RoBERTa vocabulary, with no merges.

    No merges means one token per ASCII character: a tiny decoder learns spelling directly instead
    of a 50k-word vocabulary it could never fit.
    """
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for symbol in bytes_to_unicode().values():
        vocab[symbol] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[])


def build_tiny_model(
    image_size: tuple[int, int] = (32, 128),
    patch_size: tuple[int, int] = (32, 4),
    encoder_width: int = 64,
    encoder_layers: int = 2,
    decoder_width: int = 64,
    decoder_layers: int = 2,
    max_target_length: int = 128,
    seed: int = 0,
) -> tuple[VisionEncoderDecoderModel, TrOCRProcessor]:
    """A randomly initialised TrOCR-architecture model (ViT encoder + TrOCR decoder) and its processor.

    Full-height patches (``patch_size=(height, 4)``) turn a text line into a left-to-right sequence
    of columns, which a small model learns far faster than square patches.
    """
    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer()
    height, width = image_size
    # Fit inside height x width keeping the aspect ratio, then pad right/bottom: a 3-letter word and
    # a 60-character line keep the same letter shapes instead of being stretched to one width.
    image_processor = ViTImageProcessorPil(
        size={"max_height": height, "max_width": width},
        do_pad=True,
        pad_size={"height": height, "width": width},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    processor = TrOCRProcessor(image_processor=image_processor, tokenizer=tokenizer)
    encoder = ViTModel(
        ViTConfig(
            image_size=list(image_size),
            patch_size=list(patch_size),
            hidden_size=encoder_width,
            num_hidden_layers=encoder_layers,
            num_attention_heads=max(1, encoder_width // 32),
            intermediate_size=encoder_width * 4,
        )
    )
    decoder = TrOCRForCausalLM(
        TrOCRConfig(
            vocab_size=len(tokenizer),
            d_model=decoder_width,
            decoder_layers=decoder_layers,
            decoder_attention_heads=max(1, decoder_width // 32),
            decoder_ffn_dim=decoder_width * 4,
            max_position_embeddings=max_target_length + 2,
            cross_attention_hidden_size=encoder_width,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.eos_token_id,
        )
    )
    model = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    fix_model_config(model, tokenizer, generation_max_length=max_target_length, num_beams=1)
    return model, processor


def transfer_weights(source: VisionEncoderDecoderModel, target: VisionEncoderDecoderModel) -> dict[str, int]:
    """Copy ``source``'s weights into ``target`` wherever the names match; return counts per outcome.

    This is how a model pretrained on words (32x128, short labels) starts a line model (32x512,
    long labels): every layer has the same shape and is copied; the position tables are longer, so
    their first rows (the left of the image, the first characters) are copied and the rest keep
    their fresh initialisation. A word rendered into the wider canvas sits at the left, so what the
    words model learned carries over; the new positions are learned within the first thousand steps.

    A deeper ``target`` encoder grows ``source``'s: its extra ViT layers (after the copied ones) get
    zeroed residual branches, so they start as the identity and the grown model reads exactly as
    ``source`` does, then learns to use the new capacity. (The ViT is pre-norm, so a zero branch is
    an exact identity; the TrOCR decoder is post-norm, where it would not be.)

    A taller or wider input (48x1024 from 32x512, say) keeps the number of patches if the patches grow
    with it: the patch kernel is resampled to the new patch size and scaled by the area ratio, so the grown
    model embeds a line enlarged to its input as ``source`` embedded it at its own size, and starts from
    what ``source`` reads instead of from noise.
    """
    counts = {"copied": 0, "prefix": 0, "resampled": 0, "fresh": 0}
    source_state = source.state_dict()
    with torch.no_grad():
        for layer in target.encoder.layers[len(source.encoder.layers) :]:
            for branch in (layer.attention.o_proj, layer.mlp.fc2):
                branch.weight.zero_()
                branch.bias.zero_()
        for name, tensor in target.state_dict().items():
            old = source_state.get(name)
            if old is None or old.dim() != tensor.dim():
                counts["fresh"] += 1
            elif old.shape == tensor.shape:
                tensor.copy_(old)
                counts["copied"] += 1
            elif old.dim() == 4 and old.shape[:2] == tensor.shape[:2]:
                # The patch embedding's kernel [width, channels, patch height, patch width].
                area = old.shape[2] * old.shape[3] / (tensor.shape[2] * tensor.shape[3])
                tensor.copy_(
                    torch.nn.functional.interpolate(old, size=tensor.shape[2:], mode="bilinear") * area
                )
                counts["resampled"] += 1
            elif (
                old.shape[1:] == tensor.shape[1:]
                or old.shape[:-2] + old.shape[-1:] == tensor.shape[:-2] + tensor.shape[-1:]
            ):
                # A position table: rows (decoder, [positions, width]) or the ViT's [1, positions, width].
                axis = 0 if old.shape[1:] == tensor.shape[1:] else tensor.dim() - 2
                rows = min(old.shape[axis], tensor.shape[axis])
                tensor.narrow(axis, 0, rows).copy_(old.narrow(axis, 0, rows))
                counts["prefix"] += 1
            else:
                counts["fresh"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Build a tiny, randomly initialised TrOCR model + processor offline (for smoke tests "
        "and as a starting point for pretraining) and save it with save_pretrained."
    )
    parser.add_argument("output_dir", type=Path, help="Folder to save the model and processor to.")
    parser.add_argument("--image_height", type=int, default=32, help="Input height in pixels.")
    parser.add_argument("--image_width", type=int, default=128, help="Input width in pixels.")
    parser.add_argument("--patch_width", type=int, default=4, help="Patch width; patches are full height.")
    parser.add_argument("--encoder_width", type=int, default=64, help="ViT hidden size.")
    parser.add_argument("--encoder_layers", type=int, default=2, help="ViT layers.")
    parser.add_argument("--decoder_width", type=int, default=64, help="TrOCR decoder hidden size.")
    parser.add_argument("--decoder_layers", type=int, default=2, help="TrOCR decoder layers.")
    parser.add_argument("--max_target_length", type=int, default=128, help="Longest label, in tokens.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random initialisation.")
    parser.add_argument(
        "--init_from",
        type=Path,
        help="A trained tiny model (same widths) to copy weights from, e.g. the words stage of the synthetic "
        "pretraining; longer position tables keep its rows and extend them, and extra encoder layers "
        "start as the identity, so the deeper model reads exactly as the trained one.",
    )
    args = parser.parse_args()
    model, processor = build_tiny_model(
        image_size=(args.image_height, args.image_width),
        patch_size=(args.image_height, args.patch_width),
        encoder_width=args.encoder_width,
        encoder_layers=args.encoder_layers,
        decoder_width=args.decoder_width,
        decoder_layers=args.decoder_layers,
        max_target_length=args.max_target_length,
        seed=args.seed,
    )
    if args.init_from:
        source = VisionEncoderDecoderModel.from_pretrained(args.init_from)
        counts = transfer_weights(source, model)
        print(
            f"Weights from {args.init_from}: {counts['copied']} tensors copied, {counts['prefix']} position "
            f"tables extended, {counts['resampled']} patch kernels resampled, {counts['fresh']} freshly "
            "initialised"
        )
    model.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"Saved a {parameters / 1e6:.2f} M-parameter TrOCR model and its processor to {args.output_dir}")


if __name__ == "__main__":
    main()
