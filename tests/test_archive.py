"""Archive runs of ``python -m htr.pages`` (``htr.pages.archive``): resume, a kill -9 half-way, a corrupt page,
two processes, atomic writes.

Pages are PAGE XML files with their lines, so no segmentation is needed and this runs in the main
environment (no kraken). The lines are drawn in Pillow's own font and read by the shipped tiny model:
what it reads does not matter here, only which pages are read, when, and what is written.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from htr.inference import predict
from htr.pages import archive, transcribe
from htr.pages.layout import Line, Page, read_layout, schema_errors, to_page_xml

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "trocr-tiny-synthetic"
TEXT = "the meeting of the committee will be held on monday at ten in the large hall of the library"
PAGES = 10


def make_page(folder: Path, number: int, lines: int = 3) -> Path:
    """A white page with ``lines`` printed lines and its PAGE XML (boxes and baselines) beside it."""
    font, words = ImageFont.load_default(size=30), TEXT.split()
    image = Image.new("RGB", (900, 70 * lines + 40), "white")
    draw = ImageDraw.Draw(image)
    page = Page(folder / f"page{number:02d}.png", image.width, image.height)
    for index in range(lines):
        top = 20 + 70 * index
        text = " ".join(words[(number + index + k) % len(words)] for k in range(4))
        draw.text((30, top + 12), text, fill="black", font=font)
        box = [(20, top), (880, top), (880, top + 60), (20, top + 60)]
        page.lines.append(Line(f"l{index}", box, [(20, top + 50), (880, top + 50)]))
    image.save(page.image)
    path = folder / f"page{number:02d}.xml"
    path.write_bytes(to_page_xml(page))
    return path


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pages")
    return [make_page(folder, number) for number in range(PAGES)]


@pytest.fixture(autouse=True)
def fresh_process_state():
    """accelerate's PartialState is a per-process singleton: each in-process run starts a new one."""
    from accelerate import PartialState

    yield
    PartialState._reset_state()


def command(inputs: list[Path], output: Path, *extra: str) -> list[str]:
    return [str(MODEL), *map(str, inputs), "--output_dir", str(output), "--threads", "1", *extra]


def summary(output: Path) -> dict:
    return json.loads((output / archive.SUMMARY_NAME).read_text(encoding="utf-8"))


def counts(output: Path) -> dict[str, int]:
    return {key: summary(output)[key] for key in ("pages", "done", "skipped", "failed")}


def snapshot(output: Path) -> dict[str, int]:
    """Modification time of every file: a page read again would rewrite its files."""
    return {str(path.relative_to(output)): path.stat().st_mtime_ns for path in output.rglob("*.*")}


def temporary_files(output: Path) -> list[Path]:
    return list(output.rglob(".*.tmp"))


def test_rerun_skips_complete_pages_and_redoes_only_the_rest(pages, tmp_path, monkeypatch) -> None:
    read = []
    real = predict.read_lines
    monkeypatch.setattr(predict, "read_lines", lambda *a, **k: read.append(len(a[2])) or real(*a, **k))
    out = tmp_path / "out"
    transcribe.main(command(pages[:4], out))
    assert len(read) == 4 and summary(out)["done"] == 4
    before = snapshot(out)

    read.clear()
    assert transcribe.main(command(pages[:4], out)) == []
    assert read == []  # nothing recognised, nothing rewritten
    assert counts(out) == {"pages": 4, "done": 0, "skipped": 4, "failed": 0}
    assert {name: time for name, time in snapshot(out).items() if "page" in name} == {
        name: time for name, time in before.items() if "page" in name
    }

    (out / "page01.txt").unlink()  # one output missing: that page alone is redone
    [result] = transcribe.main(command(pages[:4], out))
    assert result.name == "page01" and len(read) == 1 and summary(out)["skipped"] == 3

    transcribe.main(command(pages[:4], out, "--overwrite"))
    assert summary(out)["done"] == 4 and len(read) == 5


def test_kill_9_half_way_then_rerun_completes_without_rereading(pages, tmp_path) -> None:
    out = tmp_path / "out"
    run = [sys.executable, "-m", "htr.pages", *command(pages, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(run, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / archive.RECORDS).glob("page*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    complete = {p.stem for p in pages if archive.is_complete(out, read_layout(p).image.stem)}
    assert 1 <= len(complete) < PAGES, "killed before the first or after the last page"
    before = {name: time for name, time in snapshot(out).items() if Path(name).name.split(".")[0] in complete}

    rerun = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert counts(out) == {
        "pages": PAGES,
        "done": PAGES - len(complete),
        "skipped": len(complete),
        "failed": 0,
    }
    assert {name: snapshot(out)[name] for name in before} == before  # complete pages were not read again
    for page in pages:
        name = read_layout(page).image.stem
        assert archive.is_complete(out, name)
        assert schema_errors((out / f"{name}.xml").read_bytes(), "page") == []
        assert schema_errors((out / f"{name}.alto.xml").read_bytes(), "alto") == []
    assert temporary_files(out) == []


def test_a_corrupt_page_is_listed_and_the_others_are_done(pages, tmp_path) -> None:
    broken = make_page(tmp_path, 99)
    broken.with_suffix(".png").write_bytes(b"this is not a PNG, a download saved an error page")
    inputs = [*pages[:9], broken]
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="1 of 10 pages failed"):
        transcribe.main(command(inputs, out))
    assert counts(out) == {"pages": 10, "done": 9, "skipped": 0, "failed": 1}
    with (out / archive.FAILURES_NAME).open(encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["page"] == str(broken) and row["stage"] == "reading"
    assert "not an image" in row["reason"] and row["fix"]
    assert not (out / "page99.xml").exists()

    make_page(tmp_path, 99)  # repaired: the rerun retries it alone
    [result] = transcribe.main(command(inputs, out))
    assert result.name == "page99" and summary(out)["skipped"] == 9
    assert (out / archive.FAILURES_NAME).read_text(encoding="utf-8") == "page,stage,reason,fix\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def without_timestamps(path: Path) -> bytes:
    """The file's bytes; a PAGE file's Created/LastChange (when it was written) masked."""
    data = path.read_bytes()
    if path.name.endswith(".xml") and not path.name.endswith(".alto.xml"):
        lines = data.split(b"\n")
        data = b"\n".join(line for line in lines if b"<Created>" not in line and b"<LastChange>" not in line)
    return data


def test_two_launched_processes_share_the_pages_and_write_what_one_process_writes(pages, tmp_path) -> None:
    inputs = pages[:6]
    two, one = tmp_path / "two", tmp_path / "one"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(ROOT / "recipes/accelerate/cpu_2proc.yaml"), "--main_process_port", str(free_port())]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*launch, "-m", "htr.pages", *command(inputs, two)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    transcribe.main(command(inputs, one))

    merged = summary(two)
    assert merged["processes"] == 2 and merged["done"] == 6
    names = [read_layout(p).image.stem for p in inputs]
    assert [p["done"] for p in merged["per_process"]] == [names[0::2], names[1::2]]
    assert [archive.read_record(two, name)["process"] for name in names] == [0, 1] * 3
    outputs = sorted(p.name for p in one.glob("page*"))
    assert outputs == sorted(p.name for p in two.glob("page*")) and len(outputs) == 6 * 4
    assert all(without_timestamps(one / name) == without_timestamps(two / name) for name in outputs)


def test_a_failed_write_leaves_no_file_under_its_final_name(pages, tmp_path, monkeypatch) -> None:
    calls = []
    real = os.fsync

    def disk_full_at_the_third_file(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 3:  # the overlay, the text, then the ALTO file
            raise OSError(28, "No space left on device")
        real(descriptor)

    monkeypatch.setattr(os, "fsync", disk_full_at_the_third_file)
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="1 of 1 pages failed"):
        transcribe.main(command(pages[:1], out))
    assert (out / "page00.overlay.png").is_file() and (out / "page00.txt").is_file()  # whole files
    assert not (out / "page00.alto.xml").exists() and not (out / "page00.xml").exists()
    assert not archive.is_complete(out, "page00") and temporary_files(out) == []
    with (out / archive.FAILURES_NAME).open(encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["stage"] == "writing" and "No space left on device" in row["reason"]

    calls.clear()
    monkeypatch.setattr(os, "fsync", lambda descriptor: calls.append(descriptor) or real(1 / 0))
    with pytest.raises(ZeroDivisionError):
        archive.atomic_write(out / "page00.txt", b"half")
    assert (out / "page00.txt").read_bytes() != b"half" and temporary_files(out) == []  # the old file stays


def test_two_inputs_with_the_same_output_name_are_a_failure_not_an_overwrite(pages, tmp_path) -> None:
    copy = tmp_path / "elsewhere" / "page00.xml"  # another folder's page00: it would write page00.* too
    copy.parent.mkdir()
    copy.write_bytes(pages[0].read_bytes())
    (tmp_path / "elsewhere" / "page00.png").write_bytes(pages[0].with_suffix(".png").read_bytes())
    entries = archive.plan([copy, pages[0], pages[1], pages[0]], transcribe.page_name)
    assert sorted(entry.name for entry in entries) == ["page00", "page00", "page01"]  # one file twice is one
    failed = [entry.failure for entry in entries if entry.failure]
    assert len(failed) == 1 and failed[0].page == str(max(copy, pages[0])) and "page00.*" in failed[0].reason
