"""The SparkSession factory fails early and clearly when Delta Lake is missing."""

from __future__ import annotations

import os
import subprocess
import sys


def test_missing_delta_jars_is_a_clear_error(tmp_path):
    env = dict(os.environ, GAPREPLAY_JARS_DIR=str(tmp_path / "no-jars"))
    code = "from spark_jobs.session import get_spark; get_spark()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DeltaUnavailableError: Delta Lake jars are not in" in proc.stderr
    assert "make setup" in proc.stderr


def test_session_has_delta_utc_and_arrow(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
