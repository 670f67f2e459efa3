"""The shipped model's lineage, executable: every pretraining stage's commands, in order, from nothing.

``recipes/pretrain/lineage.json`` lists the stages in order; each stage's recipe says how to prepare what it
reads (``prepare``: its data preset and, where the model is built or grown, the ``htr.modeling`` command), so
a stage's commands are its recipe's preparation, then ``run_trocr.py`` on the recipe.

    python -m htr.lineage --dry_run          # print the plan
    python -m htr.lineage [--from_stage 8]   # run it (about 20 hours on 2 CPU cores)
"""

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from htr.recipe import PREPARE, RecipeError, load_recipe

LINEAGE = Path("recipes/pretrain/lineage.json")


@dataclass
class Stage:
    """One pretraining stage: its number, recipe, the commands that run it, and what it reached on data/heldout."""

    number: int
    recipe: Path
    commands: list[str] = field(default_factory=list)
    held_out_cer: str = ""
    note: str = ""


def load_lineage(path: Path = LINEAGE) -> list[Stage]:
    """The stages of ``path`` with their commands: the recipe's ``prepare``, then the training run."""
    try:
        lineage = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RecipeError(f"Lineage {path} cannot be read: {error}") from None
    stages = []
    for number, entry in enumerate(lineage["stages"], start=1):
        recipe = Path(path).parent / entry["recipe"]
        run = ["python", "run_trocr.py", recipe.as_posix(), *entry.get("args", [])]
        commands = [*load_recipe(recipe).get(PREPARE, []), shlex.join(run)]
        stages.append(Stage(number, recipe, commands, entry.get("held_out_cer", ""), entry.get("note", "")))
    return stages


def _argv(command: str) -> list[str]:
    """A plan command as argv, run with this interpreter (``python`` in the plan is whichever one runs it)."""
    argv = shlex.split(command)
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lineage", type=Path, default=LINEAGE, help="the lineage file")
    parser.add_argument("--dry_run", action="store_true", help="print every stage's commands, run nothing")
    parser.add_argument("--from_stage", type=int, default=1, help="start at this stage (earlier ones done)")
    args = parser.parse_args(argv)
    try:
        stages = load_lineage(args.lineage)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not 1 <= args.from_stage <= len(stages):
        parser.error(f"--from_stage must be 1 to {len(stages)}, the stages of {args.lineage}")
    for stage in stages[args.from_stage - 1 :]:
        print(f"# stage {stage.number}: {stage.recipe} (data/heldout CER it reached: {stage.held_out_cer})")
        if stage.note:
            print(f"#   {stage.note}")
        for command in stage.commands:
            print(command, flush=True)
            if not args.dry_run and subprocess.run(_argv(command)).returncode:
                print(f"error: stage {stage.number} failed at: {command}", file=sys.stderr)
                print(
                    f"fix it, then go on with: python -m htr.lineage --from_stage {stage.number}",
                    file=sys.stderr,
                )
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
