"""The synthetic text: English prose from the Debian sources, no code, the other generators kept, fixed by seed."""

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_prep import corpus as corpus_module
from data_prep.corpus import DEFAULT_CHARSET, SOURCES, load_corpus
from data_prep.synthetic import main as synthetic_main

ROOT = Path(__file__).resolve().parents[1]
# Python's documentation vocabulary: a quarter of the docstring prose lines held one of these words.
CODE_WORDS = {
    "def",
    "return",
    "none",
    "self",
    "args",
    "kwargs",
    "argument",
    "arguments",
    "function",
    "method",
}
CODE_WORDS |= {"methods", "module", "string", "int", "str", "bytes", "dict", "tuple", "iterable", "iterator"}
CODE_WORDS |= {"exception", "subclass", "attribute", "parameter", "keyword", "callable", "stdout", "stderr"}
IDENTIFIER = re.compile(r"__|\bself\.|\(\)|[a-z]_[a-z]")  # __init__, self.x, f(), snake_case


def _lines(seed: int, count: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [load_corpus().line(rng, 3, 6, 60, DEFAULT_CHARSET) for _ in range(count)]


def _runs(name: str) -> set[str]:
    (prose,) = [source for source in load_corpus().prose if source.name == name]
    return {" ".join(run) for run in prose.runs}


@pytest.mark.parametrize(
    "name, passage",
    [
        (
            "gcide quotations",
            "Our watchmen from the towers, with longing eyes, Expect his swift arrival.",
        ),  # Dryden
        ("gcide quotations", "I hate not you for her proud arrogance."),  # Shakespeare
        (
            "devil's dictionary",
            "The man who proclaims with a hammer that he has picked a pocket with his tongue.",
        ),
        ("wordnet examples", "we acquainted him with the melancholy truth"),
        ("fortunes", "A light wife doth make a heavy husband."),
    ],
)
def test_each_source_gives_its_passages_whole_and_without_the_author(name: str, passage: str) -> None:
    assert passage in _runs(name)


def test_middle_english_quotations_are_left_out() -> None:
    quotations = _runs("gcide quotations")
    assert not any(run.startswith("Upon his thumb he had of gold a ring") for run in quotations)  # Chaucer
    assert any(run.startswith("There is none righteous, no, not one.") for run in quotations)  # Romans, kept


def test_lines_are_english_prose_not_docstrings() -> None:
    lines = _lines(0, 4000)
    assert not [line for line in lines if IDENTIFIER.search(line)]
    coded = [
        line for line in lines if {word.strip(".,;:!?'\"()-").lower() for word in line.split()} & CODE_WORDS
    ]
    assert len(coded) < 0.02 * len(lines), coded[:20]  # the docstring corpus: 11 %
    text = " ".join(lines)
    for phrase in (" of the ", " in the ", " and the ", " it is "):
        assert phrase in text


def test_prose_is_drawn_from_every_source_by_its_weight() -> None:
    corpus = load_corpus()
    rng = np.random.default_rng(0)
    names = [corpus._source(rng).name for _ in range(4000)]
    for source in SOURCES:
        assert abs(names.count(source.name) / len(names) - source.weight) < 0.03, source.name


def test_words_numbers_dates_names_punctuation_and_random_strings_stay() -> None:
    rng = np.random.default_rng(1)
    tokens = [load_corpus().word(rng) for _ in range(3000)]
    words = set(load_corpus().words)
    assert sum(token in words for token in tokens) > 600  # dictionary words, undecorated
    assert any(token in words and token[0].isupper() and token[1:].islower() for token in tokens)  # names
    assert any(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", token) for token in tokens)  # dates
    assert any(re.fullmatch(r"\d+[.:]\d\d", token) for token in tokens)  # decimals, times
    assert any(re.search(r"[a-zA-Z]\d|\d[a-zA-Z]", token) for token in tokens)  # random strings
    assert {token[-1] for token in tokens} >= set(".,;:!?")
    assert any(token.startswith(("(", '"')) for token in tokens)


def test_a_seed_fixes_the_lines_also_in_another_process() -> None:
    assert _lines(5, 50) == _lines(5, 50)
    assert _lines(5, 50) != _lines(6, 50)
    code = (
        "import numpy as np; from data_prep.corpus import DEFAULT_CHARSET, load_corpus; rng = np.random.default_rng(5); "
        "print(repr([load_corpus().line(rng, 3, 6, 60, DEFAULT_CHARSET) for _ in range(50)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == repr(_lines(5, 50))


def test_a_missing_source_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = dataclasses.replace(SOURCES[0], needs=tmp_path / "gcide.dict.dz")
    monkeypatch.setattr(corpus_module, "SOURCES", (gone, *SOURCES[1:]))
    load_corpus.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match=r"apt-get install dict-gcide"):
            load_corpus()
        with pytest.raises(SystemExit):
            synthetic_main(["--out", str(tmp_path / "out"), "--num_samples", "2"])
        assert "apt-get install dict-gcide" in capsys.readouterr().err
    finally:
        load_corpus.cache_clear()
