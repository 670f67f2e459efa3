import numpy as np
import pytest

from htr.metrics import decode, error_rates, row_cer
from htr.modeling import build_tiny_tokenizer


def test_one_substitution_in_three_characters_is_a_third():
    assert error_rates(["abd"], ["abc"])["cer"] == pytest.approx(100 / 3)
    assert row_cer("abd", "abc") == pytest.approx(100 / 3)


def test_rates_are_corpus_level_not_the_mean_of_rows():
    # Row 1: 1 edit / 3 chars (33.3 %); row 2: 0 edits / 11 chars. Mean of rates 16.7 %, corpus 1/14.
    scores = error_rates(["abd", "hello world"], ["abc", "hello world"])
    assert scores["cer"] == pytest.approx(100 / 14)
    assert scores["wer"] == pytest.approx(100 / 3)  # 1 wrong word out of 3


def test_unicode_and_spacing_differences_are_not_errors():
    # "é" precomposed vs e + combining accent, and a double space / NBSP.
    assert error_rates(["caf\u00e9  au\u00a0lait"], ["cafe\u0301 au lait"]) == {"cer": 0.0, "wer": 0.0}


def test_decode_turns_loss_padding_into_nothing():
    tokenizer = build_tiny_tokenizer()
    ids = np.array([[*tokenizer("hi").input_ids, -100, -100]])
    assert decode(ids, tokenizer) == ["hi"]
