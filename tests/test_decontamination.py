"""Benchmark contamination on the real benchmark files: planted copies are found, texts that
only share phrases with the benchmarks (and the real corpus fixtures) are not."""

from __future__ import annotations

import hashlib
import json
import pickle
import textwrap
from pathlib import Path

import pytest

from corpus.benchmarks import BenchmarkItem, load_benchmarks, load_pubmedqa
from corpus.decontamination import (
    BASE,
    BenchmarkIndex,
    Match,
    coverage_report,
    find_contamination,
    normalize_tokens,
)
from corpus.jats import parse_pmc_file
from corpus.pubmed_xml import parse_pubmed_file

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ROOT = FIXTURES / "qa_benchmarks"
FILLER = (
    "Residents reviewed cases every week during the rotation, and the notes below were "
    "collected for the study group. "
)


@pytest.fixture(scope="module")
def items() -> list[BenchmarkItem]:
    return load_benchmarks(ROOT).items


@pytest.fixture(scope="module")
def index(items) -> BenchmarkIndex:
    return BenchmarkIndex.build(items)


@pytest.fixture(scope="module")
def by_id(items) -> dict[str, BenchmarkItem]:
    return {i.item_id: i for i in items}


def _item(benchmark: str, item_id: str, question: str, **fields) -> BenchmarkItem:
    fields = {"options": {}, "answer": "", **fields}
    return BenchmarkItem(benchmark, item_id, None, "test", question, **fields)


def _ids(matches: list[Match]) -> list[str]:
    return [m.item_id for m in matches]


def _reflowed(item: BenchmarkItem) -> str:
    """The item as a prep site might print it: upper case, other punctuation, new lines."""
    question = item.question.replace(",", ";").replace(".", " -").replace("?", " ...")
    lines = [textwrap.fill(question.upper(), 37)]
    lines += [f"({letter.lower()})  {text}" for letter, text in sorted(item.options.items())]
    return FILLER + "\n".join(lines) + "\n\nAnswer key at the end of the chapter."


def test_normalize_tokens() -> None:
    text = (
        "A 5-year-old BOY's naïve ﬁbrosis—Straße; soft\u00adhyphen zero\u200bwidth snake_case ＡＢ"
    )
    assert normalize_tokens(text) == [
        "a", "5", "year", "old", "boy", "s", "naïve", "fibrosis", "strasse",
        "softhyphen", "zerowidth", "snake", "case", "ab",
    ]  # fmt: skip
    assert normalize_tokens("cafe\u0301 CAFÉ") == ["café", "café"]
    assert normalize_tokens(" \n\t--") == []


def test_hash_scheme_is_pinned() -> None:
    """The documented scheme, recomputed with Python integers: what every worker must share."""
    words = [f"w{i}" for i in range(14)]
    item = _item("pubmedqa", "pubmedqa:1", "Short?", context=" ".join(words), pmid=1)
    index = BenchmarkIndex.build([item])

    def reference(tokens: list[str]) -> int:
        h = 0
        for t in tokens:
            value = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            h = (h * int(BASE) + (value | 1)) % 2**64
        return h

    assert sorted(index.ngram_hashes.tolist()) == sorted(
        [reference(words[:13]), reference(words[1:])]
    )
    assert index.whole_hashes.size == 0 and index.pmids == {1}


def test_pubmedqa_context_is_found(index, items) -> None:
    item = next(i for i in items if i.pmid == 21645374)
    paragraph = item.context.split("\n")[1]
    document = FILLER + paragraph.replace(". ", ".\n") + "\n" + FILLER
    (match,) = index.matches(document)
    assert (match.item_id, match.benchmark, match.kind) == (
        "pubmedqa:21645374",
        "pubmedqa",
        "ngram",
    )
    assert match.n_overlapping == len(normalize_tokens(paragraph)) - 12
    # The conclusion alone gives the answer away: it is indexed too.
    assert _ids(index.matches(f"Conclusions. {item.long_answer}")) == ["pubmedqa:21645374"]


def test_pubmedqa_pmids(index) -> None:
    ori = json.loads((ROOT / "pubmedqa" / "ori_pqal.json").read_text())
    assert index.pmids == {int(p) for p in ori} and len(index.pmids) == 1000
    truth = json.loads((ROOT / "pubmedqa" / "test_ground_truth.json").read_text())
    assert {int(p) for p in truth} <= index.pmids


def test_medqa_question_reflowed_is_found(index, by_id) -> None:
    item = by_id[next(i for i in by_id if i.startswith("medqa:test:0:"))]
    matches = index.matches(_reflowed(item))
    assert _ids(matches) == [item.item_id]
    assert matches[0].kind == "ngram" and matches[0].n_overlapping > 100
    # The question alone, without its options, is enough.
    assert _ids(index.matches(item.question.lower())) == [item.item_id]


def test_short_mmlu_item_is_matched_whole(index, by_id) -> None:
    item = by_id["mmlu_medical:clinical_knowledge:test:188"]
    assert item.question == "The rate limiting enzyme of glycolysis is:"
    assert len(normalize_tokens(item.question)) < 13
    assert len(normalize_tokens(" ".join([item.question, *item.options.values()]))) < 13
    # The same question is in college_medicine too: both items are this text.
    both = ["mmlu_medical:clinical_knowledge:test:188", "mmlu_medical:college_medicine:test:107"]
    lettered = (
        FILLER + item.question + "\n" + "\n".join(f"{k}. {v}" for k, v in item.options.items())
    )
    plain = FILLER + item.question + " " + " ".join(item.options.values()) + " " + FILLER
    for document in (lettered, plain, _reflowed(item)):
        matches = index.matches(document)
        assert _ids(matches) == both and {m.kind for m in matches} == {"whole"}
    # The question with its answer, or with its options interrupted, is not the item.
    assert index.matches("The rate limiting enzyme of glycolysis is phosphofructokinase.") == []
    options = list(item.options.values())
    assert index.matches(f"{item.question} {options[0]}, not {' '.join(options[1:])}") == []


def test_short_question_with_its_options_is_found(index, by_id) -> None:
    item = by_id["mmlu_medical:anatomy:test:35"]
    assert item.question == "The auditory tube"
    assert _ids(index.matches(_reflowed(item))) == [item.item_id]
    # One option is an answer statement any anatomy text may hold.
    assert index.matches(f"{FILLER}The auditory tube {item.options['C']}") == []


def test_single_options_are_not_indexed(index, by_id) -> None:
    item = by_id[next(i for i in by_id if i.startswith("medqa:test:91:"))]
    option = item.options["B"]
    assert len(normalize_tokens(option)) >= 13
    assert index.matches(f"{FILLER}{option} {FILLER}") == []
    # Two options side by side, in the item's order, are a copy of it.
    assert _ids(index.matches(f"{item.options['A']} {option}")) == [item.item_id]


def test_shared_phrases_are_not_flagged(index, items) -> None:
    phrases = [
        "the aim of this study was to",
        "a retrospective review of",
        "randomized controlled trial",
        "was associated with an increased risk of",
        "multivariate logistic regression analysis",
        "odds ratio",
        "confidence interval",
        "further studies are needed to",
        "which of the following is the most likely cause of this patient s symptoms",
        "oxygen saturation is 98 on room air",
    ]
    benchmark_text = " ".join(
        " ".join(
            normalize_tokens(
                " ".join([i.question, *i.options.values(), i.context or "", i.long_answer or ""])
            )
        )
        for i in items
    )
    assert all(f" {p} " in benchmark_text for p in phrases)
    abstract = (
        "Background: Hypoglycaemia is common in patients with type 2 diabetes mellitus treated "
        "with insulin. The aim of this study was to assess whether continuous glucose "
        "monitoring reduces severe events. Methods: A retrospective review of 412 charts, "
        "followed by a randomized controlled trial in 96 adults. Multivariate logistic "
        "regression analysis gave the odds ratio and its 95% confidence interval. Results: "
        "Nocturnal hypoglycaemia was associated with an increased risk of falls (odds ratio "
        "2.1, 95% confidence interval 1.3-3.4). Conclusions: Further studies are needed to "
        "confirm the benefit in older adults."
    )
    prep_page = (
        "A 54-year-old man has had fever for 3 days. Oxygen saturation is 98% on room air. "
        "Which of the following is the most likely cause of this patient's symptoms? "
        "Explain your choice before opening the answer key."
    )
    assert find_contamination([abstract, prep_page], index) == [[], []]


def test_real_corpus_fixtures_are_not_flagged(index) -> None:
    documents = []
    for path in sorted((FIXTURES / "pubmed_xml").iterdir()):
        rows = [r for r in parse_pubmed_file(str(path)) if isinstance(r, dict)]
        documents += [f"{r['title'] or ''}\n{r['abstract'] or ''}" for r in rows]
    for path in sorted((FIXTURES / "pmc_jats").rglob("*")):
        if path.suffix in (".xml", ".nxml"):
            rows = [r for r in parse_pmc_file(str(path)) if isinstance(r, dict)]
            documents += [f"{r['abstract'] or ''}\n{r['body'] or ''}" for r in rows]
    assert len(documents) > 400
    assert not any(find_contamination(documents, index))


def test_batch_min_hits_and_edge_cases(index, by_id) -> None:
    item = by_id[next(i for i in by_id if i.startswith("medqa:test:0:"))]
    fifteen = " ".join(normalize_tokens(item.question)[:15])  # 3 distinct 13-grams
    documents = ["", FILLER, fifteen, fifteen + " and again " + fifteen, _reflowed(item)]
    results = find_contamination(documents, index)
    assert [len(r) for r in results] == [0, 0, 1, 1, 1]
    assert results[2][0].n_overlapping == results[3][0].n_overlapping == 3
    strict = find_contamination(documents, index, min_ngram_hits=4)
    assert [_ids(r) for r in strict] == [[], [], [], [], [item.item_id]]
    assert find_contamination([], index) == []


def test_same_question_in_two_forms_keeps_its_ngrams(items) -> None:
    five = next(i for i in items if i.benchmark == "medqa")
    options = dict(zip("ABCD", list(five.options.values())[:4], strict=True))
    four = _item("medqa_4options", "medqa_4options:test:0:x", five.question, options=options)
    index = BenchmarkIndex.build([five, four])
    assert _ids(index.matches(five.question)) == [five.item_id, four.item_id]
    # A different question sharing a sentence with it: that sentence stops counting.
    sentence = five.question.split(". ")[0]
    other = _item("medqa", "medqa:test:9:x", f"An unrelated stem. {sentence}.")
    assert len(normalize_tokens(sentence)) >= 13 and BenchmarkIndex.build([five]).matches(sentence)
    index = BenchmarkIndex.build([five, other])
    assert index.matches(sentence) == []


def test_index_round_trips(index, by_id) -> None:
    document = _reflowed(by_id["mmlu_medical:anatomy:test:35"])
    index.matches(document)  # derives the filter, which is not stored
    for copy in (BenchmarkIndex.from_bytes(index.to_bytes()), pickle.loads(pickle.dumps(index))):
        assert copy.matches(document) == index.matches(document)
        assert (copy.ngram_hashes == index.ngram_hashes).all()
        assert copy.vocab == index.vocab and copy.pmids == index.pmids
    assert len(pickle.dumps(index)) < 8_000_000 and len(index.to_bytes()) < 8_000_000
    rebuilt = BenchmarkIndex.build(load_benchmarks(ROOT).items)
    assert (rebuilt.ngram_hashes == index.ngram_hashes).all()
    assert (rebuilt.ngram_items == index.ngram_items).all()


def test_coverage_report(items) -> None:
    report = coverage_report(items)
    shares = {
        b: (c.items, round(c.ngram_share * c.items), round(c.question_ngram_share * c.items),
            round(c.whole_share * c.items))
        for b, c in report.items()
    }  # fmt: skip
    assert shares == {
        "medqa": (1273, 1273, 1272, 0),
        "medmcqa": (1000, 905, 388, 95),
        "pubmedqa": (1000, 1000, 529, 0),
        "mmlu_medical": (1099, 1088, 676, 11),
    }
    # Shorter n-grams reach more items from their question alone.
    short = coverage_report(items, n=8)
    assert all(short[b].question_ngram_share >= report[b].question_ngram_share for b in report)
    with pytest.raises(ValueError, match="n must be"):
        coverage_report(items, n=0)


def test_pubmedqa_test_split_only(items) -> None:
    test = [
        i
        for i in load_pubmedqa(
            ROOT / "pubmedqa" / "ori_pqal.json", ROOT / "pubmedqa" / "test_ground_truth.json"
        )
        if i.split == "test"
    ]
    index = BenchmarkIndex.build(test)
    assert len(index.pmids) == 500 and len(index.item_ids) == 500
    train = next(i for i in items if i.benchmark == "pubmedqa" and i.split == "train")
    assert index.matches(train.context) == []
    assert _ids(index.matches(test[0].context)) == [test[0].item_id]
