"""Recipes: a JSON file of arguments, overridable from the command line, and the record of a run.

The stock ``HfArgumentParser`` reads either a JSON file or the command line. Recipes are only useful
if both work together (``run_trocr.py recipes/iam_imgur.json --num_train_epochs 1``), so the JSON
values become the parser's defaults and the command line is parsed on top of them.
"""

import difflib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

# Fields that would store a secret in the recipe copy, training_args.bin and the card.
SECRET_FIELDS = ("hub_token",)


class RecipeError(ValueError):
    """A recipe or command line that cannot be run, with what to change."""


def parse_recipe_and_cli(parser: HfArgumentParser, argv: list[str]) -> tuple[Any, ...]:
    """Parse ``[recipe.json] [--field value ...]``: the recipe sets defaults, the command line wins."""
    recipe: dict[str, Any] = {}
    if argv and argv[0].endswith(".json"):
        recipe_path = Path(argv[0])
        if not recipe_path.is_file():
            raise RecipeError(f"Recipe {recipe_path} does not exist. Recipes live in recipes/*.json")
        try:
            recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RecipeError(f"Recipe {recipe_path} is not valid JSON: {error}") from None
        argv = argv[1:]
        known = {action.dest: action for action in parser._actions}
        for key in recipe:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise RecipeError(f"Recipe {recipe_path}: unknown field '{key}'{hint}")
            known[key].required = False
        parser.set_defaults(**recipe)
    for field in SECRET_FIELDS:
        if field in recipe or any(arg.lstrip("-").split("=")[0] == field for arg in argv):
            raise RecipeError(
                f"Do not pass '{field}' in a recipe or on the command line: it would be saved with the run. "
                "Log in once with `hf auth login`, or set the HF_TOKEN environment variable."
            )
    return parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)


def run_config(
    model_args: Any, data_args: Any, training_args: TrainingArguments, **extra: Any
) -> dict[str, Any]:
    """What a run actually used, for `run_config.json` and the model card (tokens masked)."""
    return {
        "model_args": asdict(model_args),
        "data_args": asdict(data_args),
        "training_args": training_args.to_dict(),
        **extra,
    }
