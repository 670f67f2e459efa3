"""The web demo in a real browser: `python -m htr.demo` as a subprocess, driven by Debian's Chromium.

One server (started with no --host, as a user would) serves every test here. Every browser request to a
host other than the server is blocked and recorded, so the frontend provably comes from the gradio wheel.
``HTR_DEMO_SCREENSHOT=docs/demo.png`` saves the line test's final page (how docs/demo.png is made).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image, ImageDraw, ImageFont

from htr.demo import Reader, kraken_available
from htr.inference import predict
from htr.pages import transcribe
from htr.pages.layout import Line, Page

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "trocr-tiny-synthetic"
PIXEL_LIMIT = 2_000_000  # HTR_MAX_IMAGE_PIXELS of the server, so a "huge" upload is quick to make
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HTR_MAX_IMAGE_PIXELS": str(PIXEL_LIMIT)}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "htr.demo", str(MODEL.relative_to(ROOT)), "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"the demo exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the demo did not answer in 90 s:\n{log.read_text()}"
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser_page(server: str, tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium, or setup.sh)")
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # fresh user data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 760},
        )

        def only_local(route) -> None:
            if urlparse(route.request.url).netloc != urlparse(server).netloc:
                outside.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", only_local)
        page = context.new_page()
        page.goto(server)
        yield page
        context.close()
    assert not outside, f"the demo page fetched from outside the server: {outside}"


def line_image(path: Path, text: str = "hello world") -> Path:
    """A clean line image made here, so the test needs no data/ folder."""
    font = ImageFont.load_default(size=44)
    image = Image.new("RGB", (440, 64), "white")
    ImageDraw.Draw(image).text((12, 6), text, fill="black", font=font)
    image.save(path)
    return path


def read_in_browser(page, path: Path) -> tuple[str, str, str]:
    """Upload ``path`` on the Line tab, click Read, and return text, confidence and status as shown."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Line").click()
    status = page.locator("#line-status")
    upload = page.locator("#line-file")
    if upload.get_by_role("button", name="Clear").count():  # a previous test's file is still there
        upload.get_by_role("button", name="Clear").click()
    upload.locator("input[type=file]").set_input_files(str(path))
    expect(upload).to_contain_text(path.name)
    page.locator("#line-read").click()
    expect(status).to_contain_text(path.name, timeout=30_000)  # every status, good or bad, names the file
    return (
        page.locator("#line-text textarea").input_value(),
        page.locator("#line-confidence input").input_value(),
        status.inner_text(),
    )


def test_line_upload_shows_predict_text_and_confidence(browser_page, tmp_path: Path) -> None:
    image = line_image(tmp_path / "hello.png")
    model, processor = predict.load(str(MODEL), "cpu")
    (row,), skipped = predict.predict(model, processor, [predict.Item(image)], num_beams=1)
    assert not skipped and row["prediction"], "the shipped model should read something on a clean line"

    text, confidence, status = read_in_browser(browser_page, image)
    assert text == row["prediction"]
    assert 0 < float(confidence) <= 1
    assert float(confidence) == pytest.approx(float(row["confidence"]), abs=1e-3)
    assert "greedy" in status
    if target := os.environ.get("HTR_DEMO_SCREENSHOT"):
        browser_page.screenshot(path=target)


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("notes.png", lambda path: path.write_text("not an image"), "not an image"),
        ("huge.png", lambda path: Image.new("L", (2000, 1001), 255).save(path), "HTR_MAX_IMAGE_PIXELS"),
        ("sliver.png", lambda path: Image.new("L", (8000, 2), 255).save(path), "too wide"),
    ],
)
def test_bad_upload_is_a_message_not_a_traceback(browser_page, tmp_path: Path, name, make, expected) -> None:
    path = tmp_path / name
    make(path)
    text, confidence, status = read_in_browser(browser_page, path)
    assert status.startswith(f"{name}: ") and expected in status, status
    assert "Traceback" not in browser_page.content()
    assert (text, confidence) == ("", "")


def test_page_tab_without_kraken_says_how_to_enable_it(browser_page) -> None:
    if kraken_available():  # the server runs in this Python
        pytest.skip("kraken is installed here: the page tab is live, not the hint")
    browser_page.get_by_role("tab", name="Page").click()
    hint = browser_page.locator("#page-unavailable")
    assert "setup.sh --pages" in hint.inner_text()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port``, from Linux's /proc/net/tcp{,6}."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                addresses.add(address)
    return addresses


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_server_listens_on_loopback_only_by_default(server: str) -> None:
    addresses = listening_addresses(urlparse(server).port)
    assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1)"


@pytest.mark.parametrize(("beams", "slider"), [(3, 3), (20, 8)])
def test_the_beam_slider_starts_where_the_model_decodes(tmp_path: Path, beams: int, slider: int) -> None:
    """No --num_beams: the slider starts at the model's generation_config (within the slider's range)."""
    folder = shutil.copytree(MODEL, tmp_path / "model")
    generation = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**generation, "num_beams": beams}))
    assert Reader(str(folder), "cpu").default_beams == slider
    assert Reader(str(MODEL), "cpu").default_beams == 1


def test_page_reading_reads_every_segmented_line_through_recognise_page(tmp_path: Path, monkeypatch) -> None:
    """The page tab's code with kraken's segmenter replaced by two known line boxes (kraken is optional)."""
    sheet = Image.new("RGB", (480, 200), "white")
    for top, text in ((20, "hello world"), (110, "good day")):
        sheet.paste(Image.open(line_image(tmp_path / f"{top}.png", text)), (20, top))
    sheet.save(tmp_path / "page.png")
    boxes = [[(20, top), (460, top), (460, top + 64), (20, top + 64)] for top in (20, 110)]

    def two_lines(image: Image.Image, path: Path, device: str = "cpu") -> tuple[Page, int]:
        lines = [Line(f"l{i}", box, [box[3], box[2]]) for i, box in enumerate(boxes)]
        return Page(path, image.width, image.height, lines), 0

    monkeypatch.setattr(transcribe, "segment", two_lines)
    reader = Reader(str(MODEL), "cpu")
    overlay, text, status = reader.read_page(str(tmp_path / "page.png"), 1)
    crops = transcribe.crop_page(sheet, two_lines(sheet, tmp_path)[0])[1]
    expected = [reading.text for reading in reader.recognise(crops, 1)]
    assert text.split("\n") == expected and all(expected)
    assert overlay.size == (2 * sheet.width, sheet.height)
    assert status.startswith("2 lines (0 fragments left out, 0 without usable geometry)")
