"""Web fonts: fetched from npm packages into data/fonts, reused, and refused with a fix when missing.

A fake ``npm`` on PATH stands in for the registry, so the test runs offline and checks exactly what
``fetch_web_fonts`` keeps from a Fontsource package.
"""

import json
import sys
from pathlib import Path

import pytest

from data_prep import fonts
from data_prep.fonts import fetch_web_fonts, resolve_fonts, train_fonts, web_fonts

FAKE_NPM = """#!{python}
# Fake `npm pack --silent --pack-destination DIR @fontsource/NAME@VERSION`: writes a Fontsource-like tarball.
import io, json, pathlib, sys, tarfile
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
destination, spec = pathlib.Path(sys.argv[4]), sys.argv[5]
name = spec.split("/")[1].split("@")[0]
if name == "no-such-font":
    sys.exit("npm error 404 Not Found - GET @fontsource/no-such-font")
font = pathlib.Path({font!r}).read_bytes()
files = {{
    f"package/files/{{name}}-latin-400-normal.woff2": font,
    f"package/files/{{name}}-latin-700-normal.woff2": font,
    f"package/files/{{name}}-cyrillic-400-normal.woff2": font,
    "package/metadata.json": json.dumps({{"id": name, "license": "OFL-1.1"}}).encode(),
}}
with tarfile.open(destination / f"fontsource-{{name}}.tgz", "w:gz") as tar:
    for path, data in files.items():
        info = tarfile.TarInfo(path)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake npm first on PATH; returns the file it logs its calls to."""
    installed = train_fonts()
    if not installed:
        pytest.skip("training font packages not installed")
    bin_dir, log = tmp_path / "bin", tmp_path / "npm.log"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable, log=str(log), font=str(installed[0])))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return log


def test_fetch_keeps_the_latin_weights_asked_for_and_reuses_them(
    tmp_path: Path, fake_npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        fonts, "WEB_FONT_PACKAGES", (("hand-a", "5.3.0", (400,)), ("hand-b", "4.5.1", (400, 700)))
    )
    monkeypatch.setattr(fonts, "MORE_WEB_FONT_PACKAGES", (("hand-c", "5.3.0", (400,)),))
    monkeypatch.chdir(tmp_path)
    root = tmp_path / fonts.WEB_FONT_ROOT  # where resolve_fonts looks, relative to the working folder
    fetched = fetch_web_fonts(root, jobs=2)

    assert sorted(path.name for path in fetched) == [
        "hand-a-latin-400-normal.woff2",
        "hand-b-latin-400-normal.woff2",
        "hand-b-latin-700-normal.woff2",
        "hand-c-latin-400-normal.woff2",
    ]
    assert sorted(path.name for path in root.iterdir()) == sorted(
        [path.name for path in fetched] + ["hand-a.json", "hand-b.json", "hand-c.json"]
    )  # no cyrillic subset, no 700 weight of hand-a: only what is listed
    assert json.loads((root / "hand-b.json").read_text())["license"] == "OFL-1.1"
    calls = fake_npm.read_text().splitlines()
    assert sorted(call.split()[-1] for call in calls) == [
        "@fontsource/hand-a@5.3.0",
        "@fontsource/hand-b@4.5.1",
        "@fontsource/hand-c@5.3.0",
    ]

    (root / "hand-b-latin-700-normal.woff2").unlink()  # a partial download is fetched again, alone
    assert fetch_web_fonts(root) == fetched
    (again,) = fake_npm.read_text().splitlines()[len(calls) :]
    assert again.endswith("@fontsource/hand-b@4.5.1")
    # the groups stay apart: a preset naming "web" draws exactly the fonts it was built from
    assert [path.resolve() for path in resolve_fonts(["web"])] == fetched[:3]
    assert [path.resolve() for path in resolve_fonts(["web_more"])] == fetched[3:]


def test_the_web_font_groups_name_each_family_once() -> None:
    first = [name for name, _, _ in fonts.WEB_FONT_PACKAGES]
    more = [name for name, _, _ in fonts.MORE_WEB_FONT_PACKAGES]
    # a family in both groups would be one writer weighted double
    assert len(set(first + more)) == len(first) + len(more)
    assert more == sorted(more)  # the order stage 13's preset drew them in


def test_a_failed_fetch_names_the_package(
    tmp_path: Path, fake_npm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fonts, "WEB_FONT_PACKAGES", (("no-such-font", "1.0.0", (400,)),))
    monkeypatch.setattr(fonts, "MORE_WEB_FONT_PACKAGES", ())
    with pytest.raises(
        RuntimeError, match=r"npm pack @fontsource/no-such-font@1\.0\.0 failed: npm error 404"
    ):
        fetch_web_fonts(tmp_path / "fonts")
    with pytest.raises(SystemExit) as exit_info:  # the command line says it in one line, no traceback
        fonts.main(["fetch", "--root", str(tmp_path / "fonts")])
    assert exit_info.value.code == 1
    assert "no-such-font@1.0.0 failed: npm error 404" in capsys.readouterr().err
    assert list((tmp_path / "fonts").glob("*.woff2")) == []


def test_missing_web_fonts_say_how_to_fetch_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"web fonts missing .*python -m data_prep\.fonts fetch"):
        web_fonts(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm at all
    with pytest.raises(FileNotFoundError, match="npm not found"):
        fetch_web_fonts(tmp_path / "fonts")
