"""An ``htr.inference.export`` folder run by onnxruntime behind transformers' own ``generate()``.

``OnnxTrOCR`` presents the two ONNX sessions as a model to ``GenerationMixin``: ``generate()`` does the
decoding (greedy, beam search with its length penalty and early stopping, logits processors, stopping
criteria) exactly as for the PyTorch model, and ``compute_transition_scores`` gives the same per-line
confidence. Only the two forward passes are onnxruntime's. A hand-written greedy/beam loop would be shorter
but would have to re-implement beam search's bookkeeping to give the same text as PyTorch; this way the
only difference between the backends is the arithmetic of the forward passes.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, GenerationMixin, VisionEncoderDecoderConfig
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

# The files of an ``htr.inference.export`` folder, named here: the export writes them, this module and
# ``htr.inference.predict`` read them, and the writer already imports the reader.
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
# Marks a folder as a complete export; htr.inference.predict looks for it to tell ONNX folders from PyTorch ones.
MANIFEST_FILE = "onnx_export.json"


def is_onnx_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``htr.inference.export`` (it has the manifest)."""
    return (Path(path) / MANIFEST_FILE).is_file()


@dataclass
class OnnxEncoderOutput(BaseModelOutput):
    """The encoder graph's outputs; ``generate()`` repeats every tensor here per beam, the cross keys too."""

    cross_key_values: torch.Tensor | None = None


class StackedCache:
    """The decoder graph's past, one tensor [batch, layers, 2, heads, length, head_dim].

    What ``generate()`` asks of a cache: its length, and reordering rows when beams are re-ranked.
    """

    def __init__(self) -> None:
        self.key_values: torch.Tensor | None = None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0 if self.key_values is None else self.key_values.shape[4]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.key_values = self.key_values.index_select(0, beam_idx)


class _Encoder:
    """``model.get_encoder()``: called by ``generate()`` once per batch with the pixel values."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.main_input_name = "pixel_values"

    def forward(self, pixel_values: torch.Tensor, **_: Any) -> OnnxEncoderOutput:
        hidden, cross = self.session.run(None, {"pixel_values": pixel_values.numpy()})
        return OnnxEncoderOutput(
            last_hidden_state=torch.from_numpy(hidden), cross_key_values=torch.from_numpy(cross)
        )

    __call__ = forward


class OnnxTrOCR(GenerationMixin):
    """A TrOCR ``htr.inference.export`` folder as a ``generate()``-able model on onnxruntime's CPU provider."""

    main_input_name = "pixel_values"
    base_model_prefix = "onnx"  # no such attribute: generate() then takes forward()'s arguments only
    _is_stateful = False
    _supports_cache_class = True

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import onnxruntime

        folder = Path(folder)
        self.folder = folder
        self.config = VisionEncoderDecoderConfig.from_pretrained(folder)
        self.generation_config = GenerationConfig.from_pretrained(folder)
        self.manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        # As many threads as torch uses (OMP_NUM_THREADS), so the backends are compared on equal terms.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder_session = onnxruntime.InferenceSession(
            str(folder / ENCODER_FILE), options, providers=providers
        )
        self.decoder_session = onnxruntime.InferenceSession(
            str(folder / DECODER_FILE), options, providers=providers
        )
        cross_shape = self.encoder_session.get_outputs()[
            1
        ].shape  # [batch, layers, 2, heads, length, head_dim]
        self._past_shape = (cross_shape[1], 2, cross_shape[3], 0, cross_shape[5])
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.confidence_temperature = 1.0

    def get_encoder(self) -> _Encoder:
        return _Encoder(self.encoder_session)

    def can_generate(self) -> bool:
        return True

    def is_remote_code(self) -> bool:
        return False

    def get_experts_implementation(self) -> dict[str, str]:
        return {}  # not a mixture-of-experts model: nothing for generate() to switch

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the StackedCache below is made by forward(), not a transformers DynamicCache

    def to(self, *_: Any, **__: Any) -> "OnnxTrOCR":
        return self  # CPU only; kept so callers may treat it like a torch model

    def eval(self) -> "OnnxTrOCR":
        return self

    def __call__(self, **kwargs: Any) -> Seq2SeqLMOutput:
        return self.forward(**kwargs)

    def forward(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_outputs: OnnxEncoderOutput,
        cache: StackedCache | None = None,
        **_: Any,
    ) -> Seq2SeqLMOutput:
        """One decoding step; ``generate()`` passes only the tokens the cache has not seen."""
        cache = cache if cache is not None else StackedCache()
        input_ids = decoder_input_ids
        past = cache.key_values
        if past is None:
            past = np.zeros((len(input_ids), *self._past_shape), dtype=np.float32)
        else:
            past = past.numpy()
        logits, present = self.decoder_session.run(
            None,
            {
                "input_ids": input_ids.numpy().astype(np.int64),
                "cross_key_values": encoder_outputs.cross_key_values.numpy(),
                "past_key_values": past,
            },
        )
        cache.key_values = torch.from_numpy(present)
        return Seq2SeqLMOutput(logits=torch.from_numpy(logits), cache=cache)
