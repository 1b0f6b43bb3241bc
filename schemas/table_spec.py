"""The conventions every lakehouse table follows, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import DataType, StructField, StructType

SCHEMA_VERSION_PROPERTY = "gapreplay.schema_version"


def col(name: str, data_type: DataType, comment: str, nullable: bool = True) -> StructField:
    """A column with its comment, so that `DESCRIBE` explains it."""
    return StructField(name, data_type, nullable, metadata={"comment": comment})


@dataclass(frozen=True)
class TableSpec:
    """A Delta table at `<lakehouse>/<path>`, visible in `gapreplay sql` as `<layer>_<name>`.

    `keys` identify a row (the MERGE condition); `constraints` are Delta CHECK constraints
    (name -> SQL expression); `schema_version` is bumped whenever `schema` changes.
    """

    path: str
    schema: StructType
    comment: str
    keys: tuple[str, ...]
    schema_version: int = 1
    constraints: dict[str, str] = field(default_factory=dict)
    partition_by: tuple[str, ...] = ()

    @property
    def sql_name(self) -> str:
        return self.path.strip("/").replace("/", "_")

    @property
    def properties(self) -> dict[str, str]:
        return {
            SCHEMA_VERSION_PROPERTY: str(self.schema_version),
            "delta.enableChangeDataFeed": "true",
        }

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()
