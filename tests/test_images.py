"""Every unusable image ends in a BadImageError with a reason and a fix; every usable one opens as the
model expects it (RGB, upright, transparency on white, 16-bit scaled rather than clipped)."""

import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image

from htr.core.images import (
    PIXEL_LIMIT_ENV,
    BadImageError,
    _mode_supported,
    inspect_image,
    open_image,
)

GRAY = (128, 128, 128)


def save(path: Path, image: Image.Image, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.fixture
def line_png(tmp_path: Path) -> Path:
    return save(tmp_path / "line.png", Image.new("RGB", (64, 16), GRAY))


@pytest.fixture
def line_jpeg(tmp_path: Path) -> Path:
    return save(tmp_path / "line.jpg", Image.new("RGB", (64, 16), GRAY))


def bad(path: Path) -> BadImageError:
    """open_image must refuse ``path`` with a reason, a fix, and the file's name."""
    with pytest.raises(BadImageError) as info:
        open_image(path)
    error = info.value
    assert error.reason and error.fix and str(path.name) in str(error)
    return error


# --- unusable files --------------------------------------------------------------------------------


def test_missing_file_names_absolute_path_and_hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    error = bad(Path("scans\\page 1.png"))
    assert error.kind == "missing_file"
    assert str(tmp_path) in error.path  # absolute, so the user sees where it looked
    assert "backslashes" in error.reason
    assert "image_root" in error.fix


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    assert bad(tmp_path / "empty.png").kind == "empty_file"


def test_directory_and_fifo_are_refused_without_blocking(tmp_path: Path) -> None:
    assert bad(tmp_path).kind == "not_a_file"
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(bad(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "open_image blocked on a FIFO"
    assert outcome[0].kind == "not_a_file"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<html><body>404 Not Found</body></html>\n", "text file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (bytes(range(200, 256)), "first bytes"),
    ],
)
def test_not_an_image_says_what_the_file_is(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "x.png").write_bytes(content)
    error = bad(tmp_path / "x.png")
    assert error.kind == "not_an_image"
    assert expected in error.reason


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_file_is_corrupt(tmp_path: Path, line_png: Path, line_jpeg: Path, suffix: str) -> None:
    source = line_png if suffix == "png" else line_jpeg
    data = source.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert bad(cut).kind == "corrupt"
    with pytest.raises(BadImageError):
        inspect_image(cut)  # the quick check catches truncation of both formats too


def test_broken_png_chunk_raising_non_oserror_is_mapped(tmp_path: Path, line_png: Path) -> None:
    data = bytearray(line_png.read_bytes())
    data[29] ^= 0xFF  # IHDR's CRC: Pillow raises SyntaxError, not OSError
    (tmp_path / "crc.png").write_bytes(bytes(data))
    error = bad(tmp_path / "crc.png")
    assert error.kind == "corrupt"
    assert "starts like a PNG" in error.reason


def test_nul_in_path_is_a_bad_path_not_a_valueerror(tmp_path: Path) -> None:
    with pytest.raises(BadImageError) as info:
        open_image(tmp_path / "a\x00.png")
    assert info.value.kind == "bad_path"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [40, 100])  # above the limit, and above twice it (Pillow's own error)
def test_decompression_bomb_is_refused_with_how_to_raise_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    path = save(tmp_path / "big.png", Image.new("L", (side, side)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for check in (open_image, inspect_image):
        with pytest.raises(BadImageError) as info:
            check(path)
        assert info.value.kind == "too_large"
        assert PIXEL_LIMIT_ENV in info.value.fix


def test_pixel_limit_env_var_raises_pillow_limit_and_a_typo_is_one_line_from_each_entry_point() -> None:
    code = (
        "import htr.core.images, PIL.Image; htr.core.images.pixel_limit(); print(PIL.Image.MAX_IMAGE_PIXELS)"
    )
    root = Path(__file__).parents[1]

    def run(value: str, *command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PIXEL_LIMIT_ENV: value}
        return subprocess.run([sys.executable, *command], cwd=root, env=env, capture_output=True, text=True)

    assert run("200_000_000", "-c", code).stdout.strip() == "200000000"
    for command in (
        ["run_trocr.py", "--output_dir", "unused"],
        ["-m", "htr.inference.predict", "no-model", "x.png"],
    ):
        typo = run("abc", *command)
        assert typo.returncode == 2 and PIXEL_LIMIT_ENV in typo.stderr, typo.stderr
        assert "Traceback" not in typo.stderr


# --- conversion to RGB -----------------------------------------------------------------------------


def rgba_with_transparent_corner() -> Image.Image:
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 255))
    image.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent *black*
    image.putpixel((1, 0), (0, 0, 0, 128))  # half transparent black
    return image


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    for mode in ("RGBA", "LA"):
        path = save(tmp_path / f"{mode}.png", rgba_with_transparent_corner().convert(mode))
        image = open_image(path)
        assert image.mode == "RGB"
        assert image.getpixel((0, 0)) == (255, 255, 255)
        assert 120 <= image.getpixel((1, 0))[0] <= 135
        assert image.getpixel((3, 3)) == (0, 0, 0)


def test_palette_transparency_is_white(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 0, 0])
    image.putpixel((1, 0), 1)
    path = save(tmp_path / "p.png", image, transparency=0)  # palette index 0 (black) is transparent
    assert open_image(path).getpixel((0, 0)) == (255, 255, 255)
    assert open_image(path).getpixel((1, 0)) == (200, 0, 0)
    gif = save(tmp_path / "p.gif", image, transparency=0)
    assert open_image(gif).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_16_bit_gray_is_scaled_not_clipped(tmp_path: Path, suffix: str) -> None:
    image = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 32896, 65535)):
        image.putpixel((x, 0), value)
    path = save(tmp_path / f"gray16.{suffix}", image)
    assert Image.open(path).mode.startswith("I;16")
    opened = open_image(path)
    assert [opened.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_and_float_gray_are_stretched(tmp_path: Path, mode: str) -> None:
    image = Image.new(mode, (3, 1))
    for x, value in enumerate((1000, 1500, 2000)):
        image.putpixel((x, 0), value)
    opened = open_image(save(tmp_path / f"{mode}.tif", image))
    assert [opened.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize(
    ("mode", "pixel", "fmt", "expected"),
    [
        ("CMYK", (255, 0, 0, 0), "JPEG", (0, 255, 255)),
        ("CMYK", (0, 0, 0, 255), "TIFF", (0, 0, 0)),
        ("1", 1, "PNG", (255, 255, 255)),
        ("L", 100, "PNG", (100, 100, 100)),
        ("RGB", (10, 20, 30), "PNG", (10, 20, 30)),
    ],
)
def test_other_modes_become_rgb(tmp_path: Path, mode: str, pixel: object, fmt: str, expected: tuple) -> None:
    path = save(tmp_path / f"x.{fmt.lower()}", Image.new(mode, (8, 8), pixel), format=fmt)
    image = open_image(path)
    assert image.mode == "RGB"
    assert all(abs(a - b) <= 3 for a, b in zip(image.getpixel((4, 4)), expected, strict=True))


def test_unconvertible_mode_is_detected() -> None:
    assert not _mode_supported("La")
    for mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "I;16B", "F"):
        assert _mode_supported(mode), mode


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (30, 10), "white")
    image.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to display
    path = save(tmp_path / "rotated.png", image, exif=exif)
    upright = open_image(path)
    assert upright.size == (10, 30)
    assert upright.getpixel((9, 0)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_multi_frame_uses_first_frame_and_reports_count(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (8, 8), color) for color in ("white", "black", "red")]
    path = save(
        tmp_path / f"multi.{fmt.lower()}", frames[0], format=fmt, save_all=True, append_images=frames[1:]
    )
    assert open_image(path).getpixel((0, 0)) == (255, 255, 255)
    assert inspect_image(path).n_frames == 3


# --- the quick check -------------------------------------------------------------------------------


def test_quick_check_does_not_decode_intact_png_or_jpeg(
    line_png: Path, line_jpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(path: Path) -> None:
        raise AssertionError(f"{path} was fully decoded")

    monkeypatch.setattr("htr.core.images.open_image", fail)
    for path in (line_png, line_jpeg):
        info = inspect_image(path)
        assert (info.width, info.height, info.n_frames) == (64, 16, 1)


def test_quick_check_never_rejects_what_training_accepts(
    tmp_path: Path, line_png: Path, line_jpeg: Path
) -> None:
    """Inconclusive cheap checks (JPEG with trailing bytes, PNG without IEND) fall back to decoding."""
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(line_jpeg.read_bytes() + b"\x00" * 64)
    no_end = tmp_path / "no_end.png"
    no_end.write_bytes(line_png.read_bytes()[:-12])
    for path in (padded, no_end):
        open_image(path)
        assert inspect_image(path).width == 64


def test_full_decode_catches_damage_the_quick_check_cannot_see(tmp_path: Path) -> None:
    """A PNG whose compressed pixels are broken but whose chunk CRCs are recomputed passes verify()."""
    data = bytearray(save(tmp_path / "ok.png", Image.new("RGB", (64, 16), GRAY)).read_bytes())
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    data[start + 2 : start + length] = bytes(length - 2)  # keep the zlib header, zero the stream
    data[start + length : start + length + 4] = struct.pack(
        ">I", zlib.crc32(data[start - 4 : start + length])
    )
    path = tmp_path / "zeroed.png"
    path.write_bytes(bytes(data))
    assert inspect_image(path).width == 64
    with pytest.raises(BadImageError) as info:
        inspect_image(path, full_decode=True)
    assert info.value.kind == "corrupt"
