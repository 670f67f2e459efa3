"""Export a TrOCR model to ONNX for onnxruntime, optionally int8-quantised, as a self-describing folder.

    python -m htr.inference.export outputs/my-model outputs/my-model-onnx
    python -m htr.inference.export outputs/my-model outputs/my-model-int8 --quantize int8
    python -m htr.inference.predict outputs/my-model-int8 scans/ --backend onnx

Two graphs, so generation is linear in the line length, not quadratic:

* ``encoder.onnx``: pixel values -> the encoder's hidden states *and* every decoder layer's cross-attention
  keys/values, computed once per image (they depend on the image only).
* ``decoder.onnx``: the next tokens, those cross-attention keys/values and the self-attention keys/values of
  the tokens so far (the past; 0 tokens at the first step) -> logits and the updated past.

The graphs are traced by ``torch.onnx.export`` (the dynamo exporter) from the model's own modules: the
decoder graph is ``TrOCRForCausalLM.forward`` with its ``EncoderDecoderCache`` filled from the graph's inputs,
so the ONNX decoder computes what transformers computes. (optimum's exporter would do this, but optimum-onnx
0.1.0 requires transformers<4.58.) ``--quantize int8`` is ``onnxruntime.quantization.quantize_dynamic``:
int8 weights for MatMul/Gemm, activations quantised on the fly, so no calibration data is needed.

Beside the graphs: ``config.json``, ``generation_config.json``, the processor and tokenizer files and
``onnx_export.json`` (what was exported, from which model, how), so ``htr.inference.predict --backend onnx`` needs
nothing else. The key/value tensors stack all layers: ``[batch, layers, 2 (key, value), heads, length,
head_dim]``, one input and one output each, whatever the depth.
"""

import argparse
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import (
    DynamicCache,
    EncoderDecoderCache,
    ProcessorMixin,
    VisionEncoderDecoderModel,
)

from htr.core.pipeline import CALIBRATION_FILE
from htr.inference.onnx_model import DECODER_FILE, ENCODER_FILE, MANIFEST_FILE, is_onnx_folder
from htr.inference.predict import InputError, load

OPSET = 18


class EncoderGraph(nn.Module):
    """pixel_values -> (encoder hidden states, cross-attention key/values of every decoder layer)."""

    def __init__(self, model: VisionEncoderDecoderModel) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.enc_to_dec_proj = getattr(model, "enc_to_dec_proj", None)
        self.layers = model.decoder.model.decoder.layers

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(pixel_values=pixel_values).last_hidden_state
        if self.enc_to_dec_proj is not None:
            hidden = self.enc_to_dec_proj(hidden)
        batch, length, _ = hidden.shape
        per_layer = []
        for layer in self.layers:
            attention = layer.encoder_attn
            shape = (batch, length, attention.num_heads, attention.head_dim)
            key = attention.k_proj(hidden).view(shape).transpose(1, 2)
            value = attention.v_proj(hidden).view(shape).transpose(1, 2)
            per_layer.append(torch.stack([key, value], dim=1))
        return hidden, torch.stack(per_layer, dim=1)


class DecoderGraph(nn.Module):
    """(input_ids, cross key/values, past self key/values) -> (logits, present self key/values)."""

    def __init__(self, model: VisionEncoderDecoderModel) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(
        self, input_ids: torch.Tensor, cross_key_values: torch.Tensor, past_key_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.decoder.config
        cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
        for index in range(cross_key_values.shape[1]):
            cache.self_attention_cache.update(
                past_key_values[:, index, 0], past_key_values[:, index, 1], index
            )
            cache.cross_attention_cache.update(
                cross_key_values[:, index, 0], cross_key_values[:, index, 1], index
            )
            cache.is_updated[index] = True  # cross-attention reads the cache instead of projecting again
        # Cross-attention runs only when encoder states are given; with the cache filled it reads only
        # their presence, so a stand-in of the right batch and length does (the real ones are not needed).
        stand_in = cross_key_values[:, 0, 0].transpose(1, 2).flatten(2)
        output = self.decoder(
            input_ids=input_ids, encoder_hidden_states=stand_in, cache=cache, use_cache=True
        )
        present = torch.stack(
            [torch.stack([layer.keys, layer.values], dim=1) for layer in cache.self_attention_cache.layers],
            dim=1,
        )
        return output.logits, present


def _export(module: nn.Module, args: tuple, path: Path, names: dict, dynamic_shapes: dict) -> None:
    """torch.onnx.export with named inputs/outputs and dynamic batch/length axes, weights in one file."""
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=names["inputs"],
        output_names=names["outputs"],
        dynamic_shapes=dynamic_shapes,
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def export(model: VisionEncoderDecoderModel, processor: ProcessorMixin, out: Path) -> list[Path]:
    """Write encoder.onnx and decoder.onnx (fp32) and the files that describe them to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu", torch.float32).eval()
    size = processor.image_processor.size
    height = size.get("height", size.get("max_height"))
    width = size.get("width", size.get("max_width"))
    batch = torch.export.Dim("batch", min=1, max=1024)
    pixel_values = torch.rand(2, 3, height, width)
    encoder = EncoderGraph(model).eval()
    with torch.no_grad():
        _, cross = encoder(pixel_values)
        _export(
            encoder,
            (pixel_values,),
            out / ENCODER_FILE,
            {"inputs": ["pixel_values"], "outputs": ["encoder_hidden_states", "cross_key_values"]},
            {"pixel_values": {0: batch}},
        )
        decoder = DecoderGraph(model).eval()
        past_length = torch.export.Dim("past_length", min=0, max=4096)
        new_length = torch.export.Dim("new_length", min=1, max=4096)
        num_layers, _, heads, _, head_dim = cross.shape[1:]
        input_ids = torch.full((2, 3), model.generation_config.decoder_start_token_id)
        past = torch.rand(2, num_layers, 2, heads, 4, head_dim)
        _export(
            decoder,
            (input_ids, cross, past),
            out / DECODER_FILE,
            {
                "inputs": ["input_ids", "cross_key_values", "past_key_values"],
                "outputs": ["logits", "present_key_values"],
            },
            {
                "input_ids": {0: batch, 1: new_length},
                "cross_key_values": {0: batch},
                "past_key_values": {0: batch, 4: past_length},
            },
        )
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    processor.save_pretrained(out)
    return [out / ENCODER_FILE, out / DECODER_FILE]


def quantize_int8(paths: Sequence[Path]) -> None:
    """Dynamic int8 quantisation of each graph in place (int8 weights, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for path in paths:
        quantized = path.with_suffix(".int8.onnx")
        quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
        quantized.replace(path)


def write_manifest(out: Path, source: str, quantize: str | None) -> Path:
    """``onnx_export.json``, written last: its presence marks a complete export (``htr.inference.predict`` checks it)."""
    manifest = {"source": str(source), "quantize": quantize or "none", "opset": OPSET}
    path = out / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    # WARNING: the exporter's optimiser logs every graph rewrite at INFO.
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    parser = argparse.ArgumentParser(
        prog="python -m htr.inference.export", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="run_trocr.py output dir (or a Hub id in the local cache).")
    parser.add_argument("out", type=Path, help="Folder to write the ONNX graphs and processor files to.")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="int8: onnxruntime dynamic quantisation of the weights (smaller, usually faster on CPU).",
    )
    args = parser.parse_args(argv)
    if is_onnx_folder(args.model):
        parser.error(f"{args.model} is already an ONNX export: give the PyTorch model folder it came from")
    try:
        model, processor = load(args.model, device="cpu")
    except InputError as error:
        parser.error(str(error))
    if args.out.resolve() == Path(args.model).resolve():
        parser.error("OUT must be a new folder, not the model folder itself")
    paths = export(model, processor, args.out)
    if args.quantize:
        quantize_int8(paths)
    if (Path(args.model) / CALIBRATION_FILE).is_file():
        shutil.copyfile(Path(args.model) / CALIBRATION_FILE, args.out / CALIBRATION_FILE)
    write_manifest(args.out, args.model, args.quantize)
    total = sum(path.stat().st_size for path in paths) / 1e6
    print(
        f"Wrote {', '.join(p.name for p in paths)} ({total:.1f} MB, {args.quantize or 'fp32'}) to {args.out}"
    )
    return args.out


if __name__ == "__main__":
    main()
