"""Interrupted runs, numerical blow-ups, bad launches and secrets: run_trocr.py as a user runs it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from htr.data.dataset import DataPipelineError, ImageTextTransform, TrOCRCollator, read_csv
from htr.training.modeling import build_tiny_model
from run_trocr import user_message

ROOT = Path(__file__).resolve().parent.parent


def command(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "run_trocr.py",
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(data),
        "--output_dir",
        str(output),
        "--do_train",
        "--per_device_train_batch_size",
        "8",
        "--validation_split_percentage",
        "0",
        "--report_to",
        "none",
        "--max_target_length",
        "32",
        *extra,
    ]


def test_kill_9_then_the_same_command_resumes_and_finishes_the_same_steps(
    tiny_model_dir, words_csv, tmp_path
):
    output = tmp_path / "out"
    args = command(tiny_model_dir, words_csv, output, "--max_steps", "150", "--save_steps", "10")
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (output / "checkpoint-20" / "trainer_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (output / "trainer_state.json").exists()  # it really died mid-run
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming from" in result.stdout + result.stderr
    assert (
        "missing keys" not in result.stdout + result.stderr
    )  # every weight came back (see htr.training.trainer)
    state = (output / "trainer_state.json").read_text()
    assert '"global_step": 150' in state


def test_a_nan_loss_stops_the_run_with_the_step_and_advice(tmp_path, words_csv):
    model, processor = build_tiny_model()
    with torch.no_grad():
        model.decoder.output_projection.weight[5, 0] = float("nan")
    model.save_pretrained(tmp_path / "nan-model")
    processor.save_pretrained(tmp_path / "nan-model")
    result = subprocess.run(
        command(tmp_path / "nan-model", words_csv, tmp_path / "out", "--max_steps", "5"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "error: The training loss became nan at step 1" in result.stderr
    assert "--learning_rate" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_image_deleted_mid_run_is_reported_by_path_not_as_a_dataloader_traceback(
    tiny_model_dir, words_csv
):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    rows = read_csv(words_csv).select(range(4))
    rows = rows.map(lambda row, i: {"image": "gone.png" if i == 2 else row["image"]}, with_indices=True)
    dataset = rows.with_transform(
        ImageTextTransform(processor, words_csv.parent, None, "image", "label", 32, True),
        columns=["image", "label"],
    )
    loader = DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=TrOCRCollator())
    with pytest.raises(DataPipelineError) as caught:
        list(loader)
    message = user_message(caught.value)
    assert "gone.png" in message and "Fix:" in message
    assert "Traceback" not in message and "\n" not in message


def test_the_hub_token_is_in_no_file_and_no_log_line_of_a_run(tiny_model_dir, words_csv, tmp_path):
    token = "hf_TestSecretToken1234567890abcdef"
    output = tmp_path / "out"
    env = {**os.environ, "HF_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        command(
            tiny_model_dir,
            words_csv,
            output,
            "--max_steps",
            "4",
            "--save_steps",
            "2",
            "--do_eval",
            "--validation_split_percentage",
            "20",
            "--report_to",
            "tensorboard",
            "--logging_steps",
            "1",
            "--push_to_hub",
            "--hub_model_id",
            "someone/model",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 1 and "error:" in result.stderr  # offline: the push fails cleanly
    assert token not in result.stdout + result.stderr
    written = [path for path in output.rglob("*") if path.is_file()]
    names = {path.name for path in written}
    assert {"training_args.bin", "trainer_state.json", "run_config.json", "README.md"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    for path in written:
        assert token.encode() not in path.read_bytes(), path


def _csv_with_two_bad_rows(words_csv: Path, tmp_path: Path) -> Path:
    lines = words_csv.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    image = str(words_csv.parent / rows[0].split(",")[0])
    bad = [f"{tmp_path}/missing.png,gone,synthetic,w,train,0.1", f"{image},,synthetic,w,train,0.1"]
    path = tmp_path / "english.csv"
    path.write_text(
        "\n".join([header, *[words_csv.parent.as_posix() + "/" + row for row in rows], *bad]) + "\n"
    )
    return path


def test_invalid_rows_stop_the_run_with_row_and_fix(tiny_model_dir, words_csv, tmp_path):
    data = _csv_with_two_bad_rows(words_csv, tmp_path)
    result = subprocess.run(
        command(tiny_model_dir, data, tmp_path / "out", "--max_steps", "2"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "row 48" in result.stderr and "missing.png" in result.stderr and "row 49" in result.stderr
    assert "Fix:" in result.stderr and "Traceback" not in result.stderr


def test_skip_invalid_rows_trains_on_the_rest_and_lists_what_it_skipped(tiny_model_dir, words_csv, tmp_path):
    data = _csv_with_two_bad_rows(words_csv, tmp_path)
    output = tmp_path / "out"
    result = subprocess.run(
        command(tiny_model_dir, data, output, "--max_steps", "2", "--skip_invalid_rows"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    skipped = (output / "invalid_rows_train.csv").read_text().splitlines()
    assert len(skipped) == 3  # header + the two bad rows
    assert '"train_samples": 48' in (output / "all_results.json").read_text().replace("48.0", "48")


def test_a_missing_split_stops_before_the_model_is_loaded_naming_the_ways_to_give_one(tmp_path):
    """The issue's newcomer: a bare image,label CSV with the GPU recipe, which predicts on a test set.

    The model is Microsoft's, which cannot be fetched here: had the run tried to load it first (as it did,
    after a 1.3 GB download), the error would be the download's, not the split's.
    """
    data = tmp_path / "mine"
    data.mkdir()
    (data / "english.csv").write_text("image,label\na.png,one\nb.png,two\n")
    args = [
        sys.executable,
        "run_trocr.py",
        "recipes/iam_imgur.json",
        "--train_file",
        str(data / "english.csv"),
    ]
    args += ["--output_dir", str(tmp_path / "out"), "--max_steps", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    assert "--do_predict needs a test split: give --test_file" in result.stderr
    assert "--test_split_percentage 10" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "run_config.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--validation_split_percentage", "60", "--test_split_percentage", "40"],
            "together they must stay below 100",
        ),
        (["--test_split_percentage", "-5"], "--test_split_percentage -5 must be at least 0"),
    ],
)
def test_percentages_that_cannot_work_fail_at_parsing(tmp_path, flags, message):
    args = [sys.executable, "run_trocr.py", "recipes/my_data.json", *flags, "--output_dir", str(tmp_path)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_an_image_of_extreme_shape_is_skipped_and_listed_not_a_crash_in_pil(
    tiny_model_dir, words_csv, tmp_path
):
    """4097×32 passed the data check and then stopped training inside the image processor."""
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    Image.new("L", (4097, 32), 255).save(data / "wide.png")
    rows = words_csv.read_text().splitlines()
    header, first = rows[0], rows[1].split(",")
    first[0] = str(words_csv.parent / first[0])
    wide = [str(data / "wide.png"), *first[1:]]
    (data / "english.csv").write_text(
        "\n".join([header, ",".join(first), ",".join(wide), ",".join(first)]) + "\n"
    )
    output = tmp_path / "out"
    args = command(
        tiny_model_dir, data / "english.csv", output, "--max_steps", "1", "--skip_invalid_rows", "true"
    )
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = (output / "invalid_rows_train.csv").read_text()
    assert "wide.png" in listed and "extreme_shape" in listed
    refused = subprocess.run(
        command(tiny_model_dir, data / "english.csv", tmp_path / "o2", "--max_steps", "1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0 and "too wide for this model" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_max_steps_0_is_refused_instead_of_taking_a_step(tiny_model_dir, words_csv, tmp_path):
    result = subprocess.run(
        command(tiny_model_dir, words_csv, tmp_path / "out", "--max_steps", "0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "--max_steps 0 would still take one optimizer step" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_validation_csv_and_a_bad_test_csv_are_reported_together(tiny_model_dir, words_csv, tmp_path):
    """Only the first was reported: the user fixed one file, reran, and met the next."""
    bad_validation = tmp_path / "validation.csv"
    bad_validation.write_text("image,label\nnowhere.png,a\n")
    bad_test = tmp_path / "test.csv"
    bad_test.write_text("image,label\n")
    extra = ["--validation_file", str(bad_validation), "--test_file", str(bad_test), "--max_steps", "1"]
    result = subprocess.run(
        command(tiny_model_dir, words_csv, tmp_path / "out", *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "validation.csv" in result.stderr and "nowhere.png" in result.stderr
    assert "test.csv" in result.stderr and "header but no data rows" in result.stderr
