# Databricks notebook source
# MAGIC %md
# MAGIC # Evaluation results
# MAGIC
# MAGIC Benchmark accuracy of every evaluation run (`eval/scores`, appended by
# MAGIC `gapreplay evaluate` or `python -m evaluate.lakehouse`), as a model × benchmark table,
# MAGIC and the items on which two runs disagree (`eval/predictions`).
# MAGIC
# MAGIC **Parameters**: `lakehouse`; `run_a` and `run_b`, the runs compared item by item
# MAGIC (defaults: the two latest runs).
# MAGIC
# MAGIC **Locally**: `python -m notebooks.run notebooks/06_evaluation_results.py`

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.errors import AnalysisException

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")

# Each Delta table becomes a view named <layer>_<table>, e.g. eval_scores.
present = []
for table in ["eval/scores", "eval/predictions"]:
    view = table.replace("/", "_")
    try:
        spark.read.format("delta").load(f"{LAKEHOUSE}/{table}").createOrReplaceTempView(view)
        present.append(table)
    except AnalysisException:
        spark.catalog.dropTempView(view)
if "eval/scores" not in present or spark.table("eval_scores").isEmpty():
    print(f"No evaluation runs yet: {LAKEHOUSE}/eval/scores has no rows.")
    print("Run `gapreplay evaluate --config FILE` with a lakehouse to add one.")
    dbutils.notebook.exit("no evaluation runs yet")


def literal(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# COMMAND ----------

# MAGIC %md
# MAGIC ## Evaluation runs

# COMMAND ----------

runs = spark.sql("""
    SELECT run_id, model, mode, shots, backend, prompt_format, max(n_seeds) AS seeds,
           count(DISTINCT benchmark) FILTER (WHERE benchmark != 'average') AS benchmarks,
           max(created_at) AS created_at, first(model_path) AS model_path
    FROM eval_scores
    GROUP BY run_id, model, mode, shots, backend, prompt_format
    ORDER BY created_at, run_id, mode""")
display(runs)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Accuracy: model × benchmark, by run
# MAGIC
# MAGIC Accuracy over the whole benchmark, averaged over few-shot seeds (the rows of
# MAGIC `eval/scores` with `subject` and `seed` null); `average` is the mean over benchmarks,
# MAGIC MediTron's avg column. An unparseable answer counts as wrong.

# COMMAND ----------

# Benchmarks as columns, by name, with the average last.
benchmarks = sorted(
    (r.benchmark for r in spark.sql("SELECT DISTINCT benchmark FROM eval_scores").collect()),
    key=lambda b: (b == "average", b),
)
columns = ", ".join(f"{literal(b)} AS `{b}`" for b in benchmarks)
accuracy = spark.sql(f"""
    SELECT * FROM (
        SELECT model, run_id, mode, shots, benchmark, round(accuracy, 4) AS accuracy,
               created_at
        FROM eval_scores WHERE subject IS NULL AND seed IS NULL)
    PIVOT (first(accuracy) FOR benchmark IN ({columns}))
    ORDER BY model, created_at, run_id, mode""")
display(accuracy.drop("created_at"))

# COMMAND ----------

scores = accuracy.toPandas()
fig, ax = plt.subplots(figsize=(9, 3.5))
width = 0.8 / max(len(scores), 1)
for i, row in scores.reset_index(drop=True).iterrows():
    label = f"{row.model} ({row.run_id[:8]}, {row['mode']})"
    ax.bar(
        [b + i * width for b in range(len(benchmarks))],
        [row[b] for b in benchmarks],
        width=width,
        label=label,
    )
ax.set_xticks([b + 0.4 - width / 2 for b in range(len(benchmarks))], benchmarks)
ax.set_ylabel("accuracy")
ax.set_ylim(0, 1)
ax.legend(fontsize=8)
ax.set_title("Accuracy per benchmark and run")
display(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Item-level disagreements between two runs
# MAGIC
# MAGIC Set `run_a` and `run_b`. Items are matched by benchmark, item id and seed. First the
# MAGIC counts per benchmark, then every item where the two runs answered differently.

# COMMAND ----------

latest_runs = [
    r.run_id
    for r in spark.sql("""
        SELECT run_id FROM eval_scores GROUP BY run_id
        ORDER BY max(created_at) DESC, run_id DESC LIMIT 2""").collect()
]
dbutils.widgets.text("run_a", latest_runs[-1], "Run A")
dbutils.widgets.text("run_b", latest_runs[0], "Run B")
RUN_A, RUN_B = dbutils.widgets.get("run_a").strip(), dbutils.widgets.get("run_b").strip()

if "eval/predictions" not in present:
    print("no eval/predictions table: nothing to compare item by item")
elif RUN_A == RUN_B:
    print(f"one evaluation run only ({RUN_A}): nothing to compare item by item")
else:
    spark.sql(f"""
        SELECT a.benchmark, a.item_id, a.seed, a.subject, a.gold,
               a.mode AS mode_a, b.mode AS mode_b,
               a.prediction AS prediction_a, b.prediction AS prediction_b,
               a.correct AS correct_a, b.correct AS correct_b
        FROM eval_predictions a
        JOIN eval_predictions b
          ON a.benchmark = b.benchmark AND a.item_id = b.item_id AND a.seed = b.seed
        WHERE a.run_id = {literal(RUN_A)} AND b.run_id = {literal(RUN_B)}
    """).createOrReplaceTempView("paired")
    display(
        spark.sql("""
            SELECT benchmark, count(*) AS items,
                   count_if(correct_a AND correct_b) AS both_correct,
                   count_if(correct_a AND NOT correct_b) AS only_a_correct,
                   count_if(NOT correct_a AND correct_b) AS only_b_correct,
                   count_if(NOT correct_a AND NOT correct_b) AS both_wrong,
                   count_if(NOT (prediction_a <=> prediction_b)) AS different_answers
            FROM paired GROUP BY benchmark ORDER BY benchmark""")
    )
    display(
        spark.sql("""
            SELECT * FROM paired
            WHERE NOT (prediction_a <=> prediction_b) OR correct_a != correct_b
            ORDER BY benchmark, item_id, seed""")
    )
