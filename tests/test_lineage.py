"""The lineage file is the one executable account of how the shipped model was made: it must stay runnable."""

import argparse
import importlib
import importlib.util
import shlex
import sys
from pathlib import Path

import pytest

from data_prep.presets import select
from htr.lineage import load_lineage, main

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


def test_dry_run_lists_every_stage_in_order(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["--dry_run"]) == 0
    runs = [line.split()[2] for line in capsys.readouterr().out.splitlines() if "run_trocr.py" in line]
    assert runs == [f"recipes/pretrain/{path.name}" for path in STAGES]


def test_every_command_parses_and_every_data_set_exists(monkeypatch):
    monkeypatch.chdir(ROOT)
    stages = load_lineage()
    assert [stage.number for stage in stages] == list(range(1, len(STAGES) + 1))
    for stage in stages:
        for command in stage.commands:
            args = _parse_only(command, monkeypatch)
            if "data_prep.presets" in command:
                assert select(args.preset, args.only), command  # every --only set is in the preset


def test_a_stage_builds_what_its_recipe_reads():
    """A built starting model comes from the stage's own preparation, not from prose elsewhere."""
    from htr.recipe import load_recipe

    for stage in load_lineage(ROOT / "recipes/pretrain/lineage.json"):
        recipe = load_recipe(stage.recipe)
        model = recipe["model_name_or_path"]
        if model.startswith("build/"):
            assert any(f"htr.modeling {model} " in command for command in stage.commands), stage.recipe
        folder = Path(recipe["train_file"]).parent.name
        assert any(folder in command.split() for command in stage.commands), stage.recipe


def test_parse_only_catches_a_bad_flag(monkeypatch):
    with pytest.raises(AssertionError, match="unknown arguments"):
        _parse_only("python -m htr.modeling build/x --encoder_widht 96", monkeypatch)


def test_from_stage_starts_there_and_refuses_a_stage_that_does_not_exist(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["--dry_run", "--from_stage", "13"]) == 0
    assert capsys.readouterr().out.startswith("# stage 13: recipes/pretrain/13_hands_more.json")
    with pytest.raises(SystemExit):
        main(["--dry_run", "--from_stage", "14"])
