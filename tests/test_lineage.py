"""The lineage file is the one executable account of how the shipped model was made: it must stay runnable."""

import argparse
import importlib
import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
from PIL import Image
from transformers import TrOCRProcessor, VisionEncoderDecoderModel

from data_prep.presets import select
from htr.hub.card import build_model_card
from htr.hub.publish import files_to_upload
from htr.training.lineage import load_lineage, main
from htr.training.recipe import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parent.parent
STAGES = sorted((ROOT / "recipes/pretrain").glob("[0-9][0-9]_*.json"))


class _Parsed(Exception):
    """Raised once a command's arguments parsed, so that nothing runs."""


def _parse_only(command: str, monkeypatch) -> argparse.Namespace:
    """Parse ``command``'s arguments with its module's own parser, then stop before it does any work."""
    argv = shlex.split(command)
    assert argv[0] == "python", command
    module = argv[2] if argv[1] == "-m" else Path(argv[1]).stem
    assert importlib.util.find_spec(module), f"{command}: no module {module}"
    rest = argv[3:] if argv[1] == "-m" else argv[2:]
    parsed = {}
    real = argparse.ArgumentParser.parse_known_args

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = real(self, args, namespace)
        assert not extras, f"{command}: unknown arguments {extras}"
        parsed["args"] = namespace
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)
    monkeypatch.setattr(sys, "argv", [module, *rest])
    with pytest.raises(_Parsed):
        importlib.import_module(module).main()
    monkeypatch.undo()
    return parsed["args"]


def test_dry_run_lists_every_stage_in_order_then_ships_the_last(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["--dry_run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = [line.split()[2] for line in lines if "run_trocr.py" in line]
    assert runs == [f"recipes/pretrain/{path.name}" for path in STAGES]
    last_output = load_recipe(STAGES[-1])["output_dir"]
    assert lines[-1] == f"python -m htr.hub.publish {last_output} --to_folder models/trocr-tiny-synthetic"
    # the confidence is fitted on the last run, on validation sets, before it ships
    calibrate = [line for line in lines if "--calibrate" in line]
    assert calibrate == [load_lineage().calibrate] and lines.index(calibrate[0]) == len(lines) - 3


def test_every_command_parses_and_every_data_set_exists(monkeypatch):
    monkeypatch.chdir(ROOT)
    lineage = load_lineage()
    assert [stage.number for stage in lineage.stages] == list(range(1, len(STAGES) + 1))
    for stage in lineage.stages:
        for command in stage.commands:
            args = _parse_only(command, monkeypatch)
            if "data_prep.presets" in command:
                assert select(args.preset, args.only), command  # every --only set is in the preset
    assert _parse_only(lineage.ship, monkeypatch).to_folder == Path("models/trocr-tiny-synthetic")
    calibrate = _parse_only(lineage.calibrate, monkeypatch)
    assert calibrate.calibrate and calibrate.model == lineage.final_output
    assert all("test" not in path for path in lineage.calibrate_on)  # fitted on validation sets only
    assert calibrate.split == "validation"  # ... and only their validation rows


def test_a_stage_builds_what_its_recipe_reads():
    """A built starting model comes from the stage's own preparation, not from prose elsewhere."""
    for stage in load_lineage(ROOT / "recipes/pretrain/lineage.json").stages:
        recipe = load_recipe(stage.recipe)
        model = recipe["model_name_or_path"]
        if model.startswith("build/"):
            assert any(f"htr.training.modeling {model} " in command for command in stage.commands), (
                stage.recipe
            )
        for key in (
            "train_file",
            "validation_file",
            "test_file",
        ):  # every set it reads (stage 15 trains on none)
            if recipe.get(key):
                folder = Path(recipe[key]).parent.name
                # a preset's name (``--only pretrain_scan``) or the folder a command writes (``data/real_ink/...``)
                assert any(
                    folder in Path(word).parts for command in stage.commands for word in command.split()
                ), (stage.recipe, key)


def test_parse_only_catches_a_bad_flag(monkeypatch):
    with pytest.raises(AssertionError, match="unknown arguments"):
        _parse_only("python -m htr.training.modeling build/x --encoder_widht 96", monkeypatch)


def test_from_stage_starts_there_and_refuses_a_stage_that_does_not_exist(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    last = load_lineage(ROOT / "recipes/pretrain/lineage.json").stages[-1]
    assert main(["--dry_run", "--from_stage", str(last.number)]) == 0
    assert capsys.readouterr().out.startswith(f"# stage {last.number}: recipes/pretrain/{last.recipe.name}")
    with pytest.raises(SystemExit):
        main(["--dry_run", "--from_stage", str(last.number + 1)])


def test_a_final_output_that_is_not_the_last_stages_output_is_refused(tmp_path):
    lineage = json.loads((ROOT / "recipes/pretrain/lineage.json").read_text())
    lineage["stages"] = [
        {"recipe": (ROOT / "recipes/pretrain" / entry["recipe"]).as_posix()}
        for entry in lineage["stages"][:-1]
    ]
    path = tmp_path / "lineage.json"
    path.write_text(json.dumps(lineage))  # the last stage dropped, final_output still its

    with pytest.raises(
        RecipeError, match=f"'final_output' is '{lineage['final_output']}' but the last stage"
    ):
        load_lineage(path)


def _smoke_lineage(folder: Path) -> Path:
    """A two-stage lineage at smoke size over the real stages 1 and 2: their recipes as ``base``, only the
    size (tiny model, data/smoke, 2 steps, a few rows) and the paths (all under ``folder``) overridden."""
    init, words, lines = folder / "build/init", folder / "outputs/words", folder / "outputs/lines"
    smoke = {
        "train_file": "data/smoke/english.csv",
        "validation_file": "data/smoke/english.csv",
        "test_file": "data/smoke/english.csv",
        "do_predict": True,
        "max_steps": 2,
        "warmup_steps": 0,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "max_eval_samples": 4,
        "max_predict_samples": 4,
        "max_target_length": 16,
        "generation_max_length": 16,
        "eval_strategy": "no",
        "dataloader_num_workers": 0,
    }
    tiny = (
        "--encoder_width 32 --encoder_layers 1 --decoder_width 32 --decoder_layers 1 --max_target_length 16"
    )
    stages = {
        "01_words.json": {
            "prepare": [
                "python -m data_prep.presets smoke",
                f"python -m htr.training.modeling {init} {tiny}",
            ],
            "model_name_or_path": str(init),
            "output_dir": str(words),
        },
        "02_synthetic.json": {"prepare": [], "model_name_or_path": str(words), "output_dir": str(lines)},
    }
    for name, override in stages.items():
        recipe = {"base": (ROOT / "recipes/pretrain" / name).as_posix(), **smoke, **override}
        (folder / name).write_text(json.dumps(recipe))
    lineage = {"model": str(folder / "models/smoke"), "final_output": str(lines)}
    lineage["stages"] = [{"recipe": name} for name in stages]
    (folder / "lineage.json").write_text(json.dumps(lineage))
    return folder / "lineage.json"


def test_a_smoke_lineage_runs_its_stages_for_real_and_ships_a_model_that_loads(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(ROOT)  # the plan's commands run from the repository root, as the real one does
    path = _smoke_lineage(tmp_path)
    lineage = load_lineage(path)
    run, model = Path(lineage.final_output), Path(lineage.model)

    assert main(["--lineage", str(path)]) == 0

    out = capfd.readouterr().out
    plan = [*(command for stage in lineage.stages for command in stage.commands), lineage.ship]
    assert [line for line in out.splitlines() if line in plan] == plan  # every step ran, ship last
    assert json.loads((run / "run_config.json").read_text())["model_args"]["model_name_or_path"] == str(
        tmp_path / "outputs/words"  # stage 2 started from stage 1's run
    )
    assert sorted(path.name for path in model.iterdir()) == sorted(files_to_upload(run))
    assert not {"run_config.json", "all_results.json", "predictions_test.csv"} & {
        p.name for p in model.iterdir()
    }
    card = (model / "README.md").read_text(encoding="utf-8")
    assert card == str(build_model_card(run, model.as_posix()))
    metrics = json.loads((run / "all_results.json").read_text())
    assert f"CER **{metrics['test_cer']:.2f} %**" in card and "| validation |" in card, card
    loaded = VisionEncoderDecoderModel.from_pretrained(model)
    processor = TrOCRProcessor.from_pretrained(model)
    image = Image.open(ROOT / "data/smoke/images/0000000.png").convert("RGB")
    assert (
        loaded.generate(processor(images=image, return_tensors="pt").pixel_values, max_new_tokens=3).ndim == 2
    )
