"""Character and word error rates, computed the way papers report them: over the whole corpus.

CER = total character edits / total reference characters (WER likewise over words). The mean of
per-line rates weighs a 3-letter word like a 60-character line and is not comparable to
published figures. Both strings are normalised (NFC, whitespace) before scoring. The metric is
computed with jiwer directly: ``evaluate.load("cer")`` downloads code from the Hub at run time.
"""

from collections.abc import Callable, Sequence

import jiwer
import numpy as np
from transformers import EvalPrediction, PreTrainedTokenizerBase

from htr.text import normalize_text


def error_rates(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus-level CER and WER in percent."""
    predictions = [normalize_text(text) for text in predictions]
    references = [normalize_text(text) for text in references]
    return {
        "cer": 100 * jiwer.cer(references, predictions),
        "wer": 100 * jiwer.wer(references, predictions),
    }


def row_cer(prediction: str, reference: str) -> float:
    """One row's CER in percent (for inspecting predictions, not for reporting)."""
    return 100 * jiwer.cer(normalize_text(reference), normalize_text(prediction))


def decode(token_ids: np.ndarray, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Decode generated ids or labels; -100 (loss padding) becomes the pad token first."""
    token_ids = np.where(token_ids == -100, tokenizer.pad_token_id, token_ids)
    return tokenizer.batch_decode(token_ids, skip_special_tokens=True)


def build_compute_metrics(tokenizer: PreTrainedTokenizerBase) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's ``compute_metrics``: decode generated ids and labels, then score the corpus."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return error_rates(decode(prediction.predictions, tokenizer), decode(prediction.label_ids, tokenizer))

    return compute_metrics
