import json
from dataclasses import fields
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from htr.training.recipe import RecipeError, load_recipe, parse_recipe_and_cli
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


def test_a_recipe_overrides_its_base_chain_relative_to_its_own_folder(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "root.json").write_text(json.dumps({"output_dir": "root", "learning_rate": 1e-3, "seed": 1}))
    (tmp_path / "stages/base.json").write_text(json.dumps({"base": "../root.json", "learning_rate": 5e-4}))
    stage = tmp_path / "stages/01.json"
    stage.write_text(json.dumps({"base": "base.json", "output_dir": "stage1"}))
    assert load_recipe(stage) == {"output_dir": "stage1", "learning_rate": 5e-4, "seed": 1}
    *_, training = parse([str(stage), "--seed", "7"])
    assert (training.output_dir, training.learning_rate, training.seed) == ("stage1", 5e-4, 7)


def test_a_cycle_of_bases_is_refused(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"base": "b.json", "output_dir": "a"}))
    (tmp_path / "b.json").write_text(json.dumps({"base": "a.json"}))
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "a.json")


def test_a_missing_base_names_the_recipe_that_asks_for_it(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"base": "gone.json"}))
    with pytest.raises(RecipeError, match=r"gone\.json \(the base of .*a\.json\) does not exist"):
        load_recipe(tmp_path / "a.json")


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
    shipped = sorted(
        path for path in (ROOT / "recipes").rglob("*.json") if path.name not in ("base.json", "lineage.json")
    )
    assert len(shipped) >= 16
    for path in shipped:
        parse([str(path)])  # every shipped recipe parses, bases resolved


def test_pretraining_stages_are_numbered_and_each_continues_the_one_before():
    stages = sorted((ROOT / "recipes/pretrain").glob("[0-9][0-9]_*.json"))
    assert [int(path.name[:2]) for path in stages] == list(
        range(1, len(stages) + 1)
    )  # 01, 02, ... with no gap
    resolved = [load_recipe(path) for path in stages]
    outputs = [recipe["output_dir"] for recipe in resolved]
    assert len(set(outputs)) == len(outputs)  # no stage overwrites another
    for number, recipe in enumerate(resolved):
        start = recipe[
            "model_name_or_path"
        ]  # a model built by htr.training.modeling, or an earlier stage's output
        earlier = [out for out in outputs[:number] if start == out or start.startswith(f"{out}/checkpoint-")]
        assert start.startswith("build/") or earlier, f"stage {number + 1} starts from {start}"


def test_every_field_has_help():
    for group in (ModelArguments, DataTrainingArguments):
        for field in fields(group):
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


def test_a_recipe_with_missing_inputs_says_how_to_prepare_them(tmp_path, monkeypatch):
    """On a clean clone, smoke.json names both commands it needs instead of one missing file."""
    from run_trocr import main

    monkeypatch.chdir(tmp_path)  # nothing built here
    with pytest.raises(RecipeError) as error:
        main([str(ROOT / "recipes/smoke.json")])
    assert str(error.value) == (
        "build/tiny-trocr, data/smoke/english.csv do not exist; prepare with: "
        "python -m htr.training.modeling build/tiny-trocr && python -m data_prep.presets smoke"
    )


def test_prepare_is_inherited_from_the_base_and_never_parsed_as_an_argument(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"prepare": ["make data"], "output_dir": "out"}))
    (tmp_path / "stage.json").write_text(json.dumps({"base": "base.json", "seed": 3}))
    assert load_recipe(tmp_path / "stage.json")["prepare"] == ["make data"]
    *_, training = parse([str(tmp_path / "stage.json")])
    assert training.seed == 3
    (tmp_path / "bad.json").write_text(json.dumps({"prepare": "make data"}))
    with pytest.raises(RecipeError, match="list of shell commands"):
        load_recipe(tmp_path / "bad.json")


def test_every_shipped_recipe_says_how_to_prepare_what_it_reads():
    for path in [*ROOT.glob("recipes/*.json"), *ROOT.glob("recipes/pretrain/[0-9]*.json")]:
        assert load_recipe(path).get("prepare"), path


def test_every_recipe_with_a_base_holds_only_what_differs_from_it():
    """A value that repeats the base hides what a recipe changes, and stays behind when the base changes."""
    repeated = []
    for path in sorted((ROOT / "recipes").rglob("*.json")):
        layer = json.loads(path.read_text(encoding="utf-8"))
        if "base" not in layer:
            continue
        base = load_recipe(path.parent / layer["base"])
        repeated += [
            f"{path.name}: {key}" for key, value in layer.items() if key in base and base[key] == value
        ]
    assert repeated == []
    large = json.loads((ROOT / "recipes/iam_imgur_large.json").read_text(encoding="utf-8"))
    assert large["base"] == "iam_imgur.json" and len(large) <= 8 and large.get("why")
    resolved = load_recipe(ROOT / "recipes/iam_imgur_large.json")
    assert resolved["model_name_or_path"] == "microsoft/trocr-large-handwritten"
    assert resolved["activation_checkpointing"] is True and resolved["early_stopping_patience"] == 3


def test_why_is_kept_for_every_layer_and_never_parsed_as_an_argument(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"why": "the reference set-up", "output_dir": "out"}))
    (tmp_path / "stage.json").write_text(json.dumps({"base": "base.json", "seed": 3, "why": "a new seed"}))
    recipe = load_recipe(tmp_path / "stage.json")
    assert recipe["why"] == ["base.json: the reference set-up", "stage.json: a new seed"]
    *_, training = parse([str(tmp_path / "stage.json")])
    assert training.seed == 3
    (tmp_path / "bad.json").write_text(json.dumps({"why": ["a list"]}))
    with pytest.raises(RecipeError, match="'why' must be a sentence"):
        load_recipe(tmp_path / "bad.json")
