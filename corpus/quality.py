"""Document quality heuristics for cleaned biomedical text, with thresholds per source.

Gopher-style rules, loosened where biomedical text differs from web text: gene symbols
("BRCA1, BRCA2, TP53"), doses ("amoxicillin 500 mg PO q8h"), lab values and IUPAC names
("2-(4-isobutylphenyl)propanoic acid") carry digits, symbols and long tokens that web
filters read as junk. The rules, in the order they are tried (the first failing one is the
verdict's reason):

    too_short         fewer than min_chars characters or min_words words
    low_letter_ratio  letters / non-space characters (table pipes and rules left out) below
                      min_letter_ratio
    word_length       mean word length outside [min_mean_word_length, max_mean_word_length]
    repetitive        the characters of repeated lines (every occurrence after the first)
                      over max_repeated_line_share of all line characters, or the same for
                      paragraphs (blocks between blank lines)
    boilerplate       the characters of boilerplate lines (licence, copyright, conflict of
                      interest, cookie and newsletter banners...; lines up to
                      boilerplate_max_line_chars long) over max_boilerplate_share

Words are whitespace-separated tokens with a letter, punctuation stripped from their ends:
the rules assume space-separated text and run after the English-only language filter.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

_LETTER = re.compile(r"[^\W\d_]")
_SPACE = re.compile(r"\s")
# Markdown table pipes and header rules: a dosing table is no less text for its grid.
_TABLE_MARKUP = re.compile(r"^\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*$|\|", re.M)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_EDGE_PUNCT = "\"'.,;:!?()[]{}<>«»“”‘’"
_BOILERPLATE = re.compile(
    r"all rights reserved|©|\(c\) ?\d{4}|copyright (?:\d{4}|by|the|holder)"
    r"|creative commons|licensed under|(?:article|work) is (?:licensed|distributed|an open access)"
    r"|open access (?:article|under)|reprints? (?:and|&) permissions"
    r"|conflicts? of interest|competing interests?|the authors? (?:declare|report|have) no"
    r"|(?:this|the) (?:work|study|research) was (?:supported|funded)"
    r"|cookies?|privacy (?:policy|statement)|terms (?:of|and) (?:use|service|conditions)"
    r"|newsletter|subscribe to|sign (?:in|up) to|log in to"
    r"|javascript|your browser|click here|skip to (?:main )?content|back to top"
    r"|disclaimer|does not (?:constitute|imply) (?:an )?endorsement",
    re.I,
)
RULES = ("too_short", "low_letter_ratio", "word_length", "repetitive", "boilerplate")


class QualityThresholds(BaseModel):
    """One source's thresholds."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int = 200
    min_words: int = 40
    min_letter_ratio: float = 0.55
    min_mean_word_length: float = 3.0
    # IUPAC names push a chemistry abstract's mean past 10, Gopher's bound for web text.
    max_mean_word_length: float = 15.0
    max_repeated_line_share: float = 0.3
    max_repeated_paragraph_share: float = 0.3
    max_boilerplate_share: float = 0.3
    boilerplate_max_line_chars: int = 1000


class QualityConfig(BaseModel):
    """Thresholds for every source, and for sources not named in `sources` the default."""

    model_config = ConfigDict(extra="forbid")

    default: QualityThresholds = Field(default_factory=QualityThresholds)
    # Title plus abstract: a one- or two-sentence abstract is still a useful record.
    sources: dict[str, QualityThresholds] = Field(
        default_factory=lambda: {"pubmed": QualityThresholds(min_chars=100, min_words=15)}
    )

    def for_source(self, source: str | None) -> QualityThresholds:
        return self.sources.get(source or "", self.default)


DEFAULT_QUALITY = QualityConfig()


@dataclass(frozen=True)
class QualityVerdict:
    kept: bool
    reason: str | None  # the first failing rule of RULES; None when kept
    detail: str  # the failing measure against its threshold; "" when kept
    signals: dict[str, float] = field(default_factory=dict)


def signals(text: str, boilerplate_max_line_chars: int = 1000) -> dict[str, float]:
    """Every measure the rules use, for any text (the same keys for every document)."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]
    words = [w for w in (t.strip(_EDGE_PUNCT) for t in text.split()) if _LETTER.search(w)]
    gridless = _TABLE_MARKUP.sub("", text)
    non_space = len(gridless) - len(_SPACE.findall(gridless))
    line_chars = sum(map(len, lines))
    boilerplate = sum(
        len(line)
        for line in lines
        if len(line) <= boilerplate_max_line_chars and _BOILERPLATE.search(line)
    )
    return {
        "chars": float(len(text)),
        "words": float(len(words)),
        "letter_ratio": len(_LETTER.findall(gridless)) / non_space if non_space else 0.0,
        "mean_word_length": sum(map(len, words)) / len(words) if words else 0.0,
        "repeated_line_share": _repeated_share(lines),
        "repeated_paragraph_share": _repeated_share(paragraphs),
        "boilerplate_share": boilerplate / line_chars if line_chars else 0.0,
    }


def assess(
    text: str | None, source: str | None, config: QualityConfig = DEFAULT_QUALITY
) -> QualityVerdict:
    """Whether a cleaned document of `source` (pubmed, pmc, guidelines, replay) is kept."""
    t = config.for_source(source)
    s = signals(text or "", t.boilerplate_max_line_chars)
    checks = (
        ("too_short", "chars", s["chars"] < t.min_chars, f"< {t.min_chars}"),
        ("too_short", "words", s["words"] < t.min_words, f"< {t.min_words}"),
        (
            "low_letter_ratio",
            "letter_ratio",
            s["letter_ratio"] < t.min_letter_ratio,
            f"< {t.min_letter_ratio}",
        ),
        (
            "word_length",
            "mean_word_length",
            not t.min_mean_word_length <= s["mean_word_length"] <= t.max_mean_word_length,
            f"outside [{t.min_mean_word_length}, {t.max_mean_word_length}]",
        ),
        (
            "repetitive",
            "repeated_line_share",
            s["repeated_line_share"] > t.max_repeated_line_share,
            f"> {t.max_repeated_line_share}",
        ),
        (
            "repetitive",
            "repeated_paragraph_share",
            s["repeated_paragraph_share"] > t.max_repeated_paragraph_share,
            f"> {t.max_repeated_paragraph_share}",
        ),
        (
            "boilerplate",
            "boilerplate_share",
            s["boilerplate_share"] > t.max_boilerplate_share,
            f"> {t.max_boilerplate_share}",
        ),
    )
    for rule, signal, failed, bound in checks:
        if failed:
            return QualityVerdict(False, rule, f"{signal} {s[signal]:.3g} {bound}", s)
    return QualityVerdict(True, None, "", s)


def assess_batch(
    texts: list[str | None], sources: list[str | None], config: QualityConfig = DEFAULT_QUALITY
) -> list[QualityVerdict]:
    return [assess(t, s, config) for t, s in zip(texts, sources, strict=True)]


def _repeated_share(units: list[str]) -> float:
    """Characters of the second and later occurrences of a unit over all characters."""
    total = sum(map(len, units))
    if not total:
        return 0.0
    repeated = sum(len(u) * (n - 1) for u, n in Counter(units).items() if n > 1)
    return repeated / total
