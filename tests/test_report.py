"""The auditors' HTML report: its numbers against Spark's reading of the same build, and its
charts rendered by a real headless Chromium (CI installs it; a missing browser fails)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import fsspec
import matplotlib.image
import pytest
from pyspark.sql import functions as F

from gapreplay.report import markdown_to_html, overview_tables, write_report
from spark_jobs.summary import stage_counts

SECTIONS = (
    "stages",
    "removals",
    "lengths",
    "dedup",
    "languages",
    "decontamination",
    "card",
    "build",
    "versions",
)


class _Tables(HTMLParser):
    """The text of every cell of every <table class=...>, by class; the <img> sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.body: dict[str, str | None] = {}
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("class"):
            self._rows = self.tables.setdefault(attributes["class"] or "", [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(attributes.get("src") or "")
        elif tag == "body":
            self.body = attributes

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._rows is not None and self._cell is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Tables:
    parser = _Tables()
    parser.feed(text)
    return parser


def _records(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _number(text: str) -> int:
    return int(text.replace(",", "")) if text else 0


@pytest.fixture(scope="module")
def report(sample_build, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(sample_build.root, out, sample_build.out)


def test_sections_and_self_contained(report: Path, sample_build) -> None:
    text = report.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'<section id="{key}">' in text, key
    # Everything inline: no stylesheet, script or image fetched from anywhere.
    assert not re.search(r"<link|<script[^>]*src=|(src|href)=\"(https?:|//|file:)", text)
    parsed = _parse(text)
    assert len(parsed.images) >= 8
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # The dataset card the shards job wrote, rendered, with the build's config hash.
    manifest = json.loads((sample_build.out / "manifest.json").read_text())
    assert "<h3>Dataset card</h3>" in text and manifest["config_sha256"] in text
    runs = _records(parsed.tables["runs"])
    assert {r["stage"]: r["config_sha256"] for r in runs}["shards"] == manifest["config_sha256"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["config_sha256"]) for r in runs)


def test_stage_counts_match_spark(report: Path, spark, sample_build) -> None:
    expected = stage_counts(spark, sample_build.root)
    documents = _records(_parse(report.read_text(encoding="utf-8")).tables["stages-documents"])
    got = {
        (row["stage"], source): _number(row[source])
        for row in documents
        for source in row
        if source not in ("stage", "total")
    }
    for r in expected:
        assert got[(r["stage"], r["source"])] == r["documents"], r
    assert sum(got.values()) == sum(r["documents"] for r in expected)
    tokens = overview_tables(sample_build.root)["tokens"]
    for r in expected:
        if r["tokens"] is not None:
            assert tokens.loc[r["stage"], r["source"]] == r["tokens"], r


def test_removals_match_decisions(report: Path, spark, sample_build) -> None:
    decisions = spark.read.format("delta").load(f"{sample_build.root}/silver/decisions")
    expected = {
        (r["stage"], r["reason"], r["source"]): r["count"]
        for r in decisions.filter("NOT kept").groupBy("stage", "reason", "source").count().collect()
    }
    assert expected, "the sample build drops documents"
    rows = _records(_parse(report.read_text(encoding="utf-8")).tables["removals"])
    got = {(r["stage"], r["reason"], r["source"]): _number(r["documents"]) for r in rows}
    assert got == expected
    hits = (
        decisions.filter("stage = 'decontamination' AND NOT kept")
        .select(F.explode(F.from_json("detail", "items array<struct<benchmark:string>>").items))
        .groupBy("col.benchmark")
        .agg(F.count("*").alias("n"))
        .collect()
    )
    table = _records(_parse(report.read_text(encoding="utf-8")).tables["decontamination"])
    assert {r["benchmark"]: _number(r["matches"]) for r in table} == {
        r["benchmark"]: r["n"] for r in hits
    }


def test_versions_and_lengths(report: Path, spark, sample_build) -> None:
    from delta.tables import DeltaTable

    parsed = _parse(report.read_text(encoding="utf-8"))
    versions = {r["table"]: _number(r["version"]) for r in _records(parsed.tables["versions"])}
    for name in ("silver/documents", "silver/decisions", "gold/corpus", "_runs"):
        history = DeltaTable.forPath(spark, f"{sample_build.root}/{name}").history(1)
        assert versions[name.replace("/", "_")] == history.first()["version"], name
    documents = spark.read.format("delta").load(f"{sample_build.root}/silver/documents")
    chars = {
        r["source"]: r["total"]
        for r in documents.groupBy("source").agg(F.sum("n_chars").alias("total")).collect()
    }
    lengths = _records(parsed.tables["lengths-n_chars"])
    assert {r["source"]: _number(r["total"]) for r in lengths} == chars
    languages = {
        (r["language"], source): _number(n)
        for r in _records(parsed.tables["languages"])
        for source, n in r.items()
        if source != "language" and _number(n)
    }
    assert languages == {
        (r["language"], r["source"]): r["count"]
        for r in documents.groupBy("language", "source").count().collect()
    }


def test_empty_lakehouse_and_escaping(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "dataset_card.md").write_text(
        "# Card <script>alert(1)</script>\n\n"
        '| a | b |\n|---|---|\n| <img src=x onerror="x()"> | `c` |\n'
    )
    out = write_report(str(tmp_path / "no-lakehouse"), tmp_path / "r.html", shards)
    text = out.read_text(encoding="utf-8")
    assert text.count('class="nodata"') >= 8
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<code>c</code>" in text
    assert all(frame.empty for frame in overview_tables(str(tmp_path / "none")).values())
    assert markdown_to_html("- **a** & b") == "<ul><li><strong>a</strong> &amp; b</li></ul>"


def _chromium() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "Chromium is not installed: the report test renders the page in a headless browser"
            " (apt-get install chromium, or set CHROMIUM to the browser's path)"
        )
    return found


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # --no-sandbox: the sandbox refuses to run as root (CI containers); a profile of its
    # own so that parallel runs do not share a lock.
    return subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_chromium_renders_every_image(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    url = report.resolve().as_uri()
    dumped = _headless(browser, tmp_path / "profile", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    body = _parse(dumped.stdout).body
    n_images = len(_parse(report.read_text(encoding="utf-8")).images)
    assert body.get("data-images-total") == str(n_images), body
    assert body.get("data-images-ok") == str(n_images), "some charts did not decode"

    screenshot = tmp_path / "report.png"
    shot = _headless(
        browser,
        tmp_path / "profile",
        "--window-size=1200,3000",
        f"--screenshot={screenshot}",
        url,
    )
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    assert screenshot.stat().st_size > 50_000
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    # A page of tables and charts, not a blank or error page: many pixels are not white and
    # they vary.
    assert (pixels.mean(axis=2) < 0.9).mean() > 0.05
    assert pixels.std() > 0.1


def test_the_dataset_card_is_read_from_a_shard_folder_on_a_store(tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/gapreplay-report/shards/dataset_card.md", b"# Remote card\n\nmade in S3\n")
    try:
        out = write_report(
            str(tmp_path / "no-lakehouse"), tmp_path / "r.html", "memory://gapreplay-report/shards"
        )
    finally:
        fs.rm("/gapreplay-report", recursive=True)
    text = out.read_text(encoding="utf-8")
    assert "Remote card" in text and "made in S3" in text
