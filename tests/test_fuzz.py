"""Seeded fuzzing: corrupted image bytes and messy CSVs end in a clear error (BadImageError,
DataValidationError, a reported problem) or a valid result — never another exception, never a hang.

A failing case prints its number; ``random.Random(SEED + number)`` rebuilds it.
"""

import io
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from htr.core.images import BadImageError, ImageInfo, inspect_image, open_image
from htr.data.dataset_csv import read_table, write_csv
from htr.data.validation import DataValidationError, ValidationReport, validate_csv

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),  # Pillow's "Corrupt EXIF data" & co.
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

SEED = 6
CASE_TIMEOUT_S = 10
IMAGE_CASES = 400
CSV_CASES = 300


def guarded(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Run ``function`` in a daemon thread so that a hang fails the test instead of blocking it."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # re-raised below, in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CASE_TIMEOUT_S)
    assert not thread.is_alive(), f"{function.__name__}{args} still running after {CASE_TIMEOUT_S} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def valid_images() -> dict[str, bytes]:
    """One small image per format and mode worth corrupting."""
    page = Image.new("RGB", (24, 12), (250, 240, 230))
    page.putpixel((3, 3), (0, 0, 0))
    cases = {
        "rgb.png": (page, "PNG", {}),
        "gray.png": (page.convert("L"), "PNG", {}),
        "rgba.png": (page.convert("RGBA"), "PNG", {}),
        "palette.png": (page.convert("P"), "PNG", {}),
        "gray16.png": (Image.new("I;16", (24, 12), 3000), "PNG", {}),
        "photo.jpg": (page, "JPEG", {}),
        "cmyk.jpg": (page.convert("CMYK"), "JPEG", {}),
        "scan.tif": (page, "TIFF", {"save_all": True, "append_images": [page]}),
        "anim.gif": (page.convert("P"), "GIF", {"save_all": True, "append_images": [page.convert("P")]}),
        "old.bmp": (page, "BMP", {}),
        "web.webp": (page, "WEBP", {}),
    }
    encoded = {}
    for name, (image, fmt, options) in cases.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        encoded[name] = buffer.getvalue()
    return encoded


def corrupt(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    out = bytearray(data)
    operation = rng.choice(["flip", "header", "truncate", "insert", "delete", "zero", "append", "garbage"])
    if operation == "flip":
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif operation == "header":
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(min(40, len(out)))] = rng.randrange(256)
    elif operation == "truncate":
        del out[rng.randrange(len(out)) :]
    elif operation == "insert":
        at = rng.randrange(len(out))
        out[at:at] = rng.randbytes(rng.randint(1, 50))
    elif operation == "delete":
        at = rng.randrange(len(out))
        del out[at : at + rng.randint(1, 50)]
    elif operation == "zero":
        at = rng.randrange(len(out))
        out[at : at + 100] = bytes(len(out[at : at + 100]))
    elif operation == "append":
        out += rng.randbytes(rng.randint(1, 100))
    else:
        out = bytearray(rng.randbytes(rng.randint(1, 500)))
    return operation, bytes(out)


def assert_clear(error: BadImageError) -> None:
    assert error.reason and error.fix and error.kind, error


@pytest.fixture(scope="module")
def fuzzed_images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("fuzzed_images")
    originals = valid_images()
    cases = []
    for number in range(IMAGE_CASES):
        rng = random.Random(SEED + number)
        name = rng.choice(sorted(originals))
        operation, data = corrupt(rng, originals[name])
        path = folder / f"{number}-{name}"
        path.write_bytes(data)
        cases.append((path, f"case {number}: {operation} of {name}"))
    return cases


def test_corrupted_images_end_in_bad_image_error_or_rgb(fuzzed_images: list[tuple[Path, str]]) -> None:
    outcomes = {"opened": 0, "refused": 0}
    for path, case in fuzzed_images:
        try:
            image = guarded(open_image, path)
        except BadImageError as error:
            assert_clear(error)
            opened = False
        else:
            assert isinstance(image, Image.Image) and image.mode == "RGB", case
            opened = True
        outcomes["opened" if opened else "refused"] += 1
        for full_decode in (False, True):
            try:
                info = guarded(inspect_image, path, full_decode=full_decode)
            except BadImageError as error:
                assert_clear(error)
                # the quick check never refuses what training opens; the full check agrees exactly
                assert not opened, f"{case}: inspect_image(full_decode={full_decode}) refused it: {error}"
            else:
                assert isinstance(info, ImageInfo), case
                assert opened or not full_decode, f"{case}: full check passed what open_image refuses"
    assert min(outcomes.values()) > IMAGE_CASES // 10, outcomes  # both outcomes are really exercised


PATHS = [
    "img/ok.png",
    "img/missing.png",
    "../outside.png",
    "",
    " ",
    "/abs/none.png",
    "img\\ok.png",
    "img/ok.png ",
]
PIECES = [
    "hello", "Smith, John", 'say "hi"', "two\nlines", "\r\n", "é", "e\u0301", "\u00a0", "\t", "\x00", "\x07",
    "\ufffd", "\ufeff", "😀", "ß", ",", '"', "'", "NA", "None", "", "  ", "\u2028", "\x1c", "\\", ";", "word " * 30,
]  # fmt: skip


def random_csv(rng: random.Random, image_values: list[str]) -> bytes:
    """Mostly plausible CSVs with random defects: quoting, field counts, encodings, line endings."""
    header = rng.choice(
        [["image", "label"]] * 6 + [["image", "label", "writer"], ["Label", "image"], ["label"]]
    )
    lines = [",".join(header)]
    for _ in range(rng.randint(0, 10)):
        if rng.random() < 0.08:
            lines.append(rng.choice(["", "   ", "\t"]))
            continue
        values = {"image": rng.choice(image_values), "writer": "w1"}
        values["label"] = values["Label"] = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))
        fields = []
        for column in header:
            value, style = values[column], rng.random()
            if style < 0.7 and not any(char in value for char in ',"\r\n'):
                fields.append(value)
            elif style < 0.95:
                fields.append('"' + value.replace('"', '""') + '"')
            else:
                fields.append(rng.choice(['"' + value, value + '"', value]))  # broken quoting
        if rng.random() < 0.04:
            fields.append("extra")
        lines.append(",".join(fields[: len(fields) - (rng.random() < 0.04)]))
    newline = rng.choice(["\n", "\r\n", "\r"])
    data = (newline.join(lines) + rng.choice([newline, ""])).encode()
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    if rng.random() < 0.05:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + bytes([rng.randrange(0x80, 0x100)]) + data[at:]
    if rng.random() < 0.03:
        data = data[: rng.randrange(len(data) + 1)]
    return data


def word_tokenizer(texts: list[str]) -> dict[str, list[list[str]]]:
    return {"input_ids": [text.split() for text in texts]}


def check_report(report: ValidationReport, csv_path: Path, case: str) -> None:
    for problem in report.problems:
        assert problem.message and problem.fix and str(problem), case
        assert problem.row is not None and 0 <= problem.row < report.n_rows, case
    assert set(report.valid_rows) <= set(range(report.n_rows)), case
    assert report.format(max_per_kind=2) and report.write_csv(csv_path.with_suffix(".skipped.csv")).exists()
    # training's Dataset holds the rows validated, value for value; written back, they read the same
    rows = report.dataset().to_list()
    assert len(rows) == report.n_rows and all(list(row) == report.columns for row in rows), case
    for row, record in zip(rows, read_table(csv_path).rows, strict=True):
        assert list(row.values()) == record.fields + [""] * (len(row) - len(record.fields)), case
    copy = write_csv(csv_path.with_suffix(".copy.csv"), rows, report.columns)
    assert read_table(copy).to_dataset().to_list() == rows, case


def test_messy_csvs_end_in_report_or_data_validation_error(
    tmp_path: Path, fuzzed_images: list[tuple[Path, str]]
) -> None:
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 10), "white").save(tmp_path / "img/ok.png")
    image_values = PATHS + [str(path) for path, _ in fuzzed_images[:20]]
    outcomes = {"report": 0, "fatal": 0}
    for number in range(CSV_CASES):
        rng = random.Random(SEED + number)
        csv_path = tmp_path / f"{number}.csv"
        csv_path.write_bytes(random_csv(rng, image_values))
        case = f"case {number}: {csv_path.read_bytes()!r}"
        options = {"tokenizer": word_tokenizer, "max_target_length": 20, "num_workers": rng.choice([1, 2])}
        try:
            report = guarded(validate_csv, csv_path, **options)
        except DataValidationError as error:
            assert error.report.fatal and error.report.errors and str(error), case
            assert all(problem.message and problem.fix for problem in error.report.errors), case
            outcomes["fatal"] += 1
            continue
        assert isinstance(report, ValidationReport), case
        check_report(report, csv_path, case)
        outcomes["report"] += 1
    assert min(outcomes.values()) > CSV_CASES // 10, outcomes
