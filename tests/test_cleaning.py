"""Text normalisation and MediTron's source cleaning: mojibake, bullets (without MediTron's "o"
bug), reference spans, headings, letterless lines, section cuts, and a real guideline PDF."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from corpus.cleaning import (
    CleaningConfig,
    clean_abstract,
    clean_abstracts,
    clean_guideline,
    clean_guidelines,
    clean_paper,
    clean_papers,
    clean_replay,
    clean_replays,
)
from corpus.guidelines import parse_guideline_file
from corpus.text_normalize import NormalizeConfig, normalize_text, normalize_texts

CDC_OPIOIDS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "guidelines"
    / "pdf"
    / "cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf"
)


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("CafÃ©", "Café"),
        ("Ã©tude de cohorte", "étude de cohorte"),
        ("the patientâ€™s dose was 5 Âµg", "the patient’s dose was 5 µg"),
        ("IL-1Î² levels", "IL-1β levels"),
        ("10 Â°C", "10 °C"),
        ("\x93quoted\x94", "“quoted”"),  # C1 controls standing for Windows-1252 quotes
        ("Wait\x85 and see", "Wait… and see"),
        ("ﬁbrosis and ﬂuid", "fibrosis and fluid"),
    ],
)
def test_mojibake_fixed(broken: str, fixed: str) -> None:
    assert normalize_text(broken) == fixed


@pytest.mark.parametrize(
    "correct",
    [
        "São Paulo",
        "NÃO",  # Portuguese capitals look like mojibake and are not
        "Größe und Gewicht",
        "β-blocker 10 µg/kg, eGFR ≥ 60 mL/min/1.73 m²",
        "“curly” and ‘single’ quotes",
        "患者接受了阿莫西林治疗。",
        "Ｆｕｌｌ-width forms stay",
        "Ð",
        "ï Chronic low back pain",
        "tab\tseparated\tvalues\nsecond line",
    ],
)
def test_correct_text_untouched(correct: str) -> None:
    assert normalize_text(correct) == correct


def test_normalisation_rules() -> None:
    assert normalize_text("e\u0301te\u0301") == "été"  # NFC
    assert normalize_text("a\x00b\x07c\x1bd\x7fe\u200bf\ufeffg\u00adh") == "abcdefgh"
    assert normalize_text("one\r\ntwo\rthree\u2028four") == "one\ntwo\nthree\nfour"
    assert normalize_text("trailing   \nspaces\t\n") == "trailing\nspaces"
    assert normalize_text("a\n\n\n\n\nb") == "a\n\nb"
    assert normalize_text("a\n\n\n\nb", NormalizeConfig(max_blank_lines=2)) == "a\n\n\nb"
    assert normalize_text("10\u00a0mg and 5\u202fmL") == "10 mg and 5 mL"
    assert normalize_text("\n\n  indented first line\n\n") == "  indented first line"
    assert normalize_text("CafÃ©", NormalizeConfig(fix_mojibake=False)) == "CafÃ©"
    assert normalize_texts(["CafÃ©", None]) == ["Café", None]


def test_normalisation_is_idempotent() -> None:
    text = "Ã©tude\r\n\x93a\x94  \n\n\n\u00a0β ﬁ e\u0301\x00"
    once = normalize_text(text)
    assert normalize_text(once) == once


# --- abstracts -----------------------------------------------------------------------------


def test_abstract_is_title_newline_abstract() -> None:
    assert clean_abstract("A title.", "An abstract.") == "A title.\nAn abstract."
    assert clean_abstract("Only a title.", None) == "Only a title."
    assert clean_abstract(None, None) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aspirin reduced events [1].", "Aspirin reduced events."),
        ("as shown [2, 3] and [4-6].", "as shown and."),
        ("earlier work [7–9, 12a]; later [ref. 3]", "earlier work; later"),
        ("consecutive [1][2] marks", "consecutive marks"),
        ("see https://example.org/a?b=1.", "see."),
        ("see www.who.int/ipc, and more", "see, and more"),
        (
            "(CC BY-NC-SA 3.0 IGO; https://creativecommons.org/licenses/by-nc-sa/3.0/igo)",
            "(CC BY-NC-SA 3.0 IGO)",
        ),
        ("available (http://x.org/y) here", "available here"),
    ],
)
def test_abstract_urls_and_reference_spans_removed(text: str, expected: str) -> None:
    assert clean_abstract("T.", text) == f"T.\n{expected}"


@pytest.mark.parametrize(
    "kept",
    [
        "[Effect of aspirin on platelet aggregation in children].",  # non-English record title
        "[18F]FDG uptake and [3H]thymidine incorporation",  # isotope labels
        "[1,2,4]triazolo[4,3-a]pyridine and bicyclo[2.2.2]octane",  # ring locants
        "an interval [0.5, 1.5] of doses",
    ],
)
def test_abstract_bracketed_content_kept(kept: str) -> None:
    assert clean_abstract(kept, "Text.") == f"{kept}\nText."


# --- guidelines: line rules ----------------------------------------------------------------


def test_bullets_normalised_without_the_o_bug() -> None:
    text = "\n".join(
        [
            "o Wash hands before contact",
            "o\tDry them",
            "often patients need help",
            "on admission, record the weight",
            "oral amoxicillin is preferred",
            "* starred item",
            "• bullet item",
            "+ plus item",
            "– en dash item",
            "-   hyphen item",
            "›› arrow item",
            "ï symbol-font item",
        ]
    )
    assert clean_guideline(text, "cdc").split("\n") == [
        "- Wash hands before contact",
        "- Dry them",
        "often patients need help",
        "on admission, record the weight",
        "oral amoxicillin is preferred",
        "- starred item",
        "- bullet item",
        "- plus item",
        "- en dash item",
        "- hyphen item",
        "- arrow item",
        "- symbol-font item",
    ]


def test_items_run_together_are_split() -> None:
    assert clean_guideline("• urine screen • PDMP check • naloxone", None).split("\n") == [
        "- urine screen",
        "- PDMP check",
        "- naloxone",
    ]
    assert clean_guideline("-- hand hygiene -- safe injections", None).split("\n") == [
        "- hand hygiene",
        "- safe injections",
    ]
    assert clean_guideline("applicable to ï sickle cell disease ï cancer", None).split("\n") == [
        "applicable to",
        "- sickle cell disease",
        "- cancer",
    ]
    # "+", "*" and "–" are bullets at the start of a line only.
    assert clean_guideline("+ 5 mg – or 10 mg * twice", None) == "- 5 mg – or 10 mg * twice"


def test_headings_normalised() -> None:
    text = "# One\n\n## Two ##\n\n#### Four\n\n###### Six\n\n##\n\n#1 cause of death is here"
    assert clean_guideline(text, None) == (
        "# One\n\n## Two\n\n### Four\n\n### Six\n\n#1 cause of death is here"
    )


def test_headings_get_their_own_paragraph() -> None:
    assert clean_guideline("text before\n## Heading\ntext after", None) == (
        "text before\n\n## Heading\n\ntext after"
    )


def test_letterless_lines_and_tables() -> None:
    text = "\n".join(
        [
            "Dosing",
            "12 34 56",
            "-- * --",
            "| Drug | Dose |",
            "|---|---|",
            "| Morphine | 10 mg |",
            "| 12 | 34 |",
            "| Oxycodone | 5 mg |",
            "|---|---|",
        ]
    )
    assert clean_guideline(text, None).split("\n") == [
        "Dosing",
        "| Drug | Dose |",
        "|---|---|",
        "| Morphine | 10 mg |",
        "| Oxycodone | 5 mg |",
    ]


def test_one_blank_line_between_paragraphs() -> None:
    text = "First paragraph.\n\n\n\nSecond paragraph\ncontinued.\n\n\n12345\n\nThird."
    assert clean_guideline(text, None) == (
        "First paragraph.\n\nSecond paragraph\ncontinued.\n\nThird."
    )


def test_stray_symbols_and_toc_leaders_dropped() -> None:
    text = (
        "Introduction...............1\n\uf0b7 Keep \ufffdthis line\n\nRecommendations . . . . . 15"
    )
    assert clean_guideline(text, None) == "Keep this line"


def test_guideline_urls_and_reference_spans_removed() -> None:
    text = "Use gloves [1, 2] when indicated (http://www.cdc.gov/hai).\nhttp://www.cdc.gov/hai"
    assert clean_guideline(text, "cdc") == "Use gloves when indicated."


# --- guidelines: section cuts --------------------------------------------------------------

GUIDELINE = """# Management of Community-Acquired Pneumonia

## Contents

Introduction 1
Recommendations 3

## Introduction

Community-acquired pneumonia is a leading cause of hospital admission.

## Recommendations

### Recommendation 1

Give amoxicillin 1 g three times daily for 5 days.

### Contents of the emergency kit

The kit holds oxygen masks and a pulse oximeter.

## Acknowledgements

We thank the reviewers.

### Members of the working group

Dr A. Smith, Dr B. Jones.

## Conflicts of Interest and Disclosures

None declared.

## Implementation

Audit prescribing every year.

Funding

This guideline was funded by the Ministry.

## Related content

Asthma guideline

# References

1. Smith A. Pneumonia. Lancet 2020;1:1-2.
2. Jones B. Amoxicillin. BMJ 2019;2:3-4.
"""


def test_front_and_back_matter_cut() -> None:
    cleaned = clean_guideline(GUIDELINE, "cco")
    assert cleaned == (
        "# Management of Community-Acquired Pneumonia\n\n"
        "## Introduction\n\n"
        "Community-acquired pneumonia is a leading cause of hospital admission.\n\n"
        "## Recommendations\n\n"
        "### Recommendation 1\n\n"
        "Give amoxicillin 1 g three times daily for 5 days.\n\n"
        "### Contents of the emergency kit\n\n"
        "The kit holds oxygen masks and a pulse oximeter.\n\n"
        "## Implementation\n\n"
        "Audit prescribing every year."
    )


def test_numbered_and_continued_headings_cut() -> None:
    text = (
        "# 1 Background\n\nKept.\n\n# 7. References\n\nRef.\n\n### CONTENTS (Continued)\n\n"
        "Toc.\n\n# ANNEX II: Acronyms\n\nAMR\n\n# 8 Methods\n\nAlso kept."
    )
    assert clean_guideline(text, None) == "# 1 Background\n\nKept.\n\n# 8 Methods\n\nAlso kept."


def test_per_source_cut_headings() -> None:
    text = "# Guidance\n\nKeep.\n\n# Annexes\n\nDr A, Geneva, a@who.int\n\n# Web appendix\n\nLinks."
    assert clean_guideline(text, "who") == "# Guidance\n\nKeep.\n\n# Web appendix\n\nLinks."
    assert "# Annexes" in clean_guideline(text, "cdc")
    config = CleaningConfig(source_cut_headings={"who": ["annex(?:es)?", "web appendix"]})
    assert clean_guideline(text, "who", config) == "# Guidance\n\nKeep."
    config = CleaningConfig(cut_headings=[], source_cut_headings={})
    assert clean_guideline(GUIDELINE, "cco", config).endswith("Amoxicillin. BMJ 2019;2:3-4.")


def test_plain_line_heading_needs_to_stand_alone() -> None:
    text = "Funding decisions were made locally.\n\nReferences to other guidance follow.\n\nKept."
    assert clean_guideline(text, None) == text
    long_title = "Funding\nof the programme came from grants.\n\nKept."
    assert clean_guideline(long_title, None) == long_title


def test_cleaning_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        CleaningConfig(cut_heading=["typo"])


def test_real_guideline_pdf_cleaned() -> None:
    [row] = list(parse_guideline_file(str(CDC_OPIOIDS), None))
    assert isinstance(row, dict), row
    raw = row["raw_text"]
    cleaned = clean_guideline(raw, row["source"])
    reference = re.compile(r"^\d+\. .*PMID:\s?\d+", re.M)
    assert len(reference.findall(raw)) > 100  # the raw text has the reference list ...
    assert not reference.findall(cleaned)  # ... the cleaned one has none
    assert re.search(r"^References$", raw, re.M)
    assert not re.search(r"^(?:#+ )?References$", cleaned, re.M)
    assert "Conflicts of Interest and Disclosures of Relationship" in raw
    assert "Conflicts of Interest and Disclosures of Relationship" not in cleaned
    assert "http" not in cleaned
    assert (
        "Nonopioid therapies are at least as effective as opioids for many common types of "
        "acute pain." in cleaned
    )
    assert "### Recommendation 12" in cleaned
    assert 0.5 * len(raw) < len(cleaned) < len(raw)
    assert normalize_text(cleaned) == cleaned


# --- papers, replay, batches ---------------------------------------------------------------


def test_paper_and_replay_only_normalised() -> None:
    body = "# Introduction\n\nText [bib_ref] A cited title, Smith [/bib_ref] [1].  \n"
    assert clean_paper("Title", "Abstract Ã©.", body) == ("Title\nAbstract é.\n\n" + body.rstrip())
    assert clean_paper(None, None, "Body only") == "Body only"
    assert clean_replay("o often [1] http://x.org\r\n") == "o often [1] http://x.org"
    assert clean_replay(None) == ""


def test_batches_match_single_documents() -> None:
    titles, abstracts = ["T1", None, "T3 [1]"], ["A1 [2].", "A2", None]
    assert clean_abstracts(titles, abstracts) == [
        clean_abstract(t, a) for t, a in zip(titles, abstracts, strict=True)
    ]
    raws, sources = [GUIDELINE, None, "o Wash"], ["cco", None, "who"]
    assert clean_guidelines(raws, sources) == [
        clean_guideline(r, s) for r, s in zip(raws, sources, strict=True)
    ]
    assert clean_papers(["T"], ["A"], [None]) == [clean_paper("T", "A", None)]
    assert clean_replays(["x\r\n", None]) == ["x", ""]
    with pytest.raises(ValueError):
        clean_abstracts(["only one title"], [])
