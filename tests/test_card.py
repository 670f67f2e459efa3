"""The model card is built from what the run recorded, and the Hub can read its metrics back."""

import copy
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard, metadata_load
from PIL import Image

from htr.core.pipeline import attach_pipeline
from htr.core.processing import attach_processor
from htr.hub.card import main, write_model_card
from htr.training.modeling import build_tiny_model
from htr.training.recipe import RunRecord
from run_trocr import DataTrainingArguments, ModelArguments, TrOCRTrainingArguments

ROOT = Path(__file__).resolve().parent.parent


def _recorded_run() -> dict[str, Any]:
    """run_config.json as run_trocr.py writes it: the real argument dataclasses through the real record."""
    record = RunRecord.of(
        ModelArguments(model_name_or_path="microsoft/trocr-base-handwritten"),
        DataTrainingArguments(
            train_file="/home/me/data/train/english.csv",
            validation_file="/home/me/data/val/english.csv",
            test_file="/home/me/data/test/english.csv",
            dataset_name="IAM + Imgur5K",
            dataset_ids=["Teklia/IAM-line"],
            max_target_length=128,
        ),
        TrOCRTrainingArguments(
            output_dir="/home/me/runs/iam",
            do_train=True,
            num_train_epochs=10,
            learning_rate=5e-5,
            per_device_train_batch_size=8,
            gradient_accumulation_steps=4,
            fp16=True,
            seed=42,
            optim="adamw_torch_fused",
            lr_scheduler_type="linear",
            warmup_steps=500,
            weight_decay=0.01,
            hub_token="hf_not_a_real_token",
            generation_num_beams=4,
            generation_max_length=128,
        ),
        world_size=2,
    )
    return asdict(replace(record, recipe="recipes/iam_base.yaml"))


RUN_CONFIG = _recorded_run()
METRICS = {
    "eval_cer": 6.32,
    "eval_wer": 17.5,
    "eval_samples": 976,
    "test_cer": 7.05,
    "test_wer": 19.81,
    "test_samples": 2915,
    "train_loss": 0.41,
    "epoch": 10.0,
}
# What a run leaves next to the model that must never reach the Hub.
DEBRIS = (
    "training_args.bin",
    "trainer_state.json",
    "predictions_test.csv",
    "skipped_rows.csv",
    "english.csv",
    "runs/Nov25_15-00-00/events.out.tfevents.1.host",
    "checkpoint-2/optimizer.pt",
    "checkpoint-2/scheduler.pt",
    "checkpoint-2/scaler.pt",
    "checkpoint-2/rng_state.pth",
    "checkpoint-2/trainer_state.json",
    "checkpoint-2/training_args.bin",
)


def save_tiny_model(folder: Path) -> Path:
    """A real (tiny, random) VisionEncoderDecoderModel and TrOCRProcessor saved with save_pretrained."""
    model, processor = build_tiny_model(
        encoder_width=32, encoder_layers=1, decoder_width=32, decoder_layers=1
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_run(
    output_dir: Path,
    model_dir: Path,
    run_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """An output dir as run_trocr.py leaves it: model, processor, run files, a checkpoint and debris."""
    shutil.copytree(model_dir, output_dir)
    # run_trocr.py saves the beams it evaluated with in the model's generation_config, as here.
    beams = (run_config or RUN_CONFIG)["training_args"]["generation_num_beams"]
    generation = json.loads((output_dir / "generation_config.json").read_text(encoding="utf-8"))
    (output_dir / "generation_config.json").write_text(json.dumps({**generation, "num_beams": beams}))
    checkpoint = output_dir / "checkpoint-2"
    checkpoint.mkdir()
    for name in ("model.safetensors", "config.json", "generation_config.json"):
        shutil.copy(model_dir / name, checkpoint / name)
    for name in DEBRIS:
        (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (output_dir / name).write_bytes(b"image,text\nline.png,a private label\n")
    (output_dir / "run_config.json").write_text(json.dumps(run_config or RUN_CONFIG), encoding="utf-8")
    if metrics is not None:
        (output_dir / "all_results.json").write_text(json.dumps(metrics), encoding="utf-8")
    return output_dir


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


def model_index_scores(card_path: Path) -> dict[tuple[str, str], float]:
    """(split, metric) -> value, read back the way the Hub reads the YAML header."""
    results = metadata_load(card_path)["model-index"][0]["results"]
    return {
        (result["dataset"]["split"], metric["type"]): metric["value"]
        for result in results
        for metric in result["metrics"]
    }


def test_metadata_round_trips_through_the_hub_parsers(tmp_path: Path, model_dir: Path) -> None:
    card_path = write_model_card(write_run(tmp_path / "out", model_dir, metrics=METRICS), "alice/trocr-iam")

    metadata = metadata_load(card_path)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "image-to-text"
    assert metadata["base_model"] == "microsoft/trocr-base-handwritten"
    assert metadata["datasets"] == ["Teklia/IAM-line"]
    assert metadata["language"] == "en"
    assert metadata["license"] == "mit"
    assert {"trocr", "handwriting", "ocr", "htr"} <= set(metadata["tags"])
    index = metadata["model-index"][0]
    assert index["name"] == "trocr-iam"
    assert {result["task"]["type"] for result in index["results"]} == {"image-to-text"}
    assert {metric["name"] for result in index["results"] for metric in result["metrics"]} == {
        "Validation CER (beam 4)",
        "Validation WER (beam 4)",
        "Test CER (beam 4)",
        "Test WER (beam 4)",
    }
    expected = {
        ("validation", "cer"): 6.32,
        ("validation", "wer"): 17.5,
        ("test", "cer"): 7.05,
        ("test", "wer"): 19.81,
    }
    assert model_index_scores(card_path) == expected
    loaded = ModelCard.load(card_path).data.eval_results
    assert {(result.dataset_split, result.metric_type): result.metric_value for result in loaded} == expected
    assert {result.dataset_name for result in loaded} == {
        "val/english.csv",
        "test/english.csv",
    }  # sets measured


def test_prose_reports_the_run_as_recorded(tmp_path: Path, model_dir: Path) -> None:
    text = write_model_card(write_run(tmp_path / "out", model_dir, metrics=METRICS)).read_text(
        encoding="utf-8"
    )

    for expected in (
        "[microsoft/trocr-base-handwritten](https://huggingface.co/microsoft/trocr-base-handwritten)",
        "fine-tuned on IAM + Imgur5K",
        "| Epochs | 10 |",
        "| Learning rate | 5e-05 |",
        "8 per device × 4 accumulation × 2 device(s) = 64 effective",
        "| Precision | fp16 mixed precision |",
        "adamw_torch_fused, weight decay 0.01",
        "| LR scheduler | linear |",
        "| Warmup | 500 steps |",
        "| Seed | 42 |",
        "| Image size | 32×128 pixels (height × width) |",
        "| Max target length | 128 tokens |",
        "| validation | val/english.csv | 976 | 6.32 | 17.50 | beam 4, max length 128 |",
        "| test | test/english.csv | 2915 | 7.05 | 19.81 | beam 4, max length 128 |",
        "- Validation set, val/english.csv: CER **6.32 %**",  # each figure names its set and role
        "accelerate launch run_trocr.py recipes/iam_base.yaml",
        "Unicode NFC",
        "One line or word at a time",
        f"- transformers {version('transformers')}",
        f"- torch {version('torch')}",
    ):
        assert expected in text, expected
    assert "None" not in text
    assert "/home/me" not in text  # local paths stay local
    # Without a repo id the snippet loads the local output dir, which exists.
    assert f'from_pretrained("{tmp_path / "out"}")' in text


def test_missing_fields_fall_back_instead_of_rendering_none(tmp_path: Path, model_dir: Path) -> None:
    run = copy.deepcopy(RUN_CONFIG)
    del run["recipe"], run["precision"], run["world_size"]
    run["model_args"].update(model_name_or_path=str(model_dir))
    run["data_args"].update(dataset_name=None, dataset_ids=[], license="apache-2.0", text_normalization=False)
    run["training_args"].update(fp16=False, bf16=True, generation_num_beams=1)
    metrics = {"test_cer": 7.05, "test_wer": 19.81, "test_samples": 2915}
    card_path = write_model_card(write_run(tmp_path / "out", model_dir, run, metrics), "alice/trocr-iam")
    text = card_path.read_text(encoding="utf-8")

    metadata = metadata_load(card_path)
    assert "base_model" not in metadata  # a local path is not a Hub id; the Hub would reject it
    assert "datasets" not in metadata
    assert metadata["license"] == "apache-2.0"
    assert model_index_scores(card_path) == {("test", "cer"): 7.05, ("test", "wer"): 19.81}
    result = metadata["model-index"][0]["results"][0]
    assert result["dataset"] == {"name": "test/english.csv", "type": "custom", "split": "test"}
    assert result["metrics"][0]["name"] == "Test CER (greedy)"
    for expected in (
        "fine-tuned on `train/english.csv`, `val/english.csv`, `test/english.csv`",
        "8 per device × 4 accumulation × 1 device(s) = 32 effective",
        "| Precision | bf16 mixed precision |",
        "| test | test/english.csv | 2915 | 7.05 | 19.81 | greedy, max length 128 |",
        "did not record its recipe file",
    ):
        assert expected in text, expected
    assert "None" not in text
    assert "Unicode NFC" not in text
    assert "| validation | val/english.csv | " not in text  # no result row for a split the run did not score


def test_the_data_section_credits_each_source_and_a_held_out_split_is_named_as_such(
    tmp_path: Path, model_dir: Path
) -> None:
    run = copy.deepcopy(RUN_CONFIG)
    credit = "Copiste d'un jour (BAnQ), CC-BY 4.0, https://github.com/banq-dcn/Copiste-d-un-jour"
    run["data_args"].update(validation_file=None, data_credits=[credit])
    text = write_model_card(write_run(tmp_path / "out", model_dir, run, METRICS)).read_text(encoding="utf-8")
    data_section = text.split("## Training data")[1].split("## Training procedure")[0]
    assert f"- {credit}" in data_section
    assert (
        "| validation | validation rows of train/english.csv (its split column, or drawn by writer) | 976 |"
        in text
    )
    assert "- Test set, test/english.csv: CER **7.05 %**" in text


def test_card_without_metrics_has_no_model_index(tmp_path: Path, model_dir: Path) -> None:
    card_path = write_model_card(write_run(tmp_path / "out", model_dir), "alice/trocr-iam")

    assert "model-index" not in metadata_load(card_path)
    assert "This run recorded no validation or test metrics." in card_path.read_text(encoding="utf-8")


def test_the_card_decodes_as_the_model_folder_says(tmp_path: Path, model_dir: Path) -> None:
    """The beams on the card are the model's own (generation_config.json), not a copy in run_config.json."""
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)
    generation = json.loads((output_dir / "generation_config.json").read_text(encoding="utf-8"))
    (output_dir / "generation_config.json").write_text(json.dumps({**generation, "num_beams": 2}))
    text = write_model_card(output_dir, "alice/trocr-iam").read_text(encoding="utf-8")
    assert "num_beams=2, max_length=128" in text and "num_beams=4" not in text
    assert "beam 2" in text


def test_usage_snippet_runs(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)
    text = write_model_card(output_dir, "alice/trocr-iam").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert "num_beams=4, max_length=128" in snippet  # decodes the way the scores were measured
    Image.new("RGB", (200, 40), "white").save(tmp_path / "line.png")
    monkeypatch.chdir(tmp_path)

    exec(snippet.replace('"alice/trocr-iam"', repr(str(output_dir))), {})

    assert capsys.readouterr().out.endswith("\n")  # reached the final print
    assert "pipeline(" not in text  # this folder has no pipeline.py: the card must not offer it


def test_pipeline_snippet_runs_when_the_pipeline_is_attached(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)
    attach_pipeline(output_dir)  # as run_trocr.py and htr.hub.publish do
    text = write_model_card(output_dir, "alice/trocr-iam").read_text(encoding="utf-8")
    pipeline_snippet, generate_snippet = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert 'pipeline("image-to-text", model="alice/trocr-iam", trust_remote_code=True)' in pipeline_snippet
    assert 'reader("line.png", num_beams=4, max_length=128)' in pipeline_snippet
    assert "model.generate(pixel_values, num_beams=4, max_length=128)" in generate_snippet
    Image.new("RGB", (200, 40), "white").save(tmp_path / "line.png")
    monkeypatch.chdir(tmp_path)

    for snippet in (pipeline_snippet, generate_snippet):
        exec(snippet.replace('"alice/trocr-iam"', repr(str(output_dir))), {})

    assert capsys.readouterr().out.count("\n") == 2  # both reached their print


def test_generate_snippet_loads_the_line_processor_when_it_is_attached(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that crops to its ink, with processing.py attached (run_trocr.py, htr.hub.publish): the habitual
    AutoProcessor + generate path reads it right with trust_remote_code, so the card shows that path."""
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)
    attach_processor(output_dir)
    config_path = output_dir / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "crop_to_ink": True}))
    text = write_model_card(output_dir, "alice/trocr-iam").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert 'AutoProcessor.from_pretrained("alice/trocr-iam", trust_remote_code=True)' in snippet
    assert "TrOCRProcessor.from_pretrained" not in snippet and "LineReading.of" not in text
    assert 'cut to its ink (`"crop_to_ink": true`), so `generate` sees exactly the' in text
    sheet = Image.new("L", (400, 120), 255)
    sheet.paste(0, (100, 50, 300, 70))  # a dark bar with wide margins, for the crop to cut to
    sheet.save(tmp_path / "line.png")
    monkeypatch.chdir(tmp_path)

    exec(snippet.replace('"alice/trocr-iam"', repr(str(output_dir))), {})

    assert capsys.readouterr().out.endswith("\n")  # reached the final print


def test_usage_snippets_are_ruff_formatted(tmp_path: Path, model_dir: Path) -> None:
    """People paste them into formatted code, and this repository keeps a generated card under ruff's check."""
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)
    attach_pipeline(output_dir)
    attach_processor(output_dir)
    text = write_model_card(output_dir, "alice/trocr-iam").read_text(encoding="utf-8")
    for snippet in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        command = [sys.executable, "-m", "ruff", "format", "--config", str(ROOT / "pyproject.toml"), "-"]
        formatted = subprocess.run(command, input=snippet, capture_output=True, text=True, check=True).stdout
        assert formatted == snippet


def test_cli_prints_the_card_it_writes(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output_dir = write_run(tmp_path / "out", model_dir, metrics=METRICS)

    assert main([str(output_dir), "--repo_id", "alice/trocr-iam", "--print"]) == 0

    printed = capsys.readouterr().out
    assert printed == (output_dir / "README.md").read_text(encoding="utf-8")
    assert 'from_pretrained("alice/trocr-iam")' in printed


def test_cli_explains_a_dir_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 1
    assert "run_config.json is missing" in capsys.readouterr().err


def test_card_says_how_crops_are_resized(tmp_path: Path, model_dir: Path) -> None:
    fitted = write_run(tmp_path / "fitted", model_dir, metrics=METRICS)
    assert "keeping its aspect ratio, and pads the rest" in write_model_card(fitted).read_text(
        encoding="utf-8"
    )
    squeezed = write_run(tmp_path / "squeezed", model_dir, metrics=METRICS)
    config_path = squeezed / "processor_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["image_processor"]["size"] = {"height": 384, "width": 384}
    config_path.write_text(json.dumps(config), encoding="utf-8")
    card = write_model_card(squeezed).read_text(encoding="utf-8")
    assert "**384×384 pixels** (height × width) without" in card


def test_card_of_a_model_that_deskews_or_crops_says_how_to_without_the_pipeline(
    tmp_path: Path, model_dir: Path
) -> None:
    plain = write_run(tmp_path / "plain", model_dir, metrics=METRICS)
    assert "crop_to_ink" not in write_model_card(plain).read_text(encoding="utf-8")
    cropping = write_run(tmp_path / "cropping", model_dir, metrics=METRICS)
    config_path = cropping / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "crop_to_ink": True}))
    card = write_model_card(cropping).read_text(encoding="utf-8")
    assert 'cut to their ink (`"crop_to_ink": true`)' in card and "turned level" not in card
    assert "LineReading.of(model.config).line_image(image, processor.image_processor.size)" in card
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "deskew": True}))
    card = write_model_card(cropping).read_text(encoding="utf-8")
    assert 'turned level (`"deskew": true` in `config.json`) and cut to their ink' in card


def test_card_of_a_run_that_trained_nothing_says_so_and_claims_no_hyperparameters(
    tmp_path: Path, model_dir: Path
) -> None:
    trained = write_model_card(write_run(tmp_path / "trained", model_dir, metrics=METRICS)).read_text()
    assert "fine-tuned on IAM + Imgur5K" in trained and "| Learning rate | 5e-05 |" in trained
    record = json.loads(json.dumps(RUN_CONFIG))
    record["training_args"]["do_train"] = False  # an evaluation-only run (e.g. one that only sets deskew)
    evaluated = write_run(tmp_path / "evaluated", model_dir, run_config=record, metrics=METRICS)
    card = write_model_card(evaluated).read_text(encoding="utf-8")
    assert "as it was, not trained further: `run_trocr.py` evaluated it on IAM + Imgur5K" in card
    assert "fine-tuned on IAM" not in card and "Learning rate" not in card and "## Evaluation data" in card
    assert "This run trained nothing: the weights are those of `microsoft/trocr-base-handwritten`" in card
