import numpy as np
import pytest
from transformers import EvalPrediction

from htr.core.metrics import build_compute_metrics, decode, error_rates, row_cer
from htr.training.modeling import build_tiny_tokenizer


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


class _Tokenizer:
    """Enough of a tokenizer for compute_metrics: ids 1.. are the texts given, 0 is padding."""

    pad_token_id = 0

    def __init__(self, texts):
        self.texts = texts

    def batch_decode(self, ids, skip_special_tokens=True):
        return [self.texts[row[0] - 1] for row in ids]


def test_text_normalization_false_scores_the_text_as_written():
    """--text_normalization false trains on raw labels, so scoring must not normalise them either."""
    decomposed, composed = "cafe\u0301  au lait", "café au lait"  # e + combining accent, two spaces
    assert error_rates([decomposed], [composed])["cer"] == 0
    assert error_rates([decomposed], [composed], normalize=False)["cer"] > 0
    assert row_cer(decomposed, composed) == 0 and row_cer(decomposed, composed, normalize=False) > 0
    tokenizer = _Tokenizer([decomposed, composed])
    prediction = EvalPrediction(predictions=np.array([[1]]), label_ids=np.array([[2]]))
    assert build_compute_metrics(tokenizer)(prediction)["cer"] == 0
    assert build_compute_metrics(tokenizer, normalize=False)(prediction)["cer"] > 0
