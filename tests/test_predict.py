"""htr.inference.predict: the inference command and API, on a random tiny TrOCR and rendered words (offline)."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from htr.core.images import open_image, resolve_image_path
from htr.core.metrics import error_rates
from htr.core.pipeline import ImageToTextPipeline, attach_pipeline
from htr.inference.predict import load, main, read_lines, transcribe
from htr.inference.predictions import read_predictions
from htr.training.modeling import build_tiny_model


def save_noisy_model(path: Path) -> Path:
    """A tiny TrOCR with large random weights: unlike the plain fixture (which stops at once), its greedy
    output differs from image to image, so mixed-up or dropped rows would show. The image-to-text pipeline is
    attached as run_trocr.py attaches it to every output dir."""
    model, processor = build_tiny_model(seed=1)
    torch.manual_seed(1)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(0, 0.3)
    model.generation_config.max_length = 8  # keeps generation quick
    model.save_pretrained(path)
    processor.save_pretrained(path)
    attach_pipeline(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_noisy_model(tmp_path_factory.mktemp("noisy-trocr"))


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def images(words_csv) -> list[Path]:
    return sorted((words_csv.parent / "images").iterdir())[:6]


def test_batched_transcription_matches_one_by_one_and_beams_are_used(loaded, images):
    model, processor = loaded
    opened = [open_image(path) for path in images]
    batched = transcribe(model, processor, opened, batch_size=4)
    assert batched == [transcribe(model, processor, [image], batch_size=1)[0] for image in opened]
    assert len(set(batched)) > 1  # image-dependent, so the order check above means something
    assert transcribe(model, processor, opened, batch_size=4, num_beams=3) != batched
    assert all(len(text) <= 2 for text in transcribe(model, processor, opened, max_length=3))


def test_one_image_prints_a_table(model_dir, loaded, images, capsys):
    result = main([str(model_dir), str(images[0]), "--device", "cpu"])
    expected = transcribe(*loaded, [open_image(images[0])])[0]
    assert [row["prediction"] for row in result.rows] == [expected]
    out = capsys.readouterr().out
    assert images[0].name in out and "prediction" in out and "Transcribed 1 images" in out


def test_folder_with_a_corrupt_file_skips_it_counts_it_and_does_the_rest(model_dir, images, tmp_path, capsys):
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    for path in images[:2]:
        shutil.copy(path, folder / path.name)
    shutil.copy(images[2], folder / "sub" / images[2].name)
    (folder / "broken.png").write_bytes(images[3].read_bytes()[:200])  # truncated PNG
    (folder / "notes.txt").write_text("not an image, not picked up")
    output = tmp_path / "predictions.csv"
    result = main([str(model_dir), str(folder), "--output", str(output), "--device", "cpu"])
    expected = sorted([folder / images[0].name, folder / images[1].name, folder / "sub" / images[2].name])
    assert [row["image"] for row in read_predictions(output)] == [str(path.resolve()) for path in expected]
    assert [Path(error.path).name for error in result.skipped] == ["broken.png"]
    out = capsys.readouterr().out
    assert "Skipped 1 unusable image(s)" in out and "broken.png" in out


def test_labelled_csv_scores_the_corpus_like_error_rates_on_the_written_file(
    model_dir, words_csv, tmp_path, capsys
):
    output = tmp_path / "predictions.csv"
    result = main([str(model_dir), str(words_csv), "--output", str(output), "--batch_size", "16"])
    rows = read_predictions(output)
    assert len(rows) == 48 and list(rows[0])[:4] == ["image", "label", "prediction", "cer"]
    assert {"writer", "split", "source"} <= set(rows[0])
    assert all(0 < float(row["confidence"]) <= 1 for row in rows)
    expected = error_rates([row["prediction"] for row in rows], [row["label"] for row in rows])
    assert result.metrics == pytest.approx(expected)
    assert f"CER {expected['cer']:.2f} %  WER {expected['wer']:.2f} %" in capsys.readouterr().out


def test_json_output_is_a_list_of_rows(model_dir, loaded, images, tmp_path):
    output = tmp_path / "predictions.json"
    main([str(model_dir), str(images[0]), str(images[1]), "--output", str(output)])
    records = json.loads(output.read_text())
    expected = transcribe(*loaded, [open_image(path) for path in images[:2]])
    assert [record["prediction"] for record in records] == expected
    assert records[0]["image"] == str(images[0].resolve()) and records[0]["cer"] is None
    assert all(0 < record["confidence"] <= 1 for record in records)


SHIPPED = Path(__file__).resolve().parent.parent / "models" / "trocr-tiny-synthetic"


@pytest.mark.parametrize("num_beams", [1, 4])
def test_confidence_is_lower_for_blank_and_noise_than_for_clean_words(words_csv, num_beams):
    """The trained shipped model: a random one is equally unsure of everything, so it cannot show this."""
    model, processor = load(str(SHIPPED), device="cpu")
    clean = [open_image(path) for path in sorted((words_csv.parent / "images").iterdir())[:8]]
    size = clean[0].size
    blank = Image.new("RGB", size, "white")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    readings = read_lines(model, processor, [*clean, blank, noise], num_beams=num_beams)
    assert [reading.text for reading in readings] == transcribe(
        model, processor, [*clean, blank, noise], num_beams=num_beams
    )
    clean_median = float(np.median([reading.confidence for reading in readings[:-2]]))
    assert all(reading.confidence < clean_median for reading in readings[-2:])
    assert all(0 < reading.confidence <= 1 for reading in readings)


def test_a_missing_input_is_a_usage_error_before_any_model_loads(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "no-model"), str(tmp_path / "missing.png")])
    assert "missing.png: no such image, folder or CSV" in capsys.readouterr().err


def test_transformers_pipeline_reads_an_output_dir_like_transcribe(model_dir, loaded, images, capfd):
    """pipeline("image-to-text") finds the pipeline.py attached to the folder through config.custom_pipelines,
    before transformers 5 would redirect the task to "image-text-to-text" (which cannot run TrOCR)."""
    from transformers import pipeline

    readings = read_lines(*loaded, [open_image(path) for path in images])
    expected = [reading.text for reading in readings]
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # even for a local folder
        pipeline("image-to-text", model=str(model_dir))
    reader = pipeline("image-to-text", model=str(model_dir), trust_remote_code=True, device="cpu")

    assert type(reader).__name__ == "ImageToTextPipeline" and reader.task == "image-to-text"
    assert "image-text-to-text" not in capfd.readouterr().err  # the redirect's warning was never reached
    assert texts(reader(str(images[0]))) == [expected[0]]
    first = reader(open_image(images[1]))
    assert texts(first) == [expected[1]]
    # The same confidence as htr.inference.predict's (one function computes both); batching pads, hence approx.
    assert first[0]["confidence"] == pytest.approx(readings[1].confidence, abs=1e-4)
    # 6 images in batches of 4: a full and a partial batch, each split back into one result per image.
    batched = reader([str(path) for path in images], batch_size=4)
    assert [texts(result) for result in batched] == [[text] for text in expected] and len(set(expected)) > 1
    assert [result[0]["confidence"] for result in batched] == pytest.approx(
        [reading.confidence for reading in readings], abs=1e-4
    )
    beams = transcribe(*loaded, [open_image(images[0])], num_beams=3, max_length=5)
    assert texts(reader(str(images[0]), num_beams=3, max_length=5)) == beams
    assert texts(reader(str(images[0]), generate_kwargs={"num_beams": 3, "max_length": 5})) == beams
    # Where htr is importable, passing the class runs the same code without trust_remote_code.
    direct = pipeline("image-to-text", model=str(model_dir), pipeline_class=ImageToTextPipeline, device="cpu")
    direct_results = direct([str(path) for path in images[:2]])
    assert [texts(result) for result in direct_results] == [[text] for text in expected[:2]]


def texts(result: list[dict]) -> list[str]:
    """The pipeline's texts without their confidences."""
    return [item["generated_text"] for item in result]


def test_pipeline_reads_transparent_and_16_bit_images_like_training(model_dir, loaded, images, tmp_path):
    """The pipeline repeats htr.core.images' conversion (it cannot import htr): transparency is white paper, 16-bit
    gray is scaled, not clipped to white."""
    reader = ImageToTextPipeline(model=loaded[0], processor=loaded[1], device="cpu")
    ink = open_image(images[0]).convert("L")
    transparent = tmp_path / "transparent.png"
    Image.merge("LA", (ink, ink.point(lambda value: 255 - value))).save(transparent)  # ink on nothing
    deep = tmp_path / "16bit.png"
    ink.point(lambda value: value * 257, "I").convert("I;16").save(deep)
    for path in (transparent, deep):
        pixels = loaded[1].image_processor(open_image(path), return_tensors="pt").pixel_values
        assert torch.equal(reader.preprocess(str(path))["pixel_values"], pixels)
        assert torch.equal(reader.preprocess(Image.open(path))["pixel_values"], pixels)
        assert texts(reader(str(path))) == transcribe(*loaded, [open_image(path)])


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (bash setup.sh)")
def test_tesseract_benchmark_scores_both_engines_on_the_same_images(model_dir, words_csv, tmp_path, capsys):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "tesseract_peer.py"
    spec = importlib.util.spec_from_file_location("tesseract_peer", script)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    argv = ["--model", str(model_dir), "--csv", str(words_csv), "--max_samples", "4"]
    scores = benchmark.main([*argv, "--output_dir", str(tmp_path)])
    trocr = read_predictions(tmp_path / "predictions_trocr.csv")
    tesseract = read_predictions(tmp_path / "predictions_tesseract.csv")
    assert len(trocr) == 4 and [row["image"] for row in trocr] == [row["image"] for row in tesseract]
    assert json.loads((tmp_path / "peer_results.json").read_text()) == scores
    out = capsys.readouterr().out
    tesseract_name = next(name for name in scores if name != "TrOCR")
    for rows, name in ((trocr, "TrOCR"), (tesseract, tesseract_name)):
        expected = error_rates([row["prediction"] for row in rows], [row["label"] for row in rows])
        assert scores[name]["cer"] == pytest.approx(expected["cer"]) and scores[name]["images_per_second"] > 0
        assert f"{scores[name]['cer']:.2f}" in out
    assert tesseract_name.startswith("Tesseract 5")
    assert any(row["prediction"] for row in tesseract)  # Tesseract really read the rendered words


@pytest.fixture
def extreme_images(tmp_path: Path) -> list[Path]:
    """Shapes the tiny model's processor (at most 128×32, aspect kept) would round to 0 px."""
    paths = []
    for name, size in (("wide.png", (4097, 32)), ("tall.png", (40, 2000)), ("sliver.png", (1, 64))):
        paths.append(tmp_path / name)
        Image.new("L", size, 255).save(paths[-1])
    return paths


def test_images_of_extreme_shape_are_skipped_and_listed_the_rest_transcribed(
    model_dir, images, extreme_images, tmp_path, capsys
):
    output = tmp_path / "out.csv"
    result = main([str(model_dir), str(images[0]), *map(str, extreme_images), "--output", str(output)])
    assert [row["image"] for row in read_predictions(output)] == [str(images[0].resolve())]
    assert sorted(Path(error.path).name for error in result.skipped) == ["sliver.png", "tall.png", "wide.png"]
    assert {error.kind for error in result.skipped} == {"extreme_shape"}
    out = capsys.readouterr().out
    assert "Skipped 3 unusable image(s)" in out and "4097×32 px is too wide for this model" in out


def test_the_pipeline_names_an_extreme_shape_instead_of_failing_inside_pil(model_dir, extreme_images):
    from transformers import pipeline

    direct = pipeline("image-to-text", model=str(model_dir), pipeline_class=ImageToTextPipeline, device="cpu")
    with pytest.raises(ValueError, match="too tall for this model"):
        direct(str(extreme_images[1]))


def test_an_unwritable_output_fails_before_any_image_is_read(model_dir, images, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(SystemExit):
        main([str(model_dir), str(images[0]), "--output", str(blocker / "out.csv")])
    assert "cannot write there" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("image,label\n", "the CSV has a header but no data rows"),
        ("", "the CSV is empty"),
        ("image,label\n{img},a,b\n", "the row has 3 fields but the header has 2"),
        ('image,label\n{img},ok\n{img},"open\n{img},swallowed\n{img},x"\n', "check the quotes on line 3"),
    ],
)
def test_a_broken_csv_is_a_one_line_error_like_training_gives(
    model_dir, images, tmp_path, capsys, content, expected
):
    csv_path, output = tmp_path / "test.csv", tmp_path / "out" / "predictions.csv"
    csv_path.write_text(content.format(img=images[0]))
    with pytest.raises(SystemExit):
        main([str(model_dir), str(csv_path), "--output", str(output)])
    err = capsys.readouterr().err
    assert expected in err and str(csv_path) in err and "Traceback" not in err
    assert not output.exists()  # the writability check leaves no empty predictions file behind


def test_a_latin1_csv_names_the_file_and_the_iconv_fix(model_dir, images, tmp_path, capsys):
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes(f"image,label\n{images[0]},café\n".encode("latin-1"))
    with pytest.raises(SystemExit):
        main([str(model_dir), str(csv_path)])
    err = capsys.readouterr().err
    assert "latin1.csv" in err and "iconv" in err


def test_a_label_column_spelled_differently_is_named_with_the_flag(model_dir, images, tmp_path, caplog):
    csv_path = tmp_path / "test.csv"
    csv_path.write_text(f"image,Label\n{images[0]},hello\n")
    result = main([str(model_dir), str(csv_path)])
    assert result.metrics is None and len(result.rows) == 1
    assert "did you mean 'Label'" in caplog.text and "--label_column_name Label" in caplog.text
    scored = main([str(model_dir), str(csv_path), "--label_column_name", "Label"])
    assert scored.metrics is not None


def test_a_nonexistent_model_path_is_named_not_a_repo_id_puzzle(images, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "no" / "such-model"), str(images[0])])
    err = capsys.readouterr().err
    assert "such-model: no such model folder" in err and "Repo id" not in err


@pytest.mark.parametrize("missing", ["model.safetensors", "processor_config.json"])
def test_a_model_folder_missing_weights_or_processor_lists_what_it_holds(
    model_dir, images, tmp_path, capsys, missing
):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / missing).unlink()
    with pytest.raises(SystemExit):
        main([str(broken), str(images[0])])
    err = capsys.readouterr().err
    assert "is not a complete model folder" in err and "it holds:" in err and "Traceback" not in err


def test_the_pipeline_applies_a_stored_calibration_like_predict(model_dir, images, tmp_path):
    from transformers import pipeline

    from htr.core.pipeline import CALIBRATION_FILE

    calibrated = Path(shutil.copytree(model_dir, tmp_path / "calibrated"))
    (calibrated / CALIBRATION_FILE).write_text(json.dumps({"temperature": 2.0}))
    raw = read_lines(*load(str(model_dir)), [open_image(images[0])])[0]
    expected = read_lines(*load(str(calibrated)), [open_image(images[0])])[0]
    reader = pipeline("image-to-text", model=str(calibrated), trust_remote_code=True, device="cpu")
    result = reader(str(images[0]))[0]
    assert result["generated_text"] == expected.text == raw.text
    assert result["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    assert expected.confidence < raw.confidence - 1e-3  # T = 2 did change the score


def test_the_shipped_model_carries_this_repository_s_pipeline_code():
    """models/trocr-tiny-synthetic holds copies (they travel with the weights); they must not drift."""
    from htr.core import pipeline as pipeline_module
    from htr.core.pipeline import MODULE_FILES

    shipped = Path(__file__).resolve().parents[1] / "models" / "trocr-tiny-synthetic"
    source = Path(pipeline_module.__file__).parent
    for name in MODULE_FILES:
        assert (shipped / name).read_bytes() == (source / name).read_bytes(), (
            f"{shipped / name} differs from htr/{name}: run python -m htr.core.pipeline {shipped}"
        )


def test_calibrating_on_lines_that_are_all_wrong_says_why_and_writes_nothing(
    model_dir, words_csv, tmp_path, capsys
):
    from htr.core.pipeline import CALIBRATION_FILE

    folder = Path(shutil.copytree(model_dir, tmp_path / "untrained"))  # a random model: every line wrong
    with pytest.raises(SystemExit):
        main([str(folder), str(words_csv), "--num_beams", "1", "--calibrate"])
    err = capsys.readouterr().err
    assert "reads 0 of these 48 labelled lines exactly right" in err and "Traceback" not in err
    assert not (folder / CALIBRATION_FILE).exists()


def test_split_reads_only_that_split_and_names_the_values_when_none_match(
    model_dir, words_csv, tmp_path, capsys
):
    rows = list(csv.DictReader(words_csv.open(newline="")))
    mixed = tmp_path / "english.csv"
    with mixed.open("w", newline="") as handle:  # the same rows, every third one spelled `val`
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for index, row in enumerate(rows):
            image = str(resolve_image_path(row["image"], words_csv.parent))
            writer.writerow({**row, "image": image, "split": "val" if index % 3 == 0 else "train"})
    output = tmp_path / "validation.csv"
    main([str(model_dir), str(mixed), "--split", "validation", "--output", str(output)])
    assert len(read_predictions(output)) == len(range(0, len(rows), 3))
    with pytest.raises(SystemExit):
        main([str(model_dir), str(mixed), "--split", "test"])
    assert "split column values: ['train', 'val']" in capsys.readouterr().err
