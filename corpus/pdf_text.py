"""The text of one PDF through PyMuPDF, with layout artifacts removed and content kept.

What is removed or rebuilt, and how:

- Running headers, footers and page numbers: the outermost lines of the top or bottom 15% of a
  page whose text (lower-cased, digit runs read as one symbol) comes back at the same height on
  two pages or more, lines at the same height as those, and bare page numbers ("12", "iv",
  "Page 3 of 9"). Heading-sized lines are never taken for running ones.
- Reading order: recursive XY-cut on the lines of a page. A region is first cut at wide
  horizontal bands of white space (under a title, around a figure), then into columns at the
  page's gutters (bands that three column-wide lines end before and three start after) that no
  line of the region crosses, then into strips at its other horizontal gaps; strips that fill
  the same columns are joined again, so an accidental gap at the same height in both columns
  does not interleave them.
- Paragraphs: the lines of one block are joined, and a paragraph continues across blocks,
  columns and pages when its last line has no closing punctuation and the next line starts in
  lower case, fills its line, or sits right under it; a footnote or a table in between does
  not end it. A word hyphenated at a line end is joined when the joined word occurs elsewhere
  in the document or the part after the hyphen is a suffix ("respira-tory"); the hyphen stays
  when the pair occurs hyphenated elsewhere, when both parts are words of the document
  ("evidence-based"), or when the part before it is a word of four letters or more
  ("time-consuming"). The document is its own dictionary: no word list is needed.
- Headings: lines at least 15% larger than the body text; short paragraphs set in bold at body
  size; short blocks in another typeface. Levels `#`..`###` follow the heading sizes; a size
  seen once (a cover title) takes the level of the next larger frequent one.
- Tables: ruled tables found by `page.find_tables()` become markdown rows. The search costs
  ~0.15 s a page, so it runs only over groups of touching ruling lines with three distinct
  horizontal and three vertical edges, clipped to each group. Unruled tables stay as lines,
  one line per visual row with cells joined by " | ", so their rows are not run together.
- Left out: text that does not run left to right (margin labels, stamps, but also tables
  printed sideways), and images.
"""

from __future__ import annotations

import bisect
import itertools
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pymupdf

# PyMuPDF prints a recommendation for another package on stdout at the first table search.
pymupdf.no_recommend_layout()

# What MuPDF raises for a file it cannot read (FzErrorBase is not a RuntimeError).
_MUPDF_ERRORS = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)
_FLAGS = (
    pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_COLLECT_VECTORS
)
_BAND = 0.15
_MIN_COLUMN = 0.15
_MIN_GUTTER = 5.0
_HEADING_RATIO = 1.15
_MAX_TABLE_AREA = 0.8  # of the page; a larger grid is a page frame or a layout of panels
_WS = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_PAGE_NUMBER = re.compile(r"^(?:page )?(?:#|[ivxlc]+)(?: ?(?:of|/) ?#)?$|^[-–—] ?# ?[-–—]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Glyphs of symbol fonts that have no Unicode mapping: at a line start they are bullets.
_GLYPH_BULLET = re.compile(r"^[•▪■●◦○►›»·]?[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]+\s*")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_TERMINAL = re.compile(r"[.!?:][\"'”’)\]]*\d*$")
_URL_END = re.compile(r"(?:https?://|www\.)\S*[./]$")
_LEADER = re.compile(r"(?:\.\s?){5,}")  # the dots of a table of contents
# Endings that are never words of a compound: "arch-ing" was "arching".
_SUFFIX_LIST = (
    "ing ings ed tion tions sion ment ments ness ly ity ities al ally ous ive ize ise ized ised "
    "ance ence able ible er ers est ic ical ism ist ists ure ures ology ologies"
)
_SUFFIXES = frozenset(_SUFFIX_LIST.split())
_BULLET = re.compile(r"^[•▪■●◦○►›»·]")
# Enumerators and dashes start a list item only after a line that closed a sentence or stopped
# short: "(32) than" inside a paragraph is a citation.
_ENUMERATOR = re.compile(r"^(?:[*+–—-]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")


class PdfError(Exception):
    """A PDF without usable text; `error_class` is the quarantine reason."""

    @property
    def error_class(self) -> str:
        return type(self).__name__


class EncryptedPdf(PdfError):
    """Needs a password to open."""


class CorruptPdf(PdfError):
    """MuPDF cannot open or read it."""


class ImageOnlyPdf(PdfError):
    """No extractable text (scanned pages, or none at all)."""


class TooManyPages(PdfError):
    """More pages than the caller allows."""


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    page: int


@dataclass(frozen=True)
class PdfText:
    """`text` is markdown-ish: `#` headings, paragraphs separated by blank lines.
    `page_count_used` counts the pages that contributed text."""

    text: str
    title: str | None
    n_pages: int
    headings: list[Heading]
    page_count_used: int


@dataclass(slots=True)
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    size: float
    bold: bool
    font: str
    block: int
    page: int
    block_x1: float = 0.0
    block_lines: int = 1


@dataclass(slots=True)
class _Table:
    x0: float
    y0: float
    x1: float
    y1: float
    rows: list[list[str]]
    page: int


@dataclass(slots=True)
class _Row:
    """One visual line: the segments of a page line that sit side by side."""

    segments: list[_Line]
    text: str
    tabular: bool

    @property
    def first(self) -> _Line:
        return self.segments[0]


@dataclass(slots=True)
class _Para:
    kind: str  # "heading", "body", "tabular" or "table"
    rows: list[_Row]
    table: _Table | None = None


def extract_pdf(data: bytes, max_pages: int = 500) -> PdfText:
    """The text of a PDF given as bytes; raises a PdfError subclass for unusable files."""
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except _MUPDF_ERRORS as exc:
        raise CorruptPdf(f"cannot open: {exc}") from exc
    with doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise EncryptedPdf("the PDF needs a user password")
        n_pages = doc.page_count
        if n_pages == 0:
            raise CorruptPdf("the PDF has no readable pages")
        if n_pages > max_pages:
            raise TooManyPages(f"{n_pages} pages, limit {max_pages}")
        try:
            pages = [_page_items(page) for page in doc]
            title = _metadata_title(doc.metadata or {})
        except _MUPDF_ERRORS as exc:
            raise CorruptPdf(f"cannot read: {exc}") from exc
    lines = [line for page_lines, _, _ in pages for line in page_lines]
    if sum(len(_NOT_ALNUM.sub("", line.text)) for line in lines) < 16 * n_pages:
        raise ImageOnlyPdf(f"no extractable text on {n_pages} pages")
    body_size, body_font = _body_style(lines)
    _drop_running_lines([p[0] for p in pages], [p[2] for p in pages], body_size)
    return _assemble(pages, n_pages, title, body_size, body_font)


def _page_items(page: pymupdf.Page) -> tuple[list[_Line], list[_Table], pymupdf.Rect]:
    rect = page.rect
    lines, rules = _page_lines(page, page.number + 1)
    clips = _table_clips(rules, rect) if lines else []
    tables = [t for clip in clips for t in _page_tables(page, clip)]
    if tables:
        lines = [ln for ln in lines if not any(_inside(ln, t) for t in tables)]
    return lines, tables, rect


def _page_lines(
    page: pymupdf.Page, pno: int
) -> tuple[list[_Line], list[tuple[pymupdf.Rect, bool]]]:
    """The text lines of a page, and the boxes of its vector paths (for finding tables)."""
    out: list[_Line] = []
    rules: list[tuple[pymupdf.Rect, bool]] = []
    seen: set[tuple[str, int, int]] = set()
    for bno, block in enumerate(page.get_text("dict", flags=_FLAGS)["blocks"]):
        if block["type"] == 3:
            rules.append((pymupdf.Rect(block["bbox"]), block["isrect"]))
            continue
        if block["type"] != 0:
            continue
        block_lines: list[_Line] = []
        for line in block["lines"]:
            if abs(line["dir"][1]) > 0.05 or line["dir"][0] <= 0:
                continue  # rotated text: margin labels and stamps, not running text
            made = _make_line(line["spans"], bno, pno)
            if made is None:
                continue
            # Fake bold drawn twice at nearly the same place would double the text.
            key = (made.text, round(made.x0), round(made.y0))
            if key in seen:
                continue
            seen.add(key)
            block_lines.append(made)
        if block_lines:
            x1 = max(ln.x1 for ln in block_lines)
            for ln in block_lines:
                ln.block_x1 = x1
                ln.block_lines = len(block_lines)
            out.extend(block_lines)
    return out, rules


def _make_line(spans: list[dict], bno: int, pno: int) -> _Line | None:
    parts: list[str] = []
    sizes: dict[float, int] = {}
    fonts: dict[str, int] = {}
    chars = bold_chars = 0
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for span in spans:
        text = span["text"]
        parts.append(text)
        n = len("".join(text.split()))
        if n == 0:
            continue
        chars += n
        if span["flags"] & 16 or _is_bold_font(span["font"]):
            bold_chars += n
        size = round(span["size"] * 2) / 2
        sizes[size] = sizes.get(size, 0) + n
        fonts[span["font"]] = fonts.get(span["font"], 0) + n
        bx0, by0, bx1, by1 = span["bbox"]
        x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
    if chars == 0:
        return None
    text = _clean("".join(parts))
    return _Line(
        x0,
        y0,
        x1,
        y1,
        text,
        size=max(sizes, key=sizes.__getitem__),
        bold=bold_chars >= 0.9 * chars,
        font=max(fonts, key=fonts.__getitem__),
        block=bno,
        page=pno,
    )


def _clean(text: str) -> str:
    """Whitespace collapsed; unmapped symbol glyphs at the start read as a bullet, control
    characters (tab-stop and symbol glyphs without Unicode) as spaces."""
    text = _GLYPH_BULLET.sub("• ", _WS.sub(" ", text).strip())
    return _WS.sub(" ", _CONTROL.sub(" ", text)).strip()


def _is_bold_font(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in ("bold", "black", "heavy", "semibold", "demi"))


def _table_clips(rules: list[tuple[pymupdf.Rect, bool]], page: pymupdf.Rect) -> list[pymupdf.Rect]:
    """The areas of touching ruling lines that could form a table of two rows and two columns
    or more (three distinct edges each way). Rules apart from them (a line under the running
    header, a box around a note) are left out, so that the table search reads less text."""
    groups: list[tuple[pymupdf.Rect, set[int], set[int]]] = []
    for box, is_rect in rules:
        if box.width >= 0.95 * page.width and box.height >= 0.95 * page.height:
            continue  # a page background or frame
        if not is_rect and min(box.width, box.height) >= 2:
            continue  # a curve or a shape, not a rule
        xs = {round(box.x0), round(box.x1)} if box.height >= 8 else set()
        ys = {round(box.y0), round(box.y1)} if box.width >= 8 else set()
        if not xs and not ys:
            continue
        area = pymupdf.Rect(box.x0 - 2, box.y0 - 2, box.x1 + 2, box.y1 + 2)
        touching = [g for g in groups if g[0].intersects(area)]
        for g in touching:
            groups.remove(g)
            area |= g[0]
            xs |= g[1]
            ys |= g[2]
        groups.append((area, xs, ys))
    # A group over most of the page is a layout of panels: no table is that large.
    return [
        area
        for area, xs, ys in groups
        if len(_distinct(xs)) >= 3
        and len(_distinct(ys)) >= 3
        and area.width * area.height <= _MAX_TABLE_AREA * page.width * page.height
    ]


def _distinct(values: set[int]) -> list[int]:
    out: list[int] = []
    for v in sorted(values):
        if not out or v - out[-1] > 1:
            out.append(v)
    return out


def _page_tables(page: pymupdf.Page, clip: pymupdf.Rect) -> list[_Table]:
    page_area = page.rect.width * page.rect.height
    try:
        found = page.find_tables(clip=clip).tables
    except Exception:
        # The table finder is pure-Python heuristics over odd graphics; when it fails, the
        # page keeps its text as lines instead of losing the document.
        return []
    out = []
    for tab in found:
        x0, y0, x1, y1 = tab.bbox
        if (
            tab.row_count < 2
            or tab.col_count < 2
            or (x1 - x0) * (y1 - y0) > _MAX_TABLE_AREA * page_area
        ):
            continue  # page frames and layout boxes, not tables
        extracted = tab.extract()
        cells = [c for row in extracted for c in row if c is not None]
        filled = [c for c in cells if c.strip()]
        rows = [[(c or "").strip() for c in row] for row in extracted]
        rows = [r for r in rows if any(r)]
        if len(filled) < 0.4 * len(cells) or sum(sum(bool(c) for c in r) >= 2 for r in rows) < 2:
            continue
        out.append(_Table(x0, y0, x1, y1, rows, page.number + 1))
    return out


def _inside(line: _Line, table: _Table) -> bool:
    cx, cy = (line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2
    return table.x0 <= cx <= table.x1 and table.y0 <= cy <= table.y1


def _metadata_title(meta: dict) -> str | None:
    title = _WS.sub(" ", meta.get("title") or "").strip()
    words = [w for w in title.split() if sum(ch.isalpha() for ch in w) >= 2]
    # Titles such as "D 17-4", "untitled" or "Microsoft Word - x.docx" name files, not works.
    if len(words) < 2 or re.search(r"microsoft|untitled|\.(?:docx?|pdf|indd|qxd)\b", title, re.I):
        return None
    return title


def _drop_running_lines(
    pages: list[list[_Line]], rects: list[pymupdf.Rect], body_size: float
) -> None:
    """Remove running headers, footers and page numbers from `pages`, in place. A header may
    run over two pages only (a section's), so two are enough; heading-sized lines are kept."""
    seen: dict[tuple[str, str], list[tuple[int, _Line]]] = defaultdict(list)
    drop: set[int] = set()
    for i, (lines, rect) in enumerate(zip(pages, rects, strict=True)):
        for line in lines:
            zone = _zone(line, rect)
            if zone is None or line.size > _HEADING_RATIO * body_size:
                continue
            key = _WS.sub(" ", _DIGITS.sub("#", line.text.lower())).strip()
            if _PAGE_NUMBER.match(key):
                drop.add(id(line))
            else:
                seen[(zone, key)].append((i, line))
    for hits in seen.values():
        if len({i for i, _ in hits}) < 2:
            continue
        mid = statistics.median(line.y0 for _, line in hits)
        same_place = [(i, line) for i, line in hits if abs(line.y0 - mid) <= 4]
        if len({i for i, _ in same_place}) >= 2:
            drop.update(id(line) for _, line in same_place)
    for lines, rect in zip(pages, rects, strict=True):
        running: set[int] = set()
        for zone in ("top", "bottom"):
            band = sorted(
                (ln for ln in lines if _zone(ln, rect) == zone),
                key=lambda ln: ln.y0 if zone == "top" else -ln.y1,
            )
            # Running lines are the outermost ones: a repeated line under body text (a
            # reference at the same height on two pages) stays. What shares a running
            # line's height is running too ("Vol 17, No. 4 ... Section name").
            heights: list[float] = []
            for ln in band:
                if id(ln) not in drop and not any(abs(ln.y0 - y) <= 2 for y in heights):
                    break
                running.add(id(ln))
                heights.append(ln.y0)
        lines[:] = [ln for ln in lines if id(ln) not in running]


def _zone(line: _Line, rect: pymupdf.Rect) -> str | None:
    if line.y1 <= rect.y0 + _BAND * rect.height:
        return "top"
    if line.y0 >= rect.y1 - _BAND * rect.height:
        return "bottom"
    return None


# Reading order -------------------------------------------------------------------------


def _reading_order(units: list, width: float) -> list:
    heights = [u.y1 - u.y0 for u in units if isinstance(u, _Line)]
    line_h = statistics.median(heights) if heights else 12.0
    layout = _Layout(width * _MIN_COLUMN, 2.0 * line_h, _gutters(units, width))
    return _cut(units, layout)


@dataclass(frozen=True, slots=True)
class _Layout:
    min_col: float
    max_join_gap: float
    gutters: list[float]


def _gutters(units: list, width: float) -> list[float]:
    """x positions between the page's text columns: vertical bands that at least three
    column-wide lines end before and three start after, and that few such lines cross (wider
    lines, such as full-width titles and summaries, are not counted)."""
    lines = [u for u in units if _MIN_COLUMN * width <= u.x1 - u.x0 <= 0.6 * width]
    if len(lines) < 6:
        return []
    ends = sorted(u.x1 for u in lines)
    starts = sorted(u.x0 for u in lines)
    events = sorted([(u.x0, 1) for u in lines] + [(u.x1, -1) for u in lines])
    # Runs of x where few lines cross compared with those on either side; ragged line ends
    # make shallow valleys inside a column, so each run keeps only its deepest wide band.
    runs: list[list[tuple[int, float, float]]] = []
    depth = 0
    open_run = False
    for (x, step), (nxt, _) in itertools.pairwise(events):
        depth += step
        if nxt <= x:
            continue
        side = min(bisect.bisect_right(ends, x), len(starts) - bisect.bisect_left(starts, nxt))
        if side >= 3 and depth <= 0.5 * side:
            if not open_run:
                runs.append([])
            runs[-1].append((depth, x, nxt))
            open_run = True
        else:
            open_run = False
    out = []
    for run in runs:
        wide = [(d, -(b - a), a, b) for d, a, b in run if b - a >= _MIN_GUTTER]
        if wide:
            _, _, a, b = min(wide)
            out.append((a + b) / 2)
    return out


def _cut(units: list, layout: _Layout) -> list:
    if len(units) < 2:
        return units
    # A wide band of white space across the region (under a title, around a figure) comes
    # before columns: text above it is read before the columns below.
    bands = _split_strips(units, layout, min_gap=layout.max_join_gap)
    if len(bands) > 1:
        return [u for band in bands for u in _cut(band, layout)]
    cuts = _column_cuts(units, layout)
    if cuts:
        groups: list[list] = [[] for _ in range(len(cuts) + 1)]
        for u in units:
            groups[sum(u.x0 > c for c in cuts)].append(u)
        return [u for group in groups for u in _cut(group, layout)]
    strips = _split_strips(units, layout)
    if len(strips) == 1:
        return _row_sort(units)
    return [u for strip in strips for u in _cut(strip, layout)]


def _coverage(units: Iterable) -> list[list[float]]:
    merged: list[list[float]] = []
    for x0, x1 in sorted((u.x0, u.x1) for u in units):
        if merged and x0 <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], x1)
        else:
            merged.append([x0, x1])
    return merged


def _page_gutter_cuts(units: list, layout: _Layout) -> list[float]:
    return [
        g
        for g in layout.gutters
        if not any(u.x0 < g < u.x1 for u in units)
        and any(u.x1 <= g for u in units)
        and any(u.x0 >= g for u in units)
    ]


def _column_cuts(units: list, layout: _Layout) -> list[float]:
    """Where `units` split into columns: at the page's gutters that no unit crosses, else at
    gaps that leave at least `min_col` of text width on both sides."""
    cuts = _page_gutter_cuts(units, layout)
    if cuts:
        return cuts
    cover = _coverage(units)
    start, end = cover[0][0], cover[-1][1]
    for left, right in itertools.pairwise(cover):
        a, b = left[1], right[0]
        if b - a >= _MIN_GUTTER and a - start >= layout.min_col and end - b >= layout.min_col:
            cuts.append((a + b) / 2)
            start = b
    return cuts


def _core(u) -> tuple[float, float]:
    # Line boxes include the leading and overlap their neighbours; their middle half does not.
    if isinstance(u, _Line):
        h = u.y1 - u.y0
        return u.y0 + 0.25 * h, u.y1 - 0.25 * h
    return u.y0, u.y1


def _split_strips(units: list, layout: _Layout, min_gap: float = 0.0) -> list[list]:
    """`units` cut at horizontal gaps wider than `min_gap`; with no minimum, strips that belong
    to one multi-column region are joined again."""
    strips: list[list] = []
    bottom = float("-inf")
    for u in sorted(units, key=lambda u: _core(u)[0]):
        top, low = _core(u)
        if strips and top <= bottom + min_gap:
            strips[-1].append(u)
        else:
            strips.append([u])
        bottom = max(bottom, low)
    if min_gap:
        return strips
    # Rejoin strips cut by a gap that happens to fall at the same height in every column: two
    # strips that no page gutter crosses belong to one multi-column region.
    joined = [strips[0]]
    for strip in strips[1:]:
        prev = joined[-1]
        if _page_gutter_cuts(prev + strip, layout):
            prev.extend(strip)
        else:
            joined.append(strip)
    return joined


def _row_sort(units: list) -> list:
    rows: list[list] = []
    for u in sorted(units, key=lambda u: u.y0):
        mid = (u.y0 + u.y1) / 2
        if rows and rows[-1][0].y0 <= mid <= rows[-1][0].y1:
            rows[-1].append(u)
        else:
            rows.append([u])
    return [u for row in rows for u in sorted(row, key=lambda u: u.x0)]


# Assembly ------------------------------------------------------------------------------


class _Vocabulary:
    """The words of the document, for deciding what a line-end hyphen means."""

    def __init__(self, pages: Sequence[list[_Line]]) -> None:
        self.words: set[str] = set()
        self.pairs: set[str] = set()
        for lines in pages:
            prev: _Line | None = None
            for line in lines:
                tokens = _WORD.findall(line.text)
                if prev is not None and prev.block == line.block and prev.text.endswith("-"):
                    tokens = tokens[1:]  # the tail of a word broken on the previous line
                if line.text.endswith("-"):
                    tokens = tokens[:-1]
                for token in tokens:
                    low = token.lower()
                    if "-" in low:
                        parts = low.split("-")
                        self.words.update(parts)
                        self.pairs.update(f"{a}-{b}" for a, b in itertools.pairwise(parts))
                    else:
                        self.words.add(low)
                prev = line

    def join(self, left: str, right: str) -> str:
        """`left` and `right` as one run of text, the line break between them undone."""
        if not left:
            return right
        if not right:
            return left
        last = left[-1]
        if last == "\xad":
            return left[:-1] + right
        if last == "-" and len(left) >= 2 and left[-2].isalpha():
            if right[0].islower():
                head = _WORD.findall(left[:-1])[-1].split("-")[-1].lower()
                tail = _WORD.findall(right)[0].split("-")[0].lower() if _WORD.match(right) else ""
                if tail and self._drop_hyphen(head, tail):
                    return left[:-1] + right
            return left + right
        if (last in "–—/" and not left[-2:-1].isspace()) or _URL_END.search(left):
            return left + right
        return f"{left} {right}"

    def _drop_hyphen(self, head: str, tail: str) -> bool:
        if f"{head}-{tail}" in self.pairs:
            return False
        if head + tail in self.words or tail in _SUFFIXES:
            return True
        # Two known words ("web-based", "end-of-life"), or a known word of four letters or
        # more before the hyphen ("time-consuming"), make a compound; anything else is a word
        # broken in two ("expo-sure").
        return not (head in self.words and (tail in self.words or len(head) >= 4))


def _rows(units: list, vocab: _Vocabulary) -> list[_Row | _Table]:
    out: list[_Row | _Table] = []
    for u in units:
        if isinstance(u, _Table):
            out.append(u)
            continue
        prev = out[-1] if out else None
        if (
            isinstance(prev, _Row)
            and prev.segments[-1].page == u.page
            and u.x0 >= prev.segments[-1].x1 - 1
            and _same_height(prev.segments[-1], u)
        ):
            last = prev.segments[-1]
            gap = u.x0 - last.x1
            if gap > 1.5 * max(u.size, last.size):
                prev.tabular = True
                prev.text = f"{prev.text} | {u.text}"
            else:
                prev.text = vocab.join(prev.text, u.text)
            prev.segments.append(u)
        else:
            out.append(_Row([u], u.text, bool(_LEADER.search(u.text))))
    return out


def _same_height(a: _Line, b: _Line) -> bool:
    mid = (b.y0 + b.y1) / 2
    return a.y0 <= mid <= a.y1


def _assemble(
    pages: list[tuple[list[_Line], list[_Table], pymupdf.Rect]],
    n_pages: int,
    title: str | None,
    body_size: float,
    body_font: str,
) -> PdfText:
    vocab = _Vocabulary([p[0] for p in pages])
    items: list[_Row | _Table] = []
    for lines, tables, rect in pages:
        items.extend(_rows(_reading_order([*lines, *tables], rect.width), vocab))
    paras = _paragraphs(items, body_size, body_font)
    levels = _heading_levels(paras)
    out: list[str] = []
    headings: list[Heading] = []
    used_pages: set[int] = set()
    for para in paras:
        if para.table is not None:
            used_pages.add(para.table.page)
            out.append(_table_markdown(para.table, vocab))
            continue
        used_pages.update(s.page for r in para.rows for s in r.segments)
        if para.kind == "heading":
            text = _join_rows(para.rows, vocab)
            level = levels[_style(para.rows[0].first)]
            headings.append(Heading(level, text, para.rows[0].first.page))
            out.append(f"{'#' * level} {text}")
        elif para.kind == "tabular":
            out.append("\n".join(r.text for r in para.rows))
        else:
            out.append(_join_rows(para.rows, vocab))
    if title is None and headings:
        title = headings[0].text
    return PdfText("\n\n".join(out) + "\n", title, n_pages, headings, len(used_pages))


def _body_style(lines: Iterable[_Line]) -> tuple[float, str]:
    sizes: Counter[float] = Counter()
    fonts: Counter[str] = Counter()
    for line in lines:
        sizes[line.size] += len(line.text)
        fonts[_family(line.font)] += len(line.text)
    return sizes.most_common(1)[0][0], fonts.most_common(1)[0][0]


def _family(font: str) -> str:
    return re.split(r"[-,+]", font.split("+")[-1])[0].lower()


def _style(line: _Line) -> tuple[float, bool]:
    return line.size, line.bold


def _is_size_heading(row: _Row, body_size: float) -> bool:
    line = row.first
    return (
        not row.tabular
        and line.size >= _HEADING_RATIO * body_size
        and any(ch.isalpha() for ch in row.text)
        and all(_style(s) == _style(line) for s in row.segments)
    )


def _is_styled_heading(para: _Para, body_size: float, body_font: str) -> bool:
    """A short body-size paragraph set in bold, or a short block in another typeface."""
    line = para.rows[0].first
    text = para.rows[-1].text
    words = sum(len(r.text.split()) for r in para.rows)
    if (
        line.size < 0.95 * body_size
        or words > 20
        or text[-1] in ".,;:"
        or _starts_item(para.rows[0].text, ended=True)
        or not any(ch.isalpha() for ch in text)
    ):
        return False
    if all(s.bold for r in para.rows for s in r.segments):
        return True
    return (
        len(para.rows) == line.block_lines <= 3
        and all(_family(s.font) != body_font for r in para.rows for s in r.segments)
        and words <= 12
        and para.rows[0].text[0].isupper()
    )


def _paragraphs(items: list[_Row | _Table], body_size: float, body_font: str) -> list[_Para]:
    paras: list[_Para] = []
    for item in items:
        cur = paras[-1] if paras else None
        if isinstance(item, _Table):
            paras.append(_Para("table", [], item))
        elif _is_size_heading(item, body_size):
            if cur is not None and cur.kind == "heading" and _heading_continues(cur.rows[-1], item):
                cur.rows.append(item)
            else:
                paras.append(_Para("heading", [item]))
        elif item.tabular:
            if cur is not None and cur.kind == "tabular":
                cur.rows.append(item)
            else:
                paras.append(_Para("tabular", [item]))
        else:
            target = _open_paragraph(paras, item)
            if target is None:
                paras.append(_Para("body", [item]))
            else:
                target.rows.append(item)
    for para in paras:
        words = sum(len(r.text.split()) for r in para.rows)
        if para.kind == "heading" and words > 25:
            para.kind = "body"  # a large-print passage, not a heading
        elif para.kind == "body" and _is_styled_heading(para, body_size, body_font):
            para.kind = "heading"
    return paras


def _open_paragraph(paras: list[_Para], row: _Row) -> _Para | None:
    """The paragraph that `row` continues: the last one, or one before a footnote, caption or
    table that interrupted it."""
    size = row.first.size
    for para in reversed(paras[-3:]):
        if para.kind == "body" and _continues(para.rows[-1], row):
            return para
        interrupts = para.kind == "table" or (
            para.kind == "body" and abs(para.rows[-1].first.size - size) > 0.15 * size
        )
        if not interrupts:
            return None
    return None


def _heading_continues(prev: _Row, row: _Row) -> bool:
    a, b = prev.first, row.first
    return a.page == b.page and a.size == b.size and -0.5 * a.size <= b.y0 - a.y1 <= 0.8 * a.size


def _continues(prev: _Row, row: _Row) -> bool:
    a, b = prev.segments[-1], row.first
    text = row.text
    ended = bool(_TERMINAL.search(prev.text))
    if (
        _starts_item(text, ended or prev.text.endswith(";") or _short(a))
        or abs(a.size - b.size) > 0.15 * max(a.size, b.size)
        or a.bold != b.bold
    ):
        return False
    if a.page == b.page and a.block == b.block:
        # A short line that ends a sentence (or a bold heading) closes a paragraph MuPDF put
        # in the same block.
        return not ((ended or a.bold) and _short(a) and text[0].isupper())
    if ended:
        return False
    if text[0].islower():
        return True
    same_face = _family(a.font) == _family(b.font)
    # A filled last line without closing punctuation runs on into the next column or page.
    if same_face and a.block_lines > 1 and not _short(a):
        return True
    return (
        a.page == b.page
        and same_face
        and abs(a.x0 - b.x0) <= 2 * a.size
        and 0 <= b.y0 - a.y1 <= 0.6 * a.size
    )


def _short(line: _Line) -> bool:
    return line.x1 < line.block_x1 - 0.15 * (line.block_x1 - line.x0)


def _starts_item(text: str, ended: bool) -> bool:
    return bool(_BULLET.match(text) or (ended and _ENUMERATOR.match(text)))


def _join_rows(rows: list[_Row], vocab: _Vocabulary) -> str:
    return _join_lines([r.text for r in rows], vocab)


def _join_lines(lines: Iterable[str], vocab: _Vocabulary) -> str:
    text = ""
    for line in lines:
        text = vocab.join(text, _clean(line))
    return text


def _heading_levels(paras: list[_Para]) -> dict[tuple[float, bool], int]:
    counts = Counter(_style(p.rows[0].first) for p in paras if p.kind == "heading")
    order = sorted(counts, reverse=True)
    frequent = [s for s in order if counts[s] >= 2] or order
    levels = {s: min(i + 1, 3) for i, s in enumerate(frequent)}
    for style in order:
        if style not in levels:
            larger = [s for s in frequent if s > style]
            levels[style] = levels[larger[-1]] if larger else 1
    return levels


def _table_markdown(table: _Table, vocab: _Vocabulary) -> str:
    width = max(len(r) for r in table.rows)
    lines = []
    for i, row in enumerate(table.rows):
        cells = [_join_lines(c.split("\n"), vocab).replace("|", "\\|") for c in row]
        cells += [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "---|" * width)
    return "\n".join(lines)
