"""MediTron's source cleaning (MEDITRON.md, "Cleaning") over bronze texts.

- Abstracts: title + "\\n" + abstract, URLs and bracketed reference spans removed.
- Guidelines: per-source cut of front and back matter by heading, then the common line rules
  (URLs, reference spans, stray symbols, table-of-contents leaders, bullets, headings,
  letterless lines, one blank line between paragraphs).
- Papers: title, abstract and body joined; bronze (corpus.jats) already wrote MediTron's
  markup, so only normalised.
- Replay: only normalised.

Every function returns text normalised by corpus.text_normalize; the batch functions are the
per-document ones over lists (None for a missing value), as the Spark job calls them.

A bracketed reference span is a bracket holding only citation numbers: "[1]", "[2, 3]",
"[4-6]", "[7–9, 12a]", "[ref. 3]". Anything with a word in it stays: PubMed's English
titles of non-English articles ("[Effect of ...].") are content, and so are isotope labels
("[18F]FDG") and fused-ring locants ("[1,2,4]triazolo[4,3-a]pyridine"), which a letter or
digit follows directly. Parenthesised numbers ("(1)") stay too: they are as often
enumerations ("(1) determine whether ...") as citations.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from corpus.text_normalize import DEFAULT_NORMALIZE, NormalizeConfig, normalize_text

# Matched in full, case-insensitively, against a heading's text without its numbering
# ("4.2", "IV.", "Annex 3:") and without "(continued)".
CUT_HEADINGS = (
    r"references?(?: cited| and notes)?",
    r"bibliography|literature cited|works cited|(?:further|suggested) reading",
    r"acknowledge?ments?\b.*",
    r"(?:potential |financial )?(?:conflicts?|declarations?|disclosures?) of (?:\w+ )?"
    r"interests?\b.*",
    r"competing interests?\b.*",
    r"(?:financial )?disclosures?(?: statements?)?",
    r"(?:general |legal )?disclaimers?",
    r"funding(?: sources?| statement| information)?|sources? of (?:funding|support)",
    r"financial support|role of the funding source",
    r"related (?:content|links|resources|articles|pages|guidelines|topics|information)",
    r"see also",
    r"(?:table of )?contents",
    r"(?:list of )?(?:abbreviations|acronyms)(?: and (?:abbreviations|acronyms))?",
    r"suggested citation",
    r"author(?:s'?|'s)? (?:contributions?|information|affiliations?)|about the authors?",
)
SOURCE_CUT_HEADINGS = {
    # MMWR reports end with workgroup, peer-reviewer and board member lists, and CDC
    # summaries with lists of linked source documents.
    "cdc": (
        r".*\bworkgroup(?: members)?",
        r"peer reviewers",
        r"board of scientific counselors\b.*",
        r"mmwr editorial\b.*",
        r"key links\b.*",
        r"source documents",
    ),
    # WHO guideline annexes list the development groups, their addresses and declarations.
    "who": (r"annex(?:es)?",),
}


class CleaningConfig(BaseModel):
    """What clean_guideline cuts, and how the common rules behave."""

    model_config = ConfigDict(extra="forbid")

    cut_headings: list[str] = Field(default_factory=lambda: list(CUT_HEADINGS))
    source_cut_headings: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in SOURCE_CUT_HEADINGS.items()}
    )
    # A line standing alone as a paragraph ("Acknowledgments", "References") is taken for a
    # heading (PDF extraction does not mark every heading) when it has at most this many words.
    max_plain_heading_words: int = 8
    normalize: NormalizeConfig = DEFAULT_NORMALIZE


DEFAULT_CLEANING = CleaningConfig()

# A URL takes a separator before it along ("(CC BY-NC-SA 3.0 IGO; https://...)").
_URL = re.compile(
    r"[ \t]*[,;:]?[ \t]*\b(?:(?:https?|ftp)://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]}'’”]"
)
_REF_ITEM = r"\d{1,4}[a-z]?"
_REF_SPAN = re.compile(
    rf"[ \t]*\[\s*(?:refs?\.?\s*)?{_REF_ITEM}(?:\s*(?:[,;]|[-–—]|and)\s*{_REF_ITEM})*\s*\](?!\w)"
)
_EMPTY_BRACKETS = re.compile(r"[ \t]*(?:\(\s*\)|\[\s*\])")
# Private-use glyphs (symbol-font bullets and dingbats of PDFs) and replacement characters.
_STRAY = re.compile(r"[\ue000-\uf8ff\ufffd]")
_TOC_LEADER = re.compile(r"(?:\.\s?){4,}\s*[\divxlc]+\s*$|…{2,}\s*\d+\s*$")
_HEADING = re.compile(r"^(#+)[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
# Glyphs that only ever mark list items: each one starts an item wherever it stands between
# spaces ("ï Opioid management plans ï Patient education"; "ï" is a PDF's symbol-font bullet
# read as Latin-1). The other bullets count at the start of a line only.
_ITEM_GLYPHS = "•▪▫◦●○■□❑‣⁃►➢ï"
_ITEM_SPLIT = re.compile(rf"[ \t]+[{_ITEM_GLYPHS}][ \t]+(?=\S)")
_BULLET = re.compile(rf"^[ \t]*(››|--|––|[-*+–›»·{_ITEM_GLYPHS}]|o(?=[ \t]))[ \t]+(?=\S)")
_TABLE_RULE = re.compile(r"^\|(?:[ \t]*:?-+:?[ \t]*\|)+$")
_LETTER = re.compile(r"[^\W\d_]")
_SPACES = re.compile(r"[ \t]{2,}")
_HEADING_NUMBER = re.compile(
    r"^(?:(?:annex|appendix|chapter|section|part)\s+[\divxlc]+[a-z]?[.:)]?\s+"
    r"|\d+[a-z]?(?:\.\d+)*[.:)]?\s+|[ivxlc]+[.:)]\s+|[a-z][.)]\s+)",
    re.I,
)
_CONTINUED = re.compile(r"\s*\(?continued\)?\s*$", re.I)


def clean_abstract(
    title: str | None, abstract: str | None, config: CleaningConfig = DEFAULT_CLEANING
) -> str:
    """MediTron's abstract text: title, newline, abstract; URLs and reference spans removed."""
    text = normalize_text("\n".join(p for p in (title, abstract) if p), config.normalize)
    return "\n".join(_strip_links_and_refs(line) for line in text.split("\n")).strip()


def clean_guideline(
    raw_text: str | None, source: str | None, config: CleaningConfig = DEFAULT_CLEANING
) -> str:
    """A guideline's raw_text (corpus.guidelines) cut and cleaned; "" when nothing is left."""
    text = normalize_text(raw_text or "", config.normalize)
    lines = _cut_sections(text.split("\n"), _cut_pattern(config, source), config)
    blocks: list[str] = []
    para: list[str] = []
    for line in _clean_lines(lines):
        if not line or _HEADING.match(line):
            if para:
                blocks.append("\n".join(para))
                para = []
            if line:
                blocks.append(line)
        else:
            para.append(line)
    if para:
        blocks.append("\n".join(para))
    return "\n\n".join(blocks)


def clean_paper(
    title: str | None,
    abstract: str | None,
    body: str | None,
    config: CleaningConfig = DEFAULT_CLEANING,
) -> str:
    """A full-text paper: title and abstract (as for abstracts), a blank line, the body."""
    head = "\n".join(p for p in (title, abstract) if p)
    return normalize_text("\n\n".join(p for p in (head, body) if p), config.normalize)


def clean_replay(text: str | None, config: CleaningConfig = DEFAULT_CLEANING) -> str:
    """A general-domain replay document: normalised only."""
    return normalize_text(text or "", config.normalize)


def clean_abstracts(
    titles: list[str | None],
    abstracts: list[str | None],
    config: CleaningConfig = DEFAULT_CLEANING,
) -> list[str]:
    return [clean_abstract(t, a, config) for t, a in zip(titles, abstracts, strict=True)]


def clean_guidelines(
    raw_texts: list[str | None],
    sources: list[str | None],
    config: CleaningConfig = DEFAULT_CLEANING,
) -> list[str]:
    return [clean_guideline(t, s, config) for t, s in zip(raw_texts, sources, strict=True)]


def clean_papers(
    titles: list[str | None],
    abstracts: list[str | None],
    bodies: list[str | None],
    config: CleaningConfig = DEFAULT_CLEANING,
) -> list[str]:
    return [clean_paper(t, a, b, config) for t, a, b in zip(titles, abstracts, bodies, strict=True)]


def clean_replays(texts: list[str | None], config: CleaningConfig = DEFAULT_CLEANING) -> list[str]:
    return [clean_replay(t, config) for t in texts]


def _strip_links_and_refs(line: str) -> str:
    # Each pattern takes the spaces before it along: "disease [1]." becomes "disease.".
    return _EMPTY_BRACKETS.sub("", _REF_SPAN.sub("", _URL.sub("", line)))


def _cut_pattern(config: CleaningConfig, source: str | None) -> re.Pattern[str]:
    return _compiled((*config.cut_headings, *config.source_cut_headings.get(source or "", ())))


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # Compiled once per distinct heading list: the batch functions call this for every row.
    return re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)", re.I)


def _heading_key(text: str) -> str:
    text = _CONTINUED.sub("", text.strip().rstrip(":").strip())
    return _HEADING_NUMBER.sub("", text).strip().rstrip(":").strip()


def _cut_sections(lines: list[str], cut: re.Pattern[str], config: CleaningConfig) -> list[str]:
    """`lines` without the sections whose heading `cut` matches.

    A section under a markdown heading of level L ends at the next heading of level <= L; one
    under a plain-line heading ends at the next markdown heading of any level (its level is
    unknown, and the rest of a document without markdown headings is back matter anyway).
    """
    kept: list[str] = []
    cut_level: int | None = None  # level of the open cut; 99 for a plain-line heading
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m:
            level = len(m.group(1))
            if cut_level is not None and (level <= cut_level or cut_level == 99):
                cut_level = None
            if cut_level is None and cut.fullmatch(_heading_key(m.group(2))):
                cut_level = level
        elif (
            cut_level is None
            and _is_plain_heading(lines, i, config)
            and cut.fullmatch(_heading_key(line))
        ):
            cut_level = 99
        if cut_level is None:
            kept.append(line)
    return kept


def _is_plain_heading(lines: list[str], i: int, config: CleaningConfig) -> bool:
    line = lines[i].strip()
    return (
        bool(line)
        and (i == 0 or not lines[i - 1].strip())
        and (i + 1 == len(lines) or not lines[i + 1].strip())
        and not line.endswith(".")
        and len(line.split()) <= config.max_plain_heading_words
    )


def _clean_lines(lines: list[str]) -> Iterator[str]:
    """The common line rules; yields "" for a paragraph break."""
    rows = 0  # table rows just yielded, one after the other
    for raw in lines:
        line = _STRAY.sub("", raw)
        if _TOC_LEADER.search(line):
            continue
        line = _SPACES.sub(" ", _strip_links_and_refs(line)).strip()
        heading = _HEADING.match(line)
        if heading:
            text = heading.group(2).strip()
            line = f"{'#' * min(len(heading.group(1)), 3)} {text}" if text else ""
        for item in _bullet_items(line) if not heading else (line,):
            # The rule under a table's header row has no letters but keeps the table a table.
            if _LETTER.search(item) or (rows == 1 and _TABLE_RULE.match(item)):
                rows = rows + 1 if item.startswith("|") else 0
                yield item
            elif not item:
                rows = 0
                yield ""


def _bullet_items(line: str) -> list[str]:
    m = _BULLET.match(line)
    # A line that starts with a doubled glyph separates its items with it: "-- a -- b".
    if m and len(m.group(1)) == 2:
        line = line.replace(f" {m.group(1)} ", " • ")
    first, *items = _ITEM_SPLIT.split(line)
    m = _BULLET.match(first)
    return [f"- {first[m.end() :]}" if m else first, *(f"- {item}" for item in items)]
