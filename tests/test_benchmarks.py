"""Benchmark loaders on the real benchmark files in ../shared/fixtures/qa_benchmarks."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from corpus.benchmarks import (
    MMLU_MEDICAL_SUBJECTS,
    PUBMEDQA_OPTIONS,
    BenchmarkItem,
    load_benchmarks,
    load_from_hub,
    load_medmcqa,
    load_medqa,
    load_mmlu,
    load_pubmedqa,
)

ROOT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "qa_benchmarks"
MEDQA_FILE = ROOT / "medqa_usmle" / "US_test_5options.jsonl"
MEDMCQA_FILE = ROOT / "medmcqa" / "medmcqa_dev_1000.jsonl"
ORI_PQAL = ROOT / "pubmedqa" / "ori_pqal.json"
GROUND_TRUTH = ROOT / "pubmedqa" / "test_ground_truth.json"
MMLU_COUNTS = {
    "anatomy": 135,
    "clinical_knowledge": 265,
    "college_biology": 144,
    "college_medicine": 173,
    "medical_genetics": 100,
    "professional_medicine": 282,
}
# Two rows in the original MedMCQA schema (the fixture has only the re-keyed one).
MEDMCQA_ORIGINAL = [
    {
        "id": "45258d3d-b974-44dd-a161-c3fccbdadd88",
        "question": "Which of the following is not true about glomerular capillaries')",
        "opa": "The oncotic pressure of the fluid leaving the capillaries is less than",
        "opb": "Glucose concentration in the capillaries is the same as that in",
        "opc": "Constriction of afferent aeriole decreases the blood flow to the",
        "opd": "Hematocrit of the fluid leaving the capillaries is less than that of",
        "cop": 1,
        "choice_type": "multi",
        "exp": "Ans-a. The oncotic pressure of the fluid leaving the capillaries is less than",
        "subject_name": "Physiology",
        "topic_name": None,
    },
    {
        "id": "7e8d9d0b-f4c2-4b8a-9f0e-8a3e4c0f6c11",
        "question": "Drug of choice in absence seizures:",
        "opa": "Phenytoin",
        "opb": "Carbamazepine",
        "opc": "Phenobarbitone",
        "opd": "Ethosuximide",
        "cop": 4,
        "choice_type": "single",
        "exp": "",
        "subject_name": "Pharmacology",
        "topic_name": "Anti-epileptics",
    },
]


@pytest.fixture(scope="module")
def loaded():
    return load_benchmarks(ROOT)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_counts_per_benchmark(loaded) -> None:
    assert loaded.counts == {
        "medqa": 1273,
        "medqa_4options": 0,
        "medmcqa": 1000,
        "pubmedqa": 1000,
        "mmlu_medical": sum(MMLU_COUNTS.values()),
    }
    assert len(loaded.items) == sum(loaded.counts.values())
    assert len({i.item_id for i in loaded.items}) == len(loaded.items)


def test_absent_benchmarks_and_subjects_are_reported(loaded, caplog) -> None:
    assert loaded.missing == [
        "medqa_4options",
        "mmlu_medical:virology",
        "mmlu_medical:high_school_biology",
        "mmlu_medical:nutrition",
    ]
    with caplog.at_level(logging.WARNING, logger="corpus.benchmarks"):
        load_benchmarks(ROOT, ["mmlu_medical"])
    assert sorted(r.getMessage().split()[1] for r in caplog.records) == [
        "mmlu_medical:high_school_biology",
        "mmlu_medical:nutrition",
        "mmlu_medical:virology",
    ]


def test_selection_and_an_empty_root(tmp_path: Path) -> None:
    only = load_benchmarks(ROOT, ["pubmedqa"])
    assert only.counts == {"pubmedqa": 1000} and only.missing == []
    empty = load_benchmarks(tmp_path)
    assert empty.items == [] and empty.missing == list(empty.counts)
    with pytest.raises(ValueError, match="unknown benchmarks"):
        load_benchmarks(ROOT, ["medqa", "usmle"])


def test_medqa_five_options() -> None:
    items = load_medqa(MEDQA_FILE)
    rows = [json.loads(line) for line in MEDQA_FILE.read_text().splitlines()]
    assert len(items) == len(rows) == 1273
    assert {i.benchmark for i in items} == {"medqa"} and {i.split for i in items} == {"test"}
    assert all(sorted(i.options) == list("ABCDE") for i in items)
    assert Counter(i.subject for i in items) == {"step1": 679, "step2&3": 594}
    for item, row in zip(items, rows, strict=True):
        assert (item.question, item.options, item.answer) == (
            row["question"],
            row["options"],
            row["answer_idx"],
        )
        assert item.options[item.answer] == row["answer"]
    first = items[0]
    assert (
        first.item_id.startswith("medqa:test:0:") and len(first.item_id) == len("medqa:test:0:") + 8
    )
    assert load_medqa(MEDQA_FILE)[41].item_id == items[41].item_id


def test_medqa_four_option_file_is_its_own_benchmark(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in MEDQA_FILE.read_text().splitlines()[:3]]
    for row in rows:
        # Drop a wrong option, as the upstream 4-option files do.
        wrong = next(k for k in "EDCBA" if k != row["answer_idx"])
        texts = [v for k, v in sorted(row["options"].items()) if k != wrong]
        row["options"] = dict(zip("ABCD", texts, strict=True))
        row["answer_idx"] = next(k for k, v in row["options"].items() if v == row["answer"])
    directory = tmp_path / "medqa_usmle"
    directory.mkdir()
    _write_jsonl(directory / "US_test_4options.jsonl", rows)
    (directory / "US_test_5options.jsonl").write_text(MEDQA_FILE.read_text())
    loaded = load_benchmarks(tmp_path, ["medqa", "medqa_4options"])
    assert loaded.counts == {"medqa": 1273, "medqa_4options": 3} and loaded.missing == []
    four = [i for i in loaded.items if i.benchmark == "medqa_4options"]
    assert [i.item_id.split(":")[:3] for i in four] == [
        ["medqa_4options", "test", str(n)] for n in range(3)
    ]
    assert all(i.options[i.answer] == r["answer"] for i, r in zip(four, rows, strict=True))
    bad = _write_jsonl(tmp_path / "US_test_3.jsonl", [{**rows[0], "options": {"A": "x", "B": "y"}}])
    with pytest.raises(ValueError, match="not A-D or A-E"):
        load_medqa(bad)


def test_medmcqa_rekeyed_fixture() -> None:
    items = load_medmcqa(MEDMCQA_FILE)
    rows = [json.loads(line) for line in MEDMCQA_FILE.read_text().splitlines()]
    assert len(items) == 1000 and {i.split for i in items} == {"dev"}
    for item, row in zip(items, rows, strict=True):
        assert item.item_id == f"medmcqa:{row['realidx']}"
        assert item.options == row["options"] and item.answer == row["answer_idx"]
        assert item.options[item.answer] == row["answer"] and item.subject is None


def test_medmcqa_original_schema(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "dev.json", MEDMCQA_ORIGINAL)
    first, second = load_medmcqa(path)  # cop 4 shows that it counts from 1
    assert first.item_id == "medmcqa:45258d3d-b974-44dd-a161-c3fccbdadd88"
    assert first.split == "dev" and first.subject == "Physiology" and first.answer == "A"
    assert first.options["D"] == MEDMCQA_ORIGINAL[0]["opd"]
    assert second.answer == "D" and second.options[second.answer] == "Ethosuximide"
    # The hub copy counts from 0 and marks its test split with -1.
    hub = [{**MEDMCQA_ORIGINAL[0], "cop": 0}, {**MEDMCQA_ORIGINAL[1], "cop": -1}]
    path = _write_jsonl(tmp_path / "medmcqa_test.jsonl", hub)
    assert [i.answer for i in load_medmcqa(path)] == ["A", ""]
    # A JSON array file, with a base that the values cannot tell.
    path = tmp_path / "validation.json"
    path.write_text(json.dumps([{**MEDMCQA_ORIGINAL[1], "cop": 2}]))
    with pytest.raises(ValueError, match="cop_base"):
        load_medmcqa(path)
    assert load_medmcqa(path, cop_base=0)[0].answer == "C"
    assert load_medmcqa(path, cop_base=1)[0].answer == "B"


def test_medmcqa_original_rows_next_to_the_fixture(tmp_path: Path) -> None:
    directory = tmp_path / "medmcqa"
    directory.mkdir()
    (directory / "medmcqa_dev_1000.jsonl").write_text(MEDMCQA_FILE.read_text())
    _write_jsonl(directory / "dev.json", MEDMCQA_ORIGINAL)
    loaded = load_benchmarks(tmp_path, ["medmcqa"])
    assert loaded.counts == {"medmcqa": 1002}


def test_pubmedqa_labelled_and_test_split() -> None:
    items = load_pubmedqa(ORI_PQAL, GROUND_TRUTH)
    truth = json.loads(GROUND_TRUTH.read_text())
    assert len(items) == 1000
    assert Counter(i.answer for i in items) == {"yes": 552, "no": 338, "maybe": 110}
    test = [i for i in items if i.split == "test"]
    assert Counter(i.answer for i in test) == {"yes": 276, "no": 169, "maybe": 55}
    assert {str(i.pmid) for i in test} == set(truth)
    assert all(truth[str(i.pmid)] == i.answer for i in test)
    assert {i.split for i in items} == {"test", "train"}
    item = next(i for i in items if i.pmid == 21645374)
    record = json.loads(ORI_PQAL.read_text())["21645374"]
    assert item.item_id == "pubmedqa:21645374" and item.question == record["QUESTION"]
    assert (
        item.context == "\n".join(record["CONTEXTS"]) and item.long_answer == record["LONG_ANSWER"]
    )
    assert item.options == PUBMEDQA_OPTIONS and item.answer in item.options
    assert {i.split for i in load_pubmedqa(ORI_PQAL)} == {"pqal"}


def test_pubmedqa_ground_truth_must_agree(tmp_path: Path) -> None:
    truth = json.loads(GROUND_TRUTH.read_text())
    pmid = next(iter(truth))
    flipped = tmp_path / "flipped.json"
    flipped.write_text(json.dumps({pmid: "maybe" if truth[pmid] != "maybe" else "no"}))
    with pytest.raises(ValueError, match="disagrees"):
        load_pubmedqa(ORI_PQAL, flipped)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"1": "yes"}))
    with pytest.raises(ValueError, match="not in ori_pqal"):
        load_pubmedqa(ORI_PQAL, unknown)


def test_pubmedqa_without_ground_truth_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pubmedqa").mkdir()
    (tmp_path / "pubmedqa" / "ori_pqal.json").write_text(ORI_PQAL.read_text())
    loaded = load_benchmarks(tmp_path, ["pubmedqa"])
    assert loaded.counts == {"pubmedqa": 1000}
    assert loaded.missing == ["pubmedqa:test_ground_truth"]


def test_mmlu_subjects(loaded) -> None:
    mmlu = [i for i in loaded.items if i.benchmark == "mmlu_medical"]
    assert Counter(i.subject for i in mmlu) == MMLU_COUNTS
    assert {i.split for i in mmlu} == {"test"}
    path = ROOT / "mmlu_medical" / "anatomy_test.csv"
    items = load_mmlu(path)
    assert [i.item_id for i in items[:2]] == [
        "mmlu_medical:anatomy:test:0",
        "mmlu_medical:anatomy:test:1",
    ]
    assert items[1].question == 'A "dished face" profile is often associated with'
    assert items[0].options["D"] == (
        "paralysis of the facial muscles, loss of taste, lacrimation and decreased salivation."
    )
    assert items[0].answer == "A"
    assert all(i.answer in i.options and len(i.options) == 4 for i in items)


def test_mmlu_multiline_fields_and_shots(tmp_path: Path) -> None:
    directory = tmp_path / "mmlu_medical" / "data" / "dev"
    directory.mkdir(parents=True)
    (directory / "virology_dev.csv").write_text(
        '"Which virus:\nline two",HIV,"HPV, type 16",HBV,HCV,B\nSecond,a,b,c,d,D\n'
    )
    items = load_mmlu(directory / "virology_dev.csv")
    assert items[0].question == "Which virus:\nline two"
    assert items[0].options == {"A": "HIV", "B": "HPV, type 16", "C": "HBV", "D": "HCV"}
    assert [i.split for i in items] == ["dev", "dev"] and items[1].answer == "D"
    loaded = load_benchmarks(tmp_path, ["mmlu_medical"])
    # Shots alone do not make a subject present.
    assert loaded.counts == {"mmlu_medical": 2}
    assert loaded.missing == [f"mmlu_medical:{s}" for s in MMLU_MEDICAL_SUBJECTS]
    with pytest.raises(ValueError, match="not an MMLU-Medical subject"):
        load_mmlu(directory / "virology_dev.csv", subject="astronomy")
    (directory / "nutrition_dev.csv").write_text("q,a,b,c,d\n")
    with pytest.raises(ValueError, match="5 fields"):
        load_mmlu(directory / "nutrition_dev.csv")


def test_item_is_frozen_and_hashable(loaded) -> None:
    item = loaded.items[0]
    assert isinstance(item, BenchmarkItem)
    with pytest.raises(AttributeError):
        item.answer = "B"  # type: ignore[misc]
    assert len(set(loaded.items)) == len(loaded.items)


def _fake_datasets(monkeypatch, tables: dict[tuple[str, str | None, str], list[dict]]) -> list:
    calls: list = []

    def load_dataset(repo: str, config: str | None = None, split: str | None = None) -> list:
        calls.append((repo, config, split))
        return tables.get((repo, config, split), [])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_hub_loader_maps_hub_schemas(monkeypatch) -> None:
    medqa_row = json.loads(MEDQA_FILE.read_text().splitlines()[0])
    four = {**medqa_row, "options": {k: medqa_row["options"][k] for k in "ABCD"}}
    tables = {
        ("cais/mmlu", "anatomy", "test"): [
            {"question": "Q?", "subject": "anatomy", "choices": ["w", "x", "y", "z"], "answer": 2}
        ],
        ("openlifescienceai/medmcqa", None, "validation"): [{**MEDMCQA_ORIGINAL[1], "cop": 1}],
        ("qiaojin/PubMedQA", "pqa_labeled", "train"): [
            {
                "pubid": 21645374,
                "question": "Q?",
                "context": {"contexts": ["c1", "c2"], "labels": ["A", "B"]},
                "long_answer": "L",
                "final_decision": "maybe",
            }
        ],
        ("GBaker/MedQA-USMLE-4-options", None, "test"): [four],
        ("bigbio/med_qa", "med_qa_en_source", "test"): [
            {
                **medqa_row,
                "options": [{"key": k, "value": v} for k, v in medqa_row["options"].items()],
            }
        ],
    }
    calls = _fake_datasets(monkeypatch, tables)
    (mmlu,) = load_from_hub("mmlu_medical")
    assert (mmlu.item_id, mmlu.answer, mmlu.options["C"]) == (
        "mmlu_medical:anatomy:test:0",
        "C",
        "y",
    )
    assert len(calls) == len(MMLU_MEDICAL_SUBJECTS)
    (mcqa,) = load_from_hub("medmcqa", "validation")
    assert (mcqa.answer, mcqa.split) == ("B", "validation")  # 0-based cop on the hub
    (pqa,) = load_from_hub("pubmedqa")
    assert (pqa.pmid, pqa.context, pqa.answer, pqa.split) == (21645374, "c1\nc2", "maybe", "pqal")
    (medqa4,) = load_from_hub("medqa_4options")
    assert medqa4.benchmark == "medqa_4options" and medqa4.answer == medqa_row["answer_idx"]
    (medqa5,) = load_from_hub("medqa")
    assert medqa5.options == medqa_row["options"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_from_hub("usmle")
