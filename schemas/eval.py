"""Eval: benchmark scores and per-item predictions of every evaluation run, appended so that
runs (models, checkpoints, modes, shots) can be compared in SQL (`eval_scores`,
`eval_predictions`)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructType,
    TimestampType,
)

from schemas.table_spec import TableSpec, col

MODES = ("top_token", "cot", "sc_cot")
_MODE_CHECK = "mode IN ({})".format(", ".join(f"'{m}'" for m in MODES))

SCORES = TableSpec(
    path="eval/scores",
    comment="Accuracy of each evaluation run per benchmark, MMLU subject, mode and few-shot seed,"
    " with the mean over seeds (seed null) and the mean over benchmarks (benchmark 'average')",
    keys=("run_id", "benchmark", "subject", "mode", "seed"),
    schema=StructType(
        [
            col("run_id", StringType(), "the evaluation run", nullable=False),
            col("model", StringType(), "model name (the training run's name)", nullable=False),
            col("model_path", StringType(), "the checkpoint directory evaluated", nullable=False),
            col(
                "benchmark",
                StringType(),
                "mmlu_medical, pubmedqa, medmcqa, medqa, medqa_4options, or 'average' (the mean"
                " of the benchmarks' accuracies, MediTron's avg column)",
                nullable=False,
            ),
            col("subject", StringType(), "MMLU subject; null for the whole benchmark"),
            col("mode", StringType(), "top_token, cot or sc_cot", nullable=False),
            col("shots", IntegerType(), "in-context examples per prompt", nullable=False),
            col(
                "shot_source",
                StringType(),
                "split the shots came from; 'test (set aside)' when drawn from the test items"
                " and excluded from scoring; null when shots is 0",
            ),
            col("seed", IntegerType(), "few-shot and sampling seed; null: mean over seeds"),
            col("n_seeds", IntegerType(), "seeds the row covers", nullable=False),
            col(
                "accuracy",
                DoubleType(),
                "correct / items, an unparseable answer counting as wrong; mean over seeds"
                " on seed-null rows",
                nullable=False,
            ),
            col("accuracy_std", DoubleType(), "population std of accuracy over seeds"),
            col(
                "n_items",
                IntegerType(),
                "items scored (on seed-null rows: summed over seeds)",
                nullable=False,
            ),
            col("n_correct", IntegerType(), "items answered correctly", nullable=False),
            col(
                "n_unparseable",
                IntegerType(),
                "items with no valid answer (CoT: no parseable answer; SC: no parseable sample)",
                nullable=False,
            ),
            col("unparseable_rate", DoubleType(), "n_unparseable / n_items", nullable=False),
            col("backend", StringType(), "transformers or vllm", nullable=False),
            col("prompt_format", StringType(), "plain or chatml", nullable=False),
            col("created_at", TimestampType(), "when the run finished (UTC)", nullable=False),
        ]
    ),
    constraints={
        "mode_known": _MODE_CHECK,
        "accuracy_range": "accuracy BETWEEN 0 AND 1",
        "unparseable_range": "unparseable_rate BETWEEN 0 AND 1",
        "counts_consistent": "n_correct + n_unparseable <= n_items",
    },
)

PREDICTIONS = TableSpec(
    path="eval/predictions",
    comment="One row per evaluation run, scored item, mode and seed: the answer given and the"
    " gold answer, joined by item id",
    keys=("run_id", "item_id", "mode", "seed"),
    schema=StructType(
        [
            col("run_id", StringType(), "the evaluation run", nullable=False),
            col("model", StringType(), "model name (the training run's name)", nullable=False),
            col("benchmark", StringType(), "benchmark of the item", nullable=False),
            col("subject", StringType(), "MMLU subject, MedMCQA subject or MedQA step"),
            col("item_id", StringType(), "benchmark item id (corpus.benchmarks)", nullable=False),
            col("mode", StringType(), "top_token, cot or sc_cot", nullable=False),
            col("shots", IntegerType(), "in-context examples in the prompt", nullable=False),
            col("seed", IntegerType(), "few-shot and sampling seed", nullable=False),
            col("prediction", StringType(), "option label answered; null when unparseable"),
            col("gold", StringType(), "gold option label", nullable=False),
            col("correct", BooleanType(), "prediction = gold", nullable=False),
            col("parseable", BooleanType(), "a valid option was answered", nullable=False),
            col(
                "option_logprobs",
                MapType(StringType(), DoubleType()),
                "top_token: log-probability of each option label after the prompt",
            ),
            col("n_samples", IntegerType(), "generations for the item (sc_cot: N)"),
            col("n_parseable_samples", IntegerType(), "generations with a parseable answer"),
            col("votes", MapType(StringType(), IntegerType()), "sc_cot: parseable answers' votes"),
            col("outputs", ArrayType(StringType()), "generated texts (cot, sc_cot)"),
            col("shot_ids", ArrayType(StringType()), "item ids of the in-context examples"),
            col("created_at", TimestampType(), "when the run finished (UTC)", nullable=False),
        ]
    ),
    constraints={
        "mode_known": _MODE_CHECK,
        "correct_needs_answer": "NOT correct OR parseable",
        "parseable_iff_prediction": "parseable = (prediction IS NOT NULL)",
    },
)
