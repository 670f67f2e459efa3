"""Character and word error rates, computed the way papers report them: over the whole corpus.

CER = total character edits / total reference characters (WER likewise over words). The mean of
per-line rates weighs a 3-letter word like a 60-character line and is not comparable to
published figures. Both strings are normalised (NFC, whitespace) before scoring unless the run turned
normalisation off (``--text_normalization false``): then what is scored is what was trained on. The metric is
computed with jiwer directly: ``evaluate.load("cer")`` downloads code from the Hub at run time.
"""

from collections.abc import Callable, Sequence

import jiwer
import numpy as np
from transformers import EvalPrediction, PreTrainedTokenizerBase

from htr.core.text import normalize_text


def _clean(text: str, normalize: bool) -> str:
    return normalize_text(text) if normalize else text


def error_rates(
    predictions: Sequence[str], references: Sequence[str], normalize: bool = True
) -> dict[str, float]:
    """Corpus-level CER and WER in percent, on normalised text unless ``normalize`` is False."""
    predictions = [_clean(text, normalize) for text in predictions]
    references = [_clean(text, normalize) for text in references]
    return {
        "cer": 100 * jiwer.cer(references, predictions),
        "wer": 100 * jiwer.wer(references, predictions),
    }


def row_cer(prediction: str, reference: str, normalize: bool = True) -> float:
    """One row's CER in percent (for inspecting predictions, not for reporting)."""
    return 100 * jiwer.cer(_clean(reference, normalize), _clean(prediction, normalize))


def decode(token_ids: np.ndarray, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Decode generated ids or labels; -100 (loss padding) becomes the pad token first."""
    token_ids = np.where(token_ids == -100, tokenizer.pad_token_id, token_ids)
    return tokenizer.batch_decode(token_ids, skip_special_tokens=True)


def build_compute_metrics(
    tokenizer: PreTrainedTokenizerBase, normalize: bool = True
) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's ``compute_metrics``: decode generated ids and labels, then score the corpus."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predictions = decode(prediction.predictions, tokenizer)
        return error_rates(predictions, decode(prediction.label_ids, tokenizer), normalize)

    return compute_metrics
