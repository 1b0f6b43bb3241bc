"""Creating, validating, reading and merging the lakehouse's Delta tables."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Iterable

from delta.tables import DeltaMergeBuilder, DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from schemas.table_spec import SCHEMA_VERSION_PROPERTY, TableSpec
from spark_jobs import storage

log = logging.getLogger(__name__)


class SchemaMismatchError(TypeError):
    """A DataFrame does not have the columns and types of the table it is written to."""


def table_path(root: str, spec: TableSpec) -> str:
    """The table's location: a local path made absolute, or a URI under a URI root."""
    return storage.join(root if storage.is_uri(root) else os.path.abspath(root), spec.path)


def sql_name(spec: TableSpec) -> str:
    """The table's name in `gapreplay sql` and in a catalog: `<layer>_<table>`."""
    return spec.path.replace("/", "_")


# Session settings naming where written tables are registered (`use_catalog`).
CATALOG_CONF = "spark.gapreplay.catalog"
SCHEMA_CONF = "spark.gapreplay.schema"


def use_catalog(spark: SparkSession, schema: str, catalog: str | None = None) -> str:
    """Register every table this session writes from now on as `<catalog>.<schema>.<name>`
    (Unity Catalog, or the Hive metastore's schema when `catalog` is None), an external table
    at its path. The schema must exist. Returns the qualified schema."""
    catalog = catalog or spark.catalog.currentCatalog()
    qualified = f"{_quote(catalog)}.{_quote(schema)}"
    if not spark.catalog.databaseExists(f"{catalog}.{schema}"):
        raise ValueError(
            f"schema {catalog}.{schema} does not exist: create it first "
            f"(CREATE SCHEMA {qualified}), or name another with --catalog/--schema"
        )
    spark.conf.set(CATALOG_CONF, catalog)
    spark.conf.set(SCHEMA_CONF, schema)
    return qualified


def _register(spark: SparkSession, spec: TableSpec, path: str) -> None:
    schema = spark.conf.get(SCHEMA_CONF, None)
    if not schema:
        return
    name = ".".join(_quote(p) for p in (spark.conf.get(CATALOG_CONF), schema, sql_name(spec)))
    if _REGISTERED.get(name) == path:
        return
    location = path.replace("'", "\\'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{location}'")
    _REGISTERED[name] = path


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


# Catalog names already registered by this process, with their paths.
_REGISTERED: dict[str, str] = {}


def source_values(columns: Iterable[str]) -> dict[str, str]:
    """MERGE assignments setting every column from the source row `s`."""
    return {c: f"s.{c}" for c in columns}


def differs(columns: Iterable[str]) -> str:
    """MERGE condition: the source row `s` differs from the target `t` in one of `columns`
    (null-safe), so that an unchanged row is not rewritten."""
    return " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in columns)


def table_exists(spark: SparkSession, root: str, spec: TableSpec) -> bool:
    return DeltaTable.isDeltaTable(spark, table_path(root, spec))


def ensure_table(spark: SparkSession, root: str, spec: TableSpec) -> DeltaTable:
    """Create the table if missing, with comments, properties and CHECK constraints.

    Constraints go in at creation as `delta.constraints.*` properties (one commit); an
    existing table that lacks one gets it by ALTER TABLE, which checks the rows it holds.
    """
    path = table_path(root, spec)
    if _ENSURED.get(path) == spec.schema_version and DeltaTable.isDeltaTable(spark, path):
        _register(spark, spec, path)
        return DeltaTable.forPath(spark, path)
    _remove_uncommitted_log(path)
    builder = DeltaTable.createIfNotExists(spark).location(path).comment(spec.comment)
    builder = builder.addColumns(spec.schema)
    properties = dict(spec.properties)
    properties.update({f"delta.constraints.{k}": v for k, v in spec.constraints.items()})
    for key, value in properties.items():
        builder = builder.property(key, value)
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    table = builder.execute()
    found = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}
    version = found.get(SCHEMA_VERSION_PROPERTY)
    if version is not None and int(version) != spec.schema_version:
        raise SchemaMismatchError(
            f"{spec.path} has schema version {version}; this code writes version "
            f"{spec.schema_version}. Rebuild the table or migrate it."
        )
    for name, expr in spec.constraints.items():
        if f"delta.constraints.{name}" not in found:
            spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT {name} CHECK ({expr})")
    _ENSURED[path] = spec.schema_version
    _register(spark, spec, path)
    return table


# A commit or checkpoint of the Delta log; anything else there is a write in progress.
_COMMITTED_LOG_ENTRY = re.compile(r"^(\d{20}\.(json|checkpoint.*\.parquet)|_last_checkpoint)$")


def _remove_uncommitted_log(path: str) -> None:
    """A driver killed while creating a table leaves `_delta_log` holding only temporary
    files: not a table, yet Delta refuses to create one there. Clear it: with no commit in
    the log, there is no data to lose."""
    log_dir = storage.join(path, "_delta_log")
    fs, log_path = storage.filesystem(log_dir)
    if not fs.isdir(log_path):
        return
    names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(log_path, detail=False)]
    if not any(_COMMITTED_LOG_ENTRY.match(name) for name in names):
        log.info("%s: removing a table creation that never committed (%s)", path, names)
        storage.remove(log_dir)


# Tables already checked by this process: creating and inspecting a table costs several
# Spark jobs, and a stage writes the same table more than once.
_ENSURED: dict[str, int] = {}


def check_schema(df: DataFrame, spec: TableSpec, extra_ok: bool = False) -> DataFrame:
    """The DataFrame's columns in table order, after checking their names and types.

    Raises SchemaMismatchError naming every wrong column, instead of the error Delta would
    give deep inside a MERGE. With `extra_ok`, columns the table lacks are dropped.
    """
    problems = describe_mismatch(df.schema, spec.schema, extra_ok)
    if problems:
        raise SchemaMismatchError(f"cannot write to {spec.path}: " + "; ".join(problems))
    return df.select(*spec.columns)


def describe_mismatch(
    actual: StructType, expected: StructType, extra_ok: bool = False
) -> list[str]:
    have = {f.name: f for f in actual.fields}
    problems = []
    for field in expected.fields:
        got = have.get(field.name)
        if got is None:
            problems.append(f"missing column {field.name} ({field.dataType.simpleString()})")
        elif got.dataType != field.dataType and not _same_type(got.dataType, field.dataType):
            problems.append(
                f"column {field.name} is {got.dataType.simpleString()}, "
                f"expected {field.dataType.simpleString()}"
            )
    extra = sorted(set(have) - set(expected.fieldNames()))
    if extra and not extra_ok:
        problems.append(f"unexpected columns {', '.join(extra)}")
    return problems


def _same_type(a, b) -> bool:  # type: ignore[no-untyped-def]
    # Nullability inside arrays and maps is not part of the contract.
    return a.simpleString() == b.simpleString()


def read_table(spark: SparkSession, root: str, spec: TableSpec) -> DataFrame:
    """The table, or an empty DataFrame of its schema when it does not exist yet."""
    if table_exists(spark, root, spec):
        return spark.read.format("delta").load(table_path(root, spec))
    return spark.createDataFrame([], spec.schema)


def merge_into(
    spark: SparkSession,
    root: str,
    spec: TableSpec,
    source: DataFrame,
    update_condition: str | None = "true",
    keys: Iterable[str] | None = None,
) -> dict[str, int]:
    """MERGE `source` into the table on its keys: update matches where `update_condition`
    holds (SQL over `t.` and `s.`; None leaves matched rows untouched), insert the rest.
    Returns Delta's operation metrics."""
    source = check_schema(source, spec)
    table = ensure_table(spark, root, spec)
    keys = tuple(keys or spec.keys)
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    assignments = source_values(spec.columns)
    merge = table.alias("t").merge(source.alias("s"), on)
    if update_condition is not None:
        merge = merge.whenMatchedUpdate(condition=update_condition, set=assignments)
    return execute_merge(table, merge.whenNotMatchedInsert(values=assignments))


def sync_table(spark: SparkSession, root: str, spec: TableSpec, rows: DataFrame) -> dict[str, int]:
    """Make the table hold exactly `rows` by a MERGE on its keys: rows whose content (all
    but `run_id`) changed are updated, new ones inserted, the others deleted; unchanged rows
    keep the run that last changed them. Returns Delta's operation metrics."""
    table = ensure_table(spark, root, spec)
    on = " AND ".join(f"t.{k} = s.{k}" for k in spec.keys)
    values = source_values(spec.columns)
    return execute_merge(
        table,
        table.alias("t")
        .merge(rows.alias("s"), on)
        .whenMatchedUpdate(condition=differs(c for c in spec.columns if c != "run_id"), set=values)
        .whenNotMatchedInsert(values=values)
        .whenNotMatchedBySourceDelete(),
    )


def append(spark: SparkSession, root: str, spec: TableSpec, rows: DataFrame) -> None:
    """Append rows after checking their schema (for tables that only grow, like `_runs`)."""
    rows = check_schema(rows, spec)
    ensure_table(spark, root, spec)
    rows.write.format("delta").mode("append").save(table_path(root, spec))


def execute_merge(table: DeltaTable, merge: DeltaMergeBuilder) -> dict[str, int]:
    """Run a MERGE and return its operation metrics; {} when it committed nothing (a MERGE
    with nothing to do may leave the log as it was, and the last commit is then another's)."""
    before = table.history(1).select("version").first()
    merge.execute()
    row = table.history(1).select("version", "operationMetrics").first()
    if row is None or (before is not None and row.version == before.version) or not row[1]:
        return {}
    return {k: int(v) for k, v in row[1].items() if str(v).lstrip("-").isdigit()}


def table_version(spark: SparkSession, root: str, spec: TableSpec) -> int | None:
    if not table_exists(spark, root, spec):
        return None
    table = DeltaTable.forPath(spark, table_path(root, spec))
    return int(table.history(1).select("version").first()[0])


def discover_tables(root: str) -> dict[str, str]:
    """SQL name (`<layer>_<table>`) -> path (or URI) of every Delta table under the
    lakehouse root. Under a URI only `<table>/` and `<layer>/<table>/` are looked at: a
    deeper search would list every data file of an object store."""
    found = {}
    base = storage.local_path(root)
    if base is None:
        fs, path = storage.filesystem(root)
        for depth in ("*", "*/*"):
            for log_dir in fs.glob(posixpath.join(path, depth, "_delta_log")):
                rel = posixpath.relpath(posixpath.dirname(log_dir), path)
                found[rel.replace("/", "_")] = storage.join(root, rel)
        return dict(sorted(found.items()))
    if not base.exists():
        return found
    for log_dir in sorted(base.rglob("_delta_log")):
        rel = log_dir.parent.relative_to(base).as_posix()
        found[rel.replace("/", "_")] = str(log_dir.parent)
    return found
