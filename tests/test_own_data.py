"""The README's own-data commands, run as they are written, on a tiny export and on a bare CSV.

The commands are read from the README itself, so a README that drifts from the code fails here. Only the
number of steps is cut (a README run is 400 steps); everything else is the recipe's.
"""

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.fonts import train_fonts
from data_prep.synthetic import generate
from data_prep.synthetic_pages import render_page
from htr.pages.layout import to_page_xml

ROOT = Path(__file__).resolve().parent.parent
# A README run trains 400 steps; here 2, evaluated and saved at the end, on a few validation rows.
SHORT = ["--max_steps", "2", "--eval_steps", "2", "--save_steps", "2", "--max_eval_samples", "4"]
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wise",
    "owls",
    "keep",
    "watch",
    "at",
    "night",
]


def readme_commands(heading: str) -> list[list[str]]:
    """The commands of the first bash block under ``heading`` in the README, comments dropped."""
    section = ROOT.joinpath("README.md").read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A README command from a user's checkout: ``python`` is this interpreter, relative paths start at cwd."""
    command = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A working folder that looks like the repository to the commands: script, recipes and shipped model."""
    for name in ("run_trocr.py", "recipes", "models"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def test_from_an_export_to_a_model_and_its_report_in_the_readmes_three_commands(checkout: Path) -> None:
    commands = readme_commands("Train on your own handwriting")
    assert len(commands) <= 3
    export = checkout / "export"
    export.mkdir()
    font = train_fonts()[0]
    for document in range(10):  # ten one-page documents: page_lines draws 8 / 1 / 1 of them by document
        lines = [" ".join(WORDS[(document + i) % 12 : (document + i) % 12 + 3]) for i in range(3)]
        page = render_page(lines, font, export / f"letter{document:02d}.png", width=700)
        (export / f"letter{document:02d}.xml").write_bytes(to_page_xml(page))
    for command in commands:
        run(command + SHORT if "run_trocr.py" in command else command, checkout)
    with (checkout / "data/mine/english.csv").open(encoding="utf-8") as handle:
        splits = [row["split"] for row in csv.DictReader(handle)]
    assert set(splits) == {"train", "validation", "test"}
    output = checkout / "outputs/my_data"
    results = json.loads((output / "all_results.json").read_text())
    assert {"eval_cer", "test_cer", "test_wer"} <= results.keys()
    assert results["test_samples"] == splits.count("test")  # the test document's lines, scored once
    assert (output / "report" / "report.html").is_file()
    assert "whose 'split' is test" in (output / "README.md").read_text()  # the card names the test set


def test_a_bare_image_label_csv_gets_validation_and_test_rows_drawn_at_random(checkout: Path) -> None:
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    command = shlex.split(
        re.search(r"`(python run_trocr.py recipes/my_data.json --train_file [^`]+)`", readme)[1]
    )
    csv_path = checkout / command[-1]
    rendered = generate(checkout / "rendered", 20, fonts="train", seed=1, kind="words", workers=1)
    with rendered.open(encoding="utf-8") as handle:
        rows = [
            {"image": str(rendered.parent / row["image"]), "label": row["label"]}
            for row in csv.DictReader(handle)
        ]
    csv_path.parent.mkdir(parents=True)
    with csv_path.open("w", encoding="utf-8", newline="") as handle:  # image,label and nothing else
        writer = csv.DictWriter(handle, ["image", "label"])
        writer.writeheader()
        writer.writerows(rows)
    run(command + SHORT, checkout)
    output = checkout / "outputs/my_data"
    results = json.loads((output / "all_results.json").read_text())
    assert results["test_samples"] == 2 and results["eval_samples"] == 2  # 10 % each of 20 rows
    assert results["train_samples"] == 16
    splits = json.loads((output / "run_config.json").read_text())["splits"]
    assert splits["test"] == f"10 % of {command[-1]} held out (rows at random, seed 42)"
