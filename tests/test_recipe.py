import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from htr.recipe import RecipeError, parse_recipe_and_cli
from run_trocr import DataTrainingArguments, ModelArguments, TrOCRTrainingArguments

ROOT = Path(__file__).resolve().parent.parent


def parse(argv):
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrOCRTrainingArguments))
    return parse_recipe_and_cli(parser, argv)


def test_command_line_overrides_the_recipe():
    recipe = str(ROOT / "recipes/iam_imgur.json")
    model, data, training = parse([recipe, "--num_train_epochs", "1", "--max_train_samples", "64"])
    assert training.num_train_epochs == 1 and data.max_train_samples == 64
    assert training.learning_rate == 5e-5  # untouched recipe value
    assert model.model_name_or_path == "microsoft/trocr-base-handwritten"


def test_unknown_recipe_field_suggests_the_closest(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"output_dir": "x", "learning_rte": 1e-4}))
    with pytest.raises(RecipeError, match="did you mean 'learning_rate'"):
        parse([str(recipe)])


@pytest.mark.parametrize("where", ["recipe", "cli"])
def test_a_hub_token_is_refused_so_it_is_never_saved(tmp_path, where):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"output_dir": "x", **({"hub_token": "hf_x"} if where == "recipe" else {})}))
    extra = ["--hub_token", "hf_x"] if where == "cli" else []
    with pytest.raises(RecipeError, match="HF_TOKEN"):
        parse([str(recipe), *extra])


def test_iam_imgur_recipe_is_the_seed_configuration():
    recipe = json.loads((ROOT / "recipes/iam_imgur.json").read_text())
    assert recipe["model_name_or_path"] == "microsoft/trocr-base-handwritten"
    assert recipe["num_train_epochs"] == 10
    assert recipe["learning_rate"] == 5e-5 and recipe["optim"] == "adamw_torch"
    assert recipe["per_device_train_batch_size"] == 4
    assert recipe["fp16"] is True
    assert recipe["max_target_length"] == 128
    assert recipe["predict_with_generate"] is True
    assert recipe["eval_strategy"] == recipe["save_strategy"] == "epoch"
    assert recipe["metric_for_best_model"] == "cer" and recipe["greater_is_better"] is False
    shipped = sorted((ROOT / "recipes").glob("*.json"))
    assert len(shipped) >= 6
    for path in shipped:
        parse([str(path)])  # every shipped recipe parses


def test_help_documents_every_field():
    result = subprocess.run(
        [sys.executable, "run_trocr.py", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0
    for group in (ModelArguments, DataTrainingArguments):
        for field in fields(group):
            assert f"--{field.name}" in result.stdout
            assert field.metadata.get("help"), f"{field.name} has no help string"


@pytest.mark.parametrize(
    "spelling",
    [
        ["--hub_token", "hf_x"],
        ["--hub-token", "hf_x"],
        ["--hub_token=hf_x"],
        ["--hub-token=hf_x"],
        ["--hub_toke", "hf_x"],
        ["--hub-tok=hf_x"],
        ["--hub", "hf_x"],
    ],
)
def test_the_hub_token_is_refused_in_every_spelling_argparse_would_accept(tmp_path, spelling):
    """Abbreviations and dashes reached the hub_token field and the token was saved in training_args.bin."""
    with pytest.raises(RecipeError, match="HF_TOKEN"):
        parse(["--output_dir", str(tmp_path), *spelling])


def test_flag_prefixes_no_longer_abbreviate_other_fields(tmp_path):
    with pytest.raises(RecipeError, match="Unknown option --learning_r; did you mean --learning_rate"):
        parse(["--output_dir", str(tmp_path), "--learning_r", "1e-3"])


def test_a_misspelled_flag_gets_a_did_you_mean(tmp_path):
    with pytest.raises(RecipeError, match="did you mean --learning_rate"):
        parse(["--output_dir", str(tmp_path), "--learnig_rate", "1e-3"])


def test_dashed_flags_and_negative_values_still_parse(tmp_path):
    _, data, training = parse(["--output-dir", str(tmp_path), "--max_train_samples", "8", "--seed=-1"])
    assert data.max_train_samples == 8 and training.seed == -1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('["output_dir", "x"]', "holds a JSON list; a recipe is one JSON object"),
        ('{"output_dir": "x", "learning_rate": null}', "field 'learning_rate' is null; give a number"),
        ('{"output_dir": "x", "learning_rate": "fast"}', "field 'learning_rate' is \"fast\"; give a number"),
        ('{"output_dir": "x", "num_train_epochs": [1, 2]}', "field 'num_train_epochs' is a JSON list"),
        ('{"output_dir": "x", "max_steps": true}', "field 'max_steps' is true; give a whole number"),
    ],
)
def test_recipe_values_of_the_wrong_kind_are_refused_by_name(tmp_path, content, message):
    recipe = tmp_path / "r.json"
    recipe.write_text(content)
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse([str(recipe)])
