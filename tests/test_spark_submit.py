"""`spark-submit` of the built wheel, as the README documents it, against `local[2]`: the
pipeline's first stage on one small PubMed file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyspark

from spark_jobs import delta_jars
from tests.conftest import FIXTURES, REPO


def test_spark_submit_runs_the_wheel(tmp_path):
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)],
        check=True,
    )
    (wheel,) = dist.glob("gapreplay-*.whl")
    # The wheel unpacked where only it is on the path: the code that runs is the wheel's.
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    lakehouse = tmp_path / "lakehouse"
    config = tmp_path / "corpus.yaml"
    source = FIXTURES / "pubmed_xml" / "pubmed2db_trimmed_real_records.xml"
    config.write_text(f"sources:\n  pubmed:\n    inputs: [{source}]\n")
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {**os.environ, "PYTHONPATH": str(site), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [
            str(submit),
            "--master",
            "local[2]",
            "--driver-memory",
            "1g",
            "--jars",
            ",".join(delta_jars.local_jars()),
            str(site / "gapreplay" / "__main__.py"),
            "corpus",
            "--config",
            str(config),
            "--lakehouse",
            str(lakehouse),
            "--out",
            str(tmp_path / "shards"),
            "--to",
            "ingest_pubmed",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "ingest_pubmed" in done.stdout
    from gapreplay.read import Lakehouse

    assert Lakehouse(lakehouse).count("bronze_pubmed") > 0
