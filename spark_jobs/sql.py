"""`gapreplay sql`: SQL over the lakehouse's Delta tables, by their `<layer>_<table>` names."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import SparkSession

from spark_jobs.tables import discover_tables


def register_views(spark: SparkSession, lakehouse: str) -> dict[str, str]:
    """Make every table under the lakehouse visible as a temporary view; returns them."""
    tables = discover_tables(lakehouse)
    for name, path in tables.items():
        spark.read.format("delta").load(path).createOrReplaceTempView(name)
    return tables


def run_sql(spark: SparkSession, lakehouse: str, query: str) -> pd.DataFrame:
    register_views(spark, lakehouse)
    return spark.sql(query).toPandas()
