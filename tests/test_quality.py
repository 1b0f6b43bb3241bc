"""Quality heuristics: biomedical edge cases (gene lists, chemical names, doses, lab values,
dosing tables) are kept; short, repetitive, boilerplate, numeric and letter-spaced text is
dropped with the first failing rule as the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corpus.quality import (
    RULES,
    QualityConfig,
    QualityThresholds,
    assess,
    assess_batch,
    signals,
)

GENES = (
    "Multigene panel testing for hereditary breast and ovarian cancer covered the genes below.\n"
    "BRCA1, BRCA2, TP53, PALB2, CHEK2, ATM, CDH1, PTEN, STK11, RAD51C, RAD51D, BRIP1, BARD1, "
    "MLH1, MSH2, MSH6, PMS2, EPCAM\n"
    "Pathogenic variants were found in BRCA1 (c.68_69delAG), BRCA2 (c.5946delT), PALB2 "
    "(c.3113G>A) and CHEK2 (c.1100delC) in 14% of the women diagnosed before 40 years of age."
)
CHEMICALS = (
    "Ibuprofen, 2-(4-isobutylphenyl)propanoic acid, and naproxen, "
    "(S)-6-methoxy-α-methyl-2-naphthaleneacetic acid, are propionic acid derivatives. "
    "Paracetamol, N-(4-hydroxyphenyl)acetamide, and aspirin, 2-acetoxybenzoic acid, were "
    "compared with celecoxib, 4-[5-(4-methylphenyl)-3-(trifluoromethyl)pyrazol-1-yl]"
    "benzenesulfonamide, in 412 adults with osteoarthritis of the knee over 12 weeks. Pain "
    "scores fell by a similar amount with each drug."
)
DOSES = (
    "Recommended oral regimens for adults with community-acquired pneumonia:\n"
    "- amoxicillin 500 mg PO q8h x 5 d\n"
    "- doxycycline 100 mg PO q12h x 5 d\n"
    "- clarithromycin 500 mg PO q12h x 5 d\n"
    "- levofloxacin 750 mg PO q24h x 5 d\n"
    "- cefuroxime 500 mg PO q12h + azithromycin 500 mg PO d1, then 250 mg q24h\n"
    "Reduce the dose when CrCl < 30 mL/min; avoid if QTc > 500 ms."
)
DOSING_TABLE = (
    "Opioid conversion for adults (oral morphine milligram equivalents):\n\n"
    "| Opioid | Dose | Route | Frequency | MME factor |\n"
    "|---|---|---|---|---|\n"
    "| Morphine | 5-10 mg | PO | q4h PRN | 1 |\n"
    "| Oxycodone | 5 mg | PO | q6h PRN | 1.5 |\n"
    "| Hydromorphone | 2 mg | PO | q4h PRN | 5 |\n"
    "| Tramadol | 50 mg | PO | q6h | 0.2 |\n"
    "| Fentanyl | 12 mcg/h | TD | q72h | 2.4 |\n"
    "| Methadone | 2.5 mg | PO | q8h | 4.7 |\n\n"
    "Check renal function before starting and review the dose after 3 days."
)
LABS = (
    "Admission laboratory results: Hb 13.2 g/dL, WBC 7.4 x10^9/L, platelets 250 x10^9/L, "
    "Na 138 mmol/L, K 4.1 mmol/L, creatinine 88 µmol/L, eGFR >90 mL/min/1.73 m2, ALT 23 U/L, "
    "AST 19 U/L, CRP <5 mg/L, HbA1c 48 mmol/mol (6.5%), TSH 1.9 mU/L, INR 1.0. The patient "
    "was discharged on day 3 with follow-up in the clinic."
)
PROSE = (
    "Hand hygiene is the single most important measure to prevent health care-associated "
    "infections. Staff should clean their hands before and after every patient contact, after "
    "removing gloves and whenever hands are visibly soiled. Alcohol-based handrub is preferred "
    "unless the hands are dirty or exposure to spore-forming organisms is suspected, in which "
    "case soap and water should be used."
)


@pytest.mark.parametrize("text", [GENES, CHEMICALS, DOSES, DOSING_TABLE, LABS, PROSE])
@pytest.mark.parametrize("source", ["pubmed", "pmc", "guidelines", "replay"])
def test_biomedical_edge_cases_kept(text: str, source: str) -> None:
    verdict = assess(text, source)
    assert verdict.kept, (verdict.reason, verdict.detail)
    assert verdict.reason is None and verdict.detail == ""


def test_short_abstract_kept_for_pubmed_only() -> None:
    abstract = (
        "Closing the circle.\nIn Chlamydomonas the different stages of the Calvin-Benson cycle "
        "take place in separate locations within the chloroplast."
    )
    assert assess(abstract, "pubmed").kept
    verdict = assess(abstract, "guidelines")
    assert (verdict.kept, verdict.reason) == (False, "too_short")
    assert verdict.detail == "chars 141 < 200"


@pytest.mark.parametrize(
    ("text", "reason", "signal"),
    [
        ("Aspirin 75 mg daily.", "too_short", "chars"),
        ("pharmacokinetics " * 30, "too_short", "words"),
        (
            "\n".join(f"{i}  {i * 3.7:.2f}  {i * 11}  {i / 7:.4f}  n={i}" for i in range(40)),
            "low_letter_ratio",
            "letter_ratio",
        ),
        (" ".join("The patient was admitted to hospital with fever " * 6), "word_length", None),
        ("Visit the ward at noon today please.\n" * 20, "repetitive", "repeated_line_share"),
        (
            PROSE + "\n\n" + "\n\n".join(["Wash hands, then dry them with a paper towel."] * 8),
            "repetitive",
            "repeated_line_share",
        ),
        (
            "We use cookies to improve your experience on our website. Accept all cookies.\n"
            "Privacy policy | Terms of use | Cookie settings | Sign in to your account\n"
            "Copyright 2024 Example Health Media. All rights reserved.\n"
            "Subscribe to our newsletter for weekly health tips delivered to your inbox.\n"
            "Flu season is here: get your vaccine at a pharmacy near you this week.",
            "boilerplate",
            "boilerplate_share",
        ),
    ],
)
def test_bad_text_dropped(text: str, reason: str, signal: str | None) -> None:
    verdict = assess(text, "replay")
    assert not verdict.kept
    assert verdict.reason == reason, verdict.detail
    assert verdict.detail.startswith(signal or "mean_word_length")


def test_repeated_paragraphs_counted() -> None:
    paragraph = "Check the blood glucose\nbefore every meal and at bedtime."
    text = "\n\n".join([PROSE] + [paragraph] * 5)
    assert signals(text)["repeated_paragraph_share"] == pytest.approx(
        4 * len(paragraph) / (len(PROSE) + 5 * len(paragraph))
    )
    verdict = assess(text, "guidelines")
    assert verdict.reason == "repetitive"


def test_licence_line_in_a_long_document_kept() -> None:
    text = PROSE + "\n\n" + CHEMICALS + "\n\n© 2019 The Authors. All rights reserved."
    verdict = assess(text, "pmc")
    assert verdict.kept
    assert 0 < verdict.signals["boilerplate_share"] < 0.1


def test_signals_have_the_same_keys_for_every_document() -> None:
    keys = set(assess(PROSE, "pmc").signals)
    assert keys == set(assess("", "pmc").signals) == set(assess("x" * 10, None).signals)
    assert keys == {
        "chars",
        "words",
        "letter_ratio",
        "mean_word_length",
        "repeated_line_share",
        "repeated_paragraph_share",
        "boilerplate_share",
    }
    empty = assess(None, "replay")
    assert (empty.kept, empty.reason) == (False, "too_short")
    assert all(isinstance(v, float) for v in empty.signals.values())


def test_rules_in_order() -> None:
    assert RULES == ("too_short", "low_letter_ratio", "word_length", "repetitive", "boilerplate")
    short_and_numeric = "1 2 3 4 5 6 7 8 9"
    assert assess(short_and_numeric, "replay").reason == "too_short"


def test_config_per_source_and_strict() -> None:
    config = QualityConfig(
        default=QualityThresholds(min_chars=10, min_words=2),
        sources={"guidelines": QualityThresholds(min_chars=5000)},
    )
    assert assess("Aspirin 75 mg daily for life.", "replay", config).kept
    assert assess(PROSE, "guidelines", config).reason == "too_short"
    assert config.for_source(None) is config.default
    with pytest.raises(ValidationError):
        QualityThresholds(min_letters=3)
    with pytest.raises(ValidationError):
        QualityConfig.model_validate({"sources": {"pubmed": {"min_char": 1}}})


def test_batch_matches_single_documents() -> None:
    texts = [PROSE, "short", None, GENES]
    sources = ["guidelines", "replay", "pmc", "pubmed"]
    assert assess_batch(texts, sources) == [
        assess(t, s) for t, s in zip(texts, sources, strict=True)
    ]
