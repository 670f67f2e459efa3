"""Handwriting fonts for synthetic data: which writers exist, which are held out, what each can draw.

Every font file is one synthetic "writer": 26 Debian handwriting fonts (``train``), 84 + 59 Google Fonts
hands fetched from the npm registry into data/fonts (``web``, ``web_more``), and printed fonts for letterform
variety (``print``). Two Debian packages are reserved as held-out writers
(fonts-bwht, fonts-breip): a model evaluated on them has never seen their hands, so the test CER
measures generalisation to new writers rather than memorised glyph shapes. The guard is by folder
*and* by family name, so a copied or renamed file is still recognised.

A label must only contain what the image shows, so each font's coverage is measured from rendered
bitmaps rather than trusted from its ``cmap``: a code point can map to ``.notdef`` or to an empty
glyph, and capitals-only fonts map lowercase to (small) capitals.
"""

import argparse
import functools
import shutil
import string
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_ROOT = Path("/usr/share/fonts")
WEB_FONT_ROOT = Path("data/fonts")

# (Debian package, file relative to FONT_ROOT). Chosen by eye from a specimen sheet: legible hands
# with a real pen feel. Left out: decorative swash italics (dkgIt, dkgBI), hatched outlines
# (fonts-cabinsketch), secretary hand (fonts-joscelyn) and fonts missing most of ASCII
# (fonts-levien-typoscript). Families with many weights contribute two, so no family dominates.
TRAIN_FONT_FILES: tuple[tuple[str, str], ...] = (
    ("fonts-dkg-handwriting", "truetype/fifthhorseman/dkg.ttf"),
    ("fonts-dkg-handwriting", "truetype/fifthhorseman/dkgBd.ttf"),
    ("fonts-femkeklaver", "truetype/femkeklaver/femkeklaver.ttf"),
    ("fonts-kristi", "truetype/kristi/Kristi.ttf"),
    ("fonts-dancingscript", "opentype/dancingscript/DancingScript-Regular.otf"),
    ("fonts-dancingscript", "opentype/dancingscript/DancingScript-Bold.otf"),
    ("fonts-rufscript", "truetype/rufscript/Rufscript010.ttf"),
    ("fonts-humor-sans", "truetype/humor-sans/Humor-Sans.ttf"),
    ("fonts-ecolier-court", "truetype/ecolier-court/Ecolier-court.ttf"),
    ("fonts-kaushanscript", "opentype/kaushanscript/KaushanScript-Regular.otf"),
    ("fonts-comic-neue", "opentype/comic-neue/ComicNeue-Regular.otf"),
    ("fonts-comic-neue", "opentype/comic-neue/ComicNeue-Italic.otf"),
    ("fonts-sjfonts", "truetype/sjfonts/Delphine.ttf"),
    ("fonts-sjfonts", "truetype/sjfonts/SteveHand.ttf"),
    ("fonts-tomsontalks", "truetype/tomsontalks/TomsonTalks.ttf"),
    ("fonts-tlwg-purisa-ttf", "truetype/tlwg/Purisa.ttf"),
    ("fonts-tlwg-purisa-ttf", "truetype/tlwg/Purisa-Oblique.ttf"),
    ("fonts-lobster", "opentype/lobster/lobster.otf"),
    ("fonts-leckerli-one", "truetype/leckerli-one/LeckerliOne-Regular.ttf"),
    ("fonts-havana", "opentype/havana/Havana-Regular.otf"),
    ("fonts-klee", "truetype/klee/KleeOne-Regular.ttf"),
    ("fonts-klee", "truetype/klee/KleeOne-SemiBold.ttf"),
    ("fonts-kiloji", "truetype/kiloji/kiloji.ttf"),
    ("fonts-kiloji", "truetype/kiloji/kiloji_b.ttf"),
    ("fonts-yusei-magic", "truetype/yusei-magic/YuseiMagic-Regular.ttf"),
    ("fonts-urw-base35", "opentype/urw-base35/Z003-MediumItalic.otf"),
)

# Printed fonts, for variety rather than for their hand: a model trained on 26 hands learns those hands;
# clean sans, serif and condensed letterforms (upright, oblique, bold) widen what it takes for a letter,
# as TrOCR's own first stage pretrained on printed text. Mixed into the training fonts as "print".
PRINT_FONT_FILES: tuple[tuple[str, str], ...] = (
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSans.ttf"),
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSans-BoldOblique.ttf"),
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSansCondensed.ttf"),
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSansCondensed-Oblique.ttf"),
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSansMono.ttf"),
    ("fonts-dejavu-core", "truetype/dejavu/DejaVuSerif-Italic.ttf"),
    ("fonts-liberation2", "truetype/liberation2/LiberationSans-Regular.ttf"),
    ("fonts-liberation2", "truetype/liberation2/LiberationSans-Bold.ttf"),
    ("fonts-liberation2", "truetype/liberation2/LiberationSans-Italic.ttf"),
    ("fonts-liberation2", "truetype/liberation2/LiberationSerif-Regular.ttf"),
    ("fonts-liberation2", "truetype/liberation2/LiberationMono-Regular.ttf"),
    ("fonts-fantasque-sans", "opentype/fantasque-sans/NoLoopK/OTF/FantasqueSansMono-Regular.otf"),
    ("fonts-fantasque-sans", "opentype/fantasque-sans/NoLoopK/OTF/FantasqueSansMono-BoldItalic.otf"),
    ("fonts-junction", "opentype/junction/Junction.otf"),
    ("fonts-jura", "opentype/jura/Jura-Medium.otf"),
    ("fonts-play", "opentype/play/Play-Regular.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/URWGothic-Book.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/URWGothic-DemiOblique.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/P052-Roman.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/C059-Italic.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/NimbusSans-Bold.otf"),
    ("fonts-urw-base35", "opentype/urw-base35/NimbusMonoPS-Regular.otf"),
    ("fonts-sil-andika", "truetype/andika/Andika-Regular.ttf"),
    ("fonts-sil-andika", "truetype/andika/Andika-BoldItalic.ttf"),
    ("fonts-averia-gwf", "truetype/averia-gwf/AveriaGWF-Regular.ttf"),
    ("fonts-averia-sans-gwf", "truetype/averia-gwf/AveriaSansGWF-Italic.ttf"),
    ("fonts-averia-sans-gwf", "truetype/averia-gwf/AveriaSansGWF-Bold.ttf"),
    ("fonts-averia-serif-gwf", "truetype/averia-gwf/AveriaSerifGWF-Regular.ttf"),
    ("fonts-beteckna", "truetype/beteckna/BetecknaGS.ttf"),
    ("fonts-beteckna", "truetype/beteckna/BetecknaGSCondensed-Bold.ttf"),
    ("fonts-comfortaa", "truetype/comfortaa/Comfortaa-Regular.ttf"),
    ("fonts-eurofurence", "truetype/eurofurence/eurof55.ttf"),
    ("fonts-eurofurence", "truetype/eurofurence/eurof76.ttf"),
    ("fonts-gnutypewriter", "truetype/gnutypewriter/GNUTypewriter.ttf"),
    ("fonts-klaudia-berenika", "truetype/klaudia-berenika/Berenika.ttf"),
    ("fonts-klaudia-berenika", "truetype/klaudia-berenika/Klaudia-BoldOblique.ttf"),
    ("fonts-monofur", "truetype/monofur/monof55.ttf"),
    ("fonts-okolaks", "truetype/okolaks/okolaksRegular.ttf"),
    ("fonts-quicksand", "truetype/quicksand/Quicksand-Medium.ttf"),
    ("fonts-cantarell", "opentype/cantarell/Cantarell-Regular.otf"),
    ("fonts-open-sans", "truetype/open-sans/OpenSans-Regular.ttf"),
    ("fonts-open-sans", "truetype/open-sans/OpenSans-CondBold.ttf"),
    ("fonts-lato", "truetype/lato/Lato-Italic.ttf"),
    ("fonts-lato", "truetype/lato/Lato-Black.ttf"),
    ("fonts-karla", "truetype/karla/Karla-Regular.otf"),
    ("fonts-manrope", "truetype/manrope/Manrope-Regular.ttf"),
    ("fonts-league-spartan", "opentype/league-spartan/LeagueSpartan-Bold.otf"),
    ("fonts-roboto-unhinted", "truetype/roboto/unhinted/RobotoCondensed-Regular.ttf"),
    ("fonts-roboto-unhinted", "truetype/roboto/unhinted/RobotoTTF/Roboto-Light.ttf"),
    ("fonts-roboto-unhinted", "truetype/roboto/unhinted/RobotoTTF/Roboto-MediumItalic.ttf"),
    ("fonts-freefont-ttf", "truetype/freefont/FreeSans.ttf"),
    ("fonts-freefont-ttf", "truetype/freefont/FreeSerifItalic.ttf"),
    ("fonts-freefont-ttf", "truetype/freefont/FreeMono.ttf"),
    ("fonts-cabin", "opentype/cabin/Cabin-Regular.otf"),
    ("fonts-cabin", "opentype/cabin/Cabin-BoldItalic.otf"),
    ("fonts-dosis", "opentype/dosis/Dosis-Medium.otf"),
)

# Google Fonts' handwriting families (OFL or Apache 2.0), as Fontsource packages them on the npm registry:
# (package under @fontsource/, pinned version, weights). Debian ships only ~26 usable hands, and unseen
# writers are read better the more hands a model has seen (31 -> 82 fonts took held-out CER from 40.8 % to
# 24.3 %), so these 84 files more than quadruple the hands. Fetched into WEB_FONT_ROOT by
# ``python -m data_prep.fonts fetch`` (the Latin subset, WOFF2, which FreeType reads directly). Left out:
# families Debian already ships (Dancing Script, Kaushan, Comic Neue, Lobster, Yusei Magic), hatched or
# decorative display faces, and plain sans. Two weights where a family has a bold, as for Debian's.
WEB_FONT_PACKAGES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("alex-brush", "5.3.0", (400,)),
    ("allura", "5.3.0", (400,)),
    ("amatic-sc", "5.3.0", (400, 700)),
    ("annie-use-your-telescope", "5.3.0", (400,)),
    ("architects-daughter", "5.3.0", (400,)),
    ("bad-script", "5.3.0", (400,)),
    ("birthstone", "5.3.0", (400,)),
    ("caveat", "5.3.0", (400, 700)),
    ("caveat-brush", "5.3.0", (400,)),
    ("cedarville-cursive", "5.3.0", (400,)),
    ("chilanka", "5.3.0", (400,)),
    ("condiment", "4.5.1", (400,)),
    ("cookie", "5.3.0", (400,)),
    ("corinthia", "5.3.0", (400, 700)),
    ("courgette", "5.3.0", (400,)),
    ("covered-by-your-grace", "5.3.0", (400,)),
    ("damion", "5.3.0", (400,)),
    ("delicious-handrawn", "5.3.0", (400,)),
    ("delius", "5.3.0", (400,)),
    ("ephesis", "5.3.0", (400,)),
    ("finger-paint", "5.3.0", (400,)),
    ("freehand", "5.2.8", (400,)),
    ("gaegu", "5.3.0", (400, 700)),
    ("gloria-hallelujah", "5.3.0", (400,)),
    ("gochi-hand", "5.3.0", (400,)),
    ("grand-hotel", "5.3.0", (400,)),
    ("great-vibes", "5.3.0", (400,)),
    ("handlee", "5.3.0", (400,)),
    ("herr-von-muellerhoff", "5.3.0", (400,)),
    ("homemade-apple", "5.3.0", (400,)),
    ("indie-flower", "5.3.0", (400,)),
    ("italianno", "5.3.0", (400,)),
    ("itim", "5.3.0", (400,)),
    ("kalam", "5.3.0", (400, 700)),
    ("licorice", "5.3.0", (400,)),
    ("liu-jian-mao-cao", "5.3.0", (400,)),
    ("long-cang", "5.3.0", (400,)),
    ("ma-shan-zheng", "5.3.1", (400,)),
    ("mansalva", "5.3.0", (400,)),
    ("marck-script", "5.3.0", (400,)),
    ("monsieur-la-doulaise", "5.3.0", (400,)),
    ("montecarlo", "5.2.8", (400,)),
    ("mr-de-haviland", "5.3.0", (400,)),
    ("ms-madi", "5.3.0", (400,)),
    ("nanum-brush-script", "5.3.0", (400,)),
    ("nanum-pen-script", "5.3.0", (400,)),
    ("neucha", "5.3.0", (400,)),
    ("oooh-baby", "5.3.0", (400,)),
    ("pacifico", "5.3.0", (400,)),
    ("parisienne", "5.3.0", (400,)),
    ("patrick-hand", "5.3.0", (400,)),
    ("permanent-marker", "5.3.0", (400,)),
    ("pinyon-script", "5.3.0", (400,)),
    ("playpen-sans", "5.3.0", (400, 700)),
    ("poor-story", "5.3.0", (400,)),
    ("reenie-beanie", "5.3.0", (400,)),
    ("rochester", "5.3.0", (400,)),
    ("rock-salt", "5.3.0", (400,)),
    ("sacramento", "5.3.0", (400,)),
    ("satisfy", "5.3.0", (400,)),
    ("schoolbell", "5.3.0", (400,)),
    ("shadows-into-light", "5.3.0", (400,)),
    ("shantell-sans", "5.3.0", (400, 700)),
    ("short-stack", "5.3.0", (400,)),
    ("smooch", "5.3.0", (400,)),
    ("sriracha", "5.3.0", (400,)),
    ("sue-ellen-francisco", "5.3.0", (400,)),
    ("swanky-and-moo-moo", "5.3.0", (400,)),
    ("tangerine", "5.3.0", (400, 700)),
    ("the-girl-next-door", "5.3.0", (400,)),
    ("twinkle-star", "5.3.0", (400,)),
    ("whisper", "5.3.0", (400,)),
    ("yellowtail", "5.3.0", (400,)),
    ("yomogi", "5.3.0", (400,)),
    ("zen-kurenaido", "5.3.0", (400,)),
    ("zhi-mang-xing", "5.3.0", (400,)),
)

# A second round of Google Fonts hands (group ``web_more``, first used by pretraining stage 13): 59 more
# families no earlier stage saw, chosen the same way from a specimen sheet, with the school scripts that
# add joined and print handwriting as children are taught it (Playwrite, Edu). Kept apart from
# WEB_FONT_PACKAGES so every earlier preset still draws exactly the fonts it was built from. One weight
# each; in filename order, the order the stage-13 preset drew them in.
MORE_WEB_FONT_PACKAGES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("beth-ellen", "5.3.0", (400,)),
    ("coming-soon", "5.3.0", (400,)),
    ("crafty-girls", "5.3.0", (400,)),
    ("dawning-of-a-new-day", "5.3.0", (400,)),
    ("dekko", "5.3.0", (400,)),
    ("edu-au-vic-wa-nt-hand", "5.3.0", (400,)),
    ("edu-nsw-act-foundation", "5.3.0", (400,)),
    ("edu-qld-beginner", "5.3.0", (400,)),
    ("edu-sa-beginner", "5.3.0", (400,)),
    ("edu-tas-beginner", "5.3.0", (400,)),
    ("edu-vic-wa-nt-beginner", "5.3.0", (400,)),
    ("fuzzy-bubbles", "5.3.0", (400,)),
    ("gamja-flower", "5.3.0", (400,)),
    ("give-you-glory", "5.3.0", (400,)),
    ("hachi-maru-pop", "5.3.0", (400,)),
    ("hi-melody", "5.3.0", (400,)),
    ("just-another-hand", "5.3.0", (400,)),
    ("just-me-again-down-here", "5.3.0", (400,)),
    ("kranky", "5.3.0", (400,)),
    ("la-belle-aurore", "5.3.0", (400,)),
    ("loved-by-the-king", "5.3.0", (400,)),
    ("mali", "5.3.0", (400,)),
    ("meddon", "5.3.0", (400,)),
    ("mynerve", "5.3.0", (400,)),
    ("nerko-one", "5.3.0", (400,)),
    ("nothing-you-could-do", "5.3.0", (400,)),
    ("oregano", "5.3.0", (400,)),
    ("over-the-rainbow", "5.3.0", (400,)),
    ("pangolin", "5.3.0", (400,)),
    ("playwrite-ar", "5.3.0", (400,)),
    ("playwrite-br", "5.3.0", (400,)),
    ("playwrite-ca", "5.3.0", (400,)),
    ("playwrite-cz", "5.3.0", (400,)),
    ("playwrite-de-grund", "5.3.0", (400,)),
    ("playwrite-dk-loopet", "5.3.0", (400,)),
    ("playwrite-es", "5.3.0", (400,)),
    ("playwrite-fr-moderne", "5.3.0", (400,)),
    ("playwrite-fr-trad", "5.3.0", (400,)),
    ("playwrite-hu", "5.3.0", (400,)),
    ("playwrite-in", "5.3.0", (400,)),
    ("playwrite-it-moderna", "5.3.0", (400,)),
    ("playwrite-it-trad", "5.3.0", (400,)),
    ("playwrite-mx", "5.3.0", (400,)),
    ("playwrite-nl", "5.3.0", (400,)),
    ("playwrite-no", "5.3.0", (400,)),
    ("playwrite-nz", "5.3.0", (400,)),
    ("playwrite-pl", "5.3.0", (400,)),
    ("playwrite-us-modern", "5.3.0", (400,)),
    ("playwrite-us-trad", "5.3.0", (400,)),
    ("playwrite-vn", "5.3.0", (400,)),
    ("playwrite-za", "5.3.0", (400,)),
    ("sedgwick-ave", "5.3.0", (400,)),
    ("shadows-into-light-two", "5.3.0", (400,)),
    ("square-peg", "5.3.0", (400,)),
    ("sunshiney", "5.3.0", (400,)),
    ("unkempt", "5.3.0", (400,)),
    ("waiting-for-the-sunrise", "5.3.0", (400,)),
    ("walter-turncoat", "5.3.0", (400,)),
    ("zeyada", "5.3.0", (400,)),
)

# Held-out writers: folders of fonts-bwht and fonts-breip, and their family names.
EVAL_FONT_DIRS: tuple[Path, ...] = (FONT_ROOT / "opentype/bwht", FONT_ROOT / "truetype/breip")
EVAL_FAMILY_PREFIXES: tuple[str, ...] = ("because we ", "breip")

# Lowercase letters whose shape differs from their capital in mixed-case hands; o/c/s/v/w/x/z are
# scaled capitals by design, so they cannot tell a capitals-only font apart.
_DISTINCT_LOWERCASE = "abdefghnqrt"
_PROBE_SIZE = 40
_NOTDEF_PROBE = "\U0010fffd"  # private-use code point no font maps: renders as .notdef
# Median lowercase-vs-capital shape correlation: 0.05-0.48 for the mixed-case hands above, 0.74-1.0
# for the capitals-only ones (Humor Sans, TomsonTalks, all of fonts-bwht), whose "lowercase" is a
# smaller or redrawn capital. Single letters overlap (Kaushan's e/E: 0.86), so only the font decides.
_CAPITAL_LIKE = 0.6


def _existing(paths: list[Path]) -> list[Path]:
    return [path for path in paths if path.is_file()]


def train_fonts() -> list[Path]:
    """Installed training fonts from the curated list; never a held-out writer."""
    return [
        path for path in _existing([FONT_ROOT / rel for _, rel in TRAIN_FONT_FILES]) if not is_eval_font(path)
    ]


def print_fonts() -> list[Path]:
    """Installed printed fonts from the curated list (training variety, see PRINT_FONT_FILES)."""
    return [
        path for path in _existing([FONT_ROOT / rel for _, rel in PRINT_FONT_FILES]) if not is_eval_font(path)
    ]


def _web_font_file(package: str, weight: int, root: Path) -> Path:
    return root / f"{package}-latin-{weight}-normal.woff2"


WEB_FONT_GROUPS: tuple[str, ...] = ("web", "web_more")


def _web_packages(group: str) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """The packages of a web font group (WEB_FONT_GROUPS), looked up when called (tests swap the tables)."""
    return {"web": WEB_FONT_PACKAGES, "web_more": MORE_WEB_FONT_PACKAGES}[group]


def web_fonts(root: Path = WEB_FONT_ROOT, group: str = "web") -> list[Path]:
    """The fetched Google Fonts hands of ``group`` ("web" or "web_more"); refuses to run before they are fetched."""
    paths = [
        _web_font_file(name, weight, root) for name, _, weights in _web_packages(group) for weight in weights
    ]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} web fonts missing from {root} (e.g. {missing[0]}): "
            "run `python -m data_prep.fonts fetch` (needs npm)"
        )
    return [path for path in paths if not is_eval_font(path)]


def _fetch_package(name: str, version: str, weights: tuple[int, ...], root: Path, scratch: Path) -> None:
    """``npm pack`` one Fontsource package; keep its Latin WOFF2 files and its metadata (licence, authors)."""
    folder = scratch / name
    folder.mkdir()
    spec = f"@fontsource/{name}@{version}"
    done = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(folder), spec], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
    (archive,) = folder.glob("*.tgz")
    with tarfile.open(archive) as tar:
        (root / f"{name}.json").write_bytes(tar.extractfile("package/metadata.json").read())
        for weight in weights:
            target = _web_font_file(name, weight, root)
            member = tar.extractfile(f"package/files/{target.name}")
            # written under another name, then renamed: an interrupted fetch leaves no truncated font
            partial = target.with_suffix(".part")
            partial.write_bytes(member.read())
            partial.replace(target)


def fetch_web_fonts(root: Path = WEB_FONT_ROOT, jobs: int = 8) -> list[Path]:
    """Fetch every web font (all WEB_FONT_GROUPS) not yet in ``root`` from the npm registry; return them all."""
    if shutil.which("npm") is None:
        raise FileNotFoundError(
            "npm not found: install Node.js (e.g. `apt-get install npm`) to fetch web fonts"
        )
    root.mkdir(parents=True, exist_ok=True)
    packages = [package for group in WEB_FONT_GROUPS for package in _web_packages(group)]
    todo = [
        (name, version, weights)
        for name, version, weights in packages
        if not all(_web_font_file(name, weight, root).is_file() for weight in weights)
    ]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(jobs) as pool:
        for future in [pool.submit(_fetch_package, *package, root, Path(scratch)) for package in todo]:
            future.result()
    print(f"{root}: {len(packages) - len(todo)} font packages already there, {len(todo)} fetched")
    return [path for group in WEB_FONT_GROUPS for path in web_fonts(root, group)]


def eval_fonts() -> list[Path]:
    """Installed held-out writers (fonts-bwht, fonts-breip), for validation/test splits only."""
    found = [path for folder in EVAL_FONT_DIRS for path in sorted(folder.glob("*.[ot]tf"))]
    return _existing(found)


@functools.cache
def is_eval_font(path: str | Path) -> bool:
    """True for a held-out writer, recognised by its folder or by its family name (survives a copy)."""
    resolved = Path(path).resolve()
    if any(resolved.is_relative_to(folder) for folder in EVAL_FONT_DIRS):
        return True
    family = ImageFont.truetype(str(path), 12).getname()[0] or ""
    return family.lower().startswith(EVAL_FAMILY_PREFIXES)


def resolve_fonts(fonts: str | Path | Sequence[str | Path]) -> list[Path]:
    """``"train"``, ``"web"``, ``"web_more"``, ``"print"``, ``"eval"``, ``"all"`` or font paths (or a list of them) → existing font files."""
    if isinstance(fonts, str | Path):
        fonts = [fonts]
    named = {
        "train": train_fonts,
        "print": print_fonts,
        **{group: functools.partial(web_fonts, group=group) for group in WEB_FONT_GROUPS},
        "eval": eval_fonts,
        "all": lambda: train_fonts() + eval_fonts(),
    }
    resolved: list[Path] = []
    for item in fonts:
        if str(item) in named:
            resolved += named[str(item)]()
        elif Path(item).is_file():
            resolved.append(Path(item))
        else:
            raise FileNotFoundError(
                f"font {item!r} is neither train/web/web_more/print/eval/all nor an existing file"
            )
    if not resolved:
        raise FileNotFoundError(f"no font found for {fonts!r}: install data_prep/apt-packages.txt")
    return list(dict.fromkeys(resolved))


def check_split(fonts: list[Path], split: str | None) -> None:
    """Refuse held-out writers in a training split: that would leak the test writers into training."""
    leaked = [str(path) for path in fonts if is_eval_font(path)]
    if split == "train" and leaked:
        raise ValueError(f"held-out eval fonts cannot be used for split 'train': {leaked}")


@dataclass(frozen=True)
class FontCoverage:
    """What a font really draws: ``drawable`` characters, and whether lowercase comes out as capitals."""

    path: Path
    drawable: frozenset[str]
    caps_only: bool

    def drawable_text(self, text: str) -> str:
        """``text`` as this font draws it: uppercased for a capitals-only font, undrawable chars dropped."""
        if self.caps_only:
            text = text.upper()
        return "".join(char for char in text if char == " " or char in self.drawable)


def _ink(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray:
    """Binary ink bitmap of ``char``, cropped to its ink (empty array when nothing is drawn)."""
    left, top, right, bottom = font.getbbox(char)
    image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(image).text((-left, -top), char, font=font, fill=255)
    box = image.getbbox()
    return np.asarray(image.crop(box)) > 127 if box else np.zeros((0, 0), bool)


def _shape(ink: np.ndarray) -> np.ndarray:
    """Size-free shape signature: ink squeezed to 16x16, blurred, zero-mean unit vector."""
    image = Image.fromarray(ink.astype(np.uint8) * 255).resize((16, 16), Image.Resampling.BOX)
    vector = np.asarray(image.filter(ImageFilter.GaussianBlur(1)), float).ravel()
    vector -= vector.mean()
    return vector / (np.linalg.norm(vector) + 1e-9)


def _capital_likeness(bitmaps: dict[str, np.ndarray], drawable: frozenset[str], lower: str) -> float:
    """Shape correlation of ``lower`` with its capital; a missing lowercase counts as a capital (1.0),
    so a font without lowercase uppercases its text rather than dropping every lowercase letter."""
    if lower not in drawable:
        return 1.0
    if lower.upper() not in drawable:
        return 0.0
    return float(_shape(bitmaps[lower]) @ _shape(bitmaps[lower.upper()]))


@functools.cache
def font_coverage(path: str | Path) -> FontCoverage:
    """Measure, once per process, which printable ASCII characters ``path`` draws distinctly."""
    font = ImageFont.truetype(str(path), _PROBE_SIZE)
    notdef = _ink(font, _NOTDEF_PROBE)
    bitmaps = {char: _ink(font, char) for char in string.printable.strip()}
    drawable = frozenset(
        char
        for char, ink in bitmaps.items()
        if ink.size and not (ink.shape == notdef.shape and np.array_equal(ink, notdef))
    )
    likeness = [_capital_likeness(bitmaps, drawable, char) for char in _DISTINCT_LOWERCASE]
    caps_only = float(np.median(likeness)) >= _CAPITAL_LIKE
    if caps_only:
        drawable -= frozenset(string.ascii_lowercase)
    return FontCoverage(Path(path), drawable, caps_only)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m data_prep.fonts fetch``: fetch the web fonts (both groups) into data/fonts."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--root", type=Path, default=WEB_FONT_ROOT, help="where the font files go")
    args = parser.parse_args(argv)
    try:
        print(f"{len(fetch_web_fonts(args.root))} web fonts in {args.root}")
    except (FileNotFoundError, RuntimeError) as error:
        parser.exit(1, f"data_prep.fonts: {error}\n")


if __name__ == "__main__":
    main()
