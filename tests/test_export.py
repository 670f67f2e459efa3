"""htr.inference.export + htr.inference.predict --backend onnx + htr.inference.calibration, on the shipped tiny model and rendered words.

One export (the dynamo exporter traces both graphs: the slow part, ~30 s on a busy 2-core machine) is
shared by the module; the int8 folder is quantised from a copy of it.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from htr.core.images import open_image
from htr.core.metrics import error_rates
from htr.core.pipeline import CALIBRATION_FILE, stored_temperature
from htr.core.reading import LineReading
from htr.inference import calibration, export, onnx_model, predict
from htr.inference.confidence import expected_calibration_error, line_errors, reliability
from htr.inference.predict import load, main, read_lines
from htr.inference.predictions import read_predictions

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "trocr-tiny-synthetic"
# fp32 ONNX vs PyTorch logits: the same float32 arithmetic in another order (fused kernels); observed
# differences are ~3e-5 on logits of magnitude ~10, so 1e-3 leaves room and still catches any real change.
LOGITS_ATOL = 1e-3
# int8 vs fp32 transcriptions of the same words: dynamic quantisation moves logits by ~1e-2, which flips a
# near-tie character now and then. On data/heldout (benchmarks/README.md) the CER cost is well below a
# point; 10 % CER between the two outputs on 16 short words allows a couple of flipped characters while
# a broken quantisation (garbage or empty output) is far above it.
INT8_MAX_CER_VS_FP32 = 10.0


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny-onnx"
    export.main([str(SHIPPED), str(out)])
    return out


@pytest.fixture(scope="module")
def int8_dir(onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny-int8"
    shutil.copytree(onnx_dir, out)
    export.quantize_int8([out / onnx_model.ENCODER_FILE, out / onnx_model.DECODER_FILE])
    return out


@pytest.fixture(scope="module")
def images(words_csv: Path) -> list:
    return [open_image(path) for path in sorted((words_csv.parent / "images").iterdir())[:16]]


def test_export_folder_describes_itself(onnx_dir):
    names = {path.name for path in onnx_dir.iterdir()}
    expected = {"encoder.onnx", "decoder.onnx", "onnx_export.json", "config.json", "generation_config.json"}
    assert expected | {"processor_config.json", "tokenizer.json"} <= names
    assert json.loads((onnx_dir / onnx_model.MANIFEST_FILE).read_text())["quantize"] == "none"


def test_onnx_logits_equal_pytorch_step_by_step_with_the_past(onnx_dir, images):
    """Teacher-forced logits: all tokens at once (empty past) and one token at a time (growing past)."""
    model, processor = load(str(SHIPPED), device="cpu")
    pixel_values = processor.image_processor(images[:3], return_tensors="pt").pixel_values
    ids = torch.tensor([[2, 70, 80, 90, 100, 110]] * 3)
    with torch.no_grad():
        expected = model(pixel_values=pixel_values, decoder_input_ids=ids).logits.numpy()
    encoder = onnxruntime.InferenceSession(str(onnx_dir / onnx_model.ENCODER_FILE))
    decoder = onnxruntime.InferenceSession(str(onnx_dir / onnx_model.DECODER_FILE))
    _, cross = encoder.run(None, {"pixel_values": pixel_values.numpy()})
    empty = np.zeros((3, cross.shape[1], 2, cross.shape[3], 0, cross.shape[5]), np.float32)
    feeds = {"input_ids": ids.numpy(), "cross_key_values": cross, "past_key_values": empty}
    all_at_once, _ = decoder.run(None, feeds)
    past, steps = empty, []
    for step in range(ids.shape[1]):
        feeds = {
            "input_ids": ids[:, step : step + 1].numpy(),
            "cross_key_values": cross,
            "past_key_values": past,
        }
        logits, past = decoder.run(None, feeds)
        steps.append(logits)
    np.testing.assert_allclose(all_at_once, expected, atol=LOGITS_ATOL)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), expected, atol=LOGITS_ATOL)
    assert past.shape[4] == ids.shape[1]


@pytest.mark.parametrize("num_beams", [1, 4])
def test_onnx_fp32_reads_the_same_text_and_confidence_as_pytorch(onnx_dir, images, num_beams):
    torch_readings = read_lines(*load(str(SHIPPED), device="cpu"), images, batch_size=8, num_beams=num_beams)
    onnx_readings = read_lines(
        *load(str(onnx_dir), backend="onnx"), images, batch_size=8, num_beams=num_beams
    )
    assert [r.text for r in onnx_readings] == [r.text for r in torch_readings]
    assert len({r.text for r in torch_readings}) > 4  # image-dependent output, so equality means something
    np.testing.assert_allclose(
        [r.confidence for r in onnx_readings], [r.confidence for r in torch_readings], atol=1e-4
    )


def test_int8_export_loads_and_reads_close_to_fp32(onnx_dir, int8_dir, images):
    assert (int8_dir / "decoder.onnx").stat().st_size < 0.5 * (onnx_dir / "decoder.onnx").stat().st_size
    fp32 = [r.text for r in read_lines(*load(str(onnx_dir), backend="onnx"), images)]
    int8 = read_lines(*load(str(int8_dir), backend="onnx"), images)
    assert all(r.text for r in int8) and all(0 < r.confidence <= 1 for r in int8)
    assert error_rates([r.text for r in int8], fp32)["cer"] <= INT8_MAX_CER_VS_FP32


def test_predict_backend_onnx_writes_the_csv_with_confidence(onnx_dir, words_csv, tmp_path):
    onnx_csv, torch_csv = tmp_path / "onnx.csv", tmp_path / "torch.csv"
    main([str(onnx_dir), str(words_csv), "--backend", "onnx", "--output", str(onnx_csv)])
    main([str(SHIPPED), str(words_csv), "--output", str(torch_csv), "--device", "cpu"])
    onnx_rows, torch_rows = read_predictions(onnx_csv), read_predictions(torch_csv)
    assert len(onnx_rows) == 48
    assert [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in torch_rows]
    assert all(0 < float(row["confidence"]) <= 1 for row in onnx_rows)


def test_a_folder_of_the_other_backend_names_the_fix(onnx_dir, words_csv, capsys):
    with pytest.raises(SystemExit):
        main([str(onnx_dir), str(words_csv)])
    assert "add --backend onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(SHIPPED), str(words_csv), "--backend", "onnx"])
    assert "python -m htr.inference.export" in capsys.readouterr().err


def test_fitted_temperature_lowers_ece_of_an_overconfident_score(tmp_path):
    """Lines whose token logits are too sharp: right only ~half as often as the raw score claims."""
    rng = np.random.default_rng(0)
    lines, tokens, vocab = 400, 6, 20
    logits = rng.normal(0, 3, (lines, tokens, vocab))
    rows, grids = [], []
    for line in logits:

        def confidence(temperature: float, line=line) -> float:
            log_probs = torch.log_softmax(torch.tensor(line) / temperature, dim=-1).max(dim=-1).values
            return float(log_probs.mean().exp())

        right = rng.random() < confidence(1.0) ** 3  # far less often right than the score says
        prediction = "cat" if right else "cot"
        rows.append(
            {"image": "x", "label": "cat", "prediction": prediction, "confidence": f"{confidence(1.0):.4f}"}
        )
        grids.append([confidence(t) for t in calibration.TEMPERATURES])

    def ece() -> float:
        scores = np.array([float(row["confidence"]) for row in rows])
        return expected_calibration_error(reliability(scores, line_errors(rows)))

    before = ece()
    fit = calibration.calibrate(tmp_path, rows, grids, num_beams=1)
    assert fit["temperature"] > 1  # over-confident: the fit softens the logits
    assert ece() < before / 2 and fit["after"]["ece"] == pytest.approx(ece())
    assert stored_temperature(tmp_path) == fit["temperature"]


def test_calibrate_cli_stores_the_temperature_and_later_runs_apply_it(onnx_dir, words_csv, images, tmp_path):
    folder = shutil.copytree(onnx_dir, tmp_path / "model")
    (folder / CALIBRATION_FILE).unlink()  # the shipped model's own (exported with it): raw means T = 1 here
    model, processor = load(str(folder), backend="onnx")
    assert model.confidence_temperature == 1.0
    # the export keeps how the shipped model reads: turned level and cut to the ink
    assert LineReading.of(model.config) == LineReading(deskew=True, crop_to_ink=True)
    raw = read_lines(model, processor, images)
    result = main([str(folder), str(words_csv), "--backend", "onnx", "--calibrate"])
    stored = json.loads((folder / CALIBRATION_FILE).read_text())
    assert stored["temperature"] == result.calibration["temperature"] and stored["lines"] == 48
    assert stored["num_beams"] == model.generation_config.num_beams == 1  # no --num_beams: the model's own
    # A stored temperature is applied by load(); T = 2 lowers every greedy token's (argmax) probability.
    (folder / CALIBRATION_FILE).write_text(json.dumps({"temperature": 2.0}))
    model, processor = load(str(folder), backend="onnx")
    assert model.confidence_temperature == 2.0
    tempered = read_lines(model, processor, images, num_beams=1)
    assert [r.text for r in tempered] == [r.text for r in raw]
    assert all(t.confidence < r.confidence for t, r in zip(tempered, raw, strict=True))


def test_reading_with_other_beams_than_the_calibration_was_fitted_at_warns_once(
    onnx_dir, images, tmp_path, caplog
):
    """A temperature fitted at 4 beams says nothing about greedy scores: every reader (predict, pages, the
    demo: all through read_lines) warns, once per process, and not when the beams match."""
    folder = shutil.copytree(onnx_dir, tmp_path / "model")
    (folder / CALIBRATION_FILE).write_text(json.dumps({"temperature": 2.0, "num_beams": 4}))
    model, processor = load(str(folder), backend="onnx")
    predict._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="htr.inference.predict"):
        read_lines(model, processor, images[:2])  # the generation_config's 1 beam
        read_lines(model, processor, images[:2])
    warnings = [record.getMessage() for record in caplog.records if "calibration.json" in record.getMessage()]
    assert len(warnings) == 1 and "num_beams=4" in warnings[0] and "--num_beams 1 --calibrate" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="htr.inference.predict"):
        read_lines(model, processor, images[:2], num_beams=4)
    assert not [record for record in caplog.records if "calibration.json" in record.getMessage()]
