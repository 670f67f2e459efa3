from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoProcessor

from htr.core.images import resolve_image_path
from htr.data.dataset import (
    ImageTextTransform,
    SplitPlan,
    TrOCRCollator,
    hold_out,
    label_lengths,
    load_splits,
    order_by_difficulty,
    read_csv,
)


def test_relative_paths_start_at_the_csv_folder_unless_image_root_or_absolute(tmp_path):
    assert resolve_image_path("img/a.png", tmp_path) == tmp_path / "img/a.png"
    assert resolve_image_path("img/a.png", tmp_path, "/data") == Path("/data/img/a.png")
    assert resolve_image_path("/abs/a.png", tmp_path, "/data") == Path("/abs/a.png")


def test_csv_values_stay_text_and_bom_does_not_rename_a_column(tmp_path):
    path = tmp_path / "english.csv"
    path.write_bytes('\ufeffimage,label\na.png,NA\nb.png,007\nc.png,"comma, and\nnewline"\n'.encode())
    dataset = read_csv(path)
    assert dataset.column_names == ["image", "label"]
    assert list(dataset["label"]) == ["NA", "007", "comma, and\nnewline"]


def test_writer_disjoint_split_keeps_each_writer_on_one_side():
    writers = [f"w{i % 10}" for i in range(200)]
    dataset = Dataset.from_dict(
        {"image": [f"{i}.png" for i in range(200)], "label": ["x"] * 200, "writer": writers}
    )
    parts = hold_out(dataset, {"validation": 20}, seed=0, writer_column="writer")
    train, validation = set(parts["train"]["writer"]), set(parts["validation"]["writer"])
    assert train and validation and not train & validation
    assert len(parts["train"]) + len(parts["validation"]) == 200
    assert len(parts["validation"]) == 40  # two whole writers of 20 rows


def test_split_column_divides_the_train_csv(tmp_path):
    path = tmp_path / "english.csv"
    path.write_text("image,label,split\na.png,a,train\nb.png,b,validation\nc.png,c,test\nd.png,d,train\n")
    splits, sources = load_splits(plan(path, validation=10))
    assert {name: list(part["label"]) for name, part in splits.items()} == {
        "train": ["a", "d"],
        "validation": ["b"],
        "test": ["c"],
    }
    assert sources["validation"] == path


def test_unknown_split_values_are_named(tmp_path):
    path = tmp_path / "english.csv"
    path.write_text("image,label,split\na.png,a,training\n")
    with pytest.raises(ValueError, match="'training'"):
        plan(path)


def plan(train, validation: float = 0, test: float = 0, **files) -> SplitPlan:
    return SplitPlan.of(
        str(train),
        files.get("validation_file"),
        files.get("test_file"),
        split_column="split",
        writer_column="writer",
        validation_split_percentage=validation,
        test_split_percentage=test,
        seed=0,
    )


def write_lines(path: Path, rows: int, writers: int | None = None) -> Path:
    """A CSV of ``rows`` lines (``writer`` column when ``writers`` is given); images are not needed to plan."""
    header = "image,label" + (",writer" if writers else "")
    lines = [f"{i}.png,text {i}" + (f",w{i % writers}" if writers else "") for i in range(rows)]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_a_bare_csv_gets_validation_and_test_drawn_at_random_with_no_row_in_two_splits(tmp_path):
    splits, _ = load_splits(plan(write_lines(tmp_path / "english.csv", 100), validation=10, test=10))
    labels = {name: set(part["label"]) for name, part in splits.items()}
    assert {name: len(part) for name, part in splits.items()} == {"train": 80, "test": 10, "validation": 10}
    assert not labels["train"] & labels["test"] and not labels["train"] & labels["validation"]
    assert not labels["test"] & labels["validation"]


def test_with_a_writer_column_the_test_and_validation_writers_are_nobody_elses(tmp_path):
    splits, _ = load_splits(
        plan(write_lines(tmp_path / "english.csv", 200, writers=20), validation=10, test=10)
    )
    writers = {name: set(part["writer"]) for name, part in splits.items()}
    assert len(writers["test"]) == 2 and len(writers["validation"]) == 2
    assert not writers["train"] & writers["test"] and not writers["train"] & writers["validation"]
    assert not writers["test"] & writers["validation"]
    assert sum(len(part) for part in splits.values()) == 200


def test_the_plan_says_which_splits_exist_before_anything_is_loaded(tmp_path):
    bare = write_lines(tmp_path / "english.csv", 20)
    assert plan(bare, validation=10).available() == {"train", "validation"}
    assert plan(bare, validation=10, test=10).available() == {"train", "validation", "test"}
    described = plan(bare, validation=10, test=10).describe()
    assert described["test"] == f"10 % of {bare} held out (rows at random, seed 0)"
    columned = tmp_path / "split.csv"
    columned.write_text("image,label,split\na.png,a,train\nb.png,b,test\n")
    # a split column with test rows is used, and its missing validation split is drawn from its training rows
    assert plan(columned, validation=10, test=10).drawn == {"validation": 10}
    assert (
        plan(columned, validation=10, test=10).describe()["test"]
        == f"rows of {columned} whose 'split' is test"
    )
    only_test = tmp_path / "test_only.csv"
    only_test.write_text("image,label,split\na.png,a,test\n")
    assert plan(only_test, validation=10).available() == {"test"}  # no training rows: --do_train fails early


def test_holding_out_every_writer_is_refused_with_the_percentages(tmp_path):
    with pytest.raises(ValueError, match="validation_split_percentage=50, test_split_percentage=50"):
        hold_out(
            read_csv(write_lines(tmp_path / "e.csv", 10, writers=2)),
            {"validation": 50, "test": 50},
            0,
            "writer",
        )


def test_collator_pads_labels_to_the_batch_longest_with_minus_100():
    features = [
        {"pixel_values": torch.zeros(3, 4, 4), "labels": [0, 5, 2]},
        {"pixel_values": torch.ones(3, 4, 4), "labels": [0, 5, 6, 7, 8, 2]},
    ]
    batch = TrOCRCollator()(features)
    assert batch["pixel_values"].shape == (2, 3, 4, 4)
    assert batch["labels"].tolist() == [[0, 5, 2, -100, -100, -100], [0, 5, 6, 7, 8, 2]]


def test_transform_opens_images_as_rgb_and_tokenizes_normalised_labels(tiny_model_dir, words_csv):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    transform = ImageTextTransform(processor, words_csv.parent, None, "image", "label", 128, normalize=True)
    rows = read_csv(words_csv).select(range(2))
    batch = transform({"image": list(rows["image"]), "label": ["  two\u00a0 words ", "e\u0301"]})
    assert batch["pixel_values"].shape == (2, 3, 32, 128)
    assert processor.tokenizer.batch_decode(batch["labels"], skip_special_tokens=True) == [
        "two words",
        "\u00e9",
    ]


def test_labels_longer_than_the_target_length_are_truncated_to_it(tiny_model_dir, words_csv):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    transform = ImageTextTransform(processor, words_csv.parent, None, "image", "label", 10, normalize=True)
    rows = read_csv(words_csv).select(range(1))
    batch = transform({"image": list(rows["image"]), "label": ["x" * 50]})
    assert len(batch["labels"][0]) == 10


def test_curriculum_orders_rows_easiest_first_by_number_not_text(tmp_path):
    dataset = Dataset.from_dict({"label": ["c", "a", "b", "d"], "difficulty": ["0.9", "0.1", "0.25", "10"]})
    assert list(order_by_difficulty(dataset, "difficulty", "x.csv")["label"]) == ["a", "b", "c", "d"]


def test_curriculum_names_the_row_with_a_bad_score():
    dataset = Dataset.from_dict({"label": ["a", "b"], "difficulty": ["0.1", "hard"]})
    with pytest.raises(ValueError, match="row 2 has difficulty='hard'"):
        order_by_difficulty(dataset, "difficulty", "x.csv")


def test_label_lengths_count_tokens_without_opening_images(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    dataset = Dataset.from_dict({"image": ["missing.png"] * 2, "label": ["ab", "a  b c"]})
    assert label_lengths(dataset, processor, "label", normalize=True) == [4, 7]  # <s> ... </s>
