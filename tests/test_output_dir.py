"""One run per output dir (a stale lock never blocks), and one-line errors for a full or read-only disk."""

import errno
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from htr.training.output_dir import LOCK_FILE, OutputDirError, explain_write_error, lock_output_dir, release

ROOT = Path(__file__).resolve().parent.parent


def hold(output_dir: Path, pid: int, host: str | None = None) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01 00:00:00"}
    (output_dir / LOCK_FILE).write_text(json.dumps(owner))


def run_trocr(args: list[str], code: str = "") -> subprocess.CompletedProcess:
    """run_trocr.py as the CLI runs it, after ``code`` (a fault to inject) in the same interpreter."""
    script = f"import runpy, sys\n{code}\nsys.argv = ['run_trocr.py', *{args!r}]\nrunpy.run_path('run_trocr.py', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_a_live_run_holds_the_dir_and_is_named(tmp_path):
    with subprocess.Popen(["sleep", "60"]) as other:
        hold(tmp_path, other.pid)
        with pytest.raises(OutputDirError, match=rf"in use by another run \(pid {other.pid} on "):
            lock_output_dir(tmp_path)
        other.kill()


def test_a_dead_runs_lock_is_taken_over_and_released_at_the_end(tmp_path, caplog):
    finished = subprocess.run(["true"], check=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    hold(tmp_path, dead.pid)
    with caplog.at_level(logging.WARNING, logger="htr.training.output_dir"):
        lock = lock_output_dir(tmp_path)
    assert finished.returncode == 0 and f"(pid {dead.pid}) is no longer running" in caplog.text
    assert json.loads(lock.read_text())["pid"] != dead.pid
    release(tmp_path)
    assert not lock.exists()


def test_a_lock_from_another_host_is_refused_with_its_owner(tmp_path):
    hold(tmp_path, 123, host="gpu-node-7")
    with pytest.raises(OutputDirError, match=r"run on host gpu-node-7 \(pid 123.*delete .*\.run_trocr\.lock"):
        lock_output_dir(tmp_path)


def test_run_trocr_refuses_an_output_dir_in_use(tmp_path):
    with subprocess.Popen(["sleep", "120"]) as other:
        hold(tmp_path / "out", other.pid)
        result = run_trocr(
            ["--model_name_or_path", str(tmp_path / "none"), "--output_dir", str(tmp_path / "out")]
        )
        other.kill()
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {tmp_path / 'out'} is in use by another run (pid {other.pid}")
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EROFS, "cannot be written (Read-only file system): choose a writable --output_dir"),
        (errno.ENOSPC, "no space left on the disk"),
    ],
)
def test_run_trocr_says_read_only_or_full_in_one_line(tmp_path, code, message):
    """As root chmod does not stop writes, so the file system's refusal is injected where the folder is made."""
    fault = (
        "import errno, os, pathlib\n"
        "def refuse(self, *args, **kwargs):\n"
        f"    raise OSError({code}, os.strerror({code}), str(self))\n"
        "pathlib.Path.mkdir = refuse"
    )
    out = tmp_path / "out"
    result = run_trocr(["--model_name_or_path", str(tmp_path / "none"), "--output_dir", str(out)], fault)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {out}{':' if code == errno.ENOSPC else ''} {message}")
    )


def test_a_torch_checkpoint_write_failure_is_called_a_full_disk(tmp_path):
    lock_output_dir(tmp_path)
    error = RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 21 vs 0")
    try:
        assert explain_write_error(error).startswith(f"{tmp_path}: writing a checkpoint failed, most likely")
    finally:
        release(tmp_path)
    assert explain_write_error(RuntimeError("CUDA out of memory")) is None


def test_overwrite_output_dir_says_which_checkpoint_it_throws_away(tmp_path):
    (tmp_path / "out" / "checkpoint-3").mkdir(parents=True)
    (tmp_path / "out" / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3}')
    args = ["--model_name_or_path", str(tmp_path / "none"), "--output_dir", str(tmp_path / "out")]
    result = run_trocr([*args, "--do_train", "true", "--overwrite_output_dir", "true"])
    assert (
        "starting from step 0, not from" in result.stdout
        and "checkpoint-3, which will be overwritten" in result.stdout
    )


def test_runs_racing_for_one_stale_lock_never_both_take_it(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    hold(tmp_path, dead.pid)
    go = tmp_path.parent / f"{tmp_path.name}.go"
    script = (
        "import os, sys, time\n"
        "import htr.training.output_dir\n"
        "from htr.training.output_dir import OutputDirError, lock_output_dir\n"
        "alive = htr.training.output_dir._alive\n"  # slowed down, so every run reads the stale lock before any takes it
        "htr.training.output_dir._alive = lambda pid: time.sleep(0.5) or alive(pid)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
        f"try:\n    lock_output_dir({str(tmp_path)!r})\nexcept OutputDirError:\n    sys.exit(3)\n"
        "time.sleep(3)\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT) for _ in range(6)]
    time.sleep(2)  # every interpreter started and waiting
    go.touch()
    codes = [run.wait(timeout=60) for run in runs]
    assert sorted(codes) == [0, 3, 3, 3, 3, 3]  # exactly one took the stale lock, the others were refused
