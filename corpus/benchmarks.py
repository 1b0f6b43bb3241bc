"""The evaluation benchmarks (MedQA, MedMCQA, PubMedQA, MMLU-Medical) read from local files in
their original formats into one item type, shared by decontamination and evaluation.

Formats read:

- MedQA-USMLE (jind11/MedQA): JSON Lines `{"question", "answer", "options": {"A": ..},
  "meta_info", "answer_idx"}`. A row with five options belongs to "medqa", one with four to
  "medqa_4options" (the upstream `4_options/` files); other counts are errors.
- MedMCQA: JSON Lines (or a JSON array) in the original schema `{"id", "question", "opa",
  "opb", "opc", "opd", "cop", "choice_type", "exp", "subject_name", "topic_name"}`, where
  `cop` counts from 1 in the GitHub release and from 0 in the Hugging Face copy (and is -1
  on the unlabelled test split), or in the re-keyed schema `{"question", "realidx",
  "options": {"A".."D"}, "answer_idx", "answer"}`.
- PubMedQA PQA-L: `ori_pqal.json` (`{pmid: {"QUESTION", "CONTEXTS", "LABELS",
  "final_decision", "LONG_ANSWER", ..}}`) and `test_ground_truth.json` (`{pmid: decision}`),
  whose PMIDs are the 500-item test split; the other 500 items are "train".
- MMLU: headerless CSV `question,A,B,C,D,answer` named `<subject>_<test|dev|val>.csv`.

Item ids are stable across runs and machines, and carry their benchmark:
"medqa:test:41:1f0c9e2a" (record index in the file and the first 8 hex digits of the
question's BLAKE2b, so an edited or reordered file cannot reuse an id silently),
"medmcqa:<id or realidx>", "pubmedqa:<pmid>", "mmlu_medical:<subject>:<split>:<row index>".
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MEDQA = "medqa"
MEDQA_4OPTIONS = "medqa_4options"
MEDMCQA = "medmcqa"
PUBMEDQA = "pubmedqa"
MMLU_MEDICAL = "mmlu_medical"
BENCHMARKS = (MEDQA, MEDQA_4OPTIONS, MEDMCQA, PUBMEDQA, MMLU_MEDICAL)
MMLU_MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
    "virology",
    "high_school_biology",
    "nutrition",
)
MMLU_SPLITS = ("test", "dev", "val")
# The splits a model is scored on. MedMCQA publishes no test answers, so its dev split is
# the one reported; its test questions are unlabelled but still text a model must not see.
EVALUATION_SPLITS = {
    MEDQA: ("test",),
    MEDQA_4OPTIONS: ("test",),
    MEDMCQA: ("dev", "validation", "test"),
    PUBMEDQA: ("test",),
    MMLU_MEDICAL: ("test",),
}
PUBMEDQA_DECISIONS = ("yes", "no", "maybe")
# PubMedQA's options are its three decisions, keyed by themselves: `answer in options` holds
# for every benchmark, and "maybe" is a valid answer (the published evaluator rejected it).
PUBMEDQA_OPTIONS = {d: d for d in PUBMEDQA_DECISIONS}
# Sub-directories of a benchmark root laid out like shared/fixtures/qa_benchmarks.
ROOT_DIRS = {
    MEDQA: "medqa_usmle",
    MEDQA_4OPTIONS: "medqa_usmle",
    MEDMCQA: "medmcqa",
    PUBMEDQA: "pubmedqa",
    MMLU_MEDICAL: "mmlu_medical",
}
_MEDQA_BY_OPTIONS = {5: MEDQA, 4: MEDQA_4OPTIONS}
_MEDMCQA_FIELDS = ("opa", "opb", "opc", "opd")
_LETTERS = "ABCDE"
_SPLIT_WORD = re.compile(r"(?:^|[^a-z])(train|dev|val|valid|validation|test)(?:[^a-z]|$)")
_MMLU_NAME = re.compile(r"^(?P<subject>[a-z_]+)_(?P<split>test|dev|val)$")


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark question.

    `options` maps answer labels to their text: letters for the multiple-choice benchmarks,
    PUBMEDQA_OPTIONS for PubMedQA. `answer` is the gold label (a key of `options`), or ""
    where the split publishes none (MedMCQA test). `subject` is the MMLU subject, MedMCQA's
    `subject_name` or MedQA's `meta_info` ("step1", "step2&3"). `context` is PubMedQA's abstract
    paragraphs joined by newlines and `long_answer` its conclusion; both are None elsewhere.
    """

    benchmark: str
    item_id: str
    subject: str | None
    split: str
    question: str
    options: dict[str, str] = field(hash=False)
    answer: str
    context: str | None = None
    pmid: int | None = None
    long_answer: str | None = None


@dataclass(frozen=True)
class BenchmarkSet:
    """Items found under a root; `missing` names each benchmark, MMLU subject
    ("mmlu_medical:virology") or PubMedQA test split ("pubmedqa:test_ground_truth") that was
    asked for and not found; `counts` is items per benchmark asked for."""

    items: list[BenchmarkItem]
    missing: list[str]
    counts: dict[str, int]


def load_benchmarks(root: Path, benchmarks: Iterable[str] | None = None) -> BenchmarkSet:
    """Every benchmark file under `root` (sub-directories as in ROOT_DIRS, searched
    recursively); what is absent is logged as a warning and listed in `missing`."""
    root = Path(root)
    wanted = list(BENCHMARKS if benchmarks is None else benchmarks)
    if unknown := sorted(set(wanted) - set(BENCHMARKS)):
        raise ValueError(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")
    items: list[BenchmarkItem] = []
    missing: list[str] = []
    if MEDQA in wanted or MEDQA_4OPTIONS in wanted:
        for path in _files(root / ROOT_DIRS[MEDQA], "*.jsonl"):
            items.extend(i for i in load_medqa(path) if i.benchmark in wanted)
    if MEDMCQA in wanted:
        for path in _files(root / ROOT_DIRS[MEDMCQA], "*.json", "*.jsonl"):
            items.extend(load_medmcqa(path))
    if PUBMEDQA in wanted:
        pubmedqa_dir = root / ROOT_DIRS[PUBMEDQA]
        ori = _files(pubmedqa_dir, "ori_pqal.json")
        truth = _files(pubmedqa_dir, "test_ground_truth.json")
        if ori:
            items.extend(load_pubmedqa(ori[0], truth[0] if truth else None))
            if not truth:
                missing.append(f"{PUBMEDQA}:test_ground_truth")
    if MMLU_MEDICAL in wanted:
        mmlu_dir = root / ROOT_DIRS[MMLU_MEDICAL]
        for subject in MMLU_MEDICAL_SUBJECTS:
            for split in MMLU_SPLITS:
                for path in _files(mmlu_dir, f"{subject}_{split}.csv"):
                    items.extend(load_mmlu(path, subject, split))
    items = _unique(items)
    counts = {b: 0 for b in wanted}
    subjects = set()
    for item in items:
        counts[item.benchmark] += 1
        if item.benchmark == MMLU_MEDICAL and item.split == "test":
            subjects.add(item.subject)
    missing.extend(b for b in wanted if counts[b] == 0)
    if MMLU_MEDICAL in wanted and counts[MMLU_MEDICAL]:
        # Shots (dev/val) alone do not make a subject present: its test file is the benchmark.
        missing.extend(f"{MMLU_MEDICAL}:{s}" for s in MMLU_MEDICAL_SUBJECTS if s not in subjects)
    for name in missing:
        log.warning("benchmark %s not found under %s", name, root)
    return BenchmarkSet(items, missing, counts)


def load_medqa(path: Path, split: str | None = None) -> list[BenchmarkItem]:
    """One MedQA-USMLE JSON Lines file (5- or 4-option rows)."""
    split = split or _split_from_name(path)
    return [_medqa_item(row, i, split) for i, row in enumerate(_json_records(path))]


def load_medmcqa(
    path: Path, split: str | None = None, cop_base: int | None = None
) -> list[BenchmarkItem]:
    """One MedMCQA file in either schema. `cop_base` (0 or 1) is where the original
    schema's `cop` counts from; None infers it from the file (a 0 or a 4 decides) and
    raises when the file cannot tell."""
    split = split or _split_from_name(path)
    rows = list(_json_records(path))
    if cop_base is None:
        original = [r["cop"] for r in rows if "opa" in r]
        # The re-keyed schema has letters: the base only matters for original rows.
        cop_base = _infer_cop_base(original) if original else 0
    return [_medmcqa_item(row, split, cop_base) for row in rows]


def load_pubmedqa(ori_pqal: Path, test_ground_truth: Path | None = None) -> list[BenchmarkItem]:
    """PQA-L items; with `test_ground_truth`, its PMIDs are split "test" and the others
    "train", without it every item is split "pqal". A ground-truth PMID absent from
    `ori_pqal`, or a decision that disagrees with it, is an error."""
    records = _read_json(ori_pqal)
    truth = None if test_ground_truth is None else _read_json(test_ground_truth)
    return _pubmedqa_items(records, truth)


def load_mmlu(
    path: Path, subject: str | None = None, split: str | None = None
) -> list[BenchmarkItem]:
    """One MMLU-Medical subject file; subject and split default to those of its name."""
    if subject is None or split is None:
        named = _MMLU_NAME.match(Path(path).stem)
        if named is None:
            raise ValueError(f"{path}: not named <subject>_<test|dev|val>.csv")
        subject, split = subject or named["subject"], split or named["split"]
    if subject not in MMLU_MEDICAL_SUBJECTS:
        raise ValueError(f"{path}: {subject!r} is not an MMLU-Medical subject")
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    items = []
    for i, row in enumerate(rows):
        if len(row) != 6:
            raise ValueError(f"{path}: row {i} has {len(row)} fields, not 6")
        items.append(_mmlu_item(subject, split, i, row[0], row[1:5], row[5]))
    return items


def _medqa_item(row: Mapping[str, Any], index: int, split: str) -> BenchmarkItem:
    options = row["options"]
    if isinstance(options, list):  # the bigbio copy on the hub: [{"key": "A", "value": ..}]
        options = {o["key"]: o["value"] for o in options}
    benchmark = _MEDQA_BY_OPTIONS.get(len(options))
    if benchmark is None or sorted(options) != list(_LETTERS[: len(options)]):
        raise ValueError(f"MedQA record {index}: options {sorted(options)} are not A-D or A-E")
    if row["answer_idx"] not in options:
        raise ValueError(f"MedQA record {index}: answer_idx {row['answer_idx']!r} not an option")
    question = row["question"]
    digest = hashlib.blake2b(question.encode(), digest_size=4).hexdigest()
    return BenchmarkItem(
        benchmark=benchmark,
        item_id=f"{benchmark}:{split}:{index}:{digest}",
        subject=row.get("meta_info"),
        split=split,
        question=question,
        options=dict(options),
        answer=row["answer_idx"],
    )


def _medmcqa_item(row: Mapping[str, Any], split: str, cop_base: int) -> BenchmarkItem:
    if "opa" in row:
        options = {letter: row[f] for letter, f in zip(_LETTERS[:4], _MEDMCQA_FIELDS, strict=True)}
        cop = row.get("cop")
        if cop is None or cop < 0:  # -1 or null: the unlabelled test split
            answer = ""
        elif 0 <= cop - cop_base < 4:
            answer = _LETTERS[cop - cop_base]
        else:
            raise ValueError(f"MedMCQA {row['id']}: cop {cop} with cop_base {cop_base}")
        item_id, subject = row["id"], row.get("subject_name")
    else:
        options, answer = dict(row["options"]), row.get("answer_idx") or ""
        item_id, subject = row["realidx"], None
    if sorted(options) != list(_LETTERS[:4]) or (answer and answer not in options):
        raise ValueError(f"MedMCQA {item_id}: options {sorted(options)}, answer {answer!r}")
    return BenchmarkItem(
        benchmark=MEDMCQA,
        item_id=f"{MEDMCQA}:{item_id}",
        subject=subject,
        split=split,
        question=row["question"],
        options=options,
        answer=answer,
    )


def _infer_cop_base(cops: Iterable[int | None]) -> int:
    seen = {c for c in cops if c is not None and c >= 0}
    if not seen <= {0, 1, 2, 3, 4} or {0, 4} <= seen:
        raise ValueError(f"MedMCQA cop values {sorted(seen)} fit neither 0-3 nor 1-4")
    if 0 in seen:
        return 0
    if 4 in seen:
        return 1
    raise ValueError("MedMCQA cop values are all in 1-3: pass cop_base=0 or cop_base=1")


def _pubmedqa_items(
    records: Mapping[str, Mapping[str, Any]], truth: Mapping[str, str] | None
) -> list[BenchmarkItem]:
    if truth is not None:
        if absent := sorted(set(truth) - set(records)):
            raise ValueError(f"PubMedQA ground truth PMIDs not in ori_pqal: {absent[:5]}")
        if wrong := [p for p, d in truth.items() if records[p]["final_decision"] != d]:
            raise ValueError(f"PubMedQA ground truth disagrees with ori_pqal for {wrong[:5]}")
    items = []
    for pmid, rec in records.items():
        decision = rec["final_decision"]
        if decision not in PUBMEDQA_OPTIONS:
            raise ValueError(f"PubMedQA {pmid}: final_decision {decision!r}")
        split = "pqal" if truth is None else "test" if pmid in truth else "train"
        items.append(
            BenchmarkItem(
                benchmark=PUBMEDQA,
                item_id=f"{PUBMEDQA}:{int(pmid)}",
                subject=None,
                split=split,
                question=rec["QUESTION"],
                options=dict(PUBMEDQA_OPTIONS),
                answer=decision,
                context="\n".join(rec["CONTEXTS"]),
                pmid=int(pmid),
                long_answer=rec.get("LONG_ANSWER"),
            )
        )
    return items


def _mmlu_item(
    subject: str, split: str, index: int, question: str, choices: list[str], answer: str
) -> BenchmarkItem:
    if answer not in _LETTERS[:4]:
        raise ValueError(f"MMLU {subject}_{split} row {index}: answer {answer!r}")
    return BenchmarkItem(
        benchmark=MMLU_MEDICAL,
        item_id=f"{MMLU_MEDICAL}:{subject}:{split}:{index}",
        subject=subject,
        split=split,
        question=question,
        options=dict(zip(_LETTERS[:4], choices, strict=True)),
        answer=answer,
    )


def _files(directory: Path, *patterns: str) -> list[Path]:
    return sorted({p for pattern in patterns for p in directory.rglob(pattern) if p.is_file()})


def _split_from_name(path: Path) -> str:
    found = _SPLIT_WORD.search(Path(path).stem.lower())
    if found is None:
        raise ValueError(f"{path}: no split (train/dev/val/test) in the name; pass split=")
    return found[1]


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8-sig") as f:
        return json.load(f)


def _json_records(path: Path) -> Iterator[dict[str, Any]]:
    """A JSON array or JSON Lines (blank lines skipped)."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {n}: {exc}") from exc


def _unique(items: list[BenchmarkItem]) -> list[BenchmarkItem]:
    """First item per id: the same questions in two files (a full split next to a subset)
    would otherwise be counted, evaluated and indexed twice."""
    seen: dict[str, BenchmarkItem] = {}
    for item in items:
        seen.setdefault(item.item_id, item)
    if dropped := len(items) - len(seen):
        log.warning("%d benchmark items repeat an earlier item id and were dropped", dropped)
    return list(seen.values())


# --- Hugging Face hub (optional: needs `datasets` and network access) -------------------------

HUB_SOURCES = {
    MEDQA: ("bigbio/med_qa", "med_qa_en_source"),
    MEDQA_4OPTIONS: ("GBaker/MedQA-USMLE-4-options", None),
    MEDMCQA: ("openlifescienceai/medmcqa", None),
    PUBMEDQA: ("qiaojin/PubMedQA", "pqa_labeled"),
    MMLU_MEDICAL: ("cais/mmlu", None),  # one config per subject
}


def load_from_hub(name: str, split: str = "test") -> list[BenchmarkItem]:
    """One benchmark split from its Hugging Face copy (HUB_SOURCES), as BenchmarkItems.

    Hub split names are kept ("validation" for MedMCQA and MMLU). PubMedQA's hub copy has
    the 1,000 PQA-L items as one "train" split and no test list: they come back as split
    "pqal" whatever `split` says; use load_pubmedqa with test_ground_truth.json for the test
    split. `datasets` is imported here only, so the rest of the module does not need it.
    """
    if name not in HUB_SOURCES:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(HUB_SOURCES)}")
    from datasets import load_dataset

    repo, config = HUB_SOURCES[name]
    if name == MMLU_MEDICAL:
        items = []
        for subject in MMLU_MEDICAL_SUBJECTS:
            for i, row in enumerate(load_dataset(repo, subject, split=split)):
                answer = _LETTERS[row["answer"]]
                items.append(_mmlu_item(subject, split, i, row["question"], row["choices"], answer))
        return items
    if name == PUBMEDQA:
        rows = load_dataset(repo, config, split="train")
        records = {
            str(r["pubid"]): {
                "QUESTION": r["question"],
                "CONTEXTS": r["context"]["contexts"],
                "final_decision": r["final_decision"],
                "LONG_ANSWER": r["long_answer"],
            }
            for r in rows
        }
        return _pubmedqa_items(records, None)
    rows = load_dataset(repo, config, split=split)
    if name == MEDMCQA:
        return [_medmcqa_item(row, split, cop_base=0) for row in rows]  # a 0-3 ClassLabel
    return [
        i for i in (_medqa_item(r, n, split) for n, r in enumerate(rows)) if i.benchmark == name
    ]
