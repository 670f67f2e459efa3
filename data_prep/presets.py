"""The exact synthetic data each shipped recipe trains and tests on, one command per recipe.

    python -m data_prep.presets quickstart     # before recipes/quickstart.json
    python -m data_prep.presets pretrain       # every pretraining set (--only SET...: some of them)
    python -m data_prep.presets smoke          # before recipes/smoke.json
    python -m data_prep.presets scan_test      # test set (a): the held-out hands rendered as scans vary
    python -m data_prep.presets scan_val       # its validation twin in training hands (choose on this)

Every set is deterministic (fixed seeds), so every run is tested on byte-identical held-out images and
their CERs compare directly. The held-out set is written only in the reserved fonts (fonts-bwht,
fonts-breip) that no preset trains on. A set already built from the same spec (recorded in its
``preset.json``) is kept, so rerunning a preset is instant; a changed spec rebuilds it.
"""

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from data_prep.corpus import CORPUS_VERSION
from data_prep.fonts import WEB_FONT_GROUPS, fetch_web_fonts
from data_prep.scan_sets import generate_scan_test
from data_prep.synthetic import generate

DATA = Path("data")
SPEC_NAME = "preset.json"  # the spec a set was built from, beside its english.csv
HELDOUT = {
    "out_dir": DATA / "heldout",
    "num_samples": 1000,
    "fonts": "eval",
    "seed": 3,
    "kind": "mixed",
    "augment": "light",
    "grid": True,
}
# 82 fonts, a quarter in block capitals, uneven letters (fresh copies: the same spec with another seed)
FONTS = {
    "out_dir": DATA / "pretrain_fonts",
    "num_samples": 120_000,
    "fonts": ["train", "print"],
    "seed": 31,
    "kind": "mixed",
    "augment": "strong",
}
# 166 fonts, letters crowded or spaced and turned (fresh copies: the same spec with other seeds)
GLYPHS = {
    "out_dir": DATA / "pretrain_glyphs",
    "num_samples": 100_000,
    "fonts": ["train", "web", "print"],
    "seed": 61,
    "kind": "mixed",
    "augment": "hands",
}

# test set (a): the reserved hands, other texts and scan variation, by data_prep/scan_sets.py's own renderer
SCAN_TEST = {
    "out_dir": DATA / "scan_test",
    "num_samples": 300,
    "fonts": "eval",
    "seed": 13,
    "render": "scan_test",
}
# its validation twin: training hands, other licences, the same renderer; choose checkpoints on this
SCAN_VAL = {
    "out_dir": DATA / "scan_val",
    "num_samples": 300,
    "fonts": ["train", "web"],
    "seed": 17,
    "render": "scan_test",
    "role": "validation",
}

PRESETS: dict[str, list[dict[str, Any]]] = {
    "scan_test": [SCAN_TEST],
    "scan_val": [SCAN_VAL],
    "quickstart": [
        {  # fresh samples (another seed) in the 110 handwriting fonts and the augmentation of pretraining
            # stage 8; in the 26 Debian hands alone the stage-7 fine-tune drifted towards them (held-out CER
            # 14.2 -> 14.7 % with beam 4)
            "out_dir": DATA / "quickstart",
            "num_samples": 12_000,
            "fonts": ["train", "web"],
            "seed": 5,
            "kind": "mixed",
            "augment": "hands",
        },
        HELDOUT,
    ],
    "smoke": [
        {
            "out_dir": DATA / "smoke",
            "num_samples": 32,
            "fonts": "train",
            "seed": 0,
            "kind": "words",
            "augment": "none",
        },
    ],
    "pretrain": [  # which stage reads which set: each recipe's "prepare" (recipes/pretrain/lineage.json)
        {  # single words, where attention learns to align fast
            "out_dir": DATA / "pretrain_words",
            "num_samples": 20_000,
            "fonts": "train",
            "seed": 21,
            "kind": "words",
            "augment": "light",
        },
        {  # half words, half lines of 3-6 words
            "out_dir": DATA / "pretrain",
            "num_samples": 100_000,
            "fonts": "train",
            "seed": 1,
            "kind": "mixed",
            "augment": "strong",
        },
        {  # the same mix, with printed fonts for variety of letterforms
            "out_dir": DATA / "pretrain_mix",
            "num_samples": 40_000,
            "fonts": ["train", "print"],
            "seed": 7,
            "kind": "mixed",
            "augment": "strong",
        },
        FONTS,
        {**FONTS, "out_dir": DATA / "pretrain_fonts_fresh", "seed": 41},
        {  # 84 more hands, Google Fonts' handwriting (fonts "web")
            "out_dir": DATA / "pretrain_hands",
            "num_samples": 100_000,
            "fonts": ["train", "web", "print"],
            "seed": 51,
            "kind": "mixed",
            "augment": "strong",
        },
        GLYPHS,
        {**GLYPHS, "out_dir": DATA / "pretrain_glyphs_fresh", "seed": 71},
        {**GLYPHS, "out_dir": DATA / "pretrain_glyphs_fresh2", "seed": 81},
        {**GLYPHS, "out_dir": DATA / "pretrain_glyphs_fresh3", "seed": 91},
        {**GLYPHS, "out_dir": DATA / "pretrain_glyphs_fresh4", "seed": 101},
        {  # GLYPHS' recipe with 59 more hands (fonts "web_more")
            "out_dir": DATA / "pretrain_hands_more",
            "num_samples": 100_000,
            "fonts": ["train", "web", "print", "web_more"],
            "seed": 111,
            "kind": "mixed",
            "augment": "hands",
        },
        # stage 14: fresh lines in every training hand, read cropped to their ink, with scan augmentation
        {
            "out_dir": DATA / "pretrain_scan",
            "num_samples": 60_000,
            "fonts": ["train", "web", "print", "web_more"],
            "seed": 121,
            "kind": "mixed",
            "augment": "hands",
        },
        {
            "out_dir": DATA / "pretrain_val",
            "num_samples": 500,
            "fonts": "train",
            "seed": 2,
            "kind": "mixed",
            "augment": "light",
            "split": "validation",
        },
        HELDOUT,
    ],
}


def _rows(csv_path: Path) -> int:
    if not csv_path.is_file():
        return -1
    with csv_path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _recorded(spec: dict[str, Any]) -> str:
    """The spec as recorded next to a built set, so a set built from an older spec or text is never reused.

    Sets drawn from the synthetic corpus also record its version; the scan sets' licence text is not from it.
    """
    recorded = {key: str(value) if isinstance(value, Path) else value for key, value in spec.items()}
    if spec.get("render") != "scan_test":
        recorded["corpus"] = CORPUS_VERSION
    return json.dumps(recorded)


def select(name: str, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The specs of preset ``name``, or only the sets whose folder is named in ``only`` (e.g. ``pretrain_words``)."""
    specs = PRESETS[name]
    if not only:
        return specs
    folders = [Path(spec["out_dir"]).name for spec in specs]
    if unknown := sorted(set(only) - set(folders)):
        raise SystemExit(
            f"error: preset {name} has no set {', '.join(unknown)}; its sets: {', '.join(folders)}"
        )
    return [spec for spec in specs if Path(spec["out_dir"]).name in only]


def build(name: str, workers: int = 2, only: list[str] | None = None) -> list[Path]:
    """Generate (or reuse) the sets of preset ``name`` (all, or those in ``only``); return their CSV paths."""
    paths = []
    for spec in select(name, only):
        csv_path = Path(spec["out_dir"]) / "english.csv"
        record = Path(spec["out_dir"]) / SPEC_NAME
        if (
            _rows(csv_path) == spec["num_samples"]
            and record.is_file()
            and record.read_text() == _recorded(spec)
        ):
            print(f"{csv_path}: already there ({spec['num_samples']} rows)")
        else:
            fonts = spec["fonts"]
            if set(WEB_FONT_GROUPS) & set([fonts] if isinstance(fonts, str) else fonts):
                fetch_web_fonts()
            if spec.get("render") == "scan_test":
                csv_path = generate_scan_test(
                    spec["out_dir"],
                    spec["num_samples"],
                    spec["seed"],
                    spec["fonts"],
                    spec.get("role", "test"),
                )
            else:
                csv_path = generate(workers=workers, **spec)
            record.write_text(_recorded(spec))
        paths.append(csv_path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted(PRESETS), help="which recipe's data to build")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SET",
        help="build only these sets of the preset, by folder name (e.g. pretrain_words heldout)",
    )
    args = parser.parse_args()
    try:
        build(args.preset, workers=args.workers, only=args.only)
    except FileNotFoundError as error:  # a text source's Debian package is missing: the message names it
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
