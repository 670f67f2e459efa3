"""Archive runs of ``htr.pages``: resumable, one bad page never stops them, measured, sharded over launched processes.

**Resume.** A page is complete when its record ``OUT/records/NAME.json`` and its four outputs exist. Every
file is written to ``.FILE.tmp`` beside it, flushed to disk and renamed over the final name
(``os.replace``), the outputs first, the PAGE XML last of them, then the record; a page that is redone
loses its record before anything else is written. So a kill at any moment leaves each file either whole
or absent under its final name, and a page either complete or redone by the next run, which also reuses
(overwrites) the temporary name a killed write left. ``--overwrite`` redoes every page.

**Failures.** An unreadable, empty or oversized page image, an unreadable PAGE/ALTO input, or an error
in segmentation, recognition, scoring or writing is one row of ``OUT/failures.csv`` (page, stage, reason,
fix); the other pages go on, the run exits non-zero, and a rerun retries the failed pages (they have no
record).

**Sharding.** Pages are sorted and process ``k`` of ``n`` (accelerate's ``PartialState``, started by
``accelerate launch`` or ``torchrun``) takes pages ``k, k + n, ...``: every page is read by exactly one
process, with the same code and settings as a one-process run. Each process writes its tally to
``OUT/records/process-K.json``; after ``wait_for_everyone()`` the main process merges them into
``OUT/summary.json`` (``per_process``: which pages each process did, skipped and failed) and
``failures.csv``. With several machines ``OUT`` must be a shared folder.
"""

import csv
import io
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from htr.core.errors import HTRError
from htr.core.images import BadImageError
from htr.pages.layout import LayoutError

RECORDS = "records"
SUMMARY_NAME = "summary.json"
FAILURES_NAME = "failures.csv"
# A page's outputs in the order they are written: the PAGE XML, what eScriptorium imports, last.
OUTPUT_SUFFIXES = (".overlay.png", ".txt", ".alto.xml", ".xml")
STAGES = ("reading", "segmentation", "cropping", "recognition", "scoring", "writing")
# A process that finishes its shard waits at the barrier for the slowest one; torch's default (30 min
# for gloo, 10 for NCCL) is shorter than the gap between shards of a large archive can be.
BARRIER_TIMEOUT = timedelta(days=7)
FIXES = {
    "reading": "correct or re-export the file",
    "segmentation": "check that the image shows a page (rerun to retry it)",
    "recognition": "check the model and --batch_size (rerun to retry the page)",
    "scoring": "check the page's --ground_truth file",
    "writing": "check free space and permissions of --output_dir, then rerun",
}


@dataclass(frozen=True)
class Failure:
    """One page that was not done: why, at which stage, and what to do about it."""

    page: str
    stage: str
    reason: str
    fix: str


class PageFailed(HTRError, RuntimeError):
    """Raised by :func:`stage` so the page loop records the page and goes on to the next one."""

    def __init__(self, stage: str, reason: str, fix: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason, self.fix = stage, reason, fix

    def failure(self, page: Path) -> Failure:
        return Failure(str(page), self.stage, self.reason, self.fix)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Turn any error of one page's ``name`` stage into :class:`PageFailed` with a reason and a fix.

    ``SystemExit`` (e.g. kraken missing) and ``KeyboardInterrupt`` pass: they stop the run, not a page.
    """
    try:
        yield
    except BadImageError as error:  # the image's path: for a PAGE/ALTO input it is not the page's
        raise PageFailed(name, f"{error.path}: {error.reason}", error.fix) from error
    except LayoutError as error:
        raise PageFailed(name, str(error), FIXES[name]) from error
    except Exception as error:  # one page's crash, of any type, must not stop the archive
        raise PageFailed(name, f"{type(error).__name__}: {error}", FIXES[name]) from error


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``.NAME.tmp`` beside ``path``, flush it to disk, rename it to ``path``.

    A failed write removes the temporary file and leaves no file under the final name.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG bytes, for :func:`atomic_write` (the same bytes ``image.save("x.png")`` writes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def output_paths(output_dir: Path, name: str) -> list[Path]:
    """A page's four outputs, in writing order."""
    return [output_dir / f"{name}{suffix}" for suffix in OUTPUT_SUFFIXES]


def record_path(output_dir: Path, name: str) -> Path:
    return output_dir / RECORDS / f"{name}.json"


def is_complete(output_dir: Path, name: str) -> bool:
    """The record, written after the outputs, and every output are there (see the module docstring)."""
    return record_path(output_dir, name).is_file() and all(
        p.is_file() for p in output_paths(output_dir, name)
    )


def begin_page(output_dir: Path, name: str) -> None:
    """Make the page incomplete before its files are rewritten, so a kill half-way is redone by a rerun."""
    record_path(output_dir, name).unlink(missing_ok=True)


def read_record(output_dir: Path, name: str) -> dict[str, Any]:
    return json.loads(record_path(output_dir, name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Entry:
    """One input of the sorted plan: its output name, or why it cannot be done."""

    path: Path
    name: str
    failure: Failure | None = None


def plan(paths: Iterable[Path], name_of: Callable[[Path], str]) -> list[Entry]:
    """The inputs sorted (the order every process shards), each with its output name ``name_of(path)``.

    An input whose name cannot be read, or whose name an earlier input already writes, is a failure:
    two pages must not write over each other's files.
    """
    entries, owners = [], {}
    for path in sorted(set(paths)):
        try:
            with stage("reading"):
                name = name_of(path)
        except PageFailed as error:
            entries.append(Entry(path, path.stem, error.failure(path)))
            continue
        if name in owners:
            reason = f"its outputs {name}.* are those of {owners[name]}"
            fix = "rename one of the two pages, or transcribe them into separate --output_dir folders"
            entries.append(Entry(path, name, Failure(str(path), "reading", reason, fix)))
            continue
        owners[name] = path
        entries.append(Entry(path, name))
    return entries


def launch(cpu: bool) -> Any:
    """accelerate's ``PartialState``: this process's index and the number of processes the launcher started.

    ``cpu=True`` makes a ``torchrun``/``accelerate launch --multi_gpu`` launch on CPU one gloo group;
    without it each CPU process would think it is alone and read every page.
    """
    from accelerate import PartialState

    return PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)


def shard(entries: Sequence[Entry], state: Any) -> list[Entry]:
    """This process's pages: a stable stride over the sorted plan."""
    return list(entries[state.process_index :: state.num_processes])


def set_threads(requested: int | None, state: Any) -> int:
    """Torch threads for this process: ``requested``, else the cores shared by this machine's processes."""
    import torch

    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
    threads = requested or max(1, len(os.sched_getaffinity(0)) // max(1, local_processes))
    torch.set_num_threads(threads)
    return threads


@dataclass
class Tally:
    """What one process did with its shard, written to ``records/process-K.json`` and merged by the main one."""

    process: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lines: int = 0
    seconds: dict[str, list[float]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float = 0.0

    def record(self, output_dir: Path, record: dict[str, Any]) -> None:
        """Write the page's record, which makes it complete, and count it."""
        (output_dir / RECORDS).mkdir(parents=True, exist_ok=True)
        atomic_write(record_path(output_dir, record["page"]), (json.dumps(record, indent=1) + "\n").encode())
        self.done.append(record["page"])
        self.lines += record["lines"]
        for name, value in record["timing"].items():
            self.seconds.setdefault(name, []).append(value)


def process_file(output_dir: Path, process: int) -> Path:
    return output_dir / RECORDS / f"process-{process}.json"


def finish(output_dir: Path, tally: Tally, state: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Write this process's tally; the main process merges all of them into summary.json and failures.csv.

    Every process returns the merged summary (read after the second barrier), so all of them can exit
    with the same status.
    """
    tally.finished = time.time()
    (output_dir / RECORDS).mkdir(parents=True, exist_ok=True)
    atomic_write(process_file(output_dir, tally.process), json.dumps(asdict(tally), indent=1).encode())
    state.wait_for_everyone()
    if state.is_main_process:
        tallies = [
            json.loads(process_file(output_dir, index).read_text(encoding="utf-8"))
            for index in range(state.num_processes)
        ]
        write_failures(output_dir / FAILURES_NAME, [Failure(**f) for t in tallies for f in t["failures"]])
        summary = merge(tallies, settings)
        atomic_write(output_dir / SUMMARY_NAME, (json.dumps(summary, indent=1) + "\n").encode())
        for index in range(state.num_processes):  # merged: a later run with fewer processes finds none stale
            process_file(output_dir, index).unlink()
    state.wait_for_everyone()
    return json.loads((output_dir / SUMMARY_NAME).read_text(encoding="utf-8"))


def write_failures(path: Path, failures: Sequence[Failure]) -> None:
    """This run's failed pages, sorted; a header alone when none failed (an earlier run's list is replaced)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["page", "stage", "reason", "fix"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(failure) for failure in sorted(failures, key=lambda f: f.page))
    atomic_write(path, buffer.getvalue().encode())


def merge(tallies: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """One summary of all processes: counts, lines, mean seconds per page and stage, pages per minute."""
    done = [name for t in tallies for name in t["done"]]
    seconds = {
        name: statistics.fmean(values)
        for name in STAGES
        if (values := [value for t in tallies for value in t["seconds"].get(name, [])])
    }
    wall = max(t["finished"] for t in tallies) - min(t["started"] for t in tallies)
    return {
        "pages": sum(len(t["done"]) + len(t["skipped"]) + len(t["failures"]) for t in tallies),
        "done": len(done),
        "skipped": sum(len(t["skipped"]) for t in tallies),
        "failed": sum(len(t["failures"]) for t in tallies),
        "lines": sum(t["lines"] for t in tallies),
        "seconds_per_page": seconds,
        "wall_seconds": wall,
        "pages_per_minute": 60 * len(done) / wall if wall > 0 else 0.0,
        **settings,
        "per_process": [
            {key: t[key] for key in ("process", "done", "skipped", "failures", "lines")} for t in tallies
        ],
    }


def summary_line(summary: dict[str, Any], output_dir: Path) -> str:
    """The run in one line: what was done, skipped and failed, and where the time went."""
    stages = ", ".join(f"{name} {value:.2f}" for name, value in summary["seconds_per_page"].items()) or "-"
    failed = f"{summary['failed']} failed"
    if summary["failed"]:
        failed += f" (see {output_dir / FAILURES_NAME}; a rerun retries them)"
    return (
        f"{summary['pages']} pages: {summary['done']} done, {summary['skipped']} skipped (already complete), "
        f"{failed}; {summary['lines']} lines; s/page: {stages}; {summary['pages_per_minute']:.1f} pages/min; "
        f"{summary['backend']} on {summary['device']}, {summary['processes']} process(es) x "
        f"{summary['threads_per_process']} thread(s). {output_dir / SUMMARY_NAME}"
    )
