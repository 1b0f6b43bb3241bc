"""Hostile and broken input files that the tests build themselves."""

from __future__ import annotations

import gzip
from pathlib import Path

GOOD_RECORD = """<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">{pmid}</PMID><Article><Journal><Title>Test Journal</Title>
<JournalIssue><PubDate><Year>2020</Year></PubDate></JournalIssue></Journal>
<ArticleTitle>{title}</ArticleTitle><Abstract><AbstractText>An abstract about
record {pmid}.</AbstractText></Abstract><Language>eng</Language></Article>
</MedlineCitation></PubmedArticle>
"""


def record(pmid: int, title: str | None = None) -> str:
    return GOOD_RECORD.format(pmid=pmid, title=title or f"Good record {pmid}")


def article_set(body: str, doctype: str = "") -> str:
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    return f"{head}{doctype}<PubmedArticleSet>\n{body}</PubmedArticleSet>\n"


def write_bad_inputs(folder: Path) -> dict[str, Path]:
    """Each bad file, keyed by what is wrong with it; good records sit around the bad ones."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    whole = gzip.compress(article_set("".join(record(p) for p in TRUNCATED_PMIDS)).encode())
    files["truncated_gz"] = folder / "bad_truncated.xml.gz"
    files["truncated_gz"].write_bytes(whole[: int(len(whole) * 0.7)])

    malformed = (
        record(91000011)
        + record(91000012).replace("</ArticleTitle>", "</ArticleTitel>")
        + record(91000013)
    )
    files["malformed_middle"] = folder / "bad_malformed.xml"
    files["malformed_middle"].write_text(article_set(malformed))

    xxe_doctype = '<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    files["xxe"] = folder / "bad_xxe.xml"
    files["xxe"].write_text(
        article_set(record(91000021) + record(91000022, "&xxe;") + record(91000023), xxe_doctype)
    )

    lol = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    laughs_doctype = f'<!DOCTYPE PubmedArticleSet [<!ENTITY lol0 "lol">{lol}]>\n'
    files["billion_laughs"] = folder / "bad_laughs.xml"
    files["billion_laughs"].write_text(
        article_set(
            record(91000031) + record(91000032, "&lol9;") + record(91000033), laughs_doctype
        )
    )

    files["empty"] = folder / "bad_empty.xml"
    files["empty"].write_bytes(b"")

    files["not_xml"] = folder / "bad_not_xml.xml"
    files["not_xml"].write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nthis is not XML at all\n")
    return files


# The truncated file keeps a prefix of these; the other files keep exactly GOOD_PMIDS.
TRUNCATED_PMIDS = list(range(93000001, 93000041))
GOOD_PMIDS = {91000011, 91000013, 91000021, 91000023, 91000031, 91000033}
