"""The Seq2SeqTrainer with two guards that handwriting fine-tunes need.

* Length-grouped batches from label lengths computed once from the text: the stock sampler reads a
  length column through the dataset's transform, which would open every image to sort them.
* Evaluation in row order, each row gathered once across processes (the stock eval sampler groups
  by length too, and Seq2SeqTrainer keeps the rows repeated to even out the last batch).
* A non-finite training loss stops the run at once with the step and what to change: the stock
  Trainer filters NaN/inf out of its logs (``logging_nan_inf_filter``) and trains on garbage.
* Resuming and ``load_best_model_at_end`` load every weight. transformers 5.24 reads a checkpoint back
  with a plain ``load_state_dict(strict=False)``, but ``save_pretrained`` wrote the ViT encoder under
  its legacy names (``encoder.encoder.layer.0.attention.attention.query``) while the model in memory
  uses the new ones (``encoder.layers.0.attention.q_proj``): every encoder layer was silently skipped
  (one warning line), so a resumed run continued with the encoder of the model it started from, and the
  "best" model had the last epoch's encoder under the best epoch's decoder.
"""

import logging
import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler, SequentialSampler
from transformers import EarlyStoppingCallback, Seq2SeqTrainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import EvalLoopOutput
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from htr.core.errors import HTRError
from htr.training.recipe import precision

logger = logging.getLogger(__name__)


class NonFiniteLossError(HTRError, RuntimeError):
    """The training loss became NaN or infinite."""


def load_checkpoint_weights(model: nn.Module, checkpoint: str | Path) -> None:
    """Load a checkpoint's weights into ``model`` in place through ``from_pretrained``, which maps saved
    (legacy) parameter names to the model's; a weight that still does not match is an error, not a warning."""
    saved = type(model).from_pretrained(checkpoint, dtype=next(model.parameters()).dtype)
    model.load_state_dict(saved.state_dict(), strict=True)


class TrOCRTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer + label-length grouping from precomputed lengths + a NaN/inf loss stop + checkpoints
    that load back every weight."""

    def __init__(self, *args, train_label_lengths: list[int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train_label_lengths = train_label_lengths

    def _get_train_sampler(self, train_dataset=None) -> Sampler | None:
        if self.args.train_sampling_strategy == "group_by_length" and self.train_label_lengths is not None:
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=self.train_label_lengths,
            )
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        # Rows stay in order: predictions_test.csv pairs the predictions with the rows. The stock sampler
        # also groups evaluation rows by length when training does, opening every image to measure it.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def evaluation_loop(self, *args, **kwargs) -> EvalLoopOutput:
        # Seq2SeqTrainer gathers with plain `gather` (for num_return_sequences > 1), which keeps the rows
        # accelerate repeats to even out the last batch across processes: CER counted them twice and the
        # predictions no longer matched the test rows. One sequence per image here, so drop them.
        self.gather_function = self.accelerator.gather_for_metrics
        return super().evaluation_loop(*args, **kwargs)

    def _plain_checkpoint(self, checkpoint: str | None) -> bool:
        """A save_pretrained safetensors checkpoint of the whole model, one file or shards (not DeepSpeed/FSDP
        states or adapters, which the stock loaders handle)."""
        return (
            checkpoint is not None
            and not (self.is_deepspeed_enabled or self.is_fsdp_enabled)
            and any(
                (Path(checkpoint) / name).is_file() for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
            )
        )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if not self._plain_checkpoint(resume_from_checkpoint):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        logger.info("Loading model from %s.", resume_from_checkpoint)
        load_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if not self._plain_checkpoint(best):
            return super()._load_best_model()
        logger.info("Loading best model from %s (score: %s).", best, self.state.best_metric)
        load_checkpoint_weights(self.model, best)

    def training_step(
        self, model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: int | None = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at step {self.state.global_step + 1} "
                f"({precision(self.args.fp16, self.args.bf16)}). "
                f"Lower --learning_rate (now {self.args.learning_rate:g}) or add --warmup_steps, "
                "keep --max_grad_norm at 1.0, "
                + (
                    "switch fp16 to --bf16 true on GPUs that support it, or train in fp32, "
                    if self.args.fp16
                    else ""
                )
                + "and check the last batch's labels. Rerun resumes from the last checkpoint."
            )
        return loss


class LoggedEarlyStopping(EarlyStoppingCallback):
    """transformers' EarlyStoppingCallback, plus the log line that says when and why training stopped."""

    def on_evaluate(self, args, state, control, metrics, **kwargs) -> None:
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if control.should_training_stop:
            logger.info(
                "Early stopping at step %d: %s did not improve by more than %g for %d evaluations (best %s)",
                state.global_step,
                args.metric_for_best_model,
                self.early_stopping_threshold,
                self.early_stopping_patience,
                state.best_metric,
            )
