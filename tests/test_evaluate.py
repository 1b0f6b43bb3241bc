"""The evaluation harness with scripted backends, on the real benchmark files in
../shared/fixtures/qa_benchmarks: configs, item counts, shots, prompts, answer parsing,
scoring, the self-consistency vote, the join by item id and the outputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import pytest

from corpus.benchmarks import load_benchmarks
from evaluate.backends import plan_options
from evaluate.config import ConfigError, EvalConfig, Mode, load_config, parse_config
from evaluate.harness import evaluate
from evaluate.items import SET_ASIDE, load_pools
from evaluate.parsing import majority_vote, parse_answer
from evaluate.prompts import ANSWER_CUE, build_prompt, format_question
from schemas.eval import MODES, PREDICTIONS, SCORES
from tests.conftest import FIXTURES, REPO

QA = FIXTURES / "qa_benchmarks"
MEDQA_FILE = QA / "medqa_usmle" / "US_test_5options.jsonl"
MEDMCQA_FILE = QA / "medmcqa" / "medmcqa_dev_1000.jsonl"
ORI_PQAL = QA / "pubmedqa" / "ori_pqal.json"
TRUTH = QA / "pubmedqa" / "test_ground_truth.json"
MMLU_DIR = QA / "mmlu_medical"
LETTERS = {"A": "Glipizide", "B": "Metformin", "C": "Metformin XR", "D": "Insulin", "E": "None"}
PUBMEDQA = {"yes": "yes", "no": "no", "maybe": "maybe"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mmlu_rows() -> dict[str, list[list[str]]]:
    """Each fixture subject's rows, read with the csv module (a row may span lines)."""
    out = {}
    for path in sorted(MMLU_DIR.glob("*_test.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            out[path.name.removesuffix("_test.csv")] = list(csv.reader(f))
    return out


class ScriptedBackend:
    """A backend whose answer for each prompt is `choose(prompt, index, options)`: the
    option label it "prefers" (top-token) or the text it "generates" (CoT)."""

    name = "scripted"

    def __init__(
        self,
        choose: Callable[[str, int, list[str]], str],
        samples: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self.choose = choose
        self.samples = samples
        self.calls: list[dict] = []

    def score_options(
        self, prompts: Sequence[str], options: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        self.calls.append({"kind": "score", "n_prompts": len(prompts)})
        out = []
        for i, (prompt, conts) in enumerate(zip(prompts, options, strict=True)):
            labels = [c.strip() for c in conts]
            pick = self.choose(prompt, i, labels)
            out.append([0.0 if label == pick else -5.0 - n for n, label in enumerate(labels)])
        return out

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        stop: Sequence[str],
    ) -> list[list[str]]:
        self.calls.append(
            {"kind": "generate", "n": n, "temperature": temperature, "seed": seed, "stop": stop}
        )
        assert self.samples is not None
        return [self.samples(p, i)[:n] for i, p in enumerate(prompts)]


def gold_lookup(root: Path) -> Callable[[str], str]:
    """The gold label of the item a prompt asks about, found from the prompt's last
    question block (the fake model "knows" every answer)."""
    table = {}
    for item in load_benchmarks(root).items:
        table[format_question(item) + "\n" + ANSWER_CUE] = item.answer

    def lookup(prompt: str) -> str:
        marker = "\nContext: " if "\nContext: " in prompt else "\nQuestion: "
        return table[prompt[prompt.rindex(marker) + 1 :]]

    return lookup


def _config(tmp_path: Path, **overrides) -> EvalConfig:  # type: ignore[no-untyped-def]
    settings = {
        "run_name": "test",
        "model": "checkpoints/fake/hf",
        "benchmarks_dir": str(QA),
        "modes": ["top_token"],
        "shots": 0,
        "output_dir": str(tmp_path / "out"),
    }
    return parse_config(settings | overrides)


# --- configuration ---------------------------------------------------------------------------


def test_default_model_is_what_make_pretrain_exports() -> None:
    from train.config import load_config as load_train_config

    tiny = load_train_config(REPO / "configs" / "pretrain_tiny.yaml")
    config = EvalConfig()
    assert config.model == tiny.hf_dir
    assert config.resolved_model_name == tiny.run_name == "tiny"


def test_shipped_configs_validate() -> None:
    sample = load_config(REPO / "configs" / "evaluate_sample.yaml")
    assert sample.model == Path("checkpoints/tiny/hf")
    assert sample.benchmarks_dir == Path("sample/benchmarks")
    real = load_config(REPO / "configs" / "evaluate_meditron.yaml")
    assert real.seeds == (1234, 432, 32)
    assert real.self_consistency.samples == 5 and real.self_consistency.temperature == 0.8
    assert set(real.modes) == {"top_token", "cot", "sc_cot"}
    assert real.resolved_model_name == "meditron-7b"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"shotz": 3}, "shotz"),
        ({"self_consistency": {"sample": 5}}, "self_consistency.sample"),
        ({"modes": ["top_token", "greedy"]}, "modes.1"),
        ({"mmlu_subjects": ["astrology"]}, "mmlu_subjects.0"),
        ({"seeds": []}, "(top level)"),
    ],
)
def test_config_errors_name_the_bad_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "x.yaml")
    assert f"x.yaml: {key}:" in str(info.value)


def test_command_line_model_renames_the_run() -> None:
    config = EvalConfig(model_name="old").updated(model="checkpoints/big/hf", model_name=None)
    assert config.model == Path("checkpoints/big/hf")
    assert config.resolved_model_name == "big"


def test_config_modes_are_the_tables_modes() -> None:
    assert set(get_args(Mode)) == set(MODES)


def test_tables_comment_every_column() -> None:
    for spec in (SCORES, PREDICTIONS):
        assert all(f.metadata.get("comment") for f in spec.schema.fields), spec.path
    scores = "run_id model benchmark subject mode shots seed accuracy n_items n_unparseable"
    predictions = "run_id model benchmark item_id mode shots seed prediction gold correct"
    assert {*scores.split(), "unparseable_rate", "created_at"} <= set(SCORES.columns)
    assert {*predictions.split(), "parseable"} <= set(PREDICTIONS.columns)


def test_harness_imports_neither_vllm_nor_spark() -> None:
    # vllm lives in its own environment, which need not have pyspark either.
    code = (
        "import sys, evaluate.harness, evaluate.vllm_backend, evaluate.lakehouse;"
        "print(sorted(m for m in ('vllm', 'pyspark', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- items and shots ---------------------------------------------------------------------------


def test_item_counts_match_the_files() -> None:
    pools, missing = load_pools(QA, ["mmlu_medical", "pubmedqa", "medmcqa", "medqa"], MMLU_ALL)
    assert pools["medqa"].available == len(_jsonl(MEDQA_FILE)) == 1273
    assert pools["medmcqa"].available == len(_jsonl(MEDMCQA_FILE)) == 1000
    truth = json.loads(TRUTH.read_text())
    assert pools["pubmedqa"].available == len(truth) == 500
    rows = _mmlu_rows()
    by_subject = Counter(i.subject for i in pools["mmlu_medical"].items)
    assert by_subject == {s: len(r) for s, r in rows.items()}
    # PubMedQA's shots: the PQA-L items outside the test split.
    train = set(json.loads(ORI_PQAL.read_text())) - set(truth)
    assert {i.pmid for i in pools["pubmedqa"].shot_pools[None]} == {int(p) for p in train}
    assert pools["pubmedqa"].shot_source(3) == "train"
    assert pools["medqa"].shot_source(3) == SET_ASIDE
    assert pools["medqa"].shot_source(0) is None
    assert set(missing) == {
        "mmlu_medical:virology",
        "mmlu_medical:high_school_biology",
        "mmlu_medical:nutrition",
    }


MMLU_ALL = (
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


def test_subset_is_seeded_and_stable() -> None:
    a, _ = load_pools(QA, ["medqa"], MMLU_ALL, max_items=50, subset_seed=7)
    b, _ = load_pools(QA, ["medqa"], MMLU_ALL, max_items=50, subset_seed=7)
    c, _ = load_pools(QA, ["medqa"], MMLU_ALL, max_items=50, subset_seed=8)
    ids = [i.item_id for i in a["medqa"].items]
    assert len(ids) == 50 and ids == [i.item_id for i in b["medqa"].items]
    assert ids != [i.item_id for i in c["medqa"].items]
    assert a["medqa"].available == 1273


def test_shots_set_aside_are_not_scored(tmp_path: Path) -> None:
    gold = gold_lookup(QA)
    backend = ScriptedBackend(lambda prompt, i, labels: gold(prompt))
    config = _config(
        tmp_path, benchmarks=["medqa", "pubmedqa", "mmlu_medical"], shots=3, seeds=[1234, 432]
    )
    result = evaluate(config, backend)
    n_mmlu = sum(len(r) for r in _mmlu_rows().values())
    for seed in (1234, 432):
        assert result.score("medqa", "top_token", seed=seed)["n_items"] == 1273 - 3
        assert result.score("mmlu_medical", "top_token", seed=seed)["n_items"] == n_mmlu - 3 * 6
        assert result.score("pubmedqa", "top_token", seed=seed)["n_items"] == 500
        preds = [p for p in result.predictions if p["seed"] == seed]
        scored = {p["item_id"] for p in preds}
        shots = {s for p in preds for s in p["shot_ids"]}
        assert not shots & scored
        medqa_shots = {tuple(p["shot_ids"]) for p in preds if p["benchmark"] == "medqa"}
        assert len(medqa_shots) == 1 and len(next(iter(medqa_shots))) == 3
        for p in preds:
            if p["benchmark"] == "mmlu_medical":  # MMLU shots come from the item's subject
                assert all(s.split(":")[1] == p["subject"] for s in p["shot_ids"])
            if p["benchmark"] == "pubmedqa":
                assert all(int(s.split(":")[1]) not in TRUTH_PMIDS for s in p["shot_ids"])
    medqa = [p for p in result.predictions if p["benchmark"] == "medqa"]
    by_seed = [
        {s for p in medqa if p["seed"] == seed for s in p["shot_ids"]} for seed in (1234, 432)
    ]
    assert by_seed[0] != by_seed[1]
    assert result.score("medqa", "top_token")["accuracy"] == 1.0
    assert "set aside as shots" in result.table


TRUTH_PMIDS = {int(p) for p in json.loads(TRUTH.read_text())}


def test_shots_come_from_outside_a_subset(tmp_path: Path) -> None:
    gold = gold_lookup(QA)
    backend = ScriptedBackend(lambda prompt, i, labels: gold(prompt))
    result = evaluate(_config(tmp_path, benchmarks=["medqa"], shots=3, max_items=40), backend)
    for seed in (1234, 432, 32):
        preds = [p for p in result.predictions if p["seed"] == seed]
        assert len(preds) == 40  # the subset is scored whole: shots come from the rest
        assert not {s for p in preds for s in p["shot_ids"]} & {p["item_id"] for p in preds}


# --- prompts -----------------------------------------------------------------------------------


def test_prompt_layout() -> None:
    items = load_benchmarks(REPO / "sample" / "benchmarks", ["medqa"]).items
    item, shot = items[0], items[1]
    prompt = build_prompt(item, [shot])
    assert prompt.startswith("You are a medical doctor answering real-world medical entrance")
    assert "Select one correct answer from A to E." in prompt
    assert f"Question: {shot.question}\n\nOptions:\nA. {shot.options['A']}" in prompt
    assert f"\nThe answer is: {shot.answer}\n\nQuestion: {item.question}" in prompt
    assert prompt.endswith(f"E. {item.options['E']}\nThe answer is:")
    chat = build_prompt(item, [shot], prompt_format="chatml")
    assert chat.startswith("<|im_start|>system\nYou are a medical doctor")
    assert chat.endswith("<|im_end|>\n<|im_start|>assistant\nThe answer is:")
    cot = build_prompt(item, cot=True)
    assert cot.endswith("\nAnswer:") and "Think step by step" in cot
    pubmed = load_benchmarks(REPO / "sample" / "benchmarks", ["pubmedqa"]).items[0]
    text = build_prompt(pubmed)
    assert "Answer yes, no, or maybe." in text and f"Context: {pubmed.context}" in text


def test_distinguishing_prefix() -> None:
    # A character-level "tokenizer": " maybe" and " may" share their first four tokens.
    def encode(text: str) -> list[int]:
        return [ord(c) for c in text]

    plans = plan_options(encode, "Q:", [" yes", " maybe", " may"])
    assert [p.targets for p in plans] == [
        (ord(" "), ord("y")),
        tuple(map(ord, " mayb")),
        tuple(map(ord, " may")),
    ]
    assert all(p.context == tuple(map(ord, "Q:")) for p in plans)


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("The answer is (C) Metformin", LETTERS, "C"),
        ("Let's think. Lactic acidosis follows metformin.\nThe answer is: B.", LETTERS, "B"),
        ("answer: maybe", PUBMEDQA, "maybe"),
        ("The answer is: Maybe. The data are mixed.", PUBMEDQA, "maybe"),
        ("So the final answer is no", PUBMEDQA, "no"),
        ("The answer is Metformin XR, because", LETTERS, "C"),
        ("The answer is: Insulin", LETTERS, "D"),
        ("Answer: **D**", LETTERS, "D"),
        ("The answer is option E.", LETTERS, "E"),
        ("The answer is not A. The answer is B", LETTERS, "B"),
        ("The answer is B. I am sure this answer is right.", LETTERS, "B"),
        ("C", LETTERS, "C"),
        ("(A)", LETTERS, "A"),
        ("B. Metformin", LETTERS, "B"),
        ("Glipizide", LETTERS, "A"),
        ("Yes.", PUBMEDQA, "yes"),
        # Not answers: MediTron's evaluator read the first character, so "answer" was "a".
        ("answer", LETTERS, None),
        ("The answer is a rare disease of the kidney.", LETTERS, None),
        ("A patient like this needs more tests.", LETTERS, None),
        ("asdf qwerty 123", LETTERS, None),
        ("", LETTERS, None),
        ("The answer is F", LETTERS, None),
        ("The answer is E", {k: LETTERS[k] for k in "ABCD"}, None),
        ("The answer is C", PUBMEDQA, None),
        ("yes and no", PUBMEDQA, None),
    ],
)
def test_parse_answer(text: str, options: dict[str, str], expected: str | None) -> None:
    assert parse_answer(text, options) == expected


def test_majority_vote_counts_parseable_answers_only() -> None:
    assert majority_vote([None, None, None, "B", "C", "B"]) == "B"
    assert majority_vote([None, None, "C"]) == "C"
    assert majority_vote([None, None]) is None
    assert majority_vote(["C", "B", "B", "C"]) == "C"  # a tie: the answer reached first


# --- scoring against known answers -------------------------------------------------------------


def test_gold_backend_scores_everything(tmp_path: Path) -> None:
    gold = gold_lookup(QA)
    backend = ScriptedBackend(lambda prompt, i, labels: gold(prompt))
    result = evaluate(_config(tmp_path), backend)
    for benchmark in ("mmlu_medical", "pubmedqa", "medmcqa", "medqa"):
        row = result.score(benchmark, "top_token")
        assert row["accuracy"] == 1.0 and row["n_unparseable"] == 0, benchmark
    assert result.score("average", "top_token")["accuracy"] == 1.0
    # PubMedQA's "maybe" items are scored, and scored correct.
    maybes = [p for p in result.predictions if p["gold"] == "maybe"]
    expected = Counter(json.loads(TRUTH.read_text()).values())["maybe"]
    assert len(maybes) == expected > 0 and all(p["correct"] for p in maybes)
    assert len(backend.calls) == 1  # zero shots, deterministic mode: one seed, one call


def test_always_a_scores_the_share_of_a(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda prompt, i, labels: labels[0])  # "A", or "yes"
    result = evaluate(_config(tmp_path, benchmarks=["medqa", "medmcqa", "mmlu_medical"]), backend)
    medqa = _jsonl(MEDQA_FILE)
    assert result.score("medqa", "top_token")["accuracy"] == pytest.approx(
        sum(r["answer_idx"] == "A" for r in medqa) / len(medqa), abs=1e-12
    )
    medmcqa = _jsonl(MEDMCQA_FILE)
    assert result.score("medmcqa", "top_token")["accuracy"] == pytest.approx(
        sum(r["answer_idx"] == "A" for r in medmcqa) / len(medmcqa), abs=1e-12
    )
    for subject, rows in _mmlu_rows().items():
        row = result.score("mmlu_medical", "top_token", subject=subject)
        assert row["n_items"] == len(rows)
        assert row["accuracy"] == pytest.approx(sum(r[5] == "A" for r in rows) / len(rows))


def test_always_maybe_scores_the_share_of_maybe(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda prompt, i, labels: "maybe")
    result = evaluate(_config(tmp_path, benchmarks=["pubmedqa"]), backend)
    truth = list(json.loads(TRUTH.read_text()).values())
    row = result.score("pubmedqa", "top_token")
    assert row["n_items"] == len(truth)
    assert row["accuracy"] == pytest.approx(truth.count("maybe") / len(truth), abs=1e-12)


def test_cot_and_self_consistency(tmp_path: Path) -> None:
    gold = gold_lookup(QA)

    def cot_gold(prompt: str) -> str:
        return gold(prompt.removesuffix("\nAnswer:").rstrip() + "\n" + ANSWER_CUE)

    def samples(prompt: str, i: int) -> list[str]:
        answer = cot_gold(prompt)
        if i % 4 == 3:  # every fourth item: nothing parseable at all
            return ["hmm", "I cannot say", "???", "answer", "The answer is a puzzle"]
        # Unparseable samples outnumber the gold votes: they must not vote.
        return ["no idea", "The answer is", "??", f"The answer is ({answer})", f"answer: {answer}"]

    backend = ScriptedBackend(lambda prompt, i, labels: labels[0], samples)
    config = _config(
        tmp_path,
        benchmarks=["medqa", "pubmedqa"],
        modes=["cot", "sc_cot"],
        max_items=40,
        self_consistency={"samples": 5, "temperature": 0.8, "max_tokens": 64},
    )
    result = evaluate(config, backend)
    sc = [p for p in result.predictions if p["mode"] == "sc_cot"]
    assert len(sc) == 80 * 3  # 40 items each, three seeds (sampling differs by seed)
    for p in sc:
        if p["parseable"]:
            assert p["correct"] and p["n_parseable_samples"] == 2
            assert p["votes"] == {p["gold"]: 2}
        else:
            assert p["n_parseable_samples"] == 0 and p["votes"] == {}
    row = result.score("medqa", "sc_cot")
    assert row["unparseable_rate"] == pytest.approx(10 / 40)
    assert row["accuracy"] == pytest.approx(30 / 40)
    cot = [p for p in result.predictions if p["mode"] == "cot"]
    assert {p["seed"] for p in cot} == {1234}  # greedy and zero-shot: one seed
    assert result.score("medqa", "cot")["unparseable_rate"] == 1.0  # "no idea" for all
    generate = [c for c in backend.calls if c["kind"] == "generate"]
    assert generate[0]["temperature"] == 0.0 and generate[0]["n"] == 1
    assert [c["seed"] for c in generate[1:]] == [1234, 432, 32]
    assert all(c["n"] == 5 and c["temperature"] == 0.8 for c in generate[1:])
    assert "\nQuestion:" in generate[0]["stop"]


def test_predictions_are_joined_by_item_id(tmp_path: Path) -> None:
    """Two items with the same prompt and different answers: each answer reaches its own
    item (a join on prompt text, as MediTron's, gives both the same answer)."""
    root = tmp_path / "bench"
    (root / "medqa_usmle").mkdir(parents=True)
    row = {"question": "Same question?", "options": dict(zip("ABCDE", "vwxyz", strict=True))}
    rows = [row | {"answer_idx": "A"}, row | {"answer_idx": "B"}, row | {"answer_idx": "C"}]
    text = "".join(json.dumps(r | {"answer": "", "meta_info": "step1"}) + "\n" for r in rows)
    (root / "medqa_usmle" / "US_test_same.jsonl").write_text(text)
    # The i-th prompt of a call gets the i-th letter: right only if results follow item ids.
    backend = ScriptedBackend(
        lambda prompt, i, labels: labels[i],
        samples=lambda prompt, i: [f"The answer is {'ABC'[i]}"],
    )
    modes = ["top_token", "cot"]
    config = _config(tmp_path, benchmarks_dir=str(root), benchmarks=["medqa"], modes=modes)
    result = evaluate(config, backend)
    assert result.score("medqa", "top_token")["accuracy"] == 1.0
    assert result.score("medqa", "cot")["accuracy"] == 1.0
    lines = (config.run_dir / "predictions.jsonl").read_text().splitlines()
    by_id = {}
    for line in lines:
        record = json.loads(line)
        by_id[(record["item_id"], record["mode"])] = record
    assert len(by_id) == len(lines) == 6
    assert sorted(r["prediction"] for r in by_id.values() if r["mode"] == "cot") == ["A", "B", "C"]
    for record in by_id.values():
        assert record["prediction"] == record["gold"]


def test_outputs(tmp_path: Path) -> None:
    gold = gold_lookup(QA)
    backend = ScriptedBackend(lambda prompt, i, labels: gold(prompt) if i % 2 else labels[0])
    config = _config(tmp_path, shots=1, seeds=[1234, 432], max_items=20)
    result = evaluate(config, backend)
    table = (config.run_dir / "results.md").read_text()
    assert table == result.table
    header = "| Mode | MMLU-Med | PubMedQA | MedMCQA | MedQA | MedQA-4 | Avg |"
    assert header in table
    top = next(line for line in table.splitlines() if line.startswith("| top-token |"))
    cells = [c.strip() for c in top.strip("|").split("|")]
    assert cells[5] == "–"  # MedQA-4: no local copy
    means = {r["benchmark"]: r for r in result.scores if r["seed"] is None and not r["subject"]}
    for n, benchmark in enumerate(["mmlu_medical", "pubmedqa", "medmcqa", "medqa"], start=1):
        assert cells[n] == f"{100 * means[benchmark]['accuracy']:.1f}"
    present = [means[b]["accuracy"] for b in ["mmlu_medical", "pubmedqa", "medmcqa", "medqa"]]
    assert means["average"]["accuracy"] == pytest.approx(sum(present) / 4)
    assert cells[6] == f"{100 * means['average']['accuracy']:.1f}"
    assert "MedQA-4" in table.split("Notes:")[1]
    summary = json.loads((config.run_dir / "results.json").read_text())
    assert summary["run_id"] == result.run_id
    assert summary["items"]["medqa"] == {"subset": 20, "available": 1273, "shot_source": SET_ASIDE}
    assert len(summary["scores"]) == len(result.scores)
    per_seed = [r for r in result.scores if r["seed"] is not None and r["benchmark"] == "medqa"]
    mean = means["medqa"]
    assert mean["accuracy"] == pytest.approx(sum(r["accuracy"] for r in per_seed) / 2)
    assert mean["n_items"] == sum(r["n_items"] for r in per_seed) == 40
    lines = (config.run_dir / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(result.predictions) == 2 * (20 * 4)
