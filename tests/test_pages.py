"""Pages: PAGE/ALTO reading and writing against the official schemas, line crops, import → english.csv →
PAGE round trip, line matching, and (with kraken installed) segmentation + recognition of whole pages.

The kraken tests need ``requirements-pages.txt`` (``.ci/run`` runs this file in that environment); the
hn2021 tests need the real pages at ``$HN2021_DIR`` (default ``../shared/real/hn2021`` beside the repo).
Both skip with the reason when what they need is absent.
"""

import csv
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import page_lines as import_pages
from data_prep.fonts import train_fonts
from data_prep.synthetic_pages import render_page
from htr.pages.layout import Line, Page, read_layout, schema_errors, to_alto_xml, to_page_xml
from htr.pages.linecrops import crop_line
from htr.pages.transcribe import match_lines, polygon_iou

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "trocr-tiny-synthetic"
HN2021 = Path(os.environ.get("HN2021_DIR", ROOT.parent / "shared" / "real" / "hn2021")) / "data"
HN2021_PAGES = [
    "by_yagmur_ozturk/Page13-Lettre253/Lettre253.xml",
    "by_pierrine_maurel/Page9-Lettre69/Lettre69.xml",
]
HAS_KRAKEN = importlib.util.find_spec("kraken") is not None
needs_kraken = pytest.mark.skipif(
    not HAS_KRAKEN,
    reason="kraken not installed (bash setup.sh --pages, then run with .venv-pages/bin/python)",
)
needs_hn2021 = pytest.mark.skipif(
    not HN2021.is_dir(), reason=f"hn2021 pages not found at {HN2021} (set HN2021_DIR)"
)

TEXTS = [
    "Dear Sir, I write to tell you that the",
    "meeting of the committee will be held",
    "on Monday the fourth of March at ten",
    "in the morning in the large hall of the",
    "library. We hope that you will be able",
    "to attend and to bring your report on",
    "the new buildings with you. With all",
    "good wishes to you and to your family",
]


@pytest.fixture(scope="module")
def synthetic_page(tmp_path_factory: pytest.TempPathFactory) -> Page:
    """A ruled page, skewed 1.5 degrees, its PAGE ground truth written beside the image."""
    folder = tmp_path_factory.mktemp("page")
    page = render_page(TEXTS, train_fonts()[3], folder / "letter.png", ruled=4, skew=1.5)
    page.lines[1].confidence = 0.875
    (folder / "letter.xml").write_bytes(to_page_xml(page))
    return page


def test_written_page_and_alto_validate_and_read_back(synthetic_page: Page) -> None:
    for kind, xml in (("page", to_page_xml(synthetic_page)), ("alto", to_alto_xml(synthetic_page))):
        assert schema_errors(xml, kind) == []
        path = synthetic_page.image.with_name(f"back.{kind}.xml")
        path.write_bytes(xml)
        back = read_layout(path)
        assert [line.polygon for line in back.lines] == [line.polygon for line in synthetic_page.lines]
        assert [line.baseline for line in back.lines] == [line.baseline for line in synthetic_page.lines]
        assert back.text == synthetic_page.text
        assert [line.type for line in back.lines] == ["handwritten"] * len(TEXTS)
        assert back.lines[1].confidence == pytest.approx(0.875)
        assert back.lines[0].confidence is None


def test_schema_check_rejects_a_line_without_coords(synthetic_page: Page) -> None:
    xml = to_page_xml(synthetic_page).replace(b"<Coords", b"<Kords", 1)
    assert schema_errors(xml, "page")


def test_crop_is_masked_to_the_polygon_and_deskewed() -> None:
    page = Image.new("RGB", (400, 300), "black")
    # A band 40 px high rising 10 degrees to the right, inside a black page.
    slope = np.tan(np.radians(10))
    baseline = [(50, 200), (350, round(200 - 300 * slope))]
    polygon = [(50, 160), (350, round(160 - 300 * slope)), (350, round(200 - 300 * slope)), (50, 200)]
    crop = crop_line(page, Line("l1", polygon, baseline))
    straight = crop_line(page, Line("l1", polygon, []))
    assert straight.getpixel((0, 0)) == (255, 255, 255)  # outside the polygon: painted white
    assert straight.height > 90  # the slanted band's bounding box
    assert crop.height < 50  # turned level: about the band's own height
    pixels = np.asarray(crop.convert("L"))
    assert (pixels[5:-5, 5:-5] < 60).mean() > 0.9  # and it is the band's (black) pixels


def test_iou_matching_is_one_to_one_and_thresholded() -> None:
    box = [(0, 0), (100, 0), (100, 20), (0, 20)]
    shifted = [(x + 10, y) for x, y in box]
    half = [(x + 60, y) for x, y in box]
    assert polygon_iou(box, box) == pytest.approx(1.0)
    assert 0.2 < polygon_iou(box, half) < 0.35
    truth = [Line("t1", box, []), Line("t2", [(x, y + 100) for x, y in box], [])]
    detected = [Line("d1", shifted, []), Line("d2", box, []), Line("d3", half, [])]
    assert match_lines(detected, truth) == [(1, 0)]  # d2 (IoU 1) wins t1; d1 cannot take it too


def test_document_splits_keep_a_document_in_one_split() -> None:
    documents = [f"letter{n}" for n in range(20)]
    splits = import_pages.document_splits(documents, (0.8, 0.1, 0.1))
    assert sorted(splits) == sorted(documents)
    assert [list(splits.values()).count(s) for s in ("train", "validation", "test")] == [16, 2, 2]
    assert (
        import_pages.document_splits(documents[::-1], (0.8, 0.1, 0.1)) == splits
    )  # file order is irrelevant


def test_import_then_export_keeps_polygons_and_text(synthetic_page: Page, tmp_path: Path) -> None:
    alto = synthetic_page.image.with_name("letter.alto.xml")
    alto.write_bytes(to_alto_xml(synthetic_page))
    out = tmp_path / "lines"
    import_pages.main([str(alto), "--output_dir", str(out), "--source", "demo", "--split", "test"])
    with (out / "english.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == TEXTS
    assert {row["writer"] for row in rows} == {"demo-letter"} and {row["split"] for row in rows} == {"test"}
    assert all(Image.open(out / row["image"]).height < 120 for row in rows)  # one line each, not the page
    import_pages.main([str(out / "english.csv"), "--to_page", "--output_dir", str(tmp_path / "page")])
    back = read_layout(tmp_path / "page" / "letter.xml")
    assert [line.polygon for line in back.lines] == [line.polygon for line in synthetic_page.lines]
    assert [line.baseline for line in back.lines] == [line.baseline for line in synthetic_page.lines]
    assert back.text == synthetic_page.text


def test_import_filters_line_types_and_lists_what_it_skips(synthetic_page: Page, tmp_path: Path) -> None:
    page = read_layout(synthetic_page.image.with_name("letter.xml"))
    page.lines[0].type = "printed"
    path = synthetic_page.image.with_name("mixed.xml")
    path.write_bytes(to_page_xml(page))
    out = tmp_path / "lines"
    import_pages.main([str(path), "--output_dir", str(out), "--line_types", "hand*", "--split", "train"])
    with (out / "english.csv").open(encoding="utf-8") as handle:
        assert [row["label"] for row in csv.DictReader(handle)] == TEXTS[1:]
    with (out / import_pages.SKIPPED_NAME).open(encoding="utf-8") as handle:
        assert [(row["line"], row["reason"]) for row in csv.DictReader(handle)] == [("l1", "line_type")]


@needs_hn2021
def test_hn2021_import_of_two_pages(tmp_path: Path) -> None:
    files = [HN2021 / name for name in HN2021_PAGES]
    expected = sum(
        1
        for f in files
        for line in read_layout(f).lines
        if line.type.endswith(":Handwritten") and line.text.strip()
    )
    for path in files:
        assert schema_errors(path.read_bytes(), "alto") == []  # eScriptorium's ALTO 4.2 passes the 4.4 schema
    import_pages.main([*map(str, files), "--output_dir", str(tmp_path), "--line_types", "*:Handwritten"])
    with (tmp_path / "english.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected > 20
    for writer in {row["writer"] for row in rows}:
        assert len({row["split"] for row in rows if row["writer"] == writer}) == 1


@needs_kraken
def test_synthetic_page_end_to_end(tmp_path: Path) -> None:
    """One kraken run (1-3 minutes on a busy 2-core CPU) covers ruled and blank paper: the upper half is ruled."""
    from htr.pages import transcribe

    truth = render_page(TEXTS, train_fonts()[3], tmp_path / "in" / "page.png", ruled=4, skew=-1.0)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "page.xml").write_bytes(to_page_xml(truth))
    out = tmp_path / "out"
    [result] = transcribe.main(
        [str(MODEL), str(truth.image), "--output_dir", str(out), "--ground_truth", str(tmp_path / "gt")]
    )
    scores = transcribe.summarise([result.scores])
    assert scores["precision"] >= 95 and scores["recall"] >= 95
    # Segmentation costs little on a clean page: page CER no worse than the CER on the exact
    # ground-truth lines plus 5 points (kraken's tighter polygons often read slightly better).
    assert scores["cer"] <= scores["cer_truth_lines"] + 5
    assert scores["cer_truth_lines"] < 60  # the shipped model reads its training hands
    assert schema_errors((out / "page.xml").read_bytes(), "page") == []
    assert schema_errors((out / "page.alto.xml").read_bytes(), "alto") == []
    assert len((out / "page.txt").read_text(encoding="utf-8").splitlines()) == len(TEXTS)
    overlay, scan = Image.open(out / "page.overlay.png"), Image.open(truth.image)
    assert overlay.width / overlay.height == pytest.approx(
        2 * scan.width / scan.height, rel=0.01
    )  # page + text


@needs_kraken
@needs_hn2021
def test_hn2021_two_pages_segmented_and_scored(tmp_path: Path) -> None:
    from htr.pages import transcribe

    files = [HN2021 / name for name in HN2021_PAGES]
    images = [str(read_layout(f).image) for f in files]
    results = transcribe.main(
        [str(MODEL), *images, "--output_dir", str(tmp_path), "--ground_truth", *map(str, files)]
    )
    scores = transcribe.summarise([r.scores for r in results])
    assert scores["pages"] == 2
    assert scores["recall"] >= 80 and scores["precision"] >= 75
    for result in results:
        assert schema_errors((tmp_path / f"{result.name}.xml").read_bytes(), "page") == []
        assert schema_errors((tmp_path / f"{result.name}.alto.xml").read_bytes(), "alto") == []


def test_recogniser_confidence_reaches_page_and_alto(synthetic_page: Page) -> None:
    from htr.pages.transcribe import recognise_page

    page = read_layout(synthetic_page.image.with_name("letter.xml"))
    page.lines[2].polygon = page.lines[2].polygon[:2]  # no usable geometry: listed, read as ""
    skipped, _ = recognise_page(
        Image.open(page.image), page, lambda crops: [(f"t{i}", 0.5) for i in range(len(crops))]
    )
    assert len(skipped) == 1 and page.lines[2].text == "" and page.lines[2].confidence is None
    assert [line.confidence for line in page.lines if line.text] == [0.5] * (len(TEXTS) - 1)
    assert b'conf="0.5000"' in to_page_xml(page) and b'WC="0.5000"' in to_alto_xml(page)


def test_the_users_own_segmentation_is_re_read_with_a_confidence_per_line(
    synthetic_page: Page, tmp_path
) -> None:
    """A PAGE file as input needs no kraken: its lines are re-recognised, each with htr.inference.predict's confidence."""
    from htr.pages import transcribe

    source = synthetic_page.image.with_name("letter.xml")  # written beside the image by the fixture
    out = tmp_path / "out"
    transcribe.main([str(MODEL), str(source), "--output_dir", str(out)])
    written = read_layout(out / "letter.xml")
    assert len(written.lines) == len(synthetic_page.lines)
    confidences = [line.confidence for line in written.lines]
    assert all(value is not None and 0 < value <= 1 for value in confidences)
    assert confidences[1] != 0.875  # recomputed, not the input file's value
    assert all(line.text for line in written.lines)
    assert schema_errors((out / "letter.xml").read_bytes(), "page") == []
    assert schema_errors((out / "letter.alto.xml").read_bytes(), "alto") == []
