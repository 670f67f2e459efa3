"""One page's text lines (polygon, baseline, text, type, confidence) and their PAGE 2019 / ALTO 4 XML.

Both formats carry the same facts for a line; this module reads either into :class:`Page` and
writes both, so import (``data_prep.page_lines``), re-recognition and export (``htr.pages.transcribe``) share one
model. Lines are kept in reading order: regions in the file's reading order (PAGE ``ReadingOrder``
when present, else document order), lines in document order within a region, which is how
eScriptorium, Transkribus and kraken write them. Written files validate against the official
schemas shipped in ``htr/pages/schemas`` (ALTO 4.4, which reads every ALTO 4.x file, and PAGE 2019-07-15).
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from htr.core.errors import HTRError

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMAS = {"alto": SCHEMA_DIR / "alto-4-4.xsd", "page": SCHEMA_DIR / "pagecontent.xsd"}
CREATOR = "htr.pages (TrOCR handwriting recipes)"

Point = tuple[int, int]


class LayoutError(HTRError, ValueError):
    """A PAGE/ALTO file this module cannot read, with the file and the element named."""


@dataclass
class Line:
    """One text line: boundary polygon and baseline in page pixels, text, line type, optional confidence."""

    id: str
    polygon: list[Point]
    baseline: list[Point]
    text: str = ""
    type: str = ""  # e.g. "DefaultLine:Handwritten" (ALTO OtherTag label / PAGE custom structure type)
    region: str = ""
    confidence: float | None = None  # 0..1, written as ALTO WC / PAGE TextEquiv@conf when known


@dataclass
class Region:
    """A text region: its polygon (may be empty when the source has none) and id."""

    id: str
    polygon: list[Point] = field(default_factory=list)


@dataclass
class Page:
    """A page image and its lines in reading order."""

    image: Path
    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The page's text in reading order, one line per line."""
        return "\n".join(line.text for line in self.lines)


def _points(text: str | None, where: str) -> list[Point]:
    """Parse "x y x y …" (ALTO) or "x,y x,y …" (PAGE) into integer points."""
    values = (text or "").replace(",", " ").split()
    if len(values) % 2:
        raise LayoutError(f"{where}: odd number of coordinates in {text!r}")
    try:
        numbers = [round(float(value)) for value in values]
    except ValueError:
        raise LayoutError(f"{where}: non-numeric coordinate in {text!r}") from None
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def bounding_box(points: list[Point]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``points``."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def _box_polygon(points: list[Point]) -> list[Point]:
    left, top, right, bottom = bounding_box(points)
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def read_layout(path: Path) -> Page:
    """Read a PAGE (any 20xx namespace) or ALTO (v2–v4) file; the image is resolved beside the file."""
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError) as error:
        raise LayoutError(f"{path}: not readable XML ({error})") from None
    namespace = etree.QName(root).namespace or ""
    local = etree.QName(root).localname
    if local == "alto":
        return _read_alto(path, root, namespace)
    if local == "PcGts":
        return _read_page(path, root, namespace)
    raise LayoutError(f"{path}: root element <{local}> is neither ALTO <alto> nor PAGE <PcGts>")


def _image_beside(path: Path, name: str) -> Path:
    """The page image named in the file, beside it; else a same-stem image beside it; else the named path.

    A missing image is not an error here (the geometry and text are readable without it); whoever
    opens the image reports it.
    """
    named = path.parent / Path(name).name if name else path.with_suffix(".png")
    if named.is_file():
        return named
    for suffix in (".jpg", ".jpeg", ".png", ".tif", ".tiff"):
        sibling = path.with_name(path.name.split(".")[0] + suffix)
        if sibling.is_file():
            return sibling
    return named


def _read_alto(path: Path, root: etree._Element, ns: str) -> Page:
    q = {"a": ns}
    name = root.findtext("a:Description/a:sourceImageInformation/a:fileName", default="", namespaces=q)
    page_el = root.find(".//a:Page", q)
    if page_el is None:
        raise LayoutError(f"{path}: ALTO file without a <Page> element")
    tags = {tag.get("ID"): tag.get("LABEL", "") for tag in root.iterfind(".//a:OtherTag", q)}
    page = Page(
        _image_beside(path, name.strip()),
        int(float(page_el.get("WIDTH", 0))),
        int(float(page_el.get("HEIGHT", 0))),
    )
    for number, block in enumerate(page_el.iterfind(".//a:TextBlock", q), start=1):
        block_id = block.get("ID") or f"r{number}"
        shape = block.find("a:Shape/a:Polygon", q)
        polygon = _points(shape.get("POINTS") if shape is not None else "", f"{path} TextBlock {block_id}")
        page.regions.append(Region(block_id, polygon))
        for line_el in block.iterfind("a:TextLine", q):
            line_id = line_el.get("ID", "")
            where = f"{path} TextLine {line_id}"
            shape = line_el.find("a:Shape/a:Polygon", q)
            polygon = _points(shape.get("POINTS") if shape is not None else "", where)
            if not polygon and line_el.get("WIDTH"):
                x, y = float(line_el.get("HPOS", 0)), float(line_el.get("VPOS", 0))
                w, h = float(line_el.get("WIDTH", 0)), float(line_el.get("HEIGHT", 0))
                polygon = _box_polygon([(round(x), round(y)), (round(x + w), round(y + h))])
            strings = line_el.findall("a:String", q)
            text = " ".join(s.get("CONTENT", "") for s in strings)
            confidences = [float(s.get("WC")) for s in strings if s.get("WC")]
            refs = (line_el.get("TAGREFS") or "").split()
            page.lines.append(
                Line(
                    id=line_id,
                    polygon=polygon,
                    baseline=_points(line_el.get("BASELINE"), where)
                    if " " in (line_el.get("BASELINE") or "")
                    else [],
                    text=text,
                    type=next((tags[ref] for ref in refs if ref in tags), ""),
                    region=block_id,
                    confidence=min(confidences) if confidences else None,
                )
            )
    return page


def _page_type(custom: str | None) -> str:
    """Line type from a PAGE ``custom`` attribute: ``structure {type:handwritten;}`` → ``handwritten``."""
    for part in (custom or "").split("}"):
        key, _, body = part.strip().partition("{")
        if key.strip() == "structure":
            for item in body.split(";"):
                name, _, value = item.partition(":")
                if name.strip() == "type":
                    return value.strip()
    return ""


def _read_page(path: Path, root: etree._Element, ns: str) -> Page:
    q = {"p": ns}
    page_el = root.find("p:Page", q)
    if page_el is None:
        raise LayoutError(f"{path}: PAGE file without a <Page> element")
    page = Page(
        _image_beside(path, page_el.get("imageFilename", "")),
        int(page_el.get("imageWidth", 0)),
        int(page_el.get("imageHeight", 0)),
    )
    regions = {region.get("id"): region for region in page_el.iterfind(".//p:TextRegion", q)}
    indexed = page_el.iterfind("p:ReadingOrder//p:RegionRefIndexed", q)
    order = [ref.get("regionRef") for ref in sorted(indexed, key=lambda ref: int(ref.get("index", 0)))]
    ordered = [regions[ref] for ref in order if ref in regions] + [
        r for key, r in regions.items() if key not in order
    ]
    for region_el in ordered:
        region_id = region_el.get("id", "")
        coords = region_el.find("p:Coords", q)
        page.regions.append(
            Region(
                region_id,
                _points(coords.get("points") if coords is not None else "", f"{path} TextRegion {region_id}"),
            )
        )
        for line_el in region_el.iterfind("p:TextLine", q):
            line_id = line_el.get("id", "")
            where = f"{path} TextLine {line_id}"
            coords = line_el.find("p:Coords", q)
            baseline = line_el.find("p:Baseline", q)
            equiv = line_el.find("p:TextEquiv", q)
            conf = equiv.get("conf") if equiv is not None else None
            page.lines.append(
                Line(
                    id=line_id,
                    polygon=_points(coords.get("points") if coords is not None else "", where),
                    baseline=_points(baseline.get("points") if baseline is not None else "", where),
                    text=(equiv.findtext("p:Unicode", default="", namespaces=q) if equiv is not None else ""),
                    type=_page_type(line_el.get("custom")),
                    region=region_id,
                    confidence=float(conf) if conf else None,
                )
            )
    return page


def _regions_for_writing(page: Page) -> list[tuple[Region, list[Line]]]:
    """Regions with their lines in reading order; lines without a known region get one around them."""
    by_id = {region.id: region for region in page.regions}
    groups: dict[str, list[Line]] = {}
    for line in page.lines:
        groups.setdefault(line.region if line.region in by_id else "", []).append(line)
    result = []
    for key, lines in groups.items():
        region = by_id.get(key) or Region("region_orphans")
        if len(region.polygon) < 3:
            region = replace(region, polygon=_box_polygon([p for line in lines for p in line.polygon]))
        result.append((region, lines))
    return result


def _page_points(points: list[Point]) -> str:
    return " ".join(f"{x},{y}" for x, y in points)


def _alto_points(points: list[Point]) -> str:
    return " ".join(f"{x} {y}" for x, y in points)


def _xml_id(value: str, prefix: str) -> str:
    """An XML ID (NCName): ids from other tools may start with a digit."""
    return value if value[:1].isalpha() or value[:1] == "_" else f"{prefix}{value}"


def to_page_xml(page: Page) -> bytes:
    """PAGE 2019-07-15 XML of ``page``: regions, ReadingOrder, lines with Coords, Baseline, TextEquiv."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = etree.Element(
        f"{{{PAGE_NS}}}PcGts",
        nsmap={None: PAGE_NS, "xsi": XSI_NS},
        attrib={f"{{{XSI_NS}}}schemaLocation": f"{PAGE_NS} {PAGE_NS}/pagecontent.xsd"},
    )
    metadata = etree.SubElement(root, f"{{{PAGE_NS}}}Metadata")
    for tag, value in (("Creator", CREATOR), ("Created", now), ("LastChange", now)):
        etree.SubElement(metadata, f"{{{PAGE_NS}}}{tag}").text = value
    page_el = etree.SubElement(
        root,
        f"{{{PAGE_NS}}}Page",
        imageFilename=page.image.name,
        imageWidth=str(page.width),
        imageHeight=str(page.height),
    )
    groups = _regions_for_writing(page)
    if groups:
        order = etree.SubElement(
            etree.SubElement(page_el, f"{{{PAGE_NS}}}ReadingOrder"), f"{{{PAGE_NS}}}OrderedGroup", id="ro_1"
        )
        for index, (region, _) in enumerate(groups):
            etree.SubElement(
                order, f"{{{PAGE_NS}}}RegionRefIndexed", index=str(index), regionRef=_xml_id(region.id, "r_")
            )
    for region, lines in groups:
        region_el = etree.SubElement(page_el, f"{{{PAGE_NS}}}TextRegion", id=_xml_id(region.id, "r_"))
        etree.SubElement(region_el, f"{{{PAGE_NS}}}Coords", points=_page_points(region.polygon))
        for line in lines:
            line_el = etree.SubElement(region_el, f"{{{PAGE_NS}}}TextLine", id=_xml_id(line.id, "l_"))
            if line.type:
                line_el.set("custom", f"structure {{type:{line.type};}}")
            etree.SubElement(line_el, f"{{{PAGE_NS}}}Coords", points=_page_points(line.polygon))
            if len(line.baseline) >= 2:
                etree.SubElement(line_el, f"{{{PAGE_NS}}}Baseline", points=_page_points(line.baseline))
            equiv = etree.SubElement(line_el, f"{{{PAGE_NS}}}TextEquiv")
            if line.confidence is not None:
                equiv.set("conf", f"{line.confidence:.4f}")
            etree.SubElement(equiv, f"{{{PAGE_NS}}}Unicode").text = line.text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def to_alto_xml(page: Page) -> bytes:
    """ALTO 4 XML of ``page``: TextBlocks, TextLines with BASELINE, Shape/Polygon, String CONTENT and WC."""
    root = etree.Element(
        f"{{{ALTO_NS}}}alto",
        nsmap={None: ALTO_NS, "xsi": XSI_NS},
        attrib={
            f"{{{XSI_NS}}}schemaLocation": f"{ALTO_NS} http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
        },
    )
    description = etree.SubElement(root, f"{{{ALTO_NS}}}Description")
    etree.SubElement(description, f"{{{ALTO_NS}}}MeasurementUnit").text = "pixel"
    source = etree.SubElement(description, f"{{{ALTO_NS}}}sourceImageInformation")
    etree.SubElement(source, f"{{{ALTO_NS}}}fileName").text = page.image.name
    types = sorted({line.type for line in page.lines if line.type})
    tag_ids = {name: f"LT{number}" for number, name in enumerate(types, start=1)}
    if types:
        tags = etree.SubElement(root, f"{{{ALTO_NS}}}Tags")
        for name, tag_id in tag_ids.items():
            etree.SubElement(
                tags, f"{{{ALTO_NS}}}OtherTag", ID=tag_id, LABEL=name, DESCRIPTION=f"line type {name}"
            )
    layout = etree.SubElement(root, f"{{{ALTO_NS}}}Layout")
    page_el = etree.SubElement(
        layout,
        f"{{{ALTO_NS}}}Page",
        ID="page_1",
        PHYSICAL_IMG_NR="1",
        WIDTH=str(page.width),
        HEIGHT=str(page.height),
    )
    space = etree.SubElement(
        page_el,
        f"{{{ALTO_NS}}}PrintSpace",
        HPOS="0",
        VPOS="0",
        WIDTH=str(page.width),
        HEIGHT=str(page.height),
    )
    for region, lines in _regions_for_writing(page):
        block = etree.SubElement(
            space, f"{{{ALTO_NS}}}TextBlock", ID=_xml_id(region.id, "r_"), **_alto_box(region.polygon)
        )
        etree.SubElement(
            etree.SubElement(block, f"{{{ALTO_NS}}}Shape"),
            f"{{{ALTO_NS}}}Polygon",
            POINTS=_alto_points(region.polygon),
        )
        for line in lines:
            line_el = etree.SubElement(
                block, f"{{{ALTO_NS}}}TextLine", ID=_xml_id(line.id, "l_"), **_alto_box(line.polygon)
            )
            if len(line.baseline) >= 2:
                line_el.set("BASELINE", _alto_points(line.baseline))
            if line.type:
                line_el.set("TAGREFS", tag_ids[line.type])
            etree.SubElement(
                etree.SubElement(line_el, f"{{{ALTO_NS}}}Shape"),
                f"{{{ALTO_NS}}}Polygon",
                POINTS=_alto_points(line.polygon),
            )
            string = etree.SubElement(
                line_el, f"{{{ALTO_NS}}}String", CONTENT=line.text, **_alto_box(line.polygon)
            )
            if line.confidence is not None:
                string.set("WC", f"{line.confidence:.4f}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _alto_box(points: list[Point]) -> dict[str, str]:
    left, top, right, bottom = bounding_box(points)
    return {"HPOS": str(left), "VPOS": str(top), "WIDTH": str(right - left), "HEIGHT": str(bottom - top)}


def schema_errors(xml: bytes, kind: str) -> list[str]:
    """Messages of the shipped XSD (``kind`` "alto" or "page") for ``xml``; empty when it validates."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS[kind])))
    if schema.validate(etree.fromstring(xml)):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]
