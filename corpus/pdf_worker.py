"""PDF and HTML extraction in a reusable worker subprocess, under a wall-time limit.

A Python timeout cannot interrupt a call inside MuPDF's C code, and a crash there kills the
process it runs in (STACK.md). So extraction runs in `python -m corpus.pdf_worker <kind>`,
which the caller talks to over pipes with length-prefixed pickles. A document that runs past
its limit gets the worker killed (SIGKILL) and comes back as Quarantined("Timeout"); a worker
that dies comes back as Quarantined("WorkerCrashed"). Either way the next document starts a
fresh worker, so one bad file costs one document, never the calling process (a Spark task).
The worker is kept between documents: its start (~0.3 s, imports included) is paid once.

Error classes: EncryptedPdf, CorruptPdf, ImageOnlyPdf, TooManyPages (from corpus.pdf_text),
EmptyExtraction (HTML), Timeout, WorkerCrashed (also for an unexpected exception in the
worker, whose type and message are kept in the error message).

Test hook: with GAPREPLAY_WORKER_FAULT set to "crash" (SIGSEGV), "exit" (os._exit) or "hang"
in the environment of the process that starts the worker, the worker fails that way on every
request instead of extracting.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from corpus.quarantine import Quarantined

if TYPE_CHECKING:
    from corpus.pdf_text import PdfText

FAULT_ENV = "GAPREPLAY_WORKER_FAULT"
LOCATOR = "document"
_FRAME = struct.Struct("!Q")
_START_TIMEOUT_S = 120.0
# The directory that holds the corpus package, so that the worker imports this same code
# (also when it came from a zip on sys.path, as Spark's --py-files do).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


class WorkerError(Exception):
    """The worker process did not answer: it died, hung or could not start."""


class PdfWorker:
    """One worker process for jobs of one kind ("pdf" or "html"), started on first use and
    restarted after a timeout or a crash. Calls are serialised by a lock."""

    def __init__(self, kind: str = "pdf") -> None:
        if kind not in _JOBS:
            raise ValueError(f"unknown job kind {kind!r}")
        self.kind = kind
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()

    def __enter__(self) -> PdfWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, args: tuple[Any, ...], timeout_s: float) -> Any:
        """The job's result, or a Quarantined for a refused document, a timeout or a crash."""
        with self._lock:
            try:
                proc = self._ensure_started()
                _write_frame(proc.stdin, pickle.dumps(args))  # type: ignore[arg-type]
                reply = pickle.loads(_read_frame(proc.stdout, time.monotonic() + timeout_s))  # type: ignore[arg-type]
            except TimeoutError:
                self._kill()
                return Quarantined(LOCATOR, "Timeout", f"no result after {timeout_s:g} s")
            except (WorkerError, OSError) as exc:
                return Quarantined(LOCATOR, "WorkerCrashed", self._death_notice(exc))
        status, payload = reply
        if status == "ok":
            return payload
        error_class, message = payload
        return Quarantined(LOCATOR, error_class, message)

    def close(self) -> None:
        """Stop the worker (it exits when its input closes); a later call starts a new one."""
        with self._lock:
            self._forget_if_forked()
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]

    def _forget_if_forked(self) -> None:
        # A process forked from the owner shares its worker's pipes: it must start its own
        # worker and leave the owner's alone.
        if self._owner != os.getpid():
            self._proc, self._owner = None, os.getpid()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        self._forget_if_forked()
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._kill()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "corpus.pdf_worker", self.kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._proc = proc
        try:
            ready = _read_frame(proc.stdout, time.monotonic() + _START_TIMEOUT_S)  # type: ignore[arg-type]
        except TimeoutError as exc:
            self._kill()
            raise WorkerError(f"the worker did not start within {_START_TIMEOUT_S:g} s") from exc
        if ready != b"ready":
            raise WorkerError(f"unexpected greeting from the worker: {ready[:80]!r}")
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def _death_notice(self, exc: Exception) -> str:
        proc, code = self._proc, None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=5)
        self._kill()
        if code is not None and code < 0:
            return f"the worker died of {signal.Signals(-code).name}"
        if code is not None:
            return f"the worker exited with status {code}"
        return f"the worker stopped answering: {exc}"


_DEFAULT: dict[str, PdfWorker] = {}
_DEFAULT_LOCK = threading.Lock()


def default_worker(kind: str) -> PdfWorker:
    """The process-wide worker for `kind`, shared by all callers of this process."""
    with _DEFAULT_LOCK:
        if kind not in _DEFAULT:
            _DEFAULT[kind] = PdfWorker(kind)
        return _DEFAULT[kind]


@atexit.register
def _close_defaults() -> None:
    for worker in _DEFAULT.values():
        worker.close()


def extract_pdf_isolated(path: str, max_pages: int, timeout_s: float) -> PdfText | Quarantined:
    """`corpus.pdf_text.extract_pdf` of the file at `path`, run in the shared worker process
    with a page limit and a wall-time limit."""
    return default_worker("pdf").run((path, max_pages), timeout_s)


# The worker side ------------------------------------------------------------------------


def _pdf_job(path: str, max_pages: int) -> Any:
    from corpus.pdf_text import extract_pdf

    with open(path, "rb") as f:
        return extract_pdf(f.read(), max_pages)


def _html_job(data: bytes, url: str | None) -> Any:
    from corpus.html_text import extract_html_in_process

    return extract_html_in_process(data, url)


_JOBS = {"pdf": _pdf_job, "html": _html_job}


def _serve(kind: str) -> None:
    # Requests come on stdin and replies go out on the original stdout; anything printed
    # (PyMuPDF prints messages on stdout) goes to stderr instead of corrupting the replies.
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    job = _JOBS[kind]
    if kind == "pdf":
        import pymupdf

        from corpus import pdf_text  # noqa: F401  (imported before the first deadline)

        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
    else:
        import logging

        import trafilatura  # noqa: F401

        # trafilatura logs "discarding data" for every empty page; the caller is told anyway.
        logging.getLogger("trafilatura").setLevel(logging.ERROR)
    _write_frame(replies, b"ready")
    fault = os.environ.get(FAULT_ENV)
    while True:
        try:
            args = pickle.loads(_read_frame(requests, None))
        except WorkerError:
            return  # the caller closed the pipe
        _inject(fault)
        try:
            reply: tuple[str, Any] = ("ok", job(*args))
        except Exception as exc:
            # PdfError subclasses name their quarantine class; anything else is unexpected.
            error_class = getattr(exc, "error_class", None)
            message = str(exc) if error_class else f"{type(exc).__name__}: {exc}"
            reply = ("error", (error_class or "WorkerCrashed", message))
        _write_frame(replies, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def _inject(fault: str | None) -> None:
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "exit":
        os._exit(3)
    elif fault == "hang":
        time.sleep(3600)


# Framing ---------------------------------------------------------------------------------


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _read_frame(stream: BinaryIO, deadline: float | None) -> bytes:
    """One length-prefixed frame; TimeoutError past `deadline`, WorkerError at end of input."""
    header = _read_exact(stream, _FRAME.size, deadline)
    return _read_exact(stream, _FRAME.unpack(header)[0], deadline)


def _read_exact(stream: BinaryIO, n: int, deadline: float | None) -> bytes:
    fd = stream.fileno()
    chunks: list[bytes] = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise WorkerError("end of input")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


if __name__ == "__main__":
    _serve(sys.argv[1])
