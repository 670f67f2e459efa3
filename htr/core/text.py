"""Label clean-up shared by data preparation, training and evaluation.

The seed "cleaned Unicode and spacing": the same transcription typed on two machines can differ in
Unicode composition (``é`` as one code point or as ``e`` + combining accent) and in runs of spaces,
tabs or non-breaking spaces. Both inflate CER without any real reading error, so every label and
every prediction goes through one function before it is stored or scored.
"""

# One definition, in the standalone file that model folders carry beside pipeline.py.
from htr.core.reading import normalize_text

__all__ = ["normalize_text"]
