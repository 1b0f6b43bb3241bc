"""HTTP for the download stage: one token bucket per host, bounded retries with exponential
backoff (a server's Retry-After wins), and response bodies that continue with a `Range`
request after a dropped connection.

Only urllib from the standard library: the fetchers need HEAD, Range/If-Range and redirects,
nothing a third-party client would add. Redirects from https to http are refused, and an
Authorization header is never carried to another host.
"""

from __future__ import annotations

import email.utils
import http.client
import itertools
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

USER_AGENT = "gapreplay-download/0.1 (medical LLM corpus builder; polite bulk fetcher)"
# Statuses that say "try again later"; any other 4xx/5xx is final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK_BYTES = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")

T = TypeVar("T")


class DownloadError(Exception):
    """A request that failed for good: a final status, or retries used up."""


class HttpStatusError(DownloadError):
    """A final (non-retryable) HTTP status."""

    def __init__(self, url: str, status: int, headers: http.client.HTTPMessage | None) -> None:
        super().__init__(f"{url}: HTTP {status}")
        self.url = url
        self.status = status
        self.headers = headers


class ContentChanged(DownloadError):
    """The resource changed between two parts of one resumed read."""


class _Transient(Exception):
    """A failure worth another try (dropped connection, timeout, 429, 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class HttpSettings:
    """How politely and how persistently to fetch."""

    rate: float = 1.0
    rates: dict[str, float] = field(default_factory=dict)
    retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 600.0
    timeout_s: float = 60.0
    user_agent: str = USER_AGENT
    allow_http: bool = False
    auth: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Validators:
    """What identifies one version of a resource: ETag, Last-Modified and length."""

    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None

    @classmethod
    def from_headers(cls, headers: http.client.HTTPMessage, total: int | None) -> Validators:
        return cls(headers.get("ETag"), headers.get("Last-Modified"), total)

    @property
    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else the date (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def same_as(self, other: Validators) -> bool:
        """False only when the two are known to name different versions."""
        if self.total is not None and other.total is not None and self.total != other.total:
            return False
        if self.etag and other.etag:
            return self.etag == other.etag
        if self.last_modified and other.last_modified:
            return self.last_modified == other.last_modified
        return True

    def as_dict(self) -> dict[str, str | int | None]:
        return {"etag": self.etag, "last_modified": self.last_modified, "total": self.total}


@dataclass(frozen=True)
class Head:
    """What a HEAD request told about a resource."""

    size: int | None
    etag: str | None
    last_modified: str | None
    accept_ranges: bool


class TokenBucket:
    """At most `rate` requests per second to one host. The bucket holds one token, so two
    requests are always at least 1/rate apart: a burst would break a per-second limit.
    (A client that waits for each answer before the next request, as this one does, spaces
    them by 1/rate plus the time to the answer's headers.)"""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def slow_to(self, rate: float) -> None:
        """Lower the rate (never raise it): e.g. to a robots.txt Crawl-delay."""
        with self._lock:
            self.interval = max(self.interval, 1.0 / rate)

    def acquire(self) -> None:
        """Wait for this host's next slot and take it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def answered(self) -> None:
        """The request just taken got its answer. The next one waits a full interval from
        now: a request held up between its slot and the wire (a busy machine) must not let
        the next one follow it closer than 1/rate."""
        with self._lock:
            self._next = max(self._next, self._clock() + self.interval)


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # type: ignore[override]
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]
        if new is None:
            return None
        old, nxt = urlsplit(req.full_url), urlsplit(new.full_url)
        if old.scheme == "https" and nxt.scheme != "https":
            raise urllib.error.HTTPError(
                newurl, code, "refused: redirect from https to plain http", headers, None
            )
        if old.netloc != nxt.netloc:
            # A token for the hub must not travel to the CDN it redirects to.
            new.remove_header("Authorization")
        return new


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Http:
    """A polite HTTP client: every request, retries and resumptions included, waits for its
    host's token bucket (a redirect it follows goes out at once: one request, two hops)."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._opener = urllib.request.build_opener(_Redirects)

    def bucket(self, url: str) -> TokenBucket:
        host = urlsplit(url).netloc.lower()
        if host not in self._buckets:
            hostname = urlsplit(url).hostname or host
            rate = self.settings.rates.get(host, self.settings.rates.get(hostname))
            self._buckets[host] = TokenBucket(rate or self.settings.rate, self.clock, self.sleep)
        return self._buckets[host]

    def open(
        self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        """One request, no retry: the response, or _Transient / DownloadError."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.settings.allow_http):
            raise DownloadError(f"{url}: only https is allowed here (http only for --base-url)")
        bucket = self.bucket(url)
        bucket.acquire()
        request = urllib.request.Request(url, method=method)
        request.add_header("User-Agent", self.settings.user_agent)
        # Bytes on disk must be the published bytes (checksums, Range offsets).
        request.add_header("Accept-Encoding", "identity")
        auth = self.settings.auth.get(parts.hostname or "")
        if auth:
            request.add_header("Authorization", auth)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            return self._opener.open(request, timeout=self.settings.timeout_s)
        except urllib.error.HTTPError as exc:
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if exc.code in RETRY_STATUSES:
                raise _Transient(f"HTTP {exc.code}", retry_after) from exc
            raise HttpStatusError(url, exc.code, exc.headers) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise DownloadError(f"{url}: {exc.reason}") from exc
            raise _Transient(f"{type(exc.reason).__name__}: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        finally:
            bucket.answered()

    def delay(self, url: str, attempt: int, exc: _Transient) -> float:
        """How long to wait before try `attempt + 1`, or DownloadError when out of tries."""
        if attempt >= self.settings.retries:
            raise DownloadError(f"{url}: {exc} (gave up after {attempt + 1} attempts)") from exc
        if exc.retry_after is not None:
            if exc.retry_after > self.settings.max_retry_after_s:
                raise DownloadError(
                    f"{url}: {exc}, Retry-After {exc.retry_after:.0f}s is more than "
                    f"max_retry_after_s {self.settings.max_retry_after_s:.0f}s"
                ) from exc
            return exc.retry_after
        return min(self.settings.backoff_max_s, self.settings.backoff_s * 2**attempt)

    def retrying(self, url: str, attempt: Callable[[], T]) -> T:
        """`attempt()` until it does not raise _Transient, with backoff in between."""
        for n in itertools.count():
            try:
                return attempt()
            except _Transient as exc:
                self.sleep(self.delay(url, n, exc))
        raise AssertionError("itertools.count() does not end")

    def head(self, url: str) -> Head:
        def attempt() -> Head:
            with self.open(url, method="HEAD") as response:
                length = response.headers.get("Content-Length")
                return Head(
                    int(length) if length and length.isdigit() else None,
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    response.headers.get("Accept-Ranges", "").lower() == "bytes",
                )

        return self.retrying(url, attempt)

    def get_bytes(self, url: str, limit: int = 64 << 20) -> bytes:
        """A small resource (listing, checksum, robots.txt, index page) in full."""

        def attempt() -> bytes:
            with self.open(url) as response:
                try:
                    data = response.read(limit + 1)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"{type(exc).__name__}: {exc}") from exc
                length = response.headers.get("Content-Length")
            if len(data) > limit:
                raise DownloadError(f"{url}: more than {limit} bytes")
            if length and length.isdigit() and len(data) < int(length):
                raise _Transient(f"connection closed after {len(data)} of {length} bytes")
            return data

        return self.retrying(url, attempt)

    def body(
        self,
        url: str,
        *,
        offset: int = 0,
        validators: Validators | None = None,
        rewind: bool = True,
        on_open: Callable[[int, Validators], None] | None = None,
    ) -> BodyStream:
        """The body of `url` from byte `offset` (see BodyStream)."""
        return BodyStream(self, url, offset, validators, rewind, on_open)


class BodyStream:
    """Iterates (position, bytes) over a body from `offset`, reconnecting with
    `Range: bytes=<position>-` (and If-Range) after a dropped connection or a short body.

    A server that answers a Range request with the whole body (200: it ignores Range, or the
    resource changed and If-Range failed): with `rewind` the chunks start again at position 0
    (the caller truncates what it wrote); without, the bytes before the position are skipped
    when the validators show the same version, and ContentChanged is raised otherwise.
    `on_open(start, validators)` is called on every response before its first chunk.
    """

    def __init__(
        self,
        http: Http,
        url: str,
        offset: int,
        validators: Validators | None,
        rewind: bool,
        on_open: Callable[[int, Validators], None] | None,
    ) -> None:
        self.http = http
        self.url = url
        self.offset = offset
        self.validators = validators
        self.rewind = rewind
        self.on_open = on_open
        self.total: int | None = None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        pos = self.offset
        failures = 0
        while True:
            try:
                opened = self._open(pos)
                if opened is None:
                    return
                response, start = opened
                with response:
                    if start < pos and self.rewind:
                        pos = start
                    cursor = start
                    while True:
                        try:
                            data = response.read(CHUNK_BYTES)
                        except (OSError, http.client.HTTPException) as exc:
                            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
                        if not data:
                            break
                        end = cursor + len(data)
                        if end > pos:
                            piece = data[pos - cursor :] if cursor < pos else data
                            yield pos, piece
                            pos += len(piece)
                            # A stall is what the retries bound, not a long file's drops.
                            failures = 0
                        cursor = end
                if self.total is not None and pos < self.total:
                    raise _Transient(f"connection closed at byte {pos} of {self.total}")
                return
            except _Transient as exc:
                self.http.sleep(self.http.delay(self.url, failures, exc))
                failures += 1

    def _open(self, pos: int) -> tuple[http.client.HTTPResponse, int] | None:
        headers = {}
        if pos > 0:
            headers["Range"] = f"bytes={pos}-"
            if self.validators is not None and self.validators.if_range:
                headers["If-Range"] = self.validators.if_range
        try:
            response = self.http.open(self.url, headers=headers)
        except HttpStatusError as exc:
            if exc.status != 416 or pos == 0:
                raise
            found = _UNSATISFIED_RANGE.search((exc.headers or {}).get("Content-Range", ""))
            if found and int(found.group(1)) == pos:
                self.total = pos
                return None  # everything was already there
            if not self.rewind:
                raise ContentChanged(f"{self.url}: shorter than the {pos} bytes read") from exc
            return self._open(0)
        if response.status == 206:
            found = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if not found or int(found.group(1)) != pos:
                response.close()
                raise DownloadError(f"{self.url}: asked for bytes {pos}-, got a different range")
            total = None if found.group(3) == "*" else int(found.group(3))
            start = pos
        elif response.status == 200:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            start = 0
        else:
            response.close()
            raise DownloadError(f"{self.url}: unexpected HTTP {response.status}")
        found_validators = Validators.from_headers(response.headers, total)
        changed = self.validators is not None and not self.validators.same_as(found_validators)
        if changed and start > 0:
            # 206 for a different version: the server ignored If-Range.
            response.close()
            if not self.rewind:
                raise ContentChanged(f"{self.url}: changed since byte {pos} was read")
            self.validators = None
            return self._open(0)
        if start < pos and not self.rewind and changed:
            response.close()
            raise ContentChanged(f"{self.url}: changed since byte {pos} was read")
        if self.validators is None or start == 0:
            self.validators = found_validators
        self.total = total
        if self.on_open is not None:
            self.on_open(start, found_validators)
        return response, start
