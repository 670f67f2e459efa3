import json

from data_prep import presets
from data_prep.fonts import is_eval_font, resolve_fonts
from data_prep.presets import HELDOUT, PRESETS, SCAN_TEST, build


def test_no_preset_trains_on_the_held_out_writers_and_all_test_on_them():
    for name, specs in PRESETS.items():
        for spec in specs:
            fonts = resolve_fonts(spec["fonts"])
            if spec in (HELDOUT, SCAN_TEST):
                assert all(is_eval_font(font) for font in fonts), name
            else:
                assert not any(is_eval_font(font) for font in fonts), name


def test_a_preset_builds_once_and_is_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (csv_path,) = build("smoke", workers=1)
    assert len(csv_path.read_text().splitlines()) == 33
    first = csv_path.read_bytes()
    build("smoke", workers=1)
    assert "already there (32 rows)" in capsys.readouterr().out
    assert csv_path.read_bytes() == first


def test_a_set_built_from_an_older_spec_is_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (csv_path,) = build("smoke", workers=1)
    changed = [{**PRESETS["smoke"][0], "seed": 1}]  # same size, other text: a row count cannot tell
    monkeypatch.setitem(PRESETS, "smoke", changed)
    capsys.readouterr()
    build("smoke", workers=1)
    assert "already there" not in capsys.readouterr().out
    assert json.loads((csv_path.parent / "preset.json").read_text())["seed"] == 1


def test_a_set_rendered_from_an_older_corpus_is_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (csv_path,) = build("smoke", workers=1)
    assert json.loads((csv_path.parent / "preset.json").read_text())["corpus"] == presets.CORPUS_VERSION
    monkeypatch.setattr(presets, "CORPUS_VERSION", "an-older-text")  # the same spec, the text changed
    capsys.readouterr()
    build("smoke", workers=1)
    assert "already there" not in capsys.readouterr().out
    assert json.loads((csv_path.parent / "preset.json").read_text())["corpus"] == "an-older-text"
