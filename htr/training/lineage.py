"""The shipped model's lineage, executable: every pretraining stage's commands, in order, from nothing, then ship.

``recipes/pretrain/lineage.json`` lists the stages in order; each stage's recipe says how to prepare what it
reads (``prepare``: its data preset and, where the model is built or grown, the ``htr.training.modeling`` command), so
a stage's commands are its recipe's preparation, then ``run_trocr.py`` on the recipe.

Before that, ``calibrate_on`` (validation CSVs, never a test set) fits the last run's confidence temperature
(``htr.inference.predict --calibrate``), so the shipped ``calibration.json`` is reproducible too. The last step ships:
``htr.hub.publish --to_folder`` replaces the lineage's ``model`` folder with the publishable
files of the last stage's run (``final_output``), its card written by :mod:`htr.hub.card` from that run's record
and metrics. So the shipped folder holds what a Hub upload would, and nothing in it is edited by hand.

    python -m htr.training.lineage --dry_run          # print the plan
    python -m htr.training.lineage [--from_stage 8]   # run it (about 20 hours on 2 CPU cores)
"""

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from htr.training.recipe import PREPARE, RecipeError, load_recipe

LINEAGE = Path("recipes/pretrain/lineage.json")


@dataclass
class Stage:
    """One pretraining stage: its number, recipe, the commands that run it, and what it reached on data/heldout."""

    number: int
    recipe: Path
    commands: list[str] = field(default_factory=list)
    held_out_cer: str = ""
    note: str = ""


@dataclass
class Lineage:
    """The stages in order, and where the last one's run is shipped to (paths relative to the repository)."""

    stages: list[Stage]
    final_output: str
    model: str
    # CSVs whose validation rows the confidence is fitted on
    calibrate_on: list[str] = field(default_factory=list)

    @property
    def calibrate(self) -> str | None:
        """The command that fits the last run's confidence temperature on validation rows (None: not fitted).

        ``--split validation`` makes it so by construction: a CSV's test rows can never be fitted on.
        """
        if not self.calibrate_on:
            return None
        return shlex.join(
            [
                "python",
                "-m",
                "htr.inference.predict",
                self.final_output,
                *self.calibrate_on,
                "--split",
                "validation",
                "--calibrate",
            ]
        )

    @property
    def ship(self) -> str:
        """The command that makes the model folder from the last stage's run: publishable files, generated card."""
        return shlex.join(["python", "-m", "htr.hub.publish", self.final_output, "--to_folder", self.model])


def _output_dir(recipe: dict[str, Any], args: list[str]) -> str | None:
    """Where a stage's run writes: its recipe's ``output_dir``, unless the stage's args override it."""
    flags = dict(pairwise(args))
    return flags.get("--output_dir", recipe.get("output_dir"))


def load_lineage(path: Path = LINEAGE) -> Lineage:
    """The stages of ``path`` with their commands (the recipe's ``prepare``, then the training run) and the ship.

    ``final_output`` must be the last stage's output dir: appending a stage without updating it would ship
    the previous stage's model under the new lineage.
    """
    try:
        lineage = json.loads(Path(path).read_text(encoding="utf-8"))
        final_output, model = lineage["final_output"], lineage["model"]
    except (OSError, json.JSONDecodeError, KeyError) as error:
        raise RecipeError(f"Lineage {path} cannot be read: {error!r}") from None
    stages, last_output = [], None
    for number, entry in enumerate(lineage["stages"], start=1):
        recipe_path = Path(path).parent / entry["recipe"]
        recipe, args = load_recipe(recipe_path), entry.get("args", [])
        run = ["python", "run_trocr.py", recipe_path.as_posix(), *args]
        commands = [*recipe.get(PREPARE, []), shlex.join(run)]
        stages.append(
            Stage(number, recipe_path, commands, entry.get("held_out_cer", ""), entry.get("note", ""))
        )
        last_output = _output_dir(recipe, args)
    if not stages or last_output != final_output:
        raise RecipeError(
            f"Lineage {path}: 'final_output' is {final_output!r} but the last stage writes to "
            f"{last_output!r}: set it to the last stage's output_dir."
        )
    return Lineage(stages, final_output, model, lineage.get("calibrate_on", []))


def _argv(command: str) -> list[str]:
    """A plan command as argv, run with this interpreter (``python`` in the plan is whichever one runs it)."""
    argv = shlex.split(command)
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def _run(commands: list[str], dry_run: bool) -> str | None:
    """Print each command and, unless ``dry_run``, run it; the first one that failed, or None."""
    for command in commands:
        print(command, flush=True)
        if not dry_run and subprocess.run(_argv(command)).returncode:
            return command
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lineage", type=Path, default=LINEAGE, help="the lineage file")
    parser.add_argument("--dry_run", action="store_true", help="print every stage's commands, run nothing")
    parser.add_argument("--from_stage", type=int, default=1, help="start at this stage (earlier ones done)")
    args = parser.parse_args(argv)
    try:
        lineage = load_lineage(args.lineage)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not 1 <= args.from_stage <= len(lineage.stages):
        parser.error(f"--from_stage must be 1 to {len(lineage.stages)}, the stages of {args.lineage}")
    resume = "python -m htr.training.lineage" + (
        f" --lineage {args.lineage}" if args.lineage != LINEAGE else ""
    )
    for stage in lineage.stages[args.from_stage - 1 :]:
        print(f"# stage {stage.number}: {stage.recipe} (data/heldout CER it reached: {stage.held_out_cer})")
        if stage.note:
            print(f"#   {stage.note}")
        if failed := _run(stage.commands, args.dry_run):
            print(f"error: stage {stage.number} failed at: {failed}", file=sys.stderr)
            print(f"fix it, then go on with: {resume} --from_stage {stage.number}", file=sys.stderr)
            return 1
    if lineage.calibrate:
        print(f"# calibrate: the confidence of {lineage.final_output}, fitted on validation sets only")
        if _run([lineage.calibrate], args.dry_run):
            print(f"error: calibration failed; fix it, then rerun: {lineage.calibrate}", file=sys.stderr)
            return 1
    print(f"# ship: {lineage.final_output} as {lineage.model} (publishable files, card written from the run)")
    if _run([lineage.ship], args.dry_run):
        print(f"error: shipping failed; fix it, then rerun: {lineage.ship}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
