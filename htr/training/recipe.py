"""Recipes: a JSON file of arguments, overridable from the command line, and the record of a run.

The stock ``HfArgumentParser`` reads either a JSON file or the command line. Recipes are only useful
if both work together (``run_trocr.py recipes/iam_imgur.json --num_train_epochs 1``), so the JSON
values become the parser's defaults and the command line is parsed on top of them.

A recipe may name a ``"base"`` recipe and hold only what differs from it (the pretraining stages in
``recipes/pretrain/`` do); ``load_recipe`` resolves the chain, so the parsed arguments, and with them
``run_config.json``, are the complete, resolved recipe.

A recipe also says how to make what it reads: ``"prepare"``, the commands that build its data and starting
model (the nearest recipe in the chain that has one wins). It is not an argument; ``run_trocr.py`` prints
it when an input is missing, and ``htr.training.lineage`` runs it.

And why its values are what they are: ``"why"``, a sentence per recipe in the chain. It is not an argument
either; the resolved recipe keeps every layer's reason, base first, so ``run_config.json`` shows them all.
"""

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from htr.core.errors import HTRError

# Fields that would store a secret in the recipe copy, training_args.bin and the card.
SECRET_FIELDS = ("hub_token",)
PREPARE = (
    "prepare"  # the recipe's preparation commands: recorded with the recipe, never parsed as an argument
)
WHY = "why"  # the reasons for a recipe's values: recorded with the recipe, never parsed as an argument
NOT_ARGUMENTS = (PREPARE, WHY)


class RecipeError(HTRError, ValueError):
    """A recipe or command line that cannot be run, with what to change."""


def _secret_refused(field: str) -> RecipeError:
    return RecipeError(
        f"Do not pass '{field}' in a recipe or on the command line: it would be saved with the run. "
        "Log in once with `hf auth login`, or set the HF_TOKEN environment variable."
    )


def _flag_name(arg: str) -> str | None:
    """``--hub-token=x`` -> ``hub_token``; None for values (including negative numbers)."""
    if not arg.startswith("--") or arg == "--":
        return None
    return arg[2:].split("=", 1)[0].replace("-", "_")


def _check_flags(parser: HfArgumentParser, argv: list[str]) -> None:
    """Refuse secrets in any spelling argparse accepts, and unknown flags with a "did you mean".

    Abbreviations are switched off (``allow_abbrev``): with them, ``--hub_toke hf_...`` reached the
    ``hub_token`` field and was saved in ``training_args.bin``, and ``--learn 1e-3`` silently meant
    whichever field the prefix happened to match.
    """
    parser.allow_abbrev = False
    flags = {name.replace("-", "_") for action in parser._actions for name in action.option_strings}
    flags = {flag.lstrip("_") for flag in flags}
    for arg in argv:
        name = _flag_name(arg)
        if name is None:
            continue
        for secret in SECRET_FIELDS:
            if (secret.startswith(name) and len(name) >= 3) or name == secret:
                raise _secret_refused(secret)
        if name not in flags:
            close = difflib.get_close_matches(name, flags, n=1)
            hint = f"; did you mean --{close[0]}?" if close else ""
            raise RecipeError(f"Unknown option {arg.split('=', 1)[0]}{hint} (`--help` lists every option)")


def _check_kind(recipe_path: Path, key: str, value: Any, action: Any) -> None:
    """A recipe value argparse would not have accepted from the command line, caught before it crashes later."""
    problem = None
    if value is None and action.default is not None:
        problem = "is null"
    elif action.type in (int, float) and value is not None:
        if isinstance(value, (list, dict)):
            problem = f"is a JSON {'list' if isinstance(value, list) else 'object'}"
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problem = f"is {json.dumps(value)}"
    if problem:
        expected = {int: "a whole number", float: "a number"}.get(action.type, "a value")
        default = f" (default: {json.dumps(action.default)})" if action.default is not None else ""
        raise RecipeError(f"Recipe {recipe_path}: field '{key}' {problem}; give {expected}{default}")


def load_recipe(path: Path | str) -> dict[str, Any]:
    """Read a recipe and the chain of ``base`` recipes it overrides, the nearest value winning.

    ``"base": "base.json"`` is read relative to the recipe's own folder, so a stage holds only what
    differs from its base; the returned dict has no ``base`` key and is what the run records.
    """
    chain: list[Path] = []
    path = Path(path)
    layers: list[dict[str, Any]] = []
    reasons: list[str] = []
    while True:
        if path.resolve() in chain:
            cycle = " -> ".join(str(p) for p in [*chain, path.resolve()])
            raise RecipeError(f"Recipe {path}: 'base' recipes form a cycle ({cycle}); remove one 'base'")
        chain.append(path.resolve())
        if not path.is_file():
            named_by = f" (the base of {chain[-2]})" if len(chain) > 1 else ""
            raise RecipeError(f"Recipe {path}{named_by} does not exist. Recipes live in recipes/*.json")
        try:
            layer = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RecipeError(f"Recipe {path} is not valid JSON: {error}") from None
        if not isinstance(layer, dict):
            raise RecipeError(
                f"Recipe {path} holds a JSON {type(layer).__name__}; a recipe is one JSON object "
                '({"field": value, ...})'
            )
        base = layer.pop("base", None)
        prepare = layer.get(PREPARE, [])
        if not (isinstance(prepare, list) and all(isinstance(command, str) for command in prepare)):
            raise RecipeError(
                f"Recipe {path}: '{PREPARE}' must be a list of shell commands, e.g. "
                '["python -m data_prep.presets smoke"]'
            )
        why = layer.pop(WHY, None)
        if why is not None and not isinstance(why, str):
            raise RecipeError(f"Recipe {path}: '{WHY}' must be a sentence (a string), got {why!r}")
        if why:
            reasons.append(f"{path.name}: {why}")
        layers.append(layer)
        if base is None:
            break
        if not isinstance(base, str):
            raise RecipeError(f"Recipe {path}: 'base' must be a path to another recipe, got {base!r}")
        path = path.parent / base
    recipe: dict[str, Any] = {}
    for layer in reversed(layers):
        recipe.update(layer)
    if reasons:
        recipe[WHY] = reasons[::-1]
    return recipe


def parse_recipe_and_cli(parser: HfArgumentParser, argv: list[str]) -> tuple[Any, ...]:
    """Parse ``[recipe.json] [--field value ...]``: the recipe sets defaults, the command line wins."""
    recipe: dict[str, Any] = {}
    if argv and argv[0].endswith(".json"):
        recipe_path = Path(argv[0])
        recipe = load_recipe(recipe_path)
        argv = argv[1:]
        known = {action.dest: action for action in parser._actions}
        for key, value in recipe.items():
            if key in NOT_ARGUMENTS:
                continue
            if key in SECRET_FIELDS:
                raise _secret_refused(key)
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise RecipeError(f"Recipe {recipe_path}: unknown field '{key}'{hint}")
            _check_kind(recipe_path, key, value, known[key])
            known[key].required = False
        parser.set_defaults(**{key: value for key, value in recipe.items() if key not in NOT_ARGUMENTS})
    _check_flags(parser, argv)
    return parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)


def missing_inputs(recipe_path: Path | str, paths: list[str | None], model: str) -> str | None:
    """What a run cannot start without and the recipe's commands that make it, as one message; None if all is there.

    ``paths`` are the data files the run reads; ``model`` counts only when the recipe's preparation builds
    it (otherwise it may be a Hub id).
    """
    prepare = load_recipe(recipe_path).get(PREPARE, [])
    missing = list(dict.fromkeys(path for path in paths if path and not Path(path).exists()))
    if not Path(model).exists() and any(model in command.split() for command in prepare):
        missing.insert(0, model)
    if not missing:
        return None
    how = " && ".join(prepare) if prepare else f"the commands that build them ({recipe_path} names none)"
    return f"{', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist; prepare with: {how}"


def precision(fp16: bool, bf16: bool, fp16_requested: bool = False) -> str:
    """The precision a run trains in, named the one way the log, the loss guard, the record and the card use."""
    if fp16:
        return "fp16 mixed precision"
    if bf16:
        return "bf16 mixed precision"
    return "fp32 (fp16 requested, no CUDA GPU)" if fp16_requested else "fp32"


@dataclass
class RunRecord:
    """What a run actually used, as ``run_config.json`` holds it and ``htr.hub.card`` reads it (tokens masked).

    The three argument groups are the parsed dataclasses as dicts, so every key is a real argument name
    (``training_args["generation_num_beams"]``), never a name a reader made up.
    """

    model_args: dict[str, Any]
    data_args: dict[str, Any]
    training_args: dict[str, Any]
    precision: str
    world_size: int = 1
    recipe: str | None = None
    resolved_recipe: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, str] = field(
        default_factory=dict
    )  # each split's set in words (htr.data.dataset.SplitPlan)

    FILE = "run_config.json"

    @classmethod
    def of(
        cls,
        model_args: Any,
        data_args: Any,
        training_args: TrainingArguments,
        recipe: str | None = None,
        world_size: int = 1,
        fp16_requested: bool = False,
        splits: dict[str, str] | None = None,
    ) -> "RunRecord":
        """The record of a run from its parsed arguments (``training_args`` after run_trocr's adaptation)."""
        return cls(
            model_args=asdict(model_args),
            data_args=asdict(data_args),
            training_args=training_args.to_dict(),  # masks hub_token
            precision=precision(training_args.fp16, training_args.bf16, fp16_requested),
            world_size=world_size,
            recipe=recipe,
            resolved_recipe=load_recipe(recipe) if recipe else {},
            splits=splits or {},
        )

    def write(self, output_dir: Path) -> Path:
        path = Path(output_dir) / self.FILE
        path.write_text(json.dumps(asdict(self), indent=2, default=str), encoding="utf-8")
        return path

    @classmethod
    def read(cls, output_dir: Path) -> "RunRecord":
        """The record in ``output_dir``; KeyError/OSError/ValueError when there is none or it is not one."""
        data = json.loads((Path(output_dir) / cls.FILE).read_text(encoding="utf-8"))
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        if "precision" not in known:  # recorded before the record carried it
            training = data["training_args"]
            known["precision"] = precision(bool(training.get("fp16")), bool(training.get("bf16")))
        return cls(**known)
