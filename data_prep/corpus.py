"""Offline text for synthetic handwriting: words, numbers, random strings and prose lines.

A recogniser trained only on dictionary words learns to guess words instead of reading glyphs, so
the mix also holds digits, dates, punctuation and random character strings. Sources work offline:
Debian's ``wamerican`` word list and English prose that ships with Python (the Zen of Python and
stdlib docstrings), filtered to prose-like tokens so no code or markup leaks into labels.
"""

import codecs
import contextlib
import functools
import importlib
import io
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORD_LIST = Path("/usr/share/dict/words")
PUNCTUATION = ".,;:'\"!?-()/&"
DEFAULT_CHARSET = string.ascii_letters + string.digits + PUNCTUATION

# Well-written docstrings; the list is fixed so the corpus (and thus every seed) is reproducible.
_PROSE_MODULES = (
    "argparse",
    "calendar",
    "collections",
    "csv",
    "datetime",
    "decimal",
    "difflib",
    "fractions",
    "functools",
    "heapq",
    "json",
    "logging",
    "pathlib",
    "pickle",
    "random",
    "shutil",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "textwrap",
    "threading",
    "unittest",
    "zipfile",
)
_PLAIN_WORD = re.compile(r"[A-Za-z]{1,14}")
# Prose token: a word (maybe hyphenated or with an apostrophe) or a number, with natural punctuation.
_PROSE_TOKEN = re.compile(r"[(\"']?(?:[A-Za-z]+(?:[-'][A-Za-z]+)*|\d+(?:[.,:]\d+)?)[)\"']?[.,;:!?]?")
_NUMBER_FORMATS = (
    "{a}",
    "{a}.{b:02d}",
    "{h}:{b:02d}",
    "{d}/{m}/{y}",
    "{y}-{y2}",
    "{a},{c:03d}",
    "-{a}",
    "{a}-{c:03d}",
)


@dataclass(frozen=True)
class Corpus:
    """Text sources, sampled only through a numpy ``Generator`` so output is fixed by the seed."""

    words: tuple[str, ...]
    prose_lines: tuple[tuple[str, ...], ...]
    prose_tokens: tuple[str, ...]

    def word(self, rng: np.random.Generator, charset: str = DEFAULT_CHARSET) -> str:
        """One word-like token: dictionary word (mixed case, punctuation), prose token, number or random."""
        roll = rng.random()
        if roll < 0.45:
            return _decorate(_recase(self.words[rng.integers(len(self.words))], rng), rng)
        if roll < 0.7:
            return self.prose_tokens[rng.integers(len(self.prose_tokens))]
        if roll < 0.85:
            return _number(rng)
        return _random_string(rng, charset)

    def line(
        self, rng: np.random.Generator, min_words: int, max_words: int, max_chars: int, charset: str
    ) -> str:
        """A text line of ``min_words``..``max_words`` words, cut to at most ``max_chars`` characters."""
        count = int(rng.integers(min_words, max_words + 1))
        if rng.random() < 0.5:
            run = self.prose_lines[rng.integers(len(self.prose_lines))]
            start = int(rng.integers(max(len(run) - count, 0) + 1))
            words = list(run[start : start + count])
        else:
            words = [self.word(rng, charset) for _ in range(count)]
            if rng.random() < 0.5:
                words[0] = words[0][:1].upper() + words[0][1:]
            if rng.random() < 0.4 and words[-1][-1].isalnum():
                words[-1] += PUNCTUATION[int(rng.integers(5))]
        line = words[0]
        for word in words[1:]:
            if len(line) + 1 + len(word) > max_chars:
                break
            line += " " + word
        return line[:max_chars]


def _recase(word: str, rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.15:
        return word.capitalize()
    if roll < 0.25:
        return word.upper()
    return word.lower() if roll < 0.3 else word


def _decorate(word: str, rng: np.random.Generator) -> str:
    """Attach the punctuation real words carry: trailing marks, quotes, brackets, hyphen, possessive."""
    roll = rng.random()
    if roll < 0.12:
        return word + ".,;:!?"[int(rng.integers(6))]
    if roll < 0.16:
        return f'"{word}"'
    if roll < 0.19:
        return f"({word})"
    if roll < 0.22:
        return f"'{word}"
    if roll < 0.25:
        return word + ("-", "'s")[int(rng.integers(2))]
    return word


def _number(rng: np.random.Generator) -> str:
    """Numbers as people write them: integers, decimals, times, dates, ranges, thousands, signs."""
    fmt = _NUMBER_FORMATS[rng.integers(len(_NUMBER_FORMATS))]
    year = int(rng.integers(1800, 2040))
    return fmt.format(
        a=int(10 ** rng.uniform(0, 4)),
        b=int(rng.integers(60)),
        c=int(rng.integers(1000)),
        h=int(rng.integers(1, 24)),
        d=int(rng.integers(1, 32)),
        m=int(rng.integers(1, 13)),
        y=year,
        y2=year + int(rng.integers(1, 30)),
    )


def _random_string(rng: np.random.Generator, charset: str) -> str:
    """Random characters, mostly alphanumeric, so a model cannot lean on a language model."""
    alnum = [char for char in charset if char.isalnum()] or list(charset)
    pool = [alnum if rng.random() < 0.85 else list(charset) for _ in range(int(rng.integers(1, 9)))]
    return "".join(chars[rng.integers(len(chars))] for chars in pool)


def _prose_texts() -> list[str]:
    """The Zen of Python plus docstrings of a fixed set of stdlib modules and their public members."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # prints the Zen on first import
    texts = [codecs.decode(this.s, "rot13")]
    for name in _PROSE_MODULES:
        module = importlib.import_module(name)
        members = [getattr(module, attr) for attr in sorted(vars(module)) if not attr.startswith("_")]
        texts += [module.__doc__ or ""]
        texts += [m.__doc__ for m in members if getattr(m, "__module__", None) == name and m.__doc__]
    return texts


@functools.cache
def load_corpus() -> Corpus:
    """Build the corpus once per process (~0.2 s); falls back to prose words without ``wamerican``."""
    runs: list[tuple[str, ...]] = []
    for text in _prose_texts():
        for paragraph in text.split("\n\n"):
            run: list[str] = []
            for token in [*paragraph.split(), ""]:
                if _PROSE_TOKEN.fullmatch(token):
                    run.append(token)
                    continue
                if len(run) >= 3:
                    runs.append(tuple(run))
                run = []
    tokens = tuple(token for run in runs for token in run)
    lines = WORD_LIST.read_text(encoding="utf-8").split() if WORD_LIST.is_file() else tokens
    words = tuple(dict.fromkeys(word for word in lines if _PLAIN_WORD.fullmatch(word)))
    return Corpus(words=words, prose_lines=tuple(runs), prose_tokens=tokens)
