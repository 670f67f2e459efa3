"""Imgur5K → one upright PNG per annotated word and ``english.csv``.

Format of facebookresearch/IMGUR5K-Handwriting-Dataset (README and ``download_imgur5k.py``):
``dataset_info/imgur5k_annotations.json`` and its per-split subsets
``imgur5k_annotations_{train,val,test}.json`` hold

* ``index_id``: image id → ``{"image_url", "image_path", "image_hash"}``;
* ``index_to_ann_map``: image id → list of annotation ids (``<image id>_<n>``);
* ``ann_id``: annotation id → ``{"word": str, "bounding_box": "[xc, yc, w, h, a]"}``, the box as a
  JSON *string* in the published files (a plain list is accepted too).

The split files are the dataset's own split (train / val / test → train / validation / test).
The download script stores images as ``<output_dir>/<image id>.jpg``. Images are looked up as ``images/<image id>.jpg`` under the
dataset folder (``--images_dir`` to override) rather than through ``image_path``, which depends on
where the download ran.

Box convention: centre (xc, yc), width w along the text, height h, and angle ``a`` in degrees,
counter-clockwise as seen on screen (image y axis pointing down): the text baseline runs along
(cos a, -sin a). The official repository ships no crop code (its README only says "xywha"); this
is the convention of the crop script in community forks (sk4rm/IMGUR5K-Handwriting-Dataset
``prepare_dataset.py``: ``cv2.boxPoints(((xc, yc), (w, h), -a))``), and it matches the annotations
(successive words of a line with a > 0 climb to the right). Each box is cut out upright with one bilinear affine transform: output pixel
(x, y) samples the photo at centre + R(a) · (x - w/2, y - h/2), which equals rotating the photo by
-a around the box centre and cropping the axis-aligned w × h box, without rotating the whole photo.

Dropped with a count: ``.`` words (regions the annotators did not transcribe), boxes under one
pixel, and every box of an image that is missing or unreadable. Images deleted from Imgur cannot
be downloaded any more, while annotation files obtained elsewhere (the repository commits the val
and test files) still list them, so a non-zero missing count is normal.
"""

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from data_prep._parallel import default_workers, parallel_map
from htr.core.images import BadImageError, open_image
from htr.core.text import normalize_text
from htr.data.dataset_csv import Row, write_csv

SPLIT_FILES = {
    "imgur5k_annotations_train.json": "train",
    "imgur5k_annotations_val.json": "validation",
    "imgur5k_annotations_test.json": "test",
}
ALL_ANNOTATIONS = "imgur5k_annotations.json"
UNANNOTATED = "."
SOURCE = "imgur5k"


@dataclass(frozen=True)
class Box:
    """A rotated word box: centre, size, counter-clockwise angle in degrees."""

    xc: float
    yc: float
    w: float
    h: float
    angle: float


def parse_box(value: str | list[float]) -> Box:
    """``"[xc, yc, w, h, a]"`` (as published) or the same list → Box."""
    numbers = json.loads(value) if isinstance(value, str) else value
    return Box(*(float(number) for number in numbers))


def crop_upright(image: Image.Image, box: Box) -> Image.Image:
    """The content of ``box`` rotated back to horizontal, ``round(w)`` × ``round(h)`` pixels."""
    width, height = round(box.w), round(box.h)
    cos, sin = math.cos(math.radians(box.angle)), math.sin(math.radians(box.angle))
    # Output (x, y) ← input (cos·x + sin·y + c, -sin·x + cos·y + f), centred on the box.
    c = box.xc - cos * width / 2 - sin * height / 2
    f = box.yc + sin * width / 2 - cos * height / 2
    return image.transform(
        (width, height),
        Image.Transform.AFFINE,
        (cos, sin, c, -sin, cos, f),
        resample=Image.Resampling.BILINEAR,
    )


@dataclass
class ImageJob:
    """One photo and the crops to cut from it, with the CSV rows they become."""

    image: Path
    crops: list[tuple[Box, Path]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def run_job(job: ImageJob) -> str:
    """Cut and save every crop of one photo; returns ``"ok"``, ``"missing"`` or ``"unreadable"``."""
    if not job.image.is_file():
        return "missing"
    try:
        image = open_image(job.image)
    except BadImageError:
        return "unreadable"
    for box, path in job.crops:
        crop_upright(image, box).save(path, format="PNG")
    return "ok"


@dataclass
class ImgurStats:
    """Rows written and what was dropped, by reason."""

    written: int = 0
    unannotated: int = 0
    degenerate_boxes: int = 0
    missing_images: int = 0
    missing_image_rows: int = 0
    unreadable_images: int = 0
    unreadable_image_rows: int = 0


def annotation_files(info_dir: Path) -> list[tuple[Path, str]]:
    """The per-split annotation files present, or the combined file (no split) if there are none."""
    split_files = [
        (info_dir / name, split) for name, split in SPLIT_FILES.items() if (info_dir / name).is_file()
    ]
    if split_files:
        return split_files
    if (info_dir / ALL_ANNOTATIONS).is_file():
        return [(info_dir / ALL_ANNOTATIONS, "")]
    raise FileNotFoundError(f"{info_dir} holds neither {sorted(SPLIT_FILES)} nor {ALL_ANNOTATIONS}")


def plan_jobs(imgur_dir: Path, images_dir: Path, out_dir: Path, stats: ImgurStats) -> list[ImageJob]:
    """Read the annotations into one job per photo; counts dropped annotations in ``stats``."""
    jobs = []
    for path, split in annotation_files(imgur_dir / "dataset_info"):
        annotations = json.loads(path.read_text(encoding="utf-8"))
        for image_id, ann_ids in annotations["index_to_ann_map"].items():
            job = ImageJob(images_dir / f"{image_id}.jpg")
            for ann_id in ann_ids:
                annotation = annotations["ann_id"][ann_id]
                label = normalize_text(str(annotation["word"]))
                box = parse_box(annotation["bounding_box"])
                if label in ("", UNANNOTATED):
                    stats.unannotated += 1
                elif round(box.w) < 1 or round(box.h) < 1:
                    stats.degenerate_boxes += 1
                else:
                    job.crops.append((box, out_dir / "images" / f"{ann_id}.png"))
                    job.rows.append(
                        {"image": f"images/{ann_id}.png", "label": label, "source": SOURCE, "split": split}
                    )
            if job.crops:
                jobs.append(job)
    return jobs


def convert(imgur_dir: Path, out_dir: Path, images_dir: Path | None = None, workers: int = 1) -> ImgurStats:
    """Crop every annotated word into ``out_dir/images`` and list them in ``out_dir/english.csv``."""
    stats = ImgurStats()
    jobs = plan_jobs(imgur_dir, images_dir or imgur_dir / "images", out_dir, stats)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for job, status in zip(jobs, parallel_map(run_job, jobs, workers), strict=True):
        if status == "ok":
            rows.extend(job.rows)
        elif status == "missing":
            stats.missing_images += 1
            stats.missing_image_rows += len(job.rows)
        else:
            stats.unreadable_images += 1
            stats.unreadable_image_rows += len(job.rows)
    write_csv(out_dir / "english.csv", rows)
    stats.written = len(rows)
    return stats


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.imgur5k",
        description="Cut Imgur5K word boxes upright into PNG files and write english.csv.",
    )
    parser.add_argument(
        "--imgur5k_dir",
        type=Path,
        required=True,
        help="Dataset folder with dataset_info/imgur5k_annotations_{train,val,test}.json "
        "(or imgur5k_annotations.json) and images/<image id>.jpg.",
    )
    parser.add_argument(
        "--out_dir", type=Path, required=True, help="Where english.csv and images/ are written."
    )
    parser.add_argument(
        "--images_dir", type=Path, help="Folder of the downloaded .jpg files (default: IMGUR5K_DIR/images)."
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="Processes cropping photos (default: all cores).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stats = convert(args.imgur5k_dir, args.out_dir, args.images_dir, args.workers)
    print(
        f"Wrote {stats.written} word crops to {args.out_dir}. Dropped: {stats.unannotated} unannotated ('.') "
        f"boxes, {stats.degenerate_boxes} boxes under one pixel, {stats.missing_image_rows} boxes of "
        f"{stats.missing_images} missing images, {stats.unreadable_image_rows} boxes of "
        f"{stats.unreadable_images} unreadable images."
    )


if __name__ == "__main__":
    main()
