"""Offline text for synthetic handwriting: words, numbers, random strings and English prose lines.

A recogniser trained only on dictionary words learns to guess words instead of reading glyphs, so
the mix also holds digits, dates, punctuation and random character strings. A small decoder leans on
the language it was trained on where the ink is unclear, so the prose is English that people wrote:
the literary quotations of Webster's 1913 dictionary (GCIDE: Shakespeare to Macaulay, the English of
17th-19th century letters), Bierce's *Devil's Dictionary* (1911), WordNet's example sentences
(everyday modern English) and the fortune quotations. Words come from ``wamerican``. Every source is
a Debian package (``data_prep/apt-packages.txt``; licences in ``docs/data.md``); a missing one stops
with the command that installs it. The licence texts of ``/usr/share/common-licenses`` are never used:
they are the test text of ``data_prep.scan_sets``.
"""

import functools
import gzip
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Recorded beside every preset set rendered from this text (data_prep.presets): change it whenever the text
# a seed draws changes, so sets rendered from the old text are rebuilt, not reused.
CORPUS_VERSION = "english-prose-1"  # was the stdlib docstrings and licence text until 2026-12-07

WORD_LIST = Path("/usr/share/dict/words")
PUNCTUATION = ".,;:'\"!?-()/&"
DEFAULT_CHARSET = string.ascii_letters + string.digits + PUNCTUATION

GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
DEVIL = Path("/usr/share/dictd/devil.dict.dz")
WORDNET = Path("/usr/share/wordnet")
FORTUNES = Path("/usr/share/games/fortunes")
# Quotations in Middle English or Spenser's deliberate archaisms ("sdeigns", "verray parfit") teach
# spellings no letter of the 17th-20th century uses.
_MIDDLE_ENGLISH = re.compile(
    r"Chaucer|Gower|Wyclif|Piers Plowman|Rom\. of R\.|Spenser|Lydgate|Mandeville|R\. of"
)
# Everyday topics; computers, linux, perl, debian, startrek, zippy, ascii-art and translate-me are
# technical, fan or non-English text.
_FORTUNE_FILES = (
    "art",
    "education",
    "food",
    "fortunes",
    "humorists",
    "kids",
    "law",
    "literature",
    "love",
    "medicine",
    "men-women",
    "miscellaneous",
    "news",
    "people",
    "pets",
    "platitudes",
    "politics",
    "science",
    "songs-poems",
    "sports",
    "wisdom",
    "work",
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
class Prose:
    """One source's passages as runs of prose tokens, and the share of prose drawn from it."""

    name: str
    weight: float
    runs: tuple[tuple[str, ...], ...]
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Corpus:
    """Text sources, sampled only through a numpy ``Generator`` so output is fixed by the seed."""

    words: tuple[str, ...]
    prose: tuple[Prose, ...]

    def _source(self, rng: np.random.Generator) -> Prose:
        weights = np.array([source.weight for source in self.prose])
        return self.prose[rng.choice(len(self.prose), p=weights / weights.sum())]

    def word(self, rng: np.random.Generator, charset: str = DEFAULT_CHARSET) -> str:
        """One word-like token: dictionary word (mixed case, punctuation), prose token, number or random."""
        roll = rng.random()
        if roll < 0.45:
            return _decorate(_recase(self.words[rng.integers(len(self.words))], rng), rng)
        if roll < 0.7:
            tokens = self._source(rng).tokens
            return tokens[rng.integers(len(tokens))]
        if roll < 0.85:
            return _number(rng)
        return _random_string(rng, charset)

    def line(
        self, rng: np.random.Generator, min_words: int, max_words: int, max_chars: int, charset: str
    ) -> str:
        """A text line of ``min_words``..``max_words`` words, cut to at most ``max_chars`` characters."""
        count = int(rng.integers(min_words, max_words + 1))
        if rng.random() < 0.5:
            runs = self._source(rng).runs
            run = runs[rng.integers(len(runs))]
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


def _gcide_quotations() -> list[str]:
    """The dictionary's indented literary quotations (``... arrival.  --Dryden.``), author dropped."""
    text = gzip.decompress(GCIDE.read_bytes()).decode("utf-8", "replace")
    quotations = []
    # a block of lines indented 8+, ended by a line that is only a source tag ("[1913 Webster]")
    for block in re.findall(r"(?:^ {8,}(?!\[[^\]]*\]$)\S.*\n)+", text, re.MULTILINE):
        quoted = re.fullmatch(r"(.+?)\s+--\s?([A-Z].*)", " ".join(block.split()))
        if quoted and "Webster]" not in block and not _MIDDLE_ENGLISH.match(quoted[2]):  # not usage notes
            quotations.append(re.sub(r"[\[\]{}]", "", quoted[1]))  # [[AE]neas], {Cross refs}
    return quotations


def _devil_definitions() -> list[str]:
    """Bierce's definitions and verses, paragraph by paragraph, headwords and italics marks dropped."""
    text = gzip.decompress(DEVIL.read_bytes()).decode("latin-1")
    text = text[text.index("PREFACE") :]  # before it: dictfmt's header and the e-text's notice
    return [re.sub(r"^[A-Z][A-Z' ,-]*, [a-z.]+\s+|_", "", paragraph) for paragraph in text.split("\n\n")]


def _wordnet_examples() -> list[str]:
    """The quoted example sentences of WordNet's glosses (``"we acquainted him with the truth"``)."""
    examples = []
    for pos in ("noun", "verb", "adj", "adv"):
        for entry in (WORDNET / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if not entry.startswith("  "):  # the licence header is indented
                examples += re.findall(r'"([^"]+)"', entry.partition("| ")[2])
    return examples


def _fortunes() -> list[str]:
    """Quotations of the everyday fortune files, each without its ``-- Author`` line."""
    passages = []
    for name in _FORTUNE_FILES:
        text = re.sub(".\x08", "", (FORTUNES / name).read_text(encoding="utf-8"))  # overstruck letters
        passages += [re.split(r"\n\s*--\s", fortune)[0] for fortune in text.split("\n%\n")]
    return passages


@dataclass(frozen=True)
class Source:
    """A prose source: the Debian package and a file it installs, its share of the prose, its reader."""

    name: str
    package: str
    needs: Path
    weight: float
    read: Callable[[], list[str]]


# Half the prose in the English written before 1920 (as in old letters), half modern.
SOURCES = (
    Source("gcide quotations", "dict-gcide", GCIDE, 0.4, _gcide_quotations),
    Source("devil's dictionary", "dict-devil", DEVIL, 0.1, _devil_definitions),
    Source("wordnet examples", "wordnet-base", WORDNET / "data.noun", 0.2, _wordnet_examples),
    Source("fortunes", "fortunes", FORTUNES / "people", 0.3, _fortunes),
)


def _require(path: Path, package: str) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the synthetic text needs Debian's {package} "
            f"(sudo apt-get install {package}, or bash setup.sh)"
        )


def _runs(passages: list[str]) -> tuple[tuple[str, ...], ...]:
    """Runs of 3+ consecutive prose tokens; markup, symbols and code-like tokens end a run."""
    runs = []
    for passage in passages:
        run: list[str] = []
        for token in [*passage.split(), ""]:
            if _PROSE_TOKEN.fullmatch(token):
                run.append(token)
                continue
            if len(run) >= 3:
                runs.append(tuple(run))
            run = []
    return tuple(runs)


@functools.cache
def load_corpus() -> Corpus:
    """Build the corpus once per process (~1.5 s, most of it GCIDE); synthetic's workers inherit it."""
    for source in SOURCES:
        _require(source.needs, source.package)
    _require(WORD_LIST, "wamerican")
    prose = []
    for source in SOURCES:
        runs = _runs(source.read())
        prose.append(Prose(source.name, source.weight, runs, tuple(token for run in runs for token in run)))
    words = WORD_LIST.read_text(encoding="utf-8").split()
    return Corpus(
        words=tuple(dict.fromkeys(w for w in words if _PLAIN_WORD.fullmatch(w))), prose=tuple(prose)
    )
