"""``AutoProcessor.from_pretrained(MODEL, trust_remote_code=True)``: a TrOCR processor that reads lines as the model does.

Every TrOCR tutorial reads a line with ``AutoProcessor`` + ``VisionEncoderDecoderModel`` + ``generate()``. A model
trained on deskewed lines cut to their ink (``"deskew"``/``"crop_to_ink"`` in its ``config.json``, see
``reading.LineReading``) then reads the raw image, and reads it much worse than ``htr.inference.predict``.
:class:`TrOCRLineProcessor` is ``TrOCRProcessor`` plus that reading: ``processor(images=...)`` makes each image RGB on
white paper, turns it level and cuts it to its ink where the model's config says so, then runs the image processor,
so its ``pixel_values`` are exactly those ``htr.inference.predict`` feeds the model.

The reading settings stay in ``config.json`` alone, where ``run_trocr.py`` writes them and where the model, the
pipeline and ``htr.inference.predict`` read them: :meth:`TrOCRLineProcessor.from_pretrained` reads them from the
same folder or Hub repo. A copy in ``processor_config.json`` could disagree with the model after a run that changes
them (and ``TrOCRProcessor.save_pretrained``, which ``run_trocr.py`` uses, would drop it).

:func:`attach_processor` copies this file (and ``reading.py``) into a saved model folder and names the class in
``processor_config.json``'s ``auto_map``, the Hub's way for code that travels with the weights; ``run_trocr.py``
does it for every output dir and ``htr.hub.publish`` uploads the files. ``processor_class`` stays
``TrOCRProcessor``, so transformers 5.24 loads the standard class without ``trust_remote_code`` (quietly: a class
of its own comes first) and this one with it; a folder without the ``auto_map`` loads as it always did.

Like ``pipeline.py``, this file is imported by transformers' dynamic-module loader on machines without this
repository: it may import only the standard library, PIL, transformers and, relatively, ``reading.py``.

    python -m htr.core.processing OUTPUT_DIR   # attach to an output dir written before run_trocr.py did it
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image, ImageOps
from transformers import TrOCRProcessor
from transformers.image_transforms import to_pil_image
from transformers.utils import CONFIG_NAME, PROCESSOR_NAME, cached_file

from . import reading
from .reading import LineReading, shape_problem, to_rgb

# The file name is the module name in ``auto_map``: the loader looks for ``processing.py`` in the repo.
MODULE_FILE = Path(__file__).name
# Every file a model folder needs for the processor: this one and the one it imports relatively.
MODULE_FILES = (MODULE_FILE, Path(reading.__file__).name)
# The from_pretrained arguments that say where a repo's files come from, passed on to fetch config.json.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


class TrOCRLineProcessor(TrOCRProcessor):
    """``TrOCRProcessor`` that reads ``images=`` the model's way (``line_reading``) before the image processor.

    ``text=`` (labels) is untouched. ``from_pretrained`` takes ``line_reading`` from the repo's ``config.json``;
    built directly, it reads images as they are unless given one.
    """

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        line_reading: LineReading | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_processor, tokenizer, **kwargs)
        self.line_reading = line_reading or LineReading()

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> TrOCRLineProcessor:
        """The processor of a model folder or Hub repo, reading lines as its ``config.json`` says."""
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        path = cached_file(
            str(pretrained_model_name_or_path),
            CONFIG_NAME,
            _raise_exceptions_for_missing_entries=False,
            **hub_kwargs,
        )
        if path:  # a processor saved without its model reads images as they are
            config = json.loads(Path(path).read_text(encoding="utf-8"))
            processor.line_reading = LineReading.of(SimpleNamespace(**config))
        return processor

    def to_dict(self) -> dict[str, Any]:
        """Saved as ``TrOCRProcessor``, so a folder saved from this one still loads without remote code; the
        reading is the model config's, not the processor's, so it is not saved here."""
        output = super().to_dict()
        output.pop("line_reading", None)
        output["processor_class"] = TrOCRProcessor.__name__
        return output

    def line_image(self, image: Any) -> Image.Image:
        """One image as the model reads it: upright RGB on white paper, then ``line_reading``'s steps.

        An image the image processor cannot resize is refused here with the reason, not deep inside it.
        """
        if not isinstance(image, Image.Image):  # numpy array or tensor, as the image processor takes them
            image = to_pil_image(image)
        rgb = to_rgb(ImageOps.exif_transpose(image))
        size = self.image_processor.size
        if problem := shape_problem(rgb.width, rgb.height, size):
            raise ValueError(problem)
        return self.line_reading.line_image(rgb, size)

    def __call__(self, images: Any = None, text: Any = None, **kwargs: Any) -> Any:
        """``TrOCRProcessor.__call__`` on the images as the model reads them (see :meth:`line_image`)."""
        if images is not None:
            many = isinstance(images, list | tuple)
            images = [self.line_image(image) for image in images] if many else self.line_image(images)
        return super().__call__(images=images, text=text, **kwargs)


def auto_map() -> dict[str, str]:
    """The ``processor_config.json`` entry that ``register_for_auto_class`` + ``save_pretrained`` would write."""
    return {"AutoProcessor": f"{Path(MODULE_FILE).stem}.{TrOCRLineProcessor.__name__}"}


def attach_processor(model_dir: str | os.PathLike) -> Path:
    """Copy the processor's files into a saved model folder and name it in ``processor_config.json``; return the
    main copy.

    Idempotent. ``processor_class`` is set to ``TrOCRProcessor``, the class loaded without ``trust_remote_code``.
    """
    model_dir = Path(model_dir)
    config_path = model_dir / PROCESSOR_NAME
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for name in MODULE_FILES:
        source, target = Path(__file__).with_name(name), model_dir / name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
    config.update(
        auto_map={**config.get("auto_map", {}), **auto_map()}, processor_class=TrOCRProcessor.__name__
    )
    # The layout ProcessorMixin.save_pretrained writes.
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return model_dir / MODULE_FILE


def processor_attached(model_dir: str | os.PathLike) -> bool:
    """Whether ``model_dir`` holds this processor and its ``processor_config.json`` entry."""
    model_dir = Path(model_dir)
    config_path = model_dir / PROCESSOR_NAME
    if not all((model_dir / name).is_file() for name in MODULE_FILES) or not config_path.is_file():
        return False
    config = json.loads(config_path.read_text(encoding="utf-8"))
    return config.get("auto_map", {}).get("AutoProcessor") == auto_map()["AutoProcessor"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Make AutoProcessor.from_pretrained(FOLDER, trust_remote_code=True) read lines as the model does."
    )
    parser.add_argument(
        "model_dir", type=Path, help="Output dir of run_trocr.py (processor saved with save_pretrained)."
    )
    args = parser.parse_args(argv)
    if not (args.model_dir / PROCESSOR_NAME).is_file():
        parser.error(
            f"{args.model_dir} has no {PROCESSOR_NAME}: point at a folder saved with save_pretrained."
        )
    print(f"Wrote {attach_processor(args.model_dir)} and auto_map in {args.model_dir / PROCESSOR_NAME}")


if __name__ == "__main__":
    main()
