"""The package's folders are its architecture: layers with no cycles, nothing imported upward, and a wheel
that carries every file the package reads at run time.

The layer order is the one ``htr/__init__.py`` documents (``core`` → ``data`` → ...); the test reads it
from there, so the docstring and the check cannot drift apart. Imports inside functions count too: an
import moved into a function to dodge a cycle is still a cycle.
"""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "htr"


def _modules() -> dict[str, Path]:
    """Dotted name -> file for every module of htr/, packages by their ``__init__.py``."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the htr modules it imports, at module level or inside functions (``from htr.x import y``
    counts as importing ``htr.x.y`` when that is a module, else ``htr.x``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the importing module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def documented_layers() -> list[set[str]]:
    """The layers of ``htr/__init__.py``'s docstring, lowest first: the ``name``s between its arrows."""
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))) or ""
    order = next((paragraph for paragraph in doc.split("\n\n") if "→" in paragraph), "")
    return [set(re.findall(r"``(\w+)``", step)) for step in order.split("→")]


def _unit(module: str) -> str:
    """The part of htr a module belongs to: its subpackage, or itself for a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_import_graph_sees_function_level_imports():
    """The checker is not blind: demo imports the page transcriber inside a function (kraken is optional)."""
    graph = import_graph()
    assert "htr.pages.transcribe" in graph["htr.demo"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_htr_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' → '.join(cycle or [])}; give the shared name one home below both"


def test_every_part_of_htr_sits_in_one_documented_layer():
    layers = documented_layers()
    assert len(layers) >= 4, (
        f"htr/__init__.py documents no layer order ('``core`` → ``data`` → ...'): {layers}"
    )
    placed = [name for layer in layers for name in layer]
    parts = {_unit(module) or module.rpartition(".")[2] for module in _modules() if module != "htr"}
    assert sorted(parts - set(placed)) == [], "place these in htr/__init__.py's layer order"
    assert len(placed) == len(set(placed)), f"a name sits in two layers: {placed}"


def test_nothing_is_imported_upward_or_sideways_across_subpackages():
    """A module imports its own subpackage and the layers below; never a layer above, nor a sibling of its
    layer (training and inference stay independent of each other)."""
    rank = {name: index for index, layer in enumerate(documented_layers()) for name in layer}
    wrong = []
    for module, targets in import_graph().items():
        if module == "htr":
            continue
        source = _unit(module) or module.rpartition(".")[2]
        for target in targets:
            destination = _unit(target) or target.rpartition(".")[2]
            if destination != source and rank.get(destination, -1) >= rank.get(source, -1):
                wrong.append(f"{module} → {target}")
    assert wrong == [], f"imports against the layer order of htr/__init__.py: {sorted(wrong)}"


def test_the_wheel_carries_every_file_the_package_reads(tmp_path):
    """``pip install .`` (not editable) must still find the card template, the report's template and the
    PAGE/ALTO schemas: each file the code opens lies inside the package and is in the wheel, as is every
    other non-Python file under htr/. Built from a copy, so no build/ folder of the checkout leaks in."""
    from htr.evaluation import report
    from htr.hub import card
    from htr.pages import layout

    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("htr", "data_prep"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "requirements.txt", "run_trocr.py"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", "dist"],
        check=True,
        capture_output=True,
        cwd=source,
    )
    (wheel,) = (source / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())

    read_at_run_time = [card.TEMPLATE_PATH, Path(report.TEMPLATE.filename), *layout.SCHEMAS.values()]
    outside = [str(path) for path in read_at_run_time if not path.resolve().is_relative_to(PACKAGE)]
    assert outside == [], f"read at run time but outside the package, so no wheel has them: {outside}"
    data_files = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert {path.resolve().relative_to(ROOT).as_posix() for path in read_at_run_time} <= data_files
    assert sorted(data_files - packed) == [], f"{wheel.name} lacks run-time files"
    assert {path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*.py")} <= packed
