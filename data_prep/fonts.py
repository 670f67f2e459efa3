"""Handwriting fonts for synthetic data: which writers exist, which are held out, what each can draw.

Every font file is one synthetic "writer". Two Debian packages are reserved as held-out writers
(fonts-bwht, fonts-breip): a model evaluated on them has never seen their hands, so the test CER
measures generalisation to new writers rather than memorised glyph shapes. The guard is by folder
*and* by family name, so a copied or renamed file is still recognised.

A label must only contain what the image shows, so each font's coverage is measured from rendered
bitmaps rather than trusted from its ``cmap``: a code point can map to ``.notdef`` or to an empty
glyph, and capitals-only fonts map lowercase to (small) capitals.
"""

import functools
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_ROOT = Path("/usr/share/fonts")

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
    """``"train"``, ``"print"``, ``"eval"``, ``"all"`` or font paths (or a list of them) → existing font files."""
    if isinstance(fonts, str | Path):
        fonts = [fonts]
    named = {
        "train": train_fonts,
        "print": print_fonts,
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
            raise FileNotFoundError(f"font {item!r} is neither train/print/eval/all nor an existing file")
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
