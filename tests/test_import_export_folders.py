"""Importing an eScriptorium-style export (``alto/`` beside ``jpg/``) the way Copiste d'un jour is imported.

A text copied by one volunteer spans several files (``wikitexte_0007_1.xml``, ``wikitexte_0007_2.xml``):
both must land in one split under one writer. Each page starts with its id, which is not handwriting to
learn; struck text ``>words<`` and unreadable ``><`` are kept, stripped or skipped as asked, and every line
left out is listed with its reason.
"""

import csv
import shutil
from pathlib import Path

import pytest

from data_prep import page_lines as import_pages
from data_prep.fonts import train_fonts
from data_prep.synthetic_pages import render_page
from htr.pages.layout import to_alto_xml

TEXTS = [
    "wikitexte_0007",
    "La bibliothèque ouvre ses portes",
    "le lundi >matin< à dix heures",
    "pour les lecteurs ><",
    "et les chercheurs de la ville",
]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export of two texts, the first over two pages: ``alto/*.xml`` and the page images in ``jpg/``."""
    root = tmp_path_factory.mktemp("export")
    (root / "alto").mkdir()
    (root / "jpg").mkdir()
    font = train_fonts()[3]
    for name, texts in [
        ("wikitexte_0007_1", TEXTS),
        ("wikitexte_0007_2", ["wikitexte_0007", "suite du texte copié"]),
        ("imp_wikitexte_0012", ["imp_wikitexte_0012", "un autre texte, une autre main"]),
    ]:
        page = render_page(texts, font, root / "scratch" / f"{name}.png", width=900)
        shutil.move(page.image, root / "jpg" / page.image.name)
        (root / "alto" / f"{name}.xml").write_bytes(to_alto_xml(page))
    return root


def _import(export: Path, out: Path, *options: str) -> list[dict[str, str]]:
    import_pages.main(
        [
            str(export / "alto"),
            "--image_dir",
            str(export / "jpg"),
            "--output_dir",
            str(out),
            "--source",
            "copiste",
            "--document_pattern",
            "wikitexte_[0-9]+",
            "--skip_text",
            "([a-z]+_)?wikitexte_[0-9_]+",
            "--split",
            "train",
            *options,
        ]
    )
    with (out / "english.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _skipped(out: Path) -> list[tuple[str, str]]:
    with (out / import_pages.SKIPPED_NAME).open(encoding="utf-8") as handle:
        return sorted((row["reason"], row["detail"]) for row in csv.DictReader(handle))


def test_crossed_out_lines_are_skipped_and_listed(export: Path, tmp_path: Path) -> None:
    rows = _import(export, tmp_path, "--crossed_out", "skip")
    assert sorted(row["label"] for row in rows) == sorted(
        [TEXTS[1], TEXTS[4], "suite du texte copié", "un autre texte, une autre main"]
    )
    assert _skipped(tmp_path) == [
        ("crossed_out", TEXTS[2]),
        ("crossed_out", TEXTS[3]),
        ("skip_text", "imp_wikitexte_0012"),
        ("skip_text", "wikitexte_0007"),
        ("skip_text", "wikitexte_0007"),
    ]


def test_crossed_out_text_is_stripped_or_kept(export: Path, tmp_path: Path) -> None:
    stripped = {row["label"] for row in _import(export, tmp_path / "strip", "--crossed_out", "strip")}
    assert {"le lundi à dix heures", "pour les lecteurs"} <= stripped
    kept = {row["label"] for row in _import(export, tmp_path / "keep", "--crossed_out", "keep")}
    assert {TEXTS[2], TEXTS[3]} <= kept


def test_pages_of_one_text_share_a_writer_and_a_split(export: Path, tmp_path: Path) -> None:
    import_pages.main(
        [
            str(export / "alto"),
            "--image_dir",
            str(export / "jpg"),
            "--output_dir",
            str(tmp_path),
            "--document_pattern",
            "wikitexte_[0-9]+",
            "--fractions",
            "0.5",
            "0.5",
            "0",
        ]
    )
    with (tmp_path / "english.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_writer: dict[str, set[str]] = {}
    for row in rows:
        by_writer.setdefault(row["writer"], set()).add(row["split"])
    assert set(by_writer) == {"pages-wikitexte_0007", "pages-wikitexte_0012"}
    assert all(len(splits) == 1 for splits in by_writer.values())
    assert {row["label"] for row in rows if row["writer"] == "pages-wikitexte_0007"} == {
        *TEXTS,
        "suite du texte copié",
    }


def test_a_file_the_document_pattern_misses_is_named(export: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"imp_wikitexte_0012\.xml: --document_pattern 'wikitexte_0007'"):
        import_pages.main(
            [
                str(export / "alto"),
                "--image_dir",
                str(export / "jpg"),
                "--output_dir",
                str(tmp_path),
                "--document_pattern",
                "wikitexte_0007",
            ]
        )


def test_missing_images_point_to_image_dir(export: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--image_dir"):
        import_pages.main([str(export / "alto"), "--output_dir", str(tmp_path)])
