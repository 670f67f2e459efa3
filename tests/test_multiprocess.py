"""Two-process data-parallel runs on CPU, launched the way the README says (torchrun + --use_cpu true).

On CPU, `accelerate launch --cpu --num_processes 2` starts a single process, and torchrun without
`--use_cpu true` starts two independent world-size-1 runs; run_trocr.py refuses the latter. The
odd number of test rows (47 over 2 processes x 8) makes accelerate repeat a sample to even out the
last batch: it must not reach the metrics or predictions_test.csv.
"""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import GenerationConfig

from htr.core.metrics import error_rates
from htr.inference.predictions import read_predictions

ROOT = Path(__file__).resolve().parent.parent
TEST_ROWS = 47


def free_port() -> int:
    """A port nobody listens on, so parallel test runs do not join each other's process group."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    port = free_port()
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    return subprocess.run(
        [*command, str(port), "run_trocr.py", "recipes/smoke.json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_args(model: Path, data: Path, output: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(data),
        "--validation_file",
        str(data),
        "--test_file",
        str(data),
        "--output_dir",
        str(output),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "8",
        "--max_eval_samples",
        str(TEST_ROWS),
        "--max_predict_samples",
        str(TEST_ROWS),
        "--save_strategy",
        "no",
        "--dataloader_num_workers",
        "0",
    ]


@pytest.fixture(scope="module")
def two_process_run(tiny_model_dir, words_csv, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiprocess")
    # An untrained model stops at once and every CER is 100 %; forcing a few tokens out makes the
    # CER depend on which rows were scored, so a repeated row would show.
    generation = GenerationConfig.from_pretrained(tiny_model_dir)
    generation.min_new_tokens = 4
    generation.save_pretrained(tmp / "generation")
    output = tmp / "out"
    generation_args = ["--generation_config", str(tmp / "generation")]
    result = torchrun([*run_args(tiny_model_dir, words_csv, output), *generation_args, "--use_cpu", "true"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output


def test_two_processes_join_one_data_parallel_group(two_process_run):
    config = json.loads((two_process_run / "run_config.json").read_text())
    assert config["world_size"] == 2


def test_every_test_row_is_predicted_once_in_order(two_process_run, words_csv):
    rows = read_predictions(two_process_run / "predictions_test.csv")
    with open(words_csv, newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))[:TEST_ROWS]
    assert [Path(row["image"]).name for row in rows] == [Path(row["image"]).name for row in expected]
    results = json.loads((two_process_run / "all_results.json").read_text())
    assert results["test_samples"] == TEST_ROWS
    assert {row["prediction"] for row in rows} != {""}, "the forced tokens did not come out"
    # The gathered predictions were scored as they were written, with no repeated padding row.
    csv_cer = error_rates([row["prediction"] for row in rows], [row["label"] for row in rows])["cer"]
    assert results["test_cer"] == pytest.approx(csv_cer)
    assert results["eval_cer"] == pytest.approx(csv_cer)  # same rows, same model: evaluate gathers alike


@pytest.mark.skipif(torch.cuda.is_available(), reason="without --use_cpu, a GPU machine runs DDP on the GPUs")
def test_torchrun_without_use_cpu_is_refused(tiny_model_dir, words_csv, tmp_path):
    result = torchrun(run_args(tiny_model_dir, words_csv, tmp_path / "out"))
    assert result.returncode != 0
    assert "2 processes were launched" in result.stdout + result.stderr
    assert "--use_cpu true" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
