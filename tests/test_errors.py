"""One error base class: every error this project raises for the user derives from HTRError."""

import ast
import importlib
from pathlib import Path

from htr.core.errors import HTRError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted((ROOT / "htr").rglob("*.py")),
    *sorted((ROOT / "data_prep").glob("*.py")),
    ROOT / "run_trocr.py",
]


def _error_classes() -> list[tuple[str, str]]:
    """(module, class) for every class defined at module level that is an exception."""
    found = []
    for path in SOURCES:
        module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.bases:
                found.append((module, node.name))
    return [
        (module, name)
        for module, name in found
        if isinstance(cls := getattr(importlib.import_module(module), name), type)
        and issubclass(cls, Exception)
    ]


def test_every_project_error_derives_from_htr_error():
    classes = _error_classes()
    assert len(classes) >= 17  # the checker found them: RecipeError, DataError, ... MergeError, LaunchError
    assert [
        f"{module}.{name}"
        for module, name in classes
        if not issubclass(getattr(importlib.import_module(module), name), HTRError)
    ] == []


def test_errors_keep_their_builtin_kind():
    from htr.hub.publish import PublishError
    from htr.training.recipe import RecipeError

    assert issubclass(RecipeError, ValueError) and issubclass(PublishError, RuntimeError)
