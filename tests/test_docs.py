"""The README and docs/ are what a newcomer reads first: every relative link in them must lead somewhere."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), images included
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)  # code blocks hold no links


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_link_check_sees_links():
    """The checker reads links at all: the README links to the script it is about."""
    assert "run_trocr.py" in _links(ROOT / "README.md")
    assert _anchor("Set-up: two commands") == "set-up-two-commands"


def test_every_module_is_in_the_readme_layout_table():
    """A newcomer finds every subpackage of htr/, and every module of htr/ and data_prep/, in the layout table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    subpackages = [f"`htr/{path.parent.name}/`" for path in sorted((ROOT / "htr").glob("*/__init__.py"))]
    assert len(subpackages) >= 7  # core, data, training, inference, evaluation, pages, hub
    modules = [
        path.relative_to(ROOT).as_posix()
        for folder in ("htr", "data_prep")
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "__init__.py"
    ]
    missing = [name for name in subpackages if name not in layout]
    missing += [path for path in modules if Path(path).name not in layout]
    assert not missing, f"add these to the README's layout table: {missing}"


MODULE_COMMAND = re.compile(r"python3? -m ((?:htr|data_prep)(?:\.\w+)*)")


def test_every_python_m_command_names_a_module_that_exists():
    """``python -m htr.x`` in the README, docs/ and the recipes' ``prepare`` commands still runs after a move."""
    sources = [*PAGES, ROOT / "setup.sh", *sorted((ROOT / "recipes").rglob("*.json"))]
    commands = {
        (source.relative_to(ROOT).as_posix(), module)
        for source in sources
        for module in MODULE_COMMAND.findall(source.read_text(encoding="utf-8"))
    }
    assert ("README.md", "htr.pages") in commands  # the checker reads the README's commands at all
    missing = sorted(
        (source, module) for source, module in commands if importlib.util.find_spec(module) is None
    )
    assert not missing, f"no such module: {missing}"
