"""download.http and the loopback mirror the download tests share: resume after a dropped
connection and after a killed process, a server that ignores Range, Retry-After on 429/503,
bounded retries, the per-host rate limit, directory listings and safe names.

`Mirror` serves a directory tree on 127.0.0.1 like the real hosts do (Apache- or nginx-style
indexes, HEAD, Range, If-Range, ETag) and can drop a body midway, ignore Range, answer
given statuses first, or send slowly. It records every request (method, path, headers, time).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from rich.console import Console

import download
from download.files import UnsafePath, read_manifest, safe_path
from download.http import parse_retry_after
from download.listing import links, parse_index
from tests.conftest import FIXTURES, REPO

# Fast and quiet: a high rate, tiny backoffs, no progress bar.
FAST: dict[str, Any] = {
    "rate": 500.0,
    "backoff_s": 0.01,
    "backoff_max_s": 0.05,
    "timeout_s": 10.0,
    "progress": False,
}
PUBMED_XML = FIXTURES / "pubmed_xml"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float


class Mirror:
    """A loopback HTTP server over `root` with fault injection; use as a context manager."""

    def __init__(self, root: Path, listing: str = "apache") -> None:
        self.root = root
        self.listing = listing
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.drop: dict[str, list[int]] = {}  # path -> body bytes to send, then cut; per GET
        self.ignore_range: set[str] = set()
        self.errors: dict[str, list[tuple[int, str | None]]] = {}  # path -> (status, Retry-After)
        self.slow: dict[str, float] = {}  # path -> seconds between 8 KiB chunks
        self.pages: dict[str, bytes] = {}  # path -> an HTML body served instead
        handler = type("Handler", (_Handler,), {"mirror": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Mirror:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seen(self, method: str = "GET", contains: str = "") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.method == method and contains in r.path]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _Server(ThreadingHTTPServer):
    """Notes when each connection was accepted, before a handler thread starts: request
    times then show the client's pacing, not this process's thread scheduling."""

    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted: dict[tuple[str, int], float] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted[client_address] = time.monotonic()
        super().process_request(request, client_address)


def _human(n: int) -> str:
    """Apache's FancyIndexing size: bytes under 1K, else 1.2K / 19M."""
    if n < 1024:
        return str(n)
    for unit in "KMGT":
        n_units = n / 1024
        if n_units < 1024:
            return f"{n_units:.1f}{unit}" if n_units < 10 else f"{n_units:.0f}{unit}"
        n = int(n_units)
    return f"{n}P"


def index_html(path: str, folder: Path, style: str) -> bytes:
    """A directory index as Apache (NCBI) or nginx writes it."""
    rows = []
    for child in sorted(folder.iterdir()):
        name = child.name + ("/" if child.is_dir() else "")
        stat = child.stat()
        size = "-" if child.is_dir() else stat.st_size
        if style == "apache":
            date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(stat.st_mtime))
            shown = size if size == "-" else _human(size)
            rows.append(f'<a href="{quote(name)}">{name}</a>{" " * 10}{date}  {shown:>5}  ')
        else:
            date = time.strftime("%d-%b-%Y %H:%M", time.gmtime(stat.st_mtime))
            rows.append(f'<a href="{quote(name)}">{name}</a>{" " * 20}{date}{size:>20}')
    parent = path.rstrip("/").rsplit("/", 1)[0] + "/"
    if style == "apache":
        head = (
            f"<html><head><title>Index of {path}</title></head><body><h1>Index of {path}</h1>"
            '<pre><a href="?C=N;O=D">Name</a>  <a href="?C=M;O=A">Last modified</a>  Size<hr>'
            f'<a href="{parent}">Parent Directory</a>                    -\n'
        )
    else:
        head = (
            f'<html><head><title>Index of {path}</title></head><body><pre><a href="../">../</a>\n'
        )
    return (head + "\n".join(rows) + "\n</pre><hr></body></html>\n").encode()


class _Handler(BaseHTTPRequestHandler):
    mirror: Mirror

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        m = self.mirror
        path = urlsplit(self.path).path
        with m.lock:
            m.requests.append(
                Seen(
                    self.command,
                    path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.server.accepted[self.client_address],  # type: ignore[attr-defined]
                )
            )
            queued = m.errors.get(path)
            error = queued.pop(0) if queued else None
        if error is not None:
            self.send_response(error[0])
            if error[1] is not None:
                self.send_header("Retry-After", error[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        fs = m.root / unquote(path).lstrip("/")
        if path in m.pages:
            data, mtime, ctype = m.pages[path], 0.0, "text/html"
        elif fs.is_dir() and fs.resolve().is_relative_to(m.root.resolve()):
            if not path.endswith("/"):
                self.send_response(301)
                self.send_header("Location", path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data, mtime, ctype = index_html(path, fs, m.listing), 0.0, "text/html"
        elif fs.is_file() and fs.resolve().is_relative_to(m.root.resolve()):
            data, mtime = fs.read_bytes(), fs.stat().st_mtime
            ctype = "application/octet-stream"
        else:
            self.send_error(404)
            return
        etag = '"' + hashlib.md5(data).hexdigest()[:16] + '"'
        modified = formatdate(mtime, usegmt=True)
        status, start = 200, 0
        wanted = self.headers.get("Range")
        if wanted and path not in m.ignore_range:
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range in (etag, modified):
                start = int(re.match(r"bytes=(\d+)-", wanted).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        if path not in m.ignore_range:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        with m.lock:
            cuts = m.drop.get(path)
            cut = cuts.pop(0) if cuts else None
        try:
            if cut is not None:
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif path in m.slow:
                for i in range(0, len(payload), 8192):
                    self.wfile.write(payload[i : i + 8192])
                    self.wfile.flush()
                    time.sleep(m.slow[path])
            else:
                self.wfile.write(payload)
        except (ConnectionError, OSError):
            pass  # the client went away (the kill test)


def md5_line(name: str, data: bytes) -> str:
    """NLM's .md5 format."""
    return f"MD5({name})= {hashlib.md5(data).hexdigest()}\n"


def build_pubmed(root: Path, wrong_md5: tuple[str, ...] = ()) -> dict[str, bytes]:
    """/pubmed/baseline/ and /pubmed/updatefiles/ from the real NLM fixture files: three
    baseline files and two updates, each with its .md5 (wrong for the names in `wrong_md5`),
    plus the README and stats page NLM keeps beside them."""
    files = {
        "baseline/pubmed26n0001.xml.gz": (PUBMED_XML / "pubmedsample_2019.xml.gz").read_bytes(),
        "baseline/pubmed26n0002.xml.gz": gzip.compress(
            (PUBMED_XML / "medsamp2014.xml").read_bytes(), mtime=0
        ),
        "baseline/pubmed26n0003.xml.gz": (PUBMED_XML / "pubmed21n0001_subset.xml.gz").read_bytes(),
        "updatefiles/pubmed26n0004.xml.gz": (
            PUBMED_XML / "pubmed21n1001_subset.xml.gz"
        ).read_bytes(),
        "updatefiles/pubmed26n0005.xml.gz": (
            PUBMED_XML / "test_current_medline.xml.gz"
        ).read_bytes(),
    }
    for rel, data in files.items():
        path = root / "pubmed" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = md5_line(path.name, data if path.name not in wrong_md5 else b"not the file")
        (path.parent / (path.name + ".md5")).write_text(digest)
    (root / "pubmed/baseline/README.txt").write_text("PubMed baseline\n")
    (root / "pubmed/baseline/stats.html").write_text("<html></html>\n")
    return files


def fetch(source: str, to: Path, mirror: Mirror, **kwargs: Any) -> download.DownloadReport:
    """download.run against the mirror, fast and quiet."""
    options = {**FAST, **kwargs.pop("options", {})}
    console = Console(file=io.StringIO(), width=200)
    return download.run(source, to, base_url=mirror.url, options=options, console=console, **kwargs)


FIRST = "/pubmed/baseline/pubmed26n0001.xml.gz"


@pytest.fixture
def pubmed_mirror(tmp_path: Path):
    with Mirror(tmp_path / "www") as mirror:
        yield mirror


@pytest.fixture
def first_file(pubmed_mirror: Mirror) -> bytes:
    """The bytes of pubmed26n0001.xml.gz (218 KB), the file the resume tests fetch."""
    return build_pubmed(pubmed_mirror.root)["baseline/pubmed26n0001.xml.gz"]


def range_headers(mirror: Mirror, path: str = FIRST) -> list[str | None]:
    return [g.headers.get("range") for g in mirror.seen("GET") if g.path == path]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_dropped_connection_resumes_with_range(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.drop[FIRST] = [100_000]
    report = fetch("pubmed", to, pubmed_mirror, max_files=1)
    gets = [g for g in pubmed_mirror.seen("GET") if g.path == FIRST]
    assert report.fetched == 1 and report.failed == 0
    assert [g.headers.get("range") for g in gets] == [None, "bytes=100000-"]
    # If-Range carries the first response's ETag, so a changed file would come whole.
    assert gets[1].headers["if-range"].startswith('"')
    data = first_file
    assert _md5(to / "baseline/pubmed26n0001.xml.gz") == hashlib.md5(data).hexdigest()
    # Only the missing part crossed the wire again.
    assert report.bytes == len(data)


def test_server_ignoring_range_restarts_the_file(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.drop[FIRST] = [100_000]
    pubmed_mirror.ignore_range.add(FIRST)
    report = fetch("pubmed", to, pubmed_mirror, max_files=1)
    assert range_headers(pubmed_mirror) == [None, "bytes=100000-"]
    data = first_file
    out = to / "baseline/pubmed26n0001.xml.gz"
    assert report.fetched == 1
    assert out.stat().st_size == len(data) and _md5(out) == hashlib.md5(data).hexdigest()


def test_failed_run_leaves_a_part_that_the_next_run_continues(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.drop[FIRST] = [100_000]
    first = fetch("pubmed", to, pubmed_mirror, max_files=1, options={"retries": 0})
    part = to / "baseline/pubmed26n0001.xml.gz.part"
    assert first.failed == 1 and first.fetched == 0
    assert part.stat().st_size == 100_000
    assert not (to / "baseline/pubmed26n0001.xml.gz").exists()
    assert [r for r in read_manifest(to) if r["status"] == "ok"] == []
    pubmed_mirror.clear()
    second = fetch("pubmed", to, pubmed_mirror, max_files=1)
    assert range_headers(pubmed_mirror) == ["bytes=100000-"]
    data = first_file
    assert second.fetched == 1 and second.bytes == len(data) - 100_000
    assert _md5(to / "baseline/pubmed26n0001.xml.gz") == hashlib.md5(data).hexdigest()
    assert not part.exists()


def test_killed_process_resumes_from_its_part(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.slow[FIRST] = 0.03  # ~0.8 s for the 218 KB file
    script = (
        "import io, sys; from pathlib import Path; from rich.console import Console;"
        "import download;"
        "download.run('pubmed', Path(sys.argv[1]), base_url=sys.argv[2], max_files=1,"
        " options={'progress': False, 'rate': 500.0}, console=Console(file=io.StringIO()))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", script, str(to), pubmed_mirror.url], env=env)
    part = to / "baseline/pubmed26n0001.xml.gz.part"
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size >= 40_000):
        assert child.poll() is None and time.monotonic() < deadline, "the child never got going"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    at_kill = part.stat().st_size
    data = first_file
    assert 0 < at_kill < len(data)
    pubmed_mirror.slow.clear()
    pubmed_mirror.clear()
    report = fetch("pubmed", to, pubmed_mirror, max_files=1)
    assert range_headers(pubmed_mirror) == [f"bytes={at_kill}-"]
    assert report.fetched == 1
    assert _md5(to / "baseline/pubmed26n0001.xml.gz") == hashlib.md5(data).hexdigest()


def test_retry_after_is_honoured_on_503_and_429(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.errors[FIRST] = [(503, "1"), (429, "1")]
    report = fetch("pubmed", to, pubmed_mirror, max_files=1)
    gets = [g for g in pubmed_mirror.seen("GET") if g.path == FIRST]
    assert report.fetched == 1 and len(gets) == 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(gets)]
    assert all(gap >= 0.95 for gap in gaps), gaps


def test_retries_are_bounded(pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes) -> None:
    to = tmp_path / "pubmed"
    pubmed_mirror.errors[FIRST] = [(503, None)] * 10
    report = fetch("pubmed", to, pubmed_mirror, max_files=1, options={"retries": 2})
    assert report.failed == 1 and "gave up after 3 attempts" in report.errors[0]
    assert len([g for g in pubmed_mirror.seen("GET") if g.path == FIRST]) == 3
    # A Retry-After longer than allowed fails at once instead of sleeping for an hour.
    pubmed_mirror.errors[FIRST] = [(429, "3600")]
    started = time.monotonic()
    report = fetch("pubmed", to, pubmed_mirror, max_files=1, options={"max_retry_after_s": 5})
    assert report.failed == 1 and "Retry-After 3600s" in report.errors[0]
    assert time.monotonic() - started < 3


def test_rate_limit_spaces_requests_to_a_host(
    pubmed_mirror: Mirror, tmp_path: Path, first_file: bytes
) -> None:
    rate = 10.0
    report = fetch("pubmed", tmp_path / "pubmed", pubmed_mirror, options={"rate": rate})
    assert report.fetched == 5
    times = sorted(r.at for r in pubmed_mirror.requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Listings, checksums and files: 2 + 5 + 5 requests. The client spaces them exactly
    # 1/rate apart; what the server sees adds connection and thread-start jitter.
    assert len(times) == 12
    assert min(gaps) >= 1 / rate - 0.04, gaps
    assert times[-1] - times[0] >= 11 / rate - 0.04


def test_index_parsing_apache_nginx_and_unsafe_names(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.xml.gz").write_bytes(b"x" * 5000)
    (folder / "b.xml.gz.md5").write_bytes(b"x" * 60)
    (folder / "sub").mkdir()
    for style in ("apache", "nginx"):
        html = index_html("/x/dir/", folder, style).decode()
        entries, unsafe = parse_index(html, "https://host.example/x/dir/")
        assert [e.name for e in entries] == ["a.xml.gz", "b.xml.gz.md5"] and unsafe == []
        assert entries[0].url == "https://host.example/x/dir/a.xml.gz"
        assert entries[0].modified is not None
        if style == "nginx":
            assert (entries[0].size, entries[1].size) == (5000, 60)
        else:  # Apache's "4.9K" is an estimate only
            assert entries[0].size is None and entries[0].approx_size == int(4.9 * 1024)
            assert entries[1].size == 60
    hostile = (
        '<a href="ok.xml.gz">ok</a> <a href="../../etc/passwd.xml.gz">x</a>'
        ' <a href="/abs/evil.xml.gz">x</a> <a href="..%2F..%2Fevil.xml.gz">x</a>'
        ' <a href="%2e%2e/evil.xml.gz">x</a> <a href=".hidden.xml.gz">x</a>'
        ' <a href="https://elsewhere.example/evil.xml.gz">x</a>'
    )
    entries, unsafe = parse_index(hostile, "https://host.example/x/dir/")
    assert [e.name for e in entries] == ["ok.xml.gz"]
    assert unsafe == [
        "../../etc/passwd.xml.gz",
        "/abs/evil.xml.gz",
        "..%2F..%2Fevil.xml.gz",
        "%2e%2e/evil.xml.gz",
        ".hidden.xml.gz",
    ]
    for bad in ("../x", "a/../../x", "/etc/x", "a/.x", "a//b", ""):
        with pytest.raises(UnsafePath):
            safe_path(tmp_path, bad)
    assert safe_path(tmp_path, "a/b.pdf") == tmp_path / "a" / "b.pdf"


def test_page_links_and_retry_after_dates() -> None:
    page = (
        '<base href="https://h.example/docs/"><a href="a.pdf#p2">a</a><a href="/b.html">b</a>'
        '<a href="mailto:x@y.z">m</a><a href="a.pdf">again</a><a href="javascript:void(0)">j</a>'
    )
    assert links(page, "https://h.example/index.html") == [
        "https://h.example/docs/a.pdf",
        "https://h.example/b.html",
    ]
    assert parse_retry_after("7") == 7.0
    now = time.time()
    assert 59 <= parse_retry_after(formatdate(now + 60, usegmt=True), now) <= 61
    assert parse_retry_after("soon") is None


def test_only_https_without_a_mirror(tmp_path: Path) -> None:
    # No mirror: the real endpoints are https, and a plain-http URL is refused before any
    # connection (this machine has no internet, so nothing else is tried).
    report = download.run(
        "replay",
        tmp_path / "r",
        options={**FAST, "urls": ["http://127.0.0.1:9/x.jsonl"], "retries": 0},
        console=Console(file=io.StringIO()),
    )
    assert report.failed == 1 and "only https" in report.errors[0]
