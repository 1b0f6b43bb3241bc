"""The `gapreplay` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "sample.yaml"
EXIT_FAILED = 1
EXIT_STRICT = 3

# Not a terminal (CI logs, pipes): rich would wrap tables at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lakehouse", default="lakehouse", help="lakehouse root (./lakehouse), path or URI"
    )
    parser.add_argument("--master", default=None, help="Spark master, e.g. spark://host:7077")
    parser.add_argument(
        "--catalog", default=None, help="catalog to register written tables in (with --schema)"
    )
    parser.add_argument(
        "--schema",
        default=None,
        help="register written tables as <catalog>.<schema>.<layer>_<table> (schema must exist)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit non-zero when any input was quarantined"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gapreplay", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    download = sub.add_parser("download", help="fetch a source's files (resumable, checked)")
    download.add_argument("source", choices=["pubmed", "pmc", "guidelines", "replay"])
    download.add_argument("--to", required=True, help="folder the files go to (the ingest input)")
    download.add_argument("--base-url", default=None, help="a mirror with the same layout")
    download.add_argument("--max-files", type=int, default=None, help="at most N files")
    download.add_argument("--dry-run", action="store_true", help="list what would be fetched")
    download.add_argument(
        "--config", default=None, help="download YAML (configs/meditron_download.yaml) options"
    )
    download.add_argument(
        "--strict", action="store_true", help="exit non-zero when any file failed or was rejected"
    )

    ingest = sub.add_parser("ingest", help="read source files into a bronze table")
    ingest.add_argument("source", choices=["pubmed", "pmc", "guidelines", "replay"])
    ingest.add_argument("inputs", nargs="+", help="files, directories or globs (.gz streamed)")
    ingest.add_argument(
        "--no-markers",
        dest="markers",
        action="store_false",
        help="pmc: plain text without MediTron's [bib_ref]/[fig]/... markers",
    )
    ingest.add_argument("--source", default=None, help="guidelines: source key for all inputs")
    ingest.add_argument("--max-pages", type=int, default=500, help="guidelines: PDF page limit")
    ingest.add_argument(
        "--timeout", type=float, default=120.0, help="guidelines: seconds per document"
    )
    _add_common(ingest)

    clean = sub.add_parser("clean", help="bronze -> silver: clean, filter, exact dedup")
    clean.add_argument("--config", default=None, help="corpus YAML config (its silver: part)")
    _add_common(clean)

    dedup = sub.add_parser("dedup", help="silver: MinHash LSH near-duplicate removal")
    dedup.add_argument("--config", default=None, help="corpus YAML config (its dedup: part)")
    _add_common(dedup)

    for name, helptext in (
        ("decontaminate", "gold: keep documents holding benchmark test items out of the mix"),
        ("mix", "gold: the GAP-Replay mix and splits into gold/corpus"),
    ):
        stage = sub.add_parser(name, help=helptext)
        stage.add_argument("--config", default=None, help="corpus YAML config")
        _add_common(stage)

    shards = sub.add_parser("shards", help="gold: Megatron .bin/.idx shards, blends, lineage")
    shards.add_argument("--out", required=True, help="shard folder")
    shards.add_argument("--config", default=None, help="corpus YAML config (its shards: part)")
    _add_common(shards)

    export = sub.add_parser("export", help="gold/corpus as Parquet and JSONL for `datasets`")
    export.add_argument("--out", required=True, help="export folder")
    _add_common(export)

    corpus = sub.add_parser("corpus", help="run the pipeline's stages in order")
    corpus.add_argument("--config", required=True, help="corpus YAML config")
    corpus.add_argument("--out", default=None, help="shard folder (overrides the config)")
    corpus.add_argument("--from", dest="from_stage", default=None, help="first stage to run")
    corpus.add_argument("--to", dest="to_stage", default=None, help="last stage to run")
    corpus.add_argument(
        "--force", action="store_true", help="run every selected stage, even if unchanged"
    )
    _add_common(corpus)
    corpus.set_defaults(lakehouse=None)

    why = sub.add_parser("why", help="every decision about a document, in stage order")
    why.add_argument("doc_id")
    _add_common(why)

    lineage = sub.add_parser("lineage", help="shard sequence <-> document <-> bronze record")
    target = lineage.add_mutually_exclusive_group(required=True)
    target.add_argument("--doc", help="document id")
    target.add_argument("--prefix", help="shard prefix (full, or e.g. train/pubmed_00000)")
    lineage.add_argument("--seq", type=int, help="sequence number in the shard (with --prefix)")
    _add_common(lineage)

    diff = sub.add_parser("diff", help="documents added, removed and changed between builds")
    diff.add_argument(
        "--from", dest="start", required=True, help="silver/documents version or run id"
    )
    diff.add_argument("--to", dest="end", required=True, help="silver/documents version or run id")
    _add_common(diff)

    maintain = sub.add_parser("maintain", help="OPTIMIZE and VACUUM every Delta table")
    maintain.add_argument(
        "--retention-hours",
        type=int,
        default=None,
        help="history kept for time travel (diff, why); default 720 (30 days), at least 168",
    )
    _add_common(maintain)

    pretrain = sub.add_parser("pretrain", help="train the megatron-core model from shards")
    pretrain.add_argument("--config", required=True, help="training YAML (configs/pretrain_*)")
    pretrain.add_argument("--shards", default=None, help="shard folder (overrides the config)")
    start = pretrain.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    start.add_argument("--fresh", action="store_true", help="delete the run's folder first")

    report = sub.add_parser("report", help="overview tables and one self-contained HTML report")
    report.add_argument("--lakehouse", default="lakehouse", help="lakehouse root (./lakehouse)")
    report.add_argument("--shards", default="shards", help="shard folder, for the dataset card")
    report.add_argument("--out", default="audit/report.html", help="HTML file to write")

    evaluate = sub.add_parser("evaluate", help="score a model on the medical benchmarks")
    evaluate.add_argument("--config", required=True, help="evaluation YAML (configs/evaluate_*)")
    evaluate.add_argument("--model", default=None, help="HF model folder (overrides the config)")
    evaluate.add_argument(
        "--lakehouse", default=None, help="also append the results to eval/scores, eval/predictions"
    )

    sql = sub.add_parser("sql", help="query the lakehouse tables (named <layer>_<table>)")
    sql.add_argument("query")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _add_common(sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("gapreplay: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with --verbose
        if args.verbose:
            logging.exception("failed")
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"gapreplay {args.command}: {type(exc).__name__}: {first}", file=sys.stderr)
        return EXIT_FAILED


def _spark(args: argparse.Namespace, config=None):  # type: ignore[no-untyped-def]
    """The session, registering written tables where --catalog/--schema (or the config's
    `catalog:`) say."""
    from spark_jobs.session import get_spark
    from spark_jobs.tables import use_catalog

    if args.catalog and not args.schema:
        raise ValueError("--catalog needs --schema")
    spark_config = config.spark if config is not None else None
    spark = get_spark(
        master=args.master or (spark_config.master if spark_config else None),
        conf=spark_config.conf if spark_config else None,
    )
    catalog = config.catalog if config is not None else None
    if args.schema:
        use_catalog(spark, args.schema, args.catalog)
    elif catalog is not None:
        use_catalog(spark, catalog.schema_name, catalog.name)
    return spark


def cmd_download(args: argparse.Namespace) -> int:
    from download import load_download_config, run

    options = None
    if args.config:
        jobs = load_download_config(args.config)
        if args.source in jobs:
            options = jobs[args.source].options
    report = run(
        args.source,
        Path(args.to),
        base_url=args.base_url,
        max_files=args.max_files,
        dry_run=args.dry_run,
        options=options,
        console=console,
    )
    console.print(report.summary())
    if args.strict and (report.failed or report.rejected_checksum):
        print("gapreplay: --strict: files failed or were rejected", file=sys.stderr)
        return EXIT_STRICT
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from spark_jobs.config import IngestConfig
    from spark_jobs.pipeline import INGEST_JOBS

    spark = _spark(args)
    config = IngestConfig(
        lakehouse=args.lakehouse,
        inputs=args.inputs,
        markers=args.markers,
        source=args.source,
        max_pages=args.max_pages,
        timeout_s=args.timeout,
    )
    result = INGEST_JOBS[args.source](spark, config)
    _print_results([result])
    return _exit_status(args, [result])


def cmd_corpus(args: argparse.Namespace) -> int:
    from spark_jobs.config import load_config
    from spark_jobs.pipeline import run_corpus
    from spark_jobs.storage import resolve

    config = load_config(args.config)
    if args.lakehouse:
        config.lakehouse = args.lakehouse
    if args.out:
        config.out = args.out
    spark = _spark(args, config)
    results = run_corpus(spark, config, args.from_stage, args.to_stage, force=args.force)
    _print_results(results)
    from spark_jobs.summary import stage_counts

    _print_stage_counts(stage_counts(spark, config.lakehouse))
    console.print(f"lakehouse: {resolve(config.lakehouse)}")
    console.print(f"shards:    {resolve(config.out)}")
    return _exit_status(args, results)


def _print_stage_counts(rows: list[dict]) -> None:  # type: ignore[type-arg]
    table = Table(title="documents and tokens per source after each stage")
    for column in ("stage", "source", "documents", "tokens"):
        table.add_column(column, justify="left" if column in ("stage", "source") else "right")
    for row in rows:
        tokens = "" if row["tokens"] is None else str(row["tokens"])
        table.add_row(row["stage"], row["source"], str(row["documents"]), tokens)
    console.print(table)


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from spark_jobs.config import CorpusConfig, load_config

    return load_config(args.config) if getattr(args, "config", None) else CorpusConfig()


def cmd_decontaminate(args: argparse.Namespace) -> int:
    from spark_jobs.decontaminate import decontaminate

    config = _config(args)
    result = decontaminate(_spark(args, config), args.lakehouse, config.decontamination)
    _print_results([result])
    _print_metrics("decontamination", result.metrics)
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    from spark_jobs.mix import mix

    config = _config(args)
    result = mix(_spark(args, config), args.lakehouse, config.mix, config.tokenizer)
    _print_results([result])
    _print_metrics("the mix", result.metrics)
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from spark_jobs.shards import shards
    from spark_jobs.storage import resolve

    config = _config(args)
    result = shards(_spark(args, config), args.lakehouse, args.out, config.shards)
    _print_results([result])
    _print_metrics("shards", result.metrics)
    console.print(f"shards, blends, tokenizer and dataset card: {resolve(args.out)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from spark_jobs.export_corpus import export_corpus
    from spark_jobs.storage import resolve

    result = export_corpus(_spark(args), args.lakehouse, args.out)
    _print_results([result])
    console.print(f"Parquet and JSONL: {resolve(args.out)}")
    return 0


def _print_metrics(title: str, metrics: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("count", justify="right")
    for key, value in sorted(metrics.items()):
        table.add_row(key, str(value))
    console.print(table)


def cmd_clean(args: argparse.Namespace) -> int:
    from spark_jobs.clean import clean

    config = _config(args)
    result = clean(_spark(args, config), args.lakehouse, config.silver)
    _print_results([result])
    _print_drops(result.metrics)
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    from spark_jobs.dedup import dedup

    config = _config(args)
    result = dedup(_spark(args, config), args.lakehouse, config.dedup, config.silver.keep_order)
    _print_results([result])
    _print_metrics("near-duplicates", result.metrics)
    return 0


def _print_drops(metrics: dict[str, int]) -> None:
    table = Table(title="dropped documents by stage, reason and source")
    for column in ("stage", "reason", "source", "documents"):
        table.add_column(column, justify="right" if column == "documents" else "left")
    for key, value in sorted(metrics.items()):
        if key.startswith("dropped."):
            table.add_row(*key.split(".")[1:], str(value))
    console.print(table)


def cmd_sql(args: argparse.Namespace) -> int:
    from spark_jobs.sql import run_sql

    spark = _spark(args)
    frame = run_sql(spark, args.lakehouse, args.query)
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(frame.to_json(orient="records", date_format="iso", default_handler=str))
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"{len(frame)} row(s)")
    return 0


def _print_record(title: str, record: dict) -> None:  # type: ignore[type-arg]
    table = Table(title=title, show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


def cmd_why(args: argparse.Namespace) -> int:
    from spark_jobs.audit import why

    decisions = why(_spark(args), args.lakehouse, args.doc_id)
    if not decisions:
        print(f"gapreplay why: no decision about {args.doc_id}", file=sys.stderr)
        return EXIT_FAILED
    table = Table(title=f"decisions about {args.doc_id}")
    for column in ("stage", "kept", "reason", "detail", "run"):
        table.add_column(column, overflow="fold")
    for d in decisions:
        table.add_row(d["stage"], str(d["kept"]), d["reason"] or "", d["detail"], d["run_id"][:8])
    console.print(table)
    last = decisions[-1]
    verdict = (
        "in the corpus"
        if all(d["kept"] for d in decisions)
        else (f"dropped at {next(d['stage'] for d in decisions if not d['kept'])}")
    )
    console.print(f"{args.doc_id}: {verdict} (last stage reached: {last['stage']})")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from spark_jobs.audit import lineage_of_document, lineage_of_sequence

    spark = _spark(args)
    if args.prefix is not None:
        if args.seq is None:
            print("gapreplay lineage: --prefix needs --seq", file=sys.stderr)
            return EXIT_FAILED
        found = lineage_of_sequence(spark, args.lakehouse, args.prefix, args.seq)
        _print_record("sequence", found["sequence"])
    else:
        found = lineage_of_document(spark, args.lakehouse, args.doc)
    for sequence in found["sequences"]:
        console.print(f"in shard {sequence['prefix']} as sequence {sequence['seq_index']}")
    if found["gold"]:
        _print_record("gold/corpus", found["gold"])
    _print_record("silver/documents", found["silver"])
    bronze = found["bronze"]
    _print_record(
        found["bronze_table"],
        {k: v for k, v in bronze.items() if not isinstance(v, str) or len(v) < 300},
    )
    console.print(f"bronze record: {bronze['source_file']} at {bronze['locator']}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from spark_jobs.audit import diff

    found = diff(_spark(args), args.lakehouse, args.start, args.end)
    console.print(f"from {found['from']} to {found['to']}")
    table = Table(title="documents")
    for column in ("change", "doc_id", "source", "reason"):
        table.add_column(column, overflow="fold")
    for doc_id, source in found["added"]:
        table.add_row("added", doc_id, source, "")
    for doc_id, source, reason in found["removed"]:
        table.add_row("removed", doc_id, source, reason)
    for doc_id, source in found["changed"]:
        table.add_row("changed", doc_id, source, "text revised")
    console.print(table)
    tokens = Table(title="gold/corpus tokens per source")
    for column in ("source", "before", "after", "delta"):
        tokens.add_column(column, justify="left" if column == "source" else "right")
    for source, t in found["tokens"].items():
        tokens.add_row(source, str(t["before"]), str(t["after"]), f"{t['delta']:+d}")
    console.print(tokens)
    counts = {k: len(found[k]) for k in ("added", "removed", "changed")}
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from spark_jobs.maintain import DEFAULT_RETENTION_HOURS, maintain

    retention = args.retention_hours or DEFAULT_RETENTION_HOURS
    result = maintain(_spark(args), args.lakehouse, retention)
    _print_metrics(f"maintenance (retention {retention} h)", result.metrics)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    import shutil

    from train.config import load_config
    from train.pretrain import pretrain

    config = load_config(args.config)
    if args.shards:
        config = config.model_copy(update={"shards": Path(args.shards)})
    if args.fresh:
        shutil.rmtree(config.run_dir, ignore_errors=True)
    result = pretrain(config, resume=args.resume)
    _print_record("training run", result.summary())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gapreplay.report import overview_tables, write_report

    for title, frame in overview_tables(args.lakehouse).items():
        table = Table(title=title)
        for column in frame.columns:
            table.add_column(
                str(column), justify="right" if frame[column].dtype.kind in "if" else "left"
            )
        for row in frame.itertuples(index=False):
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
    out = write_report(args.lakehouse, Path(args.out), args.shards)
    console.print(f"report: {out.resolve()}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from evaluate.harness import run

    result = run(args.config, model=args.model, lakehouse=args.lakehouse)
    console.print(result.table)
    console.print(f"predictions and results: {result.run_dir}")
    return 0


SUMMARY_COLUMNS = (
    ("parsed", "records_parsed"),
    ("inserted", "inserted"),
    ("revised", "revised"),
    ("deleted", "deletions"),
    ("quarantined", "quarantined"),
)


def _print_results(results: list) -> None:  # type: ignore[type-arg]
    table = Table(title="gapreplay summary")
    for column in ("stage", "table", *(c for c, _ in SUMMARY_COLUMNS), "rows now", "run"):
        table.add_column(column, justify="left" if column in ("stage", "table", "run") else "right")
    for r in results:
        counts = [str(r.metrics.get(key, "")) for _, key in SUMMARY_COLUMNS]
        table.add_row(r.stage, r.table, *counts, str(r.rows_out), r.run_id[:8])
    console.print(table)
    quarantined = sum(r.quarantined for r in results)
    if quarantined:
        console.print(
            f"{quarantined} input piece(s) quarantined: "
            'gapreplay sql "SELECT * FROM bronze_quarantine" shows them'
        )


def _exit_status(args: argparse.Namespace, results: list) -> int:  # type: ignore[type-arg]
    if args.strict and any(r.quarantined for r in results):
        print("gapreplay: --strict: inputs were quarantined", file=sys.stderr)
        return EXIT_STRICT
    return 0


COMMANDS = {
    "download": cmd_download,
    "ingest": cmd_ingest,
    "clean": cmd_clean,
    "dedup": cmd_dedup,
    "decontaminate": cmd_decontaminate,
    "mix": cmd_mix,
    "shards": cmd_shards,
    "export": cmd_export,
    "corpus": cmd_corpus,
    "pretrain": cmd_pretrain,
    "evaluate": cmd_evaluate,
    "report": cmd_report,
    "why": cmd_why,
    "lineage": cmd_lineage,
    "diff": cmd_diff,
    "maintain": cmd_maintain,
    "sql": cmd_sql,
}


if __name__ == "__main__":
    sys.exit(main())
