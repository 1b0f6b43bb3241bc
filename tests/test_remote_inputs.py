"""Inputs on an object store: listing (files, folders, globs) through fsspec, the change check
the pipeline skips stages by, URIs kept as written by the config loader, and a file parsed
from its local copy into the same events as from disk. fsspec's in-memory filesystem stands
in for the store (tests/test_object_store.py runs the pipeline with inputs on S3)."""

from __future__ import annotations

import fsspec
import pytest

from corpus.pubmed_xml import parse_pubmed_file
from spark_jobs import storage
from spark_jobs.config import load_config
from spark_jobs.ingest_common import file_events, input_files
from tests.conftest import FIXTURES

SUFFIXES = (".xml", ".xml.gz")
BASE = "memory://gapreplay-inputs"


@pytest.fixture
def store():
    fs = fsspec.filesystem("memory")
    for name in ("b/pubmed25n0002.xml.gz", "a/pubmed25n0001.xml.gz", "a/deep/x.xml", "a/notes.txt"):
        fs.pipe_file(f"/gapreplay-inputs/{name}", b"data")
    yield fs
    fs.rm("/gapreplay-inputs", recursive=True)


def test_folders_globs_and_files_on_a_store_in_file_name_order(store, tmp_path):
    local = tmp_path / "pubmed25n0000.xml"
    local.write_text("<x/>")
    found = input_files(
        [f"{BASE}/a", f"{BASE}/b/*.gz", str(local), f"{BASE}/a/notes.txt"], SUFFIXES
    )
    assert found == [
        f"{BASE}/a/notes.txt",  # named, so taken whatever its suffix
        str(local),
        f"{BASE}/a/pubmed25n0001.xml.gz",
        f"{BASE}/b/pubmed25n0002.xml.gz",
        f"{BASE}/a/deep/x.xml",
    ]


def test_local_folders_globs_and_relative_paths_the_same_way(tmp_path, monkeypatch):
    for name in ("in/b.xml", "in/sub/a.xml.gz", "in/skip.txt", "g/c.xml", "g/d.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    assert input_files(
        ["in", f"{tmp_path}/g/*.xml", "file:" + str(tmp_path / "g/d.json")], SUFFIXES
    ) == [
        str(tmp_path / "in/sub/a.xml.gz"),
        str(tmp_path / "in/b.xml"),
        str(tmp_path / "g/c.xml"),
        str(tmp_path / "g/d.json"),
    ]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        input_files(["nothing"], SUFFIXES)


def test_a_missing_input_on_a_store_is_a_user_error(store):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        input_files([f"{BASE}/nothing"], SUFFIXES)
    with pytest.raises(FileNotFoundError, match="no input matches"):
        input_files([f"{BASE}/a/*.json"], SUFFIXES)


def test_file_state_changes_when_the_object_does(store):
    location = f"{BASE}/a/pubmed25n0001.xml.gz"
    before = storage.file_state(location)
    assert before[:2] == [location, 4]
    store.pipe_file("/gapreplay-inputs/a/pubmed25n0001.xml.gz", b"other data")
    assert storage.file_state(location) != before
    assert storage.file_state(f"{BASE}/gone.xml") == [f"{BASE}/gone.xml", None]


def test_config_keeps_input_uris_and_resolves_relative_paths(tmp_path):
    config = tmp_path / "corpus.yaml"
    config.write_text("sources:\n  pubmed:\n    inputs: [s3a://bucket/pubmed, local/pubmed]\n")
    assert load_config(config).sources.pubmed.inputs == [
        "s3a://bucket/pubmed",
        str(tmp_path / "local" / "pubmed"),
    ]


def test_a_file_on_a_store_gives_the_events_of_its_local_copy(store):
    source = FIXTURES / "pubmed_xml" / "pubmedsample_2019.xml.gz"
    location = f"{BASE}/{source.name}"
    store.pipe_file(f"/gapreplay-inputs/{source.name}", source.read_bytes())
    remote = list(file_events(location, "run", parse_pubmed_file))
    local = list(file_events(str(source), "run", parse_pubmed_file))
    assert len(remote) == len(local) > 0
    assert {e["source_file"] for e in remote} == {location}
    for a, b in zip(remote, local, strict=True):
        assert {**a, "source_file": None} == {**b, "source_file": None}
