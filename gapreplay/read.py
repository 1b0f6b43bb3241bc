"""Spark-free reads of the lakehouse's Delta tables, for users without a JVM.

delta-rs (`deltalake`) resolves which parquet files make up a table version; pyarrow reads
them. The obvious `DeltaTable.to_pyarrow_table()` is avoided on purpose: after it the process
sometimes aborts at exit (exit 134, STACK.md), while reading the live files with
`pyarrow.parquet.ParquetDataset` did not.

The root may be a URI (`s3a://`, `abfss://`, `dbfs:/`): delta-rs takes its credentials from
the environment (AWS_*, AZURE_*; AWS_ALLOW_HTTP=true for a plain-HTTP endpoint) or from
`storage_options`, and the files are read through fsspec (spark_jobs.storage).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from spark_jobs import storage

# Imports pyspark's Python modules at module level, but starts no JVM.
from spark_jobs.tables import discover_tables


class UnsupportedTableError(ValueError):
    """A Delta table uses a feature that reading its parquet files directly would get wrong."""


class Lakehouse:
    """The Delta tables under a local lakehouse root, by their SQL names (`silver_documents`,
    `_runs`, …); `silver/documents` style paths are accepted too. `storage_options` go to
    delta-rs for a URI root (e.g. {"AWS_ENDPOINT_URL": …})."""

    def __init__(
        self, root: str | os.PathLike[str], storage_options: dict[str, str] | None = None
    ) -> None:
        self.root = os.fspath(root)
        self.storage_options = storage_options
        # Discovery walks the whole tree: done once, and again only when a name is missing
        # (a table created since).
        self._found: dict[str, str] | None = None

    def tables(self) -> dict[str, str]:
        """SQL name -> path of every Delta table that exists now."""
        self._found = discover_tables(self.root)
        return dict(self._found)

    def exists(self, name: str) -> bool:
        """Whether the table exists (a SQL name or a `layer/table` path)."""
        key = _key(name)
        return key in (self._found or {}) or key in self.tables()

    def path(self, name: str) -> str:
        """The table's directory; KeyError naming the tables that exist when it does not."""
        if not self.exists(name):
            known = ", ".join(self._found or {}) or "none"
            raise KeyError(f"no table {name!r} under {self.root} (tables: {known})")
        return (self._found or {})[_key(name)]

    def delta_table(self, name: str, version: int | None = None) -> DeltaTable:
        """The delta-rs handle of the table, at `version` when given (time travel)."""
        fs, path = storage.filesystem(self.path(name))
        # A local path for what this machine sees as local (dbfs:/ on Databricks' mount).
        location = path if isinstance(fs, LocalFileSystem) else self.path(name)
        return DeltaTable(location, version=version, storage_options=self.storage_options)

    def read(
        self, name: str, columns: Sequence[str] | None = None, version: int | None = None
    ) -> pa.Table:
        """The table's rows (at `version` when given), with the table's Delta schema."""
        table = self.delta_table(name, version)
        _check_plain(name, table)
        schema = pa.schema(table.schema().to_arrow())
        wanted = list(schema.names if columns is None else columns)
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise KeyError(f"{name} has no column {', '.join(unknown)} (columns: {schema.names})")
        files, fs = self._files(table)
        if not files:
            return schema.empty_table().select(wanted)
        # The Delta schema, not the files', decides the columns: Spark's MERGE on a table with
        # change data feed leaves its internal `_change_type` / `__is_cdc` columns in data
        # files, and Spark writes timestamps as INT96 (nanoseconds, no zone) that the schema
        # casts to the table's UTC microseconds.
        dataset = pq.ParquetDataset(
            files, schema=schema, filesystem=fs, coerce_int96_timestamp_unit="us"
        )
        return dataset.read(columns=wanted)

    def _files(self, table: DeltaTable) -> tuple[list[str], AbstractFileSystem | None]:
        """The table's live parquet files, and the filesystem to open them with (None: local
        paths pyarrow opens itself)."""
        uris = table.file_uris()
        if storage.local_path(self.root) is not None:
            return uris, None
        fs, _ = storage.filesystem(self.root)
        return [fs._strip_protocol(u) for u in uris], fs

    def to_pandas(
        self, name: str, columns: Sequence[str] | None = None, version: int | None = None
    ) -> pd.DataFrame:
        """`read` as a pandas DataFrame."""
        return self.read(name, columns, version).to_pandas()

    def count(self, name: str, version: int | None = None) -> int:
        """Rows of the table, from the parquet footers alone."""
        table = self.delta_table(name, version)
        _check_plain(name, table)
        files, fs = self._files(table)
        return sum(pq.ParquetFile(f, filesystem=fs).metadata.num_rows for f in files)

    def version(self, name: str) -> int:
        """The table's latest Delta version."""
        return self.delta_table(name).version()

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first: version, timestamp (ms since the epoch),
        operation, operationParameters, operationMetrics, …; the last `limit` when given."""
        return self.delta_table(name).history(limit)


def _key(name: str) -> str:
    return name.strip("/").replace("/", "_")


def _check_plain(name: str, table: DeltaTable) -> None:
    """Refuse the Delta features under which the live parquet files are not the table: the
    lakehouse's own tables use none of them, but a table written elsewhere (Databricks turns
    deletion vectors on by default) might."""
    metadata = table.metadata()
    problems = []
    if metadata.partition_columns:
        problems.append(f"partition columns {metadata.partition_columns}")
    mode = metadata.configuration.get("delta.columnMapping.mode", "none")
    if mode != "none":
        problems.append(f"column mapping mode {mode}")
    if "deletionVectors" in (table.protocol().reader_features or []):
        problems.append("deletion vectors")
    if problems:
        raise UnsupportedTableError(
            f"{name} uses {', '.join(problems)}: read it with Spark (gapreplay sql)"
        )
