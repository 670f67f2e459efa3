"""End-to-end: run_trocr.py as a user runs it (a subprocess), on the tiny model and rendered words."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "run_trocr.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def base_args(model: Path, data: Path, output: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(data),
        "--test_file",
        str(data),
        "--output_dir",
        str(output),
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "1e-3",
        "--report_to",
        "none",
        "--max_target_length",
        "32",
        "--validation_split_percentage",
        "25",
        "--fp16",
        "true",
    ]


@pytest.fixture(scope="module")
def two_beam_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model whose generation_config decodes with 2 beams: the run below sets no beams itself."""
    path = tmp_path_factory.mktemp("two-beams") / "model"
    shutil.copytree(tiny_model_dir, path)
    config = json.loads((path / "generation_config.json").read_text())
    (path / "generation_config.json").write_text(json.dumps({**config, "num_beams": 2}))
    return path


@pytest.fixture(scope="module")
def trained(two_beam_model_dir, words_csv, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "out"
    result = run(
        [
            *base_args(two_beam_model_dir, words_csv, output),
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--max_steps",
            "6",
            "--save_steps",
            "3",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "3",
        ]
    )
    return output, result


def test_train_evaluate_predict_writes_metrics_predictions_and_checkpoints(trained, words_csv):
    output, result = trained
    results = json.loads((output / "all_results.json").read_text())
    for key in ("train_loss", "eval_cer", "eval_wer", "test_cer", "test_wer"):
        assert key in results
    assert results["test_cer"] >= 0 and results["test_samples"] == 48
    with open(output / "predictions_test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 48
    assert list(rows[0])[:4] == ["image", "label", "prediction", "cer"] and "writer" in rows[0]
    assert Path(rows[0]["image"]).is_absolute() and Path(rows[0]["image"]).is_file()
    with open(words_csv, newline="") as handle:
        assert [row["label"] for row in rows] == [row["label"] for row in csv.DictReader(handle)]
    assert (output / "checkpoint-6" / "model.safetensors").is_file()
    assert (output / "model.safetensors").is_file() and (output / "processor_config.json").is_file()
    assert (output / "README.md").is_file()
    # The image-to-text pipeline is attached: pipeline("image-to-text", model=output, trust_remote_code=True).
    for name in ("pipeline.py", "reading.py"):
        assert (output / name).read_bytes() == (ROOT / "htr" / "core" / name).read_bytes()
    custom = json.loads((output / "config.json").read_text())["custom_pipelines"]
    assert custom["image-to-text"]["impl"] == "pipeline.ImageToTextPipeline"
    # So is the processor that reads lines the model's way: AutoProcessor(output, trust_remote_code=True).
    assert (output / "processing.py").read_bytes() == (ROOT / "htr" / "core" / "processing.py").read_bytes()
    processor_config = json.loads((output / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing.TrOCRLineProcessor"}
    run_config = json.loads((output / "run_config.json").read_text())
    assert run_config["precision"].startswith("fp32")  # fp16 asked, no CUDA here
    assert "training in fp32 instead" in result.stdout + result.stderr


def test_the_beams_come_from_the_model_and_are_kept_with_it(trained):
    """No generation_num_beams given: evaluation, the saved generation_config, the record and the card all
    use the starting model's 2 beams (the one home of the beam count), not a default of 1."""
    output, result = trained
    assert "beam search, 2 beams" in result.stdout + result.stderr
    assert json.loads((output / "generation_config.json").read_text())["num_beams"] == 2
    assert json.loads((output / "run_config.json").read_text())["training_args"]["generation_num_beams"] == 2
    assert "num_beams=2" in (output / "README.md").read_text(encoding="utf-8")


def test_writer_disjoint_validation_is_used_without_a_validation_file(trained):
    output, _ = trained
    results = json.loads((output / "all_results.json").read_text())
    assert 0 < results["eval_samples"] < 48


def test_rerun_resumes_from_the_last_complete_checkpoint(trained, tiny_model_dir, words_csv, tmp_path):
    output, _ = trained
    resumed = tmp_path / "out"
    subprocess.run(["cp", "-r", str(output), str(resumed)], check=True)
    # A crash during a save leaves a half-written newer checkpoint: it must be skipped.
    broken = resumed / "checkpoint-9"
    broken.mkdir()
    (broken / "trainer_state.json").write_text('{"global_step": 9, "log_hist')
    result = run(
        [
            *base_args(tiny_model_dir, words_csv, resumed),
            "--do_train",
            "--max_steps",
            "8",
            "--save_steps",
            "4",
        ]
    )
    log = result.stdout + result.stderr
    assert "Skipping" in log and "checkpoint-9" in log
    assert "Resuming from" in log and "checkpoint-6" in log
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 8


def test_a_merged_data_prep_csv_is_what_run_trocr_reads(tiny_model_dir, tmp_path):
    from data_prep.merge import main as merge_main
    from data_prep.synthetic import generate

    train = generate(tmp_path / "train", 24, fonts="train", seed=1, kind="words", workers=1)
    held_out = generate(tmp_path / "heldout", 8, fonts="eval", seed=2, kind="words", workers=1)
    merged = tmp_path / "merged" / "english.csv"
    merge_main([str(merged), str(train), str(held_out)])
    output = tmp_path / "out"
    run(
        [
            "--model_name_or_path",
            str(tiny_model_dir),
            "--train_file",
            str(merged),
            "--output_dir",
            str(output),
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--max_steps",
            "2",
            "--report_to",
            "none",
            "--per_device_train_batch_size",
            "8",
            "--validation_split_percentage",
            "25",
        ]
    )
    results = json.loads((output / "all_results.json").read_text())
    # The merged split column sends the held-out writers to test; validation is held out by writer.
    assert results["test_samples"] == 8
    assert results["train_samples"] + results["eval_samples"] == 24
