"""Finding, checking and opening images the way the model expects them: RGB, upright, on white.

Every way an image can be unusable ends in :class:`BadImageError` (path, reason, fix), never in a raw
Pillow/OSError traceback: a corrupt file can make Pillow's format plugins raise almost any exception
type, so the one place that reads files (:func:`_reading`) maps them all.

Two entry points read files:

* :func:`open_image` fully decodes — what training does for every sample.
* :func:`inspect_image` is the cheap pre-training check. Measured on a 2000×200 line image: header
  only 0.03 ms, PNG ``verify()`` (chunk CRCs, catches truncation) 0.13 ms, full decode 1.4 ms (JPEG)
  to 4.2 ms (PNG). So it reads the header, checks pixel count, mode and frames, then proves the
  file complete cheaply where it can — PNG by ``verify()``, JPEG by its end-of-image marker — and
  fully decodes only when that is inconclusive (other formats, a failed cheap check). It therefore
  never rejects an image that :func:`open_image` accepts; it can miss damage inside an intact-looking
  JPEG's compressed data, which ``full_decode=True`` rules out at full-decode cost.

Decompression bombs: images above ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's default ≈ 89.5 M px,
about 9500×9500) are refused before any pixel is decoded. To allow larger images set that attribute,
or the environment variable ``HTR_MAX_IMAGE_PIXELS`` (read when this module is imported).
"""

import functools
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from htr.core.errors import HTRError

# One definition, in the standalone file that model folders carry beside pipeline.py.
from htr.core.reading import shape_problem
from htr.core.reading import to_rgb as _to_rgb

PIXEL_LIMIT_ENV = "HTR_MAX_IMAGE_PIXELS"
# File endings taken for images when searching folders or guessing whether a CSV header is a path.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".webp")
_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


class BadImageError(HTRError, ValueError):
    """An image that cannot be used, with the path and what to do about it.

    ``kind`` is a short stable code (``missing_file``, ``corrupt``, ...) so reports can group rows.
    """

    def __init__(self, path: str | Path, reason: str, fix: str, kind: str = "unreadable") -> None:
        self.path, self.reason, self.fix, self.kind = str(path), reason, fix, kind
        super().__init__(f"{path}: {reason}. Fix: {fix}")


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image` learnt from the header.

    ``n_frames`` > 1 means only frame 0 is used; None means several frames, the later ones damaged.
    """

    width: int
    height: int
    mode: str
    format: str | None
    n_frames: int | None


class PixelLimitError(HTRError, ValueError):
    """``HTR_MAX_IMAGE_PIXELS`` is not a number: a one-line error, not a traceback at import."""


def _parse_pixel_limit(raw: str) -> int:
    """Fail on a typo rather than silently keeping the default."""
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise PixelLimitError(
            f"{PIXEL_LIMIT_ENV} must be a positive whole number of pixels, got {raw!r}: "
            f"e.g. export {PIXEL_LIMIT_ENV}=200000000, or unset it for Pillow's default"
        )
    return limit


def pixel_limit() -> int | None:
    """Read at use, not import, so a bad value reaches the entry point's one-line error handling."""
    if PIXEL_LIMIT_ENV in os.environ:
        Image.MAX_IMAGE_PIXELS = _parse_pixel_limit(os.environ[PIXEL_LIMIT_ENV])
    return Image.MAX_IMAGE_PIXELS


def check_shape(path: str | Path, width: int, height: int, image_processor: object | None) -> None:
    """Raise BadImageError (skippable) for a shape the model's processor cannot resize."""
    if image_processor is not None and (reason := shape_problem(width, height, image_processor.size)):
        raise BadImageError(
            path, reason, "crop it, or skip such rows with --skip_invalid_rows", "extreme_shape"
        )


def resolve_image_path(value: str, csv_dir: str | Path, image_root: str | Path | None = None) -> Path:
    """Absolute paths stay; relative ones are taken from ``image_root`` if set, else the CSV's folder."""
    path = Path(value)
    if path.is_absolute():
        return path
    return Path(image_root if image_root is not None else csv_dir) / path


def _path_hints(path: Path) -> str:
    """Name the usual reasons a path written on another machine does not exist here."""
    text = str(path)
    hints = []
    if "\\" in text:
        hints.append("it contains backslashes (a Windows path?); use forward slashes")
    if any(part != part.strip() for part in path.parts):
        hints.append("a part of it starts or ends with a space")
    if "~" in path.parts:
        hints.append("'~' is not expanded; write the full path")
    return "; ".join(hints)


def _check_file(path: Path) -> None:
    """Cheap stat-level checks; also stops a FIFO/device path from blocking ``open()`` forever."""
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        hints = _path_hints(path)
        raise BadImageError(
            path,
            "file not found" + (f" ({hints})" if hints else ""),
            "correct the path in the CSV, or set image_root to the folder the relative paths start from",
            "missing_file",
        ) from None
    except PermissionError:
        raise BadImageError(path, "permission denied", "make the file readable", "unreadable") from None
    except ValueError:  # the only one os.stat raises: "embedded null byte"
        raise BadImageError(
            repr(str(path)), "the path contains a NUL character", "correct the path in the CSV", "bad_path"
        ) from None
    if not stat.S_ISREG(status.st_mode):
        what = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
        raise BadImageError(path, f"is {what}", "point the row at an image file", "not_a_file")
    if status.st_size == 0:
        raise BadImageError(
            path, "the file is empty (0 bytes)", "re-export or re-download the image", "empty_file"
        )


def _unidentified(path: Path) -> BadImageError:
    """Pillow recognised no format: say what the file is instead, from its first bytes."""
    with path.open("rb") as file:
        head = file.read(64)
    fix = "re-export the image as PNG or JPEG, or remove the row"
    for signature, name in _SIGNATURES.items():
        if head.startswith(signature):
            return BadImageError(
                path, f"it starts like a {name} file but its header is damaged", fix, "corrupt"
            )
    if head.startswith(b"%PDF"):
        reason = "it is a PDF document"
    elif head[4:8] == b"ftyp":
        reason = "it looks like a HEIC/AVIF photo, which this Pillow cannot decode"
    elif _looks_like_text(head):
        start = head[:30].decode("utf-8", "replace")
        reason = f"it is a text file (starts with {start!r}), e.g. an error page saved by a download"
    else:
        reason = f"no image format recognises it (first bytes: {head[:8].hex(' ')})"
    return BadImageError(path, f"not an image: {reason}", fix, "not_an_image")


def _looks_like_text(head: bytes) -> bool:
    text = head.decode("utf-8", "ignore")  # "ignore": the 64-byte cut may split a character
    return len(text.encode()) >= len(head) - 3 and all(char.isprintable() or char.isspace() for char in text)


def _check_header(image: Image.Image, path: Path) -> None:
    """Refuse decompression bombs and unconvertible modes from the header, before decoding pixels."""
    limit = pixel_limit()
    if limit is not None and image.width * image.height > limit:
        raise BadImageError(
            path,
            f"the image is {image.width}×{image.height} = {image.width * image.height:,} pixels, above the "
            f"decompression-bomb limit of {limit:,}",
            "if the image is genuine, downscale it (a text line rarely needs more than ~2000 px), or raise "
            f"the limit: environment variable {PIXEL_LIMIT_ENV}={image.width * image.height} "
            "or PIL.Image.MAX_IMAGE_PIXELS in Python",
            "too_large",
        )
    if not _mode_supported(image.mode):
        raise BadImageError(
            path,
            f"pixel mode {image.mode!r} cannot be converted to RGB",
            "re-save the image as RGB or grayscale PNG/JPEG",
            "unsupported_mode",
        )


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn whatever reading ``path`` raises into a BadImageError with a reason and a fix."""
    _check_file(path)
    try:
        yield
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise _unidentified(path) from None
    except Image.DecompressionBombError as error:
        # Only reached when the header declares twice Pillow's limit; _check_header covers the rest.
        raise BadImageError(
            path,
            f"refused as a possible decompression bomb ({error})",
            f"downscale it, or raise the limit with the environment variable {PIXEL_LIMIT_ENV}",
            "too_large",
        ) from error
    except Exception as error:  # any exception type can come out of a plugin fed a corrupt file
        raise BadImageError(
            path,
            f"the file is truncated or corrupt ({type(error).__name__}: {error})",
            "re-export or re-download the image, or remove the row",
            "corrupt",
        ) from error


@functools.cache
def _mode_supported(mode: str) -> bool:
    """Try :func:`_to_rgb` on a 1×1 image, so the quick check and training can never disagree."""
    try:
        _to_rgb(Image.new(mode, (1, 1)))
    except (ValueError, KeyError):
        return False
    return True


def open_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an upright RGB image: EXIF orientation applied, frame 0 of multi-frame files."""
    path = Path(path).absolute()  # errors then say exactly where it looked
    with _reading(path), Image.open(path) as image:
        _check_header(image, path)
        return _to_rgb(ImageOps.exif_transpose(image))


def _looks_complete(image: Image.Image, path: Path) -> bool:
    """Cheap proof that the whole file is there; False means "decode to find out", not "broken"."""
    if image.format == "PNG":
        try:
            image.verify()  # walks every chunk and checks its CRC, without inflating pixel data
        except Exception:  # any failure only means the full decode decides
            return False
        return True
    if image.format == "JPEG":
        with path.open("rb") as file:
            file.seek(-2, os.SEEK_END)
            return file.read() == b"\xff\xd9"
    return False


def inspect_image(path: str | Path, *, full_decode: bool = False) -> ImageInfo:
    """Check ``path`` would open for training, cheaply (see the module docstring for the trade-off)."""
    path = Path(path).absolute()
    with _reading(path), Image.open(path) as image:
        _check_header(image, path)
        try:
            n_frames = getattr(image, "n_frames", 1)  # GIF and TIFF walk every frame to count them
        except Exception:  # a damaged later frame; frame 0, the one used, is decoded below to decide
            n_frames, full_decode = None, True
        info = ImageInfo(image.width, image.height, image.mode, image.format, n_frames)
        complete = not full_decode and _looks_complete(image, path)
    if not complete:
        open_image(path)
    return info
