"""PMC JATS articles into bronze rows: real PMC OA fixtures, then hostile and broken inputs."""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from corpus.jats import PmcStats, parse_article, parse_pmc_file
from corpus.licenses import COMMERCIAL_OK, normalize_license
from corpus.quarantine import Quarantined

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pmc_jats"
ARTICLES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".xml", ".nxml"))
MARKER = re.compile(r"\[/?(?:bib_ref|fig_ref|fig|table|formula)\]")
BIB_REF = re.compile(r"\[bib_ref\].*?\[/bib_ref\]")


def _path(pmcid: str) -> Path:
    return next(p for p in ARTICLES if p.stem == pmcid)


def _row(pmcid: str, markers: bool = True) -> dict[str, Any]:
    items = list(parse_pmc_file(str(_path(pmcid)), markers=markers))
    assert len(items) == 1 and isinstance(items[0], dict), items
    return items[0]


def _xml(pmcid: str) -> etree._Element:
    return etree.parse(str(_path(pmcid)), etree.XMLParser(load_dtd=False)).getroot()


def test_fixtures_are_there() -> None:
    assert len(ARTICLES) == 18


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("markers", [True, False])
def test_every_fixture_gives_one_clean_row(path: Path, markers: bool) -> None:
    items = list(parse_pmc_file(str(path), markers=markers))
    assert len(items) == 1
    row = items[0]
    assert isinstance(row, dict)
    assert row["pmcid"] == path.stem
    assert row["doc_id"] == f"pmc:{path.stem}"
    assert row["locator"] == "article=0"
    assert row["has_body"] is True and len(row["body"]) > 5000
    assert row["title"] and row["abstract"]
    for text in (row["title"], row["abstract"], row["body"]):
        assert not re.search(r"[\x00-\x08\x0b-\x1f]", text), "a placeholder leaked"
        assert all(line == line.strip() for line in text.split("\n"))
        assert "  " not in text
    # Title and abstract have their own columns.
    assert not row["body"].startswith(row["title"])
    assert "\n\n\n" not in row["body"]
    if not markers:
        assert not MARKER.search(row["body"] + row["abstract"] + row["title"])


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: p.stem)
def test_every_captioned_float_is_written_once(path: Path) -> None:
    root = _xml(path.stem)
    body = _row(path.stem)["body"]
    for tag, marker in (("fig", "[fig] "), ("table-wrap", "[table] ")):
        captioned = [el for el in root.iter(tag) if "".join(el.find("caption").itertext()).strip()]
        assert body.count(marker) == len(captioned)


def test_metadata_columns() -> None:
    row = _row("PMC2386533")
    assert row["pmid"] == 17619923
    assert row["doi"] == "10.1007/s00261-007-9276-3"
    assert row["journal"] == "Abdominal Imaging"
    assert row["pub_year"] == 2008  # ppub 2008 is preferred to epub 2007
    assert row["article_type"] == "research-article"
    assert row["language"] is None
    assert (row["n_figures"], row["n_tables"], row["n_citations"]) == (9, 0, 65)

    row = _row("PMC6398430")
    assert (row["pmid"], row["doi"]) == (30846892, "10.1093/beheco/ary157")
    assert row["pub_year"] == 2019  # ppub "Jan-Feb 2019", epub 2018
    assert (row["n_figures"], row["n_tables"], row["n_citations"]) == (4, 4, 80)

    row = _row("PMC5828200")
    assert (row["pmid"], row["pub_year"], row["journal"]) == (29535835, 2018, "Oncotarget")
    assert (row["n_figures"], row["n_tables"], row["n_citations"]) == (11, 1, 52)

    assert _row("PMC2774419")["language"] == "en"  # xml:lang="EN"
    assert _row("PMC2775679")["article_type"] == "review-article"
    assert _row("PMC7417471")["n_citations"] == 206


@pytest.mark.parametrize(
    ("pmcid", "expected"),
    [
        # Advances in Bioinformatics, Oncotarget, Behav Ecol, Nano Convergence: CC BY.
        *[(p, "cc-by") for p in ("PMC2768302", "PMC2774577", "PMC2775662", "PMC2775679")],
        *[(p, "cc-by") for p in ("PMC2775685", "PMC5828200", "PMC6398430", "PMC7417471")],
        # 3 Biotech: "Creative Commons Attribution License" text with no URL.
        *[(p, "cc-by") for p in ("PMC3324826", "PMC3339580", "PMC3339583", "PMC3339584")],
        # Its permissions say CC BY, its back-matter "Open Access" note CC BY-NC: stricter.
        ("PMC3339582", "cc-by-nc"),
        # Abdominal Imaging: only a Springer copyright line...
        ("PMC2386533", "unknown"),
        # ...or "© The Author(s)" plus an "Open Access" note naming CC BY-NC.
        *[(p, "cc-by-nc") for p in ("PMC2491404", "PMC2774419", "PMC2852030", "PMC2900587")],
    ],
)
def test_licence_per_article(pmcid: str, expected: str) -> None:
    assert _row(pmcid)["license"] == expected


def test_licence_text_is_raw() -> None:
    assert _row("PMC2386533")["license_text"] == "© Springer Science+Business Media, LLC 2007"
    assert _row("PMC2491404")["license_text"].startswith(
        "© The Author(s) 2007\nThis article is distributed under the terms of the Creative"
        " Commons Attribution Noncommercial License"
    )
    assert "(CC-BY)" in _row("PMC5828200")["license_text"]


def test_normalize_license() -> None:
    assert normalize_license(None, "http://creativecommons.org/licenses/by/3.0/") == "cc-by"
    assert normalize_license("Creative Commons Attribution License") == "cc-by"
    assert normalize_license("© Springer") == "unknown"
    assert normalize_license(None) == "unknown"
    assert normalize_license("CC BY-NC-ND 4.0") == "cc-by-nc-nd"
    assert normalize_license("Creative Commons Attribution-NonCommercial-ShareAlike 4.0") == (
        "cc-by-nc-sa"
    )
    assert normalize_license("x", "https://creativecommons.org/licenses/by-nd/4.0/") == "cc-by-nd"
    assert normalize_license("", "http://creativecommons.org/publicdomain/zero/1.0/") == "cc0"
    assert normalize_license("This work is in the public domain.") == "public-domain"
    # BMC: the article licence comes first, the CC0 waiver for data after it.
    bmc = (
        "distributed under the terms of the Creative Commons Attribution 4.0 International"
        " License (http://creativecommons.org/licenses/by/4.0/) ... The Creative Commons Public"
        " Domain Dedication waiver (http://creativecommons.org/publicdomain/zero/1.0/) applies"
    )
    assert normalize_license(bmc) == "cc-by"
    assert "cc-by" in COMMERCIAL_OK and "cc-by-nc" not in COMMERCIAL_OK
    assert "unknown" not in COMMERCIAL_OK


def test_sections_become_headings_in_order() -> None:
    body = _row("PMC2386533")["body"]
    lines = body.split("\n")
    order = ["# Introduction", "# Diagnostic modalities", "# Cross-sectional imaging modalities"]
    order += ["## Ultrasonography", "## Computed tomography", "# Discussion"]
    positions = [lines.index(h) for h in order]
    assert positions == sorted(positions)
    assert lines[0] == "# Introduction"

    lines = _row("PMC5828200")["body"].split("\n")
    assert "# MATERIALS AND METHODS" in lines and "## Morris water maze" in lines
    assert "## 4.1. Probability of Extinction" in _row("PMC2775679")["body"].split("\n")
    # Body text before the first section has no heading.
    assert not _row("PMC2491404")["body"].startswith("#")


def test_back_matter_and_statements_are_removed() -> None:
    body = _row("PMC6398430")["body"]
    assert "FUNDING" not in body and "Vienna Science and Technology Fund" not in body
    assert "Data accessibility" not in body  # untitled section with a run-in title
    assert "Click here for additional data file" not in body
    body = _row("PMC5828200")["body"]
    assert "YHT and YYL performed" not in body  # author contributions (fn-group)
    assert "The authors declare no conflicts of interest" not in body
    assert "SUPPLEMENTARY MATERIALS" not in body
    body = _row("PMC7417471")["body"]
    for gone in ("Competing interests", "Authors’ contributions", "Abbreviations", "Funding"):
        assert gone not in body
    assert "Figure S1. Cyclic voltammetry curves" not in body  # supplementary caption
    for pmcid in ("PMC2386533", "PMC7417471"):
        assert "\n# References" not in _row(pmcid)["body"]
    # Authors and affiliations stay out of every column.
    row = _row("PMC2386533")
    assert "Meibergdreef" not in row["body"] + row["abstract"] and "Horsthuis" not in row["body"]
    # Springer puts a supplementary-material notice into the abstract.
    assert "Electronic supplementary material" not in _row("PMC3324826")["abstract"]


@pytest.mark.parametrize("pmcid", ["PMC2386533", "PMC5828200", "PMC3324826", "PMC7417471"])
def test_reference_list_appears_only_inside_citation_markers(pmcid: str) -> None:
    body = _row(pmcid)["body"]
    outside = BIB_REF.sub(" ", body)
    checked = long_titles = 0
    for title in _xml(pmcid).iter("article-title"):
        if title.getparent().tag == "title-group":
            continue  # the article's own title
        text = " ".join("".join(title.itertext()).split())
        if len(text.split()) < 6:
            continue
        checked += 1
        assert text not in outside
        if len(text.split()) > 12:
            long_titles += 1
            assert text not in body  # markers hold 12 words at most
    assert checked > 10 and long_titles > 0


def test_citation_markers_carry_title_and_first_author() -> None:
    body = _row("PMC2386533")["body"]
    assert (
        "9.8/100,000 in Europe [bib_ref] Clinical epidemiology of inflammatory bowel disease:"
        " incidence, prevalence, and environmental influences, Loftus [/bib_ref]." in body
    )
    # "[3, 4]": both citations, brackets and separator gone.
    assert (
        "edema [bib_ref] Inflammatory bowel disease, Chap. 142 (on-line edition), Stenson" in body
    )
    # Titles are cut to 12 words.
    body = _row("PMC5828200")["body"]
    assert (
        "[bib_ref] Amyloid beta -protein (abeta) assembly: abeta 40 and abeta 42 oligomerize"
        " through, Bitan [/bib_ref]" in body
    )
    for marker in BIB_REF.findall(body):
        title = marker.removeprefix("[bib_ref] ").rsplit(", ", 1)[0]
        assert len(title.split()) <= 12


def test_author_year_citations_absorb_the_author_names() -> None:
    body = _row("PMC3324826")["body"]
    assert (
        "(LDL) particles [bib_ref] Role of lysosomal acid lipase in the metabolism of plasma low"
        " density, Goldstein [/bib_ref] [bib_ref] Mutations at the lysosomal" in body
    )
    assert "Goldstein et al. [bib_ref]" not in body and "(Goldstein" not in body
    plain = _row("PMC3324826", markers=False)["body"]
    assert "low-density lipoprotein (LDL) particles. Inborn errors" in plain
    assert "Goldstein" not in plain


def test_citation_range_is_expanded() -> None:
    # "[3–5]" cites CR3, CR4 and CR5, although only CR3 and CR5 are tagged.
    body = _row("PMC7417471")["body"]
    m = re.search(r"electrochemical biosensors ((?:\[bib_ref\][^\[]*\[/bib_ref\] ?)+),", body)
    assert m is not None
    assert re.findall(r", (\w+) \[/bib_ref\]", m.group(1)) == ["Asif", "Asmatulu", "Niu"]


def test_figures_and_tables() -> None:
    body = _row("PMC5828200")["body"]
    assert (
        "under Aβ stress [fig_ref] Figure 1: CSP had better protective effect against"
        " oligomeric Aβ (oAβ) than un-nanosized curcuminoid [/fig_ref]." in body
    )
    assert "\n[fig] Figure 11: CSP did not inhibit Aβ aggregation in vitro. Representative" in body
    assert (
        "[table] Table 1: Pharmacokinetic analysis of un-nanosized curcuminoid (C) and"
        " curcuminoid submicron particle (CSP) [/table]" in body
    )
    assert "0.47±0.33" not in body and "1,250±56" not in body  # table cells
    # "Fig.&nbsp;<xref>4</xref>c": the label replaces the word, the panel letter goes.
    body = _row("PMC7417471")["body"]
    assert "as shown in [fig_ref] Figure 4: Dimensionally stable anodes (DSC)" in body
    assert "[/fig_ref]c" not in body and "Fig. [fig_ref]" not in body
    # "(Table 1; Figs. 5, 6, and 7)": the words, brackets and separators all go.
    body = _row("PMC3339583")["body"]
    assert (
        "metabolic functions [fig_ref] Table 1: Details of 16S rRNA gene sequences retrieved in"
        " this study and used [/fig_ref] [fig_ref] Figure 5: Phylogenetic dendrogram of the"
        " Acidobacterium division based on Neighbor-joining analysis [/fig_ref] [fig_ref] Figure 6:"
    ) in body
    # Floats kept apart in <floats-group> follow the paragraph that first mentions them.
    body = _row("PMC2768302")["body"]
    mention = body.index("[fig_ref] Table 1: Prediction of in vivo occupancy")
    assert (
        mention
        < body.index("[table] Table 1: Prediction of in vivo occupancy")
        < (body.index("## 2.2."))
    )


def test_formulas() -> None:
    row = _row("PMC2775679")
    assert row["n_formulas"] == 52 == row["body"].count("[formula]")
    assert row["body"].count("[formula]") == row["body"].count("[/formula]")
    assert "[formula] Ψ_{i} = (x(1 + s))/(x(1 + s) + (1 − x)), (2) [/formula]" in row["body"]
    assert (
        "[formula] P_{0}(p) = (∫_{p}^{1}ψ(y) dy)/(∫_{0}^{1}ψ(y) dy), (16) [/formula]"
        in (row["body"])
    )
    body = _row("PMC6398430")["body"]
    assert "[formula] CF = (CM_{t} − CM_{ind})/(CM_{t}) (1) [/formula]" in body
    # PMC7417471 gives TeX next to its MathML: the TeX is used, without PMC's preamble.
    body = _row("PMC7417471")["body"]
    assert (
        "glass transition temperature ([formula] {\\text{T}}_{\\text{g}} [/formula]) value" in body
    )
    assert "documentclass" not in body
    plain = _row("PMC2775679", markers=False)["body"]
    assert "no recurrent mutation, Ψ_{i} = (x(1 + s))/(x(1 + s) + (1 − x)), (2) where" in plain


def test_markers_false_keeps_the_words() -> None:
    plain = _row("PMC5828200", markers=False)["body"]
    assert "under Aβ stress (Figure 1). Because CSP" in plain
    assert "\nFigure 11: CSP did not inhibit Aβ aggregation in vitro." in plain
    assert "\nTable 1: Pharmacokinetic analysis" in plain
    plain = _row("PMC2386533", markers=False)["body"]
    assert "9.8/100,000 in Europe. Incidence rates" in plain
    assert "person-years. \n" not in plain
    assert "# Introduction" in plain.split("\n")


def test_structured_abstract_and_exponents() -> None:
    abstract = _row("PMC2491404")["abstract"]
    assert abstract.startswith("Purpose: To evaluate the accuracy of Multi-detector row CT")
    assert "\nMaterials and methods: A total of 35 patients" in abstract
    assert "scan rate of 100 mV s^−1" in _row("PMC7417471")["body"]


# -- inputs made by the tests ----------------------------------------------------------------


def _article(pmcid: str = "1", body: str | None = "<p>Text of the article.</p>") -> bytes:
    body_xml = f"<body>{body}</body>" if body is not None else ""
    return (
        f'<article article-type="research-article"><front><article-meta>'
        f'<article-id pub-id-type="pmc">{pmcid}</article-id>'
        f"<title-group><article-title>Title {pmcid}</article-title></title-group>"
        f"<abstract><p>Abstract {pmcid}.</p></abstract>"
        f"</article-meta></front>{body_xml}</article>"
    ).encode()


def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _padded(pmcid: str, size: int) -> bytes:
    """An article made large and incompressible by a random comment."""
    noise = random.Random(pmcid).randbytes(size // 2).hex()
    return _article(pmcid).replace(b"<body>", f"<body><!-- {noise} -->".encode())


def test_unsafe_member_names_are_quarantined_and_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(
        tmp_path / "pkg.tar.gz",
        [
            ("pkg/PMC1.nxml", _article("1")),
            ("../escape.xml", _article("2")),
            ("/abs/evil.nxml", _article("3")),
            ("pkg/../../up.nxml", _article("4")),
            ("pkg/figure1.jpg", b"\xff\xd8\xff\xe0 not an article"),
            ("pkg/PMC5.nxml", _article("5")),
        ],
    )
    monkeypatch.chdir(work)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    stats = PmcStats()
    items = list(parse_pmc_file(str(archive), stats=stats))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "escape.xml").exists()
    rows = [i for i in items if isinstance(i, dict)]
    assert [r["pmcid"] for r in rows] == ["PMC1", "PMC5"]
    assert rows[0]["locator"] == "member=pkg/PMC1.nxml article=0"
    bad = [i for i in items if isinstance(i, Quarantined)]
    assert [q.error_class for q in bad] == ["UnsafeArchiveMember"] * 3
    assert [q.locator for q in bad] == [
        "member=../escape.xml",
        "member=/abs/evil.nxml",
        "member=pkg/../../up.nxml",
    ]
    assert (stats.xml_members, stats.skipped_members) == (2, 1)


def test_oversized_member_is_bounded(tmp_path: Path) -> None:
    bomb = b"\0" * 1_000_000  # compresses to about 1 kB
    archive = _tar(tmp_path / "bomb.tar.gz", [("big.nxml", bomb), ("PMC7.nxml", _article("7"))])
    assert archive.stat().st_size < 20_000
    items = list(parse_pmc_file(str(archive), max_member_bytes=100_000))
    assert isinstance(items[0], Quarantined)
    assert (items[0].error_class, items[0].locator) == ("MemberTooLarge", "member=big.nxml")
    assert [i["pmcid"] for i in items[1:]] == ["PMC7"]  # the stream goes on after it
    # A plain file over the limit is refused before it is parsed.
    big = tmp_path / "big.xml.gz"
    big.write_bytes(gzip.compress(bomb))
    (item,) = parse_pmc_file(str(big), max_member_bytes=100_000)
    assert isinstance(item, Quarantined) and item.error_class == "InputTooLarge"


def test_truncated_gzip_archive_keeps_the_members_before_the_cut(tmp_path: Path) -> None:
    members = [(f"PMC{i}.nxml", _padded(str(i), 40_000)) for i in (1, 2, 3)]
    whole = _tar(tmp_path / "whole.tar.gz", members).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    items = list(parse_pmc_file(str(cut)))
    assert [i["pmcid"] for i in items[:-1]] == ["PMC1"]
    assert isinstance(items[-1], Quarantined)
    assert (items[-1].error_class, items[-1].locator) == ("TruncatedArchive", "end of file")


def test_truncated_plain_tar_cut_at_a_header_is_noticed(tmp_path: Path) -> None:
    first, second = _article("1"), _article("2")
    whole = _tar(tmp_path / "whole.tar", [("a.nxml", first), ("b.nxml", second)], "w").read_bytes()
    # Cut in the middle of the second member's header: tarfile itself reports a clean end.
    end_of_first = 512 + (len(first) + 511) // 512 * 512
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: end_of_first + 200])
    items = list(parse_pmc_file(str(cut)))
    assert [i["pmcid"] for i in items[:-1]] == ["PMC1"]
    assert isinstance(items[-1], Quarantined) and items[-1].error_class == "TruncatedArchive"
    # The complete archive ends cleanly.
    assert [i["pmcid"] for i in parse_pmc_file(str(tmp_path / "whole.tar"))] == ["PMC1", "PMC2"]


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(2000))
    (item,) = parse_pmc_file(str(junk))
    assert isinstance(item, Quarantined) and item.error_class == "UnreadableInput"


def test_article_without_body_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "nobody.nxml"
    path.write_bytes(_article("42", body=None))
    (row,) = parse_pmc_file(str(path))
    assert isinstance(row, dict)
    assert (row["title"], row["abstract"]) == ("Title 42", "Abstract 42.")
    assert row["body"] is None and row["has_body"] is False


def test_malformed_xml_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "bad.nxml"
    path.write_bytes(_article("1").replace(b"</body>", b"</bod>"))
    (item,) = parse_pmc_file(str(path))
    assert isinstance(item, Quarantined)
    assert (item.error_class, item.locator) == ("MalformedXML", "file")
    archive = _tar(
        tmp_path / "mixed.tar.gz", [("bad.nxml", path.read_bytes()), ("ok.xml", _article("9"))]
    )
    items = list(parse_pmc_file(str(archive)))
    assert isinstance(items[0], Quarantined) and items[0].locator == "member=bad.nxml"
    assert items[1]["pmcid"] == "PMC9"


def test_articleset_gives_one_row_per_article(tmp_path: Path) -> None:
    path = tmp_path / "set.xml.gz"
    articles = b"".join(_article(str(i)) for i in (11, 12, 13))
    path.write_bytes(gzip.compress(b"<pmc-articleset>" + articles + b"</pmc-articleset>"))
    rows = list(parse_pmc_file(str(path)))
    assert [(r["pmcid"], r["locator"]) for r in rows] == [
        ("PMC11", "article=0"),
        ("PMC12", "article=1"),
        ("PMC13", "article=2"),
    ]


def test_identifiers_and_hostile_entities(tmp_path: Path) -> None:
    article = _article("PMC77").replace(b'pub-id-type="pmc"', b'pub-id-type="pmcid"')
    assert parse_article(etree.fromstring(article), "article=0")["pmcid"] == "PMC77"
    path = tmp_path / "noid.nxml"
    path.write_bytes(_article("1").replace(b'pub-id-type="pmc"', b'pub-id-type="doi"'))
    (item,) = parse_pmc_file(str(path))
    assert isinstance(item, Quarantined) and item.error_class == "MissingPMCID"
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = tmp_path / "xxe.nxml"
    xxe.write_bytes(
        f'<!DOCTYPE article [<!ENTITY x SYSTEM "file://{secret}">]>'.encode()
        + _article("5", "<p>before &x; after</p>")
    )
    (row,) = parse_pmc_file(str(xxe))
    assert isinstance(row, dict) and "TOPSECRET" not in row["body"]


def test_mathml_is_written_as_linear_text() -> None:
    mml = (
        '<math xmlns="http://www.w3.org/1998/Math/MathML"><mrow>'
        "<msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><msub><mi>y</mi><mi>i</mi></msub>"
        "<mo>=</mo><mfrac><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><mi>c</mi></mfrac>"
        "<mo>−</mo><msqrt><mi>z</mi></msqrt><mo>+</mo><mi>sin</mi><mi>θ</mi>"
        "</mrow></math>"
    )
    body = f'<p>so <inline-formula>{mml}</inline-formula>.</p><disp-formula id="e1">'
    body += f"<label>(1)</label>{mml}</disp-formula>"
    article = etree.fromstring(_article("3", body))
    row = parse_article(article, "article=0")
    linear = "x^{2} + y_{i} = (a + b)/c − sqrt(z) + sin θ"
    assert row["body"] == f"so [formula] {linear} [/formula].\n\n[formula] {linear} (1) [/formula]"
    assert row["n_formulas"] == 2
    plain = parse_article(article, "article=0", markers=False)["body"]
    assert plain == f"so {linear}.\n\n{linear} (1)"
