"""``pipeline("image-to-text", ...)`` for TrOCR models: a small pipeline that travels inside the model folder.

transformers 5 has no image-to-text pipeline any more: ``pipeline("image-to-text")`` is redirected to
``"image-text-to-text"``, a chat-model pipeline that needs a text prompt and fails on an encoder-decoder model
(``KeyError: 'decoder_input_ids'``). But ``pipeline()`` reads the model's ``config.custom_pipelines`` *before* that
redirect. That is the Hub's mechanism for pipelines whose code lives next to the weights, so
:func:`attach_pipeline` copies this file into a saved model folder and names :class:`ImageToTextPipeline` in its
``config.json``, exactly as ``PIPELINE_REGISTRY.register_pipeline`` + ``Pipeline.save_pretrained`` would (without
re-saving the weights or registering the task for the whole process). ``run_trocr.py`` does it for every output
dir and ``htr.hub.publish`` uploads the file, so the folder and its Hub repo both work with::

    from transformers import pipeline

    reader = pipeline("image-to-text", model="outputs/my-model", trust_remote_code=True)
    reader("line.png")  # [{'generated_text': '...', 'confidence': 0.93}]

A ``calibration.json`` beside the weights (``htr.inference.predict --calibrate``, uploaded by ``htr.hub.publish``) sets the
confidence's temperature here too, so the pipeline and ``htr.inference.predict`` give the same calibrated score.

``trust_remote_code=True`` is required, for a local folder too: transformers 5.24 refuses to run any custom
pipeline without it. Where this module is importable, ``pipeline_class=ImageToTextPipeline`` instead of
``trust_remote_code=True`` runs the same code without loading it from the folder.

This file is copied into model folders and imported by transformers' dynamic-module loader on machines where this
repository is not installed: it may import only the standard library, PIL, transformers and, relatively, its
sibling ``reading.py`` (copied beside it; the loader fetches relative imports too), never ``htr`` by name.
``reading.py`` holds the conventions shared with training and ``htr.inference.predict``: images become RGB on white
paper, are cut to their ink where the model's config says it was trained so, and transcriptions are NFC with
single spaces. ``tests/test_predict.py`` checks that the pipeline reads
exactly what ``htr.inference.predict`` reads.

    python -m htr.core.pipeline OUTPUT_DIR   # attach to an output dir written before run_trocr.py did it
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps
from transformers import Pipeline
from transformers.image_utils import load_image
from transformers.utils import cached_file

from . import reading
from .reading import LineReading, normalize_text, shape_problem, to_rgb

TASK = "image-to-text"
# The file name is the module name in ``custom_pipelines``: the loader looks for ``pipeline.py`` in the repo.
MODULE_FILE = Path(__file__).name
# Every file a model folder needs for the pipeline: this one and the one it imports relatively.
MODULE_FILES = (MODULE_FILE, Path(reading.__file__).name)
CALIBRATION_FILE = (
    "calibration.json"  # written by htr.inference.predict --calibrate (htr.inference.calibration)
)


def stored_calibration(model: str | os.PathLike) -> dict[str, Any] | None:
    """The ``calibration.json`` of a model folder or Hub repo (its temperature and the beams it was fitted
    at); None without one."""
    path = cached_file(
        str(model),
        CALIBRATION_FILE,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


def stored_temperature(model: str | os.PathLike) -> float:
    """The confidence temperature in the ``calibration.json`` of a model folder or Hub repo; 1 without one."""
    record = stored_calibration(model)
    if record is None:
        return 1.0
    temperature = record.get("temperature")
    if not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(
            f"{model}/{CALIBRATION_FILE}: 'temperature' must be a number > 0, got {temperature!r}; delete the file "
            "or refit it with htr.inference.predict --calibrate"
        )
    return float(temperature)


def line_confidences(model: Any, output: Any, temperature: float = 1.0) -> list[float]:
    """exp(mean token log-prob) per returned sequence from ``generate(output_scores=True)``'s output.

    ``temperature`` (calibration, ``htr.inference.calibration``) divides the logits before the softmax: it changes
    the score, never the text.
    """
    beam_indices = getattr(output, "beam_indices", None)
    # Greedy's scores are raw logits, beam search's are already log-softmaxed (before length penalty). A
    # log-softmax differs from its logits by a constant per row, so log_softmax(scores / T) is the tempered
    # token log-probability for both (and, at T = 1, beam search's own scores again).
    scores = output.scores if temperature == 1.0 else tuple(score / temperature for score in output.scores)
    log_probs = model.compute_transition_scores(output.sequences, scores, beam_indices, normalize_logits=True)
    tokens = output.sequences[:, -log_probs.shape[1] :]
    eos = model.generation_config.eos_token_id
    # Count every token up to and including the first EOS; padding after it is not the model's choice.
    finished_before = torch.cumsum(tokens == eos, dim=1) - (tokens == eos).long()
    mask = (finished_before == 0) & torch.isfinite(log_probs)
    mean = (log_probs * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return torch.exp(mean).tolist()


def load_rgb(image: str | os.PathLike | Image.Image, timeout: float | None = None) -> Image.Image:
    """A local path or PIL image (upright, :func:`to_rgb`), or a URL or base64 string via ``load_image``."""
    if isinstance(image, os.PathLike) or (isinstance(image, str) and os.path.isfile(image)):
        with Image.open(image) as opened:
            return to_rgb(ImageOps.exif_transpose(opened))
    if isinstance(image, Image.Image):
        return to_rgb(ImageOps.exif_transpose(image))
    return load_image(image, timeout=timeout)  # already RGB: transparency is not recovered for URLs


class ImageToTextPipeline(Pipeline):
    """Read text from images with an encoder-decoder OCR model (TrOCR): ``generate()`` on the pixel values.

    Inputs: a path, URL, base64 string or PIL image, or a list of them (``batch_size=8`` reads them 8 per
    ``generate()`` call). Output per image, as transformers 4's image-to-text pipeline: ``[{"generated_text":
    text}]`` (one dict per returned sequence), plus ``"confidence"``: exp(mean token log-probability). Decoding follows the model's ``generation_config``; ``num_beams``,
    ``max_new_tokens`` and ``max_length`` override it, at construction or per call, and ``generate_kwargs`` passes
    anything else to ``generate()``.
    """

    # TrOCRProcessor = image processor + tokenizer; the base class takes both from it.
    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # transformers 5 takes both from the processor itself; older versions may not.
        if self.tokenizer is None and self.processor is not None:
            self.tokenizer = self.processor.tokenizer
        if self.image_processor is None and self.processor is not None:
            self.image_processor = self.processor.image_processor
        source = getattr(self.model, "name_or_path", "")
        self.confidence_temperature = stored_temperature(source) if source else 1.0

    def _sanitize_parameters(
        self,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        num_beams: int | None = None,
        generate_kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        forward_params = dict(generate_kwargs or {})
        for name, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_length", max_length),
            ("num_beams", num_beams),
        ):
            if value is None:
                continue
            if name in forward_params:
                raise ValueError(
                    f"`{name}` is given both as an argument and in `generate_kwargs`: give it once."
                )
            forward_params[name] = value
        preprocess_params = {} if timeout is None else {"timeout": timeout}
        return preprocess_params, forward_params, {}

    def __call__(self, images: Any, **kwargs: Any) -> Any:
        """Transcribe one image (returns ``[{"generated_text": ..., "confidence": ...}]``) or a list of them."""
        return super().__call__(images, **kwargs)

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, Any]:
        rgb = load_rgb(image, timeout)
        if problem := shape_problem(rgb.width, rgb.height, self.image_processor.size):
            raise ValueError(problem)
        rgb = LineReading.of(self.model.config).line_image(rgb, self.image_processor.size)
        pixel_values = self.image_processor(images=rgb, return_tensors="pt").pixel_values
        return {"pixel_values": pixel_values.to(self.model.dtype)}

    def _forward(self, model_inputs: dict[str, Any], **generate_kwargs: Any) -> dict[str, Any]:
        pixel_values = model_inputs["pixel_values"]
        output = self.model.generate(
            pixel_values=pixel_values, output_scores=True, return_dict_in_generate=True, **generate_kwargs
        )
        ids = output.sequences
        confidences = torch.tensor(line_confidences(self.model, output, self.confidence_temperature))
        # (images, sequences per image, ...): the base class splits a batch along the first axis.
        return {
            "generated_ids": ids.reshape(len(pixel_values), -1, ids.shape[-1]),
            "confidence": confidences.reshape(len(pixel_values), -1),
        }

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, Any]]:
        texts = self.tokenizer.batch_decode(model_outputs["generated_ids"][0], skip_special_tokens=True)
        confidences = model_outputs["confidence"][0].tolist()
        return [
            {"generated_text": normalize_text(text), "confidence": confidence}
            for text, confidence in zip(texts, confidences, strict=True)
        ]


def custom_pipelines() -> dict[str, dict[str, Any]]:
    """The ``config.json`` entry ``register_pipeline(TASK, ImageToTextPipeline, VisionEncoderDecoderModel,
    type="multimodal")`` + ``Pipeline.save_pretrained`` write in transformers 5.24."""
    impl = f"{Path(MODULE_FILE).stem}.{ImageToTextPipeline.__name__}"
    return {TASK: {"impl": impl, "pt": ["VisionEncoderDecoderModel"], "type": "multimodal"}}


def attach_pipeline(model_dir: str | os.PathLike) -> Path:
    """Copy the pipeline's files into a saved model folder and name it in ``config.json``; return the main copy.

    Idempotent: a second call refreshes the file and the entry. Other ``custom_pipelines`` entries are kept.
    """
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for name in MODULE_FILES:
        source, target = Path(__file__).with_name(name), model_dir / name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
    config["custom_pipelines"] = {**config.get("custom_pipelines", {}), **custom_pipelines()}
    # The layout PretrainedConfig.save_pretrained writes.
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return model_dir / MODULE_FILE


def pipeline_attached(model_dir: str | os.PathLike) -> bool:
    """Whether ``model_dir`` holds this pipeline and its ``config.json`` entry."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not all((model_dir / name).is_file() for name in MODULE_FILES) or not config_path.is_file():
        return False
    config = json.loads(config_path.read_text(encoding="utf-8"))
    return config.get("custom_pipelines", {}).get(TASK) == custom_pipelines()[TASK]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=f'Make a saved TrOCR folder work with pipeline("{TASK}", model=FOLDER, trust_remote_code=True).'
    )
    parser.add_argument(
        "model_dir", type=Path, help="Output dir of run_trocr.py (model saved with save_pretrained)."
    )
    args = parser.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        parser.error(f"{args.model_dir} has no config.json: point at a folder saved with save_pretrained.")
    print(f"Wrote {attach_pipeline(args.model_dir)} and custom_pipelines in {args.model_dir / 'config.json'}")


if __name__ == "__main__":
    main()
