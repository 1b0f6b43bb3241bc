"""`spark-submit` of the built wheel, as the README documents it, against `local[2]`: the
pipeline's first stage on one small PubMed file; and the package imported from the wheel file
itself, as `--py-files` ships it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyspark
import pytest

from corpus.minhash import MinHashConfig, signatures
from spark_jobs import delta_jars
from tests.conftest import FIXTURES, REPO

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)],
        check=True,
    )
    (built,) = dist.glob("gapreplay-*.whl")
    return built


def test_spark_submit_runs_the_wheel(tmp_path, wheel):
    site = tmp_path / "site"
    # The wheel unpacked where only it is on the path: the code that runs is the wheel's.
    subprocess.run([*PIP, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
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


def test_package_runs_from_the_wheel_zip(tmp_path, wheel):
    """--py-files puts the wheel itself on sys.path: the modules load from the zip, and the
    numba kernels (which cannot be cached there) give the checkout's MinHash signatures."""
    texts = ["the patient was given aspirin for chest pain", "aspirin reduces chest pain"]
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(wheel)!r})\n"
        "import gapreplay.cli, spark_jobs.pipeline\n"
        "from corpus import minhash\n"
        "files = [m.__file__ for m in (gapreplay.cli, spark_jobs.pipeline, minhash)]\n"
        f"sig, has = minhash.signatures({texts!r}, minhash.MinHashConfig())\n"
        "print(json.dumps({'files': files, 'sig': sig.tolist(), 'has': has.tolist()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert all(f.startswith(str(wheel) + os.sep) for f in out["files"]), out["files"]
    sig, has = signatures(texts, MinHashConfig())
    assert np.array_equal(np.array(out["sig"], dtype=sig.dtype), sig)
    assert out["has"] == has.tolist()
