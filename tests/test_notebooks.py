"""The auditors' notebooks (notebooks/*.py): Databricks source format, and run end to end
on the sample build they show its real numbers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from notebooks._local import (
    Display,
    LocalDBUtils,
    NotebookExit,
    WidgetNotDefinedError,
    Widgets,
    widget_env_name,
)
from notebooks.run import HEADER, SEPARATOR, main, notebooks, parse_notebook, run_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = [
    "01_corpus_overview.py",
    "02_filter_audit.py",
    "03_dedup_audit.py",
    "04_lineage.py",
    "05_build_comparison.py",
    "06_evaluation_results.py",
]
SOURCES = ["pubmed", "pmc", "guidelines", "replay"]


def run(name: str, root, spark, tmp_path: Path, **params: str) -> dict:
    return run_notebook(
        NOTEBOOKS / name,
        params,
        str(root),
        spark=spark,
        out_dir=str(tmp_path / "figures"),
        echo=False,
    )


def tables(result: dict, section: str) -> list[pd.DataFrame]:
    assert section in result["sections"], list(result["sections"])
    return [v for v in result["sections"][section] if isinstance(v, pd.DataFrame)]


def delta(spark, root, table: str):
    return spark.read.format("delta").load(f"{root}/{table}")


# -- format and the local shim, no Spark --------------------------------------------------


def test_every_notebook_is_in_databricks_source_format():
    assert [p.name for p in notebooks()] == EXPECTED
    for name in EXPECTED:
        text = (NOTEBOOKS / name).read_text(encoding="utf-8")
        lines = text.splitlines()
        assert lines[0] == HEADER, name
        assert lines.count(SEPARATOR) >= 3, name
        # Databricks writes the separator between blank lines.
        for i, line in enumerate(lines):
            if line == SEPARATOR:
                assert lines[i - 1] == "" and lines[i + 1] == "", (name, i + 1)
        cells = parse_notebook(text)
        assert cells[0].kind == "markdown" and cells[0].heading, name
        # A markdown cell is all `# MAGIC` lines; no other magic (%sql, %sh) is used.
        assert {c.kind for c in cells} == {"markdown", "python"}, name
        # The first code cell gets spark/display/dbutils from the shim only off Databricks.
        setup = next(c for c in cells if c.kind == "python").source
        assert 'if "dbutils" not in globals():' in setup, name
        assert "from notebooks._local import dbutils, display, spark" in setup, name
        assert 'dbutils.widgets.text("lakehouse", "./lakehouse"' in setup, name


def test_parse_notebook_splits_cells_and_finds_headings():
    cells = parse_notebook(
        f"{HEADER}\n# MAGIC %md\n# MAGIC # Title\n# MAGIC text\n\n{SEPARATOR}\n\nx = 1\n\n"
        f"{SEPARATOR}\n\n# MAGIC %sql\n# MAGIC SELECT 1\n"
    )
    assert [(c.kind, c.heading) for c in cells] == [
        ("markdown", "Title"),
        ("python", ""),
        ("magic", ""),
    ]
    assert cells[1].first_line == 7 and cells[1].source.strip() == "x = 1"
    with pytest.raises(ValueError, match="Databricks"):
        parse_notebook("x = 1\n")


def test_widgets_take_params_then_environment_then_default(tmp_path):
    env = {widget_env_name("doc_id"): "from-env", "GAPREPLAY_LAKEHOUSE": "lh"}
    widgets = Widgets({"seq": "7"}, environ=env)
    widgets.text("seq", "0")
    widgets.text("doc_id", "default-doc")
    widgets.text("prefix", "default-prefix")
    widgets.text("lakehouse", "./lakehouse")
    assert widget_env_name("doc_id") == "GAPREPLAY_NB_DOC_ID"
    assert widgets.get("seq") == "7"
    assert widgets.get("doc_id") == "from-env"
    assert widgets.get("prefix") == "default-prefix"
    assert widgets.get("lakehouse") == str(Path("lh").resolve())
    with pytest.raises(WidgetNotDefinedError):
        widgets.get("never_created")
    widgets.dropdown("table", "gold/corpus", ["silver/documents", "gold/corpus"])
    assert widgets.get("table") == "gold/corpus"
    other = Widgets({"table": "bronze/x"}, environ={})
    other.dropdown("table", "a", ["a", "b"])
    with pytest.raises(ValueError, match="not one of"):
        other.get("table")
    remote = Widgets({"lakehouse": "dbfs:/mnt/lh"}, environ={})
    remote.text("lakehouse", "./lakehouse")
    assert remote.get("lakehouse") == "dbfs:/mnt/lh"
    with pytest.raises(NotebookExit, match="done"):
        LocalDBUtils().notebook.exit("done")


def test_display_keeps_tables_and_saves_figures(tmp_path, capsys):
    import matplotlib.pyplot as plt

    display = Display(out_dir=str(tmp_path))
    display(pd.DataFrame({"a": [1, 2]}))
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    display(fig)
    display("hello")
    kinds = [d.kind for d in display.items]
    assert kinds == ["table", "figure", "text"]
    assert Path(display.items[1].value).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "figure saved to" in out and "hello" in out


def test_runner_runs_cells_in_order_and_reports_sections(tmp_path):
    # A notebook that needs no Spark: the runner's own mechanics.
    path = tmp_path / "nb.py"
    path.write_text(
        f"{HEADER}\n# MAGIC %md\n# MAGIC # Intro\n\n{SEPARATOR}\n\n"
        'dbutils.widgets.text("n", "2")\nN = int(dbutils.widgets.get("n"))\n\n'
        f"{SEPARATOR}\n\n# MAGIC %md\n# MAGIC ## Numbers\n\n{SEPARATOR}\n\n"
        "import pandas as pd\n\ndisplay(pd.DataFrame({'x': range(N)}))\nprint('shown')\n\n"
        f"{SEPARATOR}\n\n"
        'dbutils.notebook.exit("stopped")\n\n'
        f"{SEPARATOR}\n\n"
        "raise AssertionError('never reached')\n"
    )
    result = run_notebook(path, {"n": "3"}, spark=object(), echo=False)
    (table,) = result["sections"]["Numbers"]
    assert list(table.x) == [0, 1, 2]
    assert result["exit"] == "stopped"
    assert "shown" in result["stdout"]
    assert result["params"] == {"n": "3"}

    broken = tmp_path / "broken.py"
    broken.write_text(f"{HEADER}\nx = 1\n\n{SEPARATOR}\n\ny = 1 / 0\n")
    from notebooks.run import NotebookError

    with pytest.raises(NotebookError, match=r"cell 1 \(line 5\) failed: ZeroDivisionError"):
        run_notebook(broken, spark=object(), echo=False)


# -- the notebooks on the sample build ----------------------------------------------------


def test_corpus_overview_shows_the_counts_of_every_layer(spark, sample_build, tmp_path):
    root = sample_build.root
    result = run("01_corpus_overview.py", root, spark, tmp_path)
    (stages,) = tables(result, "Documents per source per stage")
    shown = stages.set_index("stage")

    def row(stage: str) -> dict[str, int]:
        return {s: int(v) for s, v in shown.loc[stage, SOURCES].items() if pd.notna(v)}

    bronze = {s: delta(spark, root, f"bronze/{s}").count() for s in SOURCES}
    assert row("bronze") == bronze
    assert shown.loc["bronze", "total"] == sum(bronze.values())
    decisions = delta(spark, root, "silver/decisions")
    for r in decisions.groupBy("stage").count().collect():
        kept = {
            k.source: k["count"]
            for k in decisions.filter(f"stage = '{r.stage}' AND kept")
            .groupBy("source")
            .count()
            .collect()
        }
        assert row(r.stage) == kept, r.stage
    gold = {
        r.source: r["count"]
        for r in delta(spark, root, "gold/corpus").groupBy("source").count().collect()
    }
    assert gold and row("gold/corpus") == gold
    silver = delta(spark, root, "silver/documents").groupBy("source").count().collect()
    assert row("silver/documents") == {r.source: r["count"] for r in silver}
    # The stage order: bronze first, each decision stage, then the tables.
    order = list(shown.index)
    assert order[0] == "bronze" and order[-3:] == ["silver/documents", "gold/corpus", "gold/shards"]
    assert order.index("clean") < order.index("near_dedup") < order.index("decontamination")

    tokens, by_split = tables(result, "Tokens per source")
    gold_tokens = {
        r.source: r.t
        for r in delta(spark, root, "gold/corpus")
        .groupBy("source")
        .agg({"n_tokens": "sum"})
        .withColumnRenamed("sum(n_tokens)", "t")
        .collect()
    }
    assert dict(zip(tokens.source, tokens.tokens, strict=True)) == gold_tokens
    assert dict(zip(tokens.source, tokens.documents, strict=True)) == gold
    shards = {
        r.source: r.t
        for r in delta(spark, root, "gold/shards")
        .groupBy("source")
        .agg({"n_tokens": "sum"})
        .withColumnRenamed("sum(n_tokens)", "t")
        .collect()
    }
    assert dict(zip(tokens.source, tokens.shard_tokens, strict=True)) == shards
    assert by_split.tokens.sum() == sum(gold_tokens.values())

    lengths = result["sections"]["Length distributions"]
    chars, chars_plot, token_lengths, tokens_plot = lengths
    assert dict(zip(chars.source, chars.documents, strict=True)) == {
        r.source: r["count"] for r in silver
    }
    assert dict(zip(token_lengths.source, token_lengths.total, strict=True)) == gold_tokens
    for plot in (chars_plot, tokens_plot):
        assert Path(plot).stat().st_size > 1000


def test_filter_audit_shows_the_drops_of_silver_decisions(spark, sample_build, tmp_path):
    root = sample_build.root
    result = run("02_filter_audit.py", root, spark, tmp_path)
    decisions = delta(spark, root, "silver/decisions")

    (per_stage,) = tables(result, "Documents reaching, kept and dropped by each stage")
    expected = {
        r.stage: (r.reached, r.dropped)
        for r in decisions.groupBy("stage")
        .agg(F.count("*").alias("reached"), F.count_if(~F.col("kept")).alias("dropped"))
        .collect()
    }
    assert {r.stage: (r.reached, r.dropped) for r in per_stage.itertuples()} == expected

    (per_reason,) = tables(result, "Dropped documents per stage and reason")
    dropped = decisions.filter("NOT kept")
    expected = {
        (r.stage, r.reason): r["count"]
        for r in dropped.groupBy("stage", "reason").count().collect()
    }
    assert expected, "the sample build drops documents"
    assert {(r.stage, r.reason): r.dropped for r in per_reason.itertuples()} == expected
    for source in SOURCES:
        assert per_reason[source].sum() == dropped.filter(f"source = '{source}'").count()

    (samples,) = tables(result, "Sample dropped documents")
    # At most 3 per reason; the sample drops fewer, so every dropped document is shown.
    assert sorted(samples.doc_id) == sorted(r.doc_id for r in dropped.collect())
    assert samples.text_head.str.len().min() > 20
    in_silver = {r.doc_id for r in delta(spark, root, "silver/documents").collect()}
    for r in samples.itertuples():
        assert r.text_from == ("silver" if r.doc_id in in_silver else "bronze")

    # Drill-down: by default the first document dropped (in stage order).
    doc_id = result["params"]["doc_id"]
    assert doc_id in set(samples.doc_id)
    history, where = tables(result, "Drill-down: every decision about one document")
    rows = decisions.filter(f"doc_id = '{doc_id}'").collect()
    assert sorted(history.stage) == sorted(r.stage for r in rows)
    assert not history.kept.iloc[-1] and history.kept.iloc[:-1].all()
    stages = list(history.stage)
    assert stages.index("clean") == 0
    assert where.loc[0, "in_bronze"] and not where.loc[0, "in_gold"]
    assert where.loc[0, "shard_sequences"] == 0


def test_dedup_audit_shows_clusters_with_kept_and_removed_texts(spark, sample_build, tmp_path):
    root = sample_build.root
    clusters = delta(spark, root, "silver/dedup_clusters").toPandas()
    assert len(clusters), "the sample has near duplicates"
    result = run("03_dedup_audit.py", root, spark, tmp_path)

    sizes, _figure = result["sections"]["Cluster-size distribution"]
    expected = clusters.groupby("cluster_size").agg(
        clusters=("cluster_id", "nunique"), documents=("doc_id", "size")
    )
    assert dict(zip(sizes.cluster_size, sizes.clusters, strict=True)) == expected.clusters.to_dict()
    assert (
        dict(zip(sizes.cluster_size, sizes.documents, strict=True)) == expected.documents.to_dict()
    )
    removed = clusters[clusters.doc_id != clusters.representative_id]
    assert sizes.removed.sum() == len(removed)

    by_source, _jaccard = tables(result, "Removed near duplicates by source and similarity")
    assert by_source.removed.sum() == len(removed)

    # The largest cluster, side by side: one column per document, the kept one first.
    largest = clusters.sort_values(["cluster_size", "cluster_id"], ascending=[False, True])
    cluster_id = largest.cluster_id.iloc[0]
    assert result["params"]["cluster_id"] == cluster_id
    (side,) = tables(result, "One cluster side by side")
    side = side.set_index("field")
    members = clusters[clusters.cluster_id == cluster_id]
    representative = members.representative_id.iloc[0]
    assert side.columns[0] == representative
    assert set(side.columns) == set(members.doc_id)
    assert side.loc["role", representative] == "kept"
    for doc_id in set(members.doc_id) - {representative}:
        assert side.loc["role", doc_id] == "removed"
        assert side.loc["near_dedup_reason", doc_id] == "near_duplicate"
        # Removed from silver: its text comes from its bronze record.
        assert side.loc["text_from", doc_id] == "bronze"
        assert len(side.loc["text_head", doc_id]) > 50


def test_lineage_reaches_the_input_file_and_back(spark, sample_build, tmp_path):
    root = sample_build.root
    first = spark.sql(
        f"SELECT * FROM delta.`{root}/gold/lineage` ORDER BY prefix, seq_index LIMIT 1"
    ).first()
    result = run("04_lineage.py", root, spark, tmp_path)
    assert result["params"]["prefix"] == first.prefix
    assert result["params"]["seq"] == str(first.seq_index)

    (path,) = tables(result, "From a shard sequence to the input file")
    shown = {(r.layer, r.field): r.value for r in path.itertuples()}
    assert shown[("gold/lineage", "doc_id")] == first.doc_id
    source = shown[("silver/documents", "source")]
    bronze = delta(spark, root, f"bronze/{source}").filter(f"doc_id = '{first.doc_id}'").first()
    assert shown[(f"bronze/{source}", "source_file")] == bronze.source_file
    assert shown[(f"bronze/{source}", "locator")] == bronze.locator
    assert Path(bronze.source_file).is_file()
    assert shown[("input file", "exists on this machine")] == "True"
    assert shown[("_runs", "stage")] == f"ingest_{source}"

    (check,) = tables(result, "Check: the sequence's tokens are the document's text")
    assert bool(check.matches_silver_text.iloc[0])
    assert check.tokens.iloc[0] == first.n_tokens

    (back,) = tables(result, "From a document to its shards and sequences")
    assert list(zip(back.prefix, back.seq_index, strict=True)) == [(first.prefix, first.seq_index)]


def test_lineage_takes_a_shortened_prefix_and_another_sequence(spark, sample_build, tmp_path):
    root = sample_build.root
    row = spark.sql(
        f"SELECT * FROM delta.`{root}/gold/lineage` ORDER BY prefix DESC, seq_index DESC LIMIT 1"
    ).first()
    short = "/".join(row.prefix.split("/")[-2:])  # e.g. valid/pubmed_00000
    result = run("04_lineage.py", root, spark, tmp_path, prefix=short, seq=str(row.seq_index))
    (path,) = tables(result, "From a shard sequence to the input file")
    shown = {(r.layer, r.field): r.value for r in path.itertuples()}
    assert shown[("gold/lineage", "prefix")] == row.prefix
    assert shown[("gold/lineage", "doc_id")] == row.doc_id == result["params"]["doc_id"]


def test_build_comparison_lists_exactly_what_changed(spark, sample_build, tmp_path):
    # A copy of the build, changed: one document deleted from silver and gold (and now
    # dropped by a decision), another's text edited. The shared build is left alone.
    root = tmp_path / "lakehouse"
    shutil.copytree(sample_build.root, root)
    gold = delta(spark, root, "gold/corpus").orderBy("doc_id").collect()
    gone = next(r for r in gold if r.source == "pubmed")
    edited = next(r for r in gold if r.doc_id != gone.doc_id)
    silver_path = f"{root}/silver/documents"
    silver_before = spark.sql(f"DESCRIBE HISTORY delta.`{silver_path}`").first().version
    spark.sql(f"DELETE FROM delta.`{silver_path}` WHERE doc_id = '{gone.doc_id}'")
    spark.sql(
        f"UPDATE delta.`{silver_path}` SET text = concat(text, ' Edited.'),"
        " text_sha256 = sha2(concat(text, ' Edited.'), 256), n_chars = n_chars + 8"
        f" WHERE doc_id = '{edited.doc_id}'"
    )
    spark.sql(
        f"UPDATE delta.`{root}/silver/decisions` SET kept = false, reason = 'audit_test'"
        f" WHERE doc_id = '{gone.doc_id}' AND stage = 'quality'"
    )
    spark.sql(f"DELETE FROM delta.`{root}/gold/corpus` WHERE doc_id = '{gone.doc_id}'")

    # Defaults: the previous and latest versions of gold/corpus; silver as of the same moments.
    result = run("05_build_comparison.py", root, spark, tmp_path)
    gold_version = spark.sql(f"DESCRIBE HISTORY delta.`{root}/gold/corpus`").first().version
    assert result["params"]["table"] == "gold/corpus"
    assert result["params"]["from_version"] == str(gold_version - 1)
    assert result["params"]["to_version"] == str(gold_version)

    (silver,) = tables(result, "Documents changed in silver/documents")
    assert sorted(zip(silver.change, silver.doc_id, strict=True)) == [
        ("changed", edited.doc_id),
        ("removed", gone.doc_id),
    ]
    changed = silver[silver.change == "changed"].iloc[0]
    assert changed.text_changed and changed.n_chars_to == changed.n_chars_from + 8
    assert silver[silver.change == "removed"].reason.iloc[0] == "quality: audit_test"

    (gold_changes,) = tables(result, "Documents changed in gold/corpus")
    assert list(zip(gold_changes.change, gold_changes.doc_id, strict=True)) == [
        ("removed", gone.doc_id)
    ]
    assert gold_changes.reason.iloc[0] == "quality: audit_test"

    summary, silver_deltas, gold_deltas = tables(result, "Summary and deltas per source")
    assert {r.table: (r.added, r.removed, r.changed) for r in summary.itertuples()} == {
        "silver/documents": (0, 1, 1),
        "gold/corpus": (0, 1, 0),
    }
    tokens = gold_deltas.set_index("source")
    assert tokens.loc[gone.source, "n_tokens_delta"] == -gone.n_tokens
    assert tokens.loc[gone.source, "documents_delta"] == -1
    assert (tokens.drop(index=gone.source).n_tokens_delta == 0).all()
    chars = silver_deltas.set_index("source")
    assert chars.loc[gone.source, "documents_delta"] == -1

    # Versions of silver/documents given explicitly: only the delete.
    result = run(
        "05_build_comparison.py",
        root,
        spark,
        tmp_path,
        table="silver/documents",
        from_version=str(silver_before),
        to_version=str(silver_before + 1),
    )
    (silver,) = tables(result, "Documents changed in silver/documents")
    assert list(zip(silver.change, silver.doc_id, strict=True)) == [("removed", gone.doc_id)]


def test_evaluation_results_without_runs(spark, sample_build, tmp_path):
    result = run("06_evaluation_results.py", sample_build.root, spark, tmp_path)
    assert "no evaluation runs yet" in result["stdout"].lower()
    assert result["exit"] == "no evaluation runs yet"
    assert result["displays"] == []


def _eval_rows(run_id: str, model: str, answers: dict[str, str], when: datetime):
    """Score and prediction rows (schemas.eval) of a run answering `answers` (item -> label)."""
    gold = {"pubmedqa:1": "A", "pubmedqa:2": "B", "medqa:1": "C", "medqa:2": "D"}
    predictions, scores = [], []
    common = {"run_id": run_id, "model": model, "mode": "top_token", "shots": 0}
    for item, label in answers.items():
        predictions.append(
            {
                **common,
                "benchmark": item.split(":")[0],
                "subject": None,
                "item_id": item,
                "seed": 1234,
                "prediction": label,
                "gold": gold[item],
                "correct": label == gold[item],
                "parseable": True,
                "option_logprobs": None,
                "n_samples": None,
                "n_parseable_samples": None,
                "votes": None,
                "outputs": None,
                "shot_ids": None,
                "created_at": when,
            }
        )
    accuracy = {}
    for benchmark in ("medqa", "pubmedqa"):
        rows = [p for p in predictions if p["benchmark"] == benchmark]
        correct = sum(p["correct"] for p in rows)
        accuracy[benchmark] = correct / len(rows)
        for seed in (1234, None):
            scores.append(_score(common, benchmark, seed, accuracy[benchmark], len(rows), correct))
    mean = sum(accuracy.values()) / 2
    scores.append(_score(common, "average", None, mean, 4, 0))
    for row in scores:
        row.update(model_path=f"/ckpt/{model}", created_at=when)
    return scores, predictions, accuracy


def _score(common, benchmark, seed, accuracy, n_items, n_correct):
    return {
        **common,
        "benchmark": benchmark,
        "subject": None,
        "shot_source": None,
        "seed": seed,
        "n_seeds": 1,
        "accuracy": accuracy,
        "accuracy_std": 0.0,
        "n_items": n_items,
        "n_correct": n_correct,
        "n_unparseable": 0,
        "unparseable_rate": 0.0,
        "backend": "transformers",
        "prompt_format": "plain",
    }


def test_evaluation_results_compare_two_runs(spark, tmp_path):
    from evaluate.lakehouse import write_lakehouse

    root = tmp_path / "lakehouse"
    old = _eval_rows(
        "run-old",
        "tiny-a",
        {"pubmedqa:1": "A", "pubmedqa:2": "A", "medqa:1": "C", "medqa:2": "A"},
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    new = _eval_rows(
        "run-new",
        "tiny-b",
        {"pubmedqa:1": "A", "pubmedqa:2": "B", "medqa:1": "B", "medqa:2": "C"},
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    write_lakehouse(str(root), old[0] + new[0], old[1] + new[1], spark=spark)
    result = run("06_evaluation_results.py", root, spark, tmp_path)
    assert "no evaluation runs yet" not in result["stdout"].lower()

    (runs,) = tables(result, "Evaluation runs")
    assert list(runs.run_id) == ["run-old", "run-new"]
    accuracy, figure = result["sections"]["Accuracy: model × benchmark, by run"]
    assert Path(figure).is_file()
    shown = accuracy.set_index("run_id")
    for run_id, (_, _, expected) in (("run-old", old), ("run-new", new)):
        for benchmark, value in expected.items():
            assert shown.loc[run_id, benchmark] == pytest.approx(value)
        assert shown.loc[run_id, "average"] == pytest.approx(sum(expected.values()) / 2)
    assert list(accuracy.columns)[-1] == "average"

    assert result["params"]["run_a"] == "run-old" and result["params"]["run_b"] == "run-new"
    counts, items = tables(result, "Item-level disagreements between two runs")
    counts = counts.set_index("benchmark")
    assert counts.loc["pubmedqa", "only_b_correct"] == 1
    assert counts.loc["medqa", "only_a_correct"] == 1
    assert counts.loc["medqa", "both_wrong"] == 1
    assert sorted(items.item_id) == ["medqa:1", "medqa:2", "pubmedqa:2"]


def test_command_line_runs_a_notebook_by_name(spark, sample_build, capsys):
    assert main(["06", "--lakehouse", str(sample_build.root), "--param", "x=1"]) == 0
    assert "No evaluation runs yet" in capsys.readouterr().out
    assert main(["no_such_notebook"]) == 2
    assert "no notebook" in capsys.readouterr().err
