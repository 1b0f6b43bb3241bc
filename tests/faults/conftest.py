"""The builds every fault test compares with, each made once per `make fault-test`."""

from __future__ import annotations

import pytest

from tests.faults.harness import Build, run_cli


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Build:
    """The sample built by `gapreplay corpus` with nothing going wrong."""
    build = Build.under(tmp_path_factory.mktemp("reference"))
    run_cli(build.corpus_args(), build.lakehouse.parent / "corpus.log")
    return build


@pytest.fixture(scope="session")
def cleaned(tmp_path_factory) -> Build:
    """The sample ingested and cleaned: what the dedup stage starts from."""
    build = Build.under(tmp_path_factory.mktemp("cleaned"))
    run_cli(build.corpus_args("--to", "clean"), build.lakehouse.parent / "corpus.log")
    return build
