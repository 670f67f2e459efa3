"""The Seq2SeqTrainer with two guards that handwriting fine-tunes need.

* Length-grouped batches from label lengths computed once from the text: the stock sampler reads a
  length column through the dataset's transform, which would open every image to sort them.
* Evaluation in row order, each row gathered once across processes (the stock eval sampler groups
  by length too, and Seq2SeqTrainer keeps the rows repeated to even out the last batch).
* A non-finite training loss stops the run at once with the step and what to change: the stock
  Trainer filters NaN/inf out of its logs (``logging_nan_inf_filter``) and trains on garbage.
"""

import math

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler, SequentialSampler
from transformers import Seq2SeqTrainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import EvalLoopOutput


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class TrOCRTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer + label-length grouping from precomputed lengths + a NaN/inf loss stop."""

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

    def training_step(
        self, model: nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: int | None = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not math.isfinite(loss.item()):
            precision = "fp16" if self.args.fp16 else "bf16" if self.args.bf16 else "fp32"
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at step {self.state.global_step + 1} ({precision}). "
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
