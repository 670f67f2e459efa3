import torch
from transformers import AutoProcessor, GenerationConfig, VisionEncoderDecoderModel

from htr.training.modeling import build_tiny_model, build_tiny_tokenizer, fix_model_config, transfer_weights


def test_tiny_tokenizer_is_laid_out_like_trocr_base():
    tokenizer = build_tiny_tokenizer()
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    ids = tokenizer("Hi there").input_ids
    assert ids[0] == 0 and ids[-1] == 2
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Hi there"


def test_saved_tiny_model_loads_through_from_pretrained(tiny_model_dir):
    model = VisionEncoderDecoderModel.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    assert model.config.decoder_start_token_id == processor.tokenizer.eos_token_id == 2
    assert model.generation_config.max_length == 128


def _broken_model():
    """A model whose config lacks every id, as some hand-made checkpoints do."""
    model, processor = build_tiny_model()
    for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
        setattr(model.config, name, None)
    model.generation_config = GenerationConfig()  # max_length 20, no ids
    return model, processor


def test_missing_ids_are_filled_with_trocr_start_token_not_bos():
    model, processor = _broken_model()
    changes = fix_model_config(model, processor.tokenizer, generation_max_length=96, num_beams=1)
    assert model.config.decoder_start_token_id == 2  # </s>, not <s> (0)
    assert model.config.pad_token_id == 1
    assert model.generation_config.decoder_start_token_id == 2
    assert any(change.startswith("decoder_start_token_id") for change in changes)


def test_loss_and_generate_work_after_the_fix_and_crash_before():
    model, processor = _broken_model()
    pixel_values = torch.zeros(1, 3, 32, 128)
    labels = torch.tensor([processor.tokenizer("ab").input_ids])
    try:
        model(pixel_values=pixel_values, labels=labels)
        raised = False
    except ValueError:
        raised = True
    assert raised, "an unfixed config should not compute a loss"
    fix_model_config(model, processor.tokenizer, generation_max_length=96, num_beams=1)
    assert torch.isfinite(model(pixel_values=pixel_values, labels=labels).loss)
    assert model.generate(pixel_values).shape[0] == 1


def test_generation_length_is_not_the_silent_default_of_20():
    model, processor = _broken_model()
    fix_model_config(model, processor.tokenizer, generation_max_length=60, num_beams=4)
    assert model.generation_config.max_length == 60
    assert model.generation_config.num_beams == 4 and model.generation_config.early_stopping
    # An untrained decoder never emits </s>: generation must run to the configured length, not 20.
    with torch.no_grad():
        model.decoder.output_projection.bias = torch.nn.Parameter(torch.zeros(model.config.vocab_size))
        model.decoder.output_projection.bias[processor.tokenizer.eos_token_id] = -1e4
    out = model.generate(torch.zeros(1, 3, 32, 128), num_beams=1)
    assert out.shape[1] == 60


def test_a_different_start_token_in_a_checkpoint_is_kept_and_warned(caplog):
    model, processor = build_tiny_model()
    model.config.decoder_start_token_id = 0
    fix_model_config(model, processor.tokenizer, generation_max_length=32, num_beams=1)
    assert model.config.decoder_start_token_id == 0
    assert "start from </s>" in caplog.text


def test_a_words_model_starts_a_wider_line_model_with_its_weights():
    words, _ = build_tiny_model(image_size=(32, 128), max_target_length=24, seed=1)
    lines, _ = build_tiny_model(image_size=(32, 512), max_target_length=80, seed=2)
    counts = transfer_weights(words, lines)
    assert counts["prefix"] == 2 and counts["fresh"] == 0  # the ViT and decoder position tables
    source, target = words.state_dict(), lines.state_dict()
    layer = "decoder.model.decoder.layers.0.self_attn.k_proj.weight"
    assert torch.equal(source[layer], target[layer])
    vit = (
        "encoder.embeddings.position_embeddings"  # [1, 1 + 128 / 4 patches, width] -> [1, 1 + 512 / 4, width]
    )
    assert torch.equal(target[vit][:, :33], source[vit]) and target[vit].shape[1] == 129
    assert not torch.equal(target[vit][:, 33:66], source[vit][:, 1:])  # new columns keep fresh values
    text = "decoder.model.decoder.embed_positions.weight"
    rows = source[text].shape[0]  # max_target_length + 2 specials + TrOCR's offset of 2
    assert torch.equal(target[text][:rows], source[text]) and target[text].shape[0] == rows + 80 - 24


def test_a_deeper_encoder_grown_from_a_trained_model_reads_exactly_as_it_did():
    shallow, _ = build_tiny_model(encoder_layers=2, seed=1)
    deep, _ = build_tiny_model(encoder_layers=4, seed=2)
    counts = transfer_weights(shallow, deep)
    assert counts["fresh"] == 2 * 16  # two new ViT layers of 16 tensors each
    pixels, labels = torch.randn(2, 3, 32, 128), torch.tensor([[5, 6, 7, 2], [8, 9, 2, 1]])
    shallow.eval(), deep.eval()
    with torch.no_grad():
        assert torch.allclose(
            deep(pixel_values=pixels, labels=labels).logits,
            shallow(pixel_values=pixels, labels=labels).logits,
            atol=1e-5,
        )
        new_branch = deep.encoder.layers[3].mlp.fc2
        assert not new_branch.weight.any()
    # The new layers are trainable, not frozen at the identity: the zeroed branch gets a gradient.
    deep.train()
    deep(pixel_values=pixels, labels=labels).loss.backward()
    assert new_branch.weight.grad.abs().sum() > 0


def test_a_taller_wider_input_starts_from_the_smaller_models_reading():
    small, _ = build_tiny_model(image_size=(32, 128), patch_size=(32, 4), seed=1)
    large, _ = build_tiny_model(image_size=(48, 256), patch_size=(48, 8), seed=2)
    counts = transfer_weights(small, large)
    assert counts["resampled"] == 1 and counts["fresh"] == 0  # the patch kernel; same number of patches
    # A smooth line image and the same image enlarged to the large input embed alike.
    pixels = torch.nn.functional.interpolate(torch.randn(1, 3, 8, 32), size=(32, 128), mode="bilinear")
    enlarged = torch.nn.functional.interpolate(pixels, size=(48, 256), mode="bilinear")
    small.eval(), large.eval()
    with torch.no_grad():
        before = small.encoder(pixel_values=pixels).last_hidden_state
        after = large.encoder(pixel_values=enlarged).last_hidden_state
        unrelated = build_tiny_model(image_size=(48, 256), patch_size=(48, 8), seed=3)[0].eval()
        fresh = unrelated.encoder(pixel_values=enlarged).last_hidden_state
    assert (after - before).abs().mean() < 0.1 * (fresh - before).abs().mean()
