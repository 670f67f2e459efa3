import random

import pytest
import torch
from datasets import Dataset
from transformers import AutoProcessor, Seq2SeqTrainingArguments, VisionEncoderDecoderModel

from htr.data.dataset import TrOCRCollator
from htr.training.modeling import build_tiny_model
from htr.training.trainer import TrOCRTrainer


def test_length_grouping_uses_precomputed_lengths_and_never_opens_an_image(tiny_model_dir, tmp_path):
    def no_images(batch):
        raise AssertionError("the sampler opened images")

    lengths = [random.Random(i).randint(3, 60) for i in range(400)]
    dataset = Dataset.from_dict({"image": ["x.png"] * 400, "label": ["y"] * 400}).with_transform(no_images)
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        train_sampling_strategy="group_by_length",
        report_to="none",
        use_cpu=True,
    )
    trainer = TrOCRTrainer(
        model=VisionEncoderDecoderModel.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=dataset,
        processing_class=AutoProcessor.from_pretrained(tiny_model_dir),
        data_collator=TrOCRCollator(),
        train_label_lengths=lengths,
    )
    order = list(trainer._get_train_sampler())
    assert sorted(order) == list(range(400))
    # Within a batch of two the label lengths are close; in random order they differ by ~19 on average.
    spread = sum(abs(lengths[a] - lengths[b]) for a, b in zip(order[::2], order[1::2], strict=True)) / 200
    assert spread < 3


def test_evaluation_keeps_row_order_when_training_groups_by_length(tiny_model_dir, tmp_path):
    dataset = Dataset.from_dict({"image": ["x.png"] * 300, "label": ["y" * (i % 50) for i in range(300)]})
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), train_sampling_strategy="group_by_length", report_to="none", use_cpu=True
    )
    trainer = TrOCRTrainer(
        model=VisionEncoderDecoderModel.from_pretrained(tiny_model_dir),
        args=args,
        processing_class=AutoProcessor.from_pretrained(tiny_model_dir),
        data_collator=TrOCRCollator(),
    )
    assert list(trainer._get_eval_sampler(dataset)) == list(range(300))


@pytest.mark.parametrize("shard_size", [None, "1MB"])
def test_resume_and_best_model_load_every_weight_of_the_checkpoint(tmp_path, shard_size):
    """transformers 5.24's own loader skips the ViT encoder (saved under legacy names) with a warning."""
    checkpoint = tmp_path / "checkpoint-10"
    saved, processor = build_tiny_model(seed=1)
    saved.save_pretrained(checkpoint, **({"max_shard_size": shard_size} if shard_size else {}))
    assert (checkpoint / "model.safetensors.index.json").is_file() == bool(shard_size)
    expected = saved.state_dict()
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    for load in ("resume", "best"):
        model, _ = build_tiny_model(seed=2)
        trainer = TrOCRTrainer(
            model=model, args=args, processing_class=processor, data_collator=TrOCRCollator()
        )
        if load == "resume":
            trainer._load_from_checkpoint(str(checkpoint))
        else:
            trainer.state.best_model_checkpoint = str(checkpoint)
            trainer._load_best_model()
        loaded = trainer.model.state_dict()
        assert any(name.startswith("encoder.layers.0.") for name in loaded)  # the renamed layout in memory
        mismatched = [name for name, tensor in expected.items() if not torch.equal(loaded[name], tensor)]
        assert mismatched == [], f"{load}: not loaded: {mismatched[:3]}"
