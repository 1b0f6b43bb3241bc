"""Replay: a token-budget sample of RedPajama, chosen while streaming, so the dataset itself
is never stored.

Inputs are the JSONL files of the Hugging Face dataset `togethercomputer/RedPajama-Data-1T-
Sample` (`https://huggingface.co/datasets/<repo>/resolve/main/<file>`), or any list of
RedPajama file URLs (`.jsonl`, `.json`, gzip-compressed or not). Each line is parsed as ingest
parses it (corpus.replay_jsonl: same doc_id, same subset) and offered to
corpus.sampler.StreamingSampler with

    approximate tokens = ceil(number of characters of `text` / chars_per_token)  (4.0)

so the kept set is the one `corpus.sampler.select` would pick from all documents: per subset
a prefix of the seed's priority order that reaches the subset's budget within one document.
The budget is split by `subset_shares` (default: RedPajama-1T's token shares); documents of
other subsets are not kept. With the mix's seed and a download budget at least the mix's
replay budget, the mix's own sample falls inside the downloaded one (up to the difference
between approximate and real token counts).

Only documents that were in the sample at some point are written, to
`<to>/_replay_state/candidates.spill.gz` (gzip members, one per checkpoint); for a random
order that is about budget x (1 + ln(input / budget)) tokens. When every input is done, the
kept documents are written as `<to>/<input stem>.kept.jsonl.gz` (original lines, the input's
line order, gzip with no timestamp: byte-identical across runs); a document seen twice is
kept from its first input and line. The file name keeps the input's subset tokens for ingest.

Restart: `_replay_state/state.json` is a checkpoint (sampler contents, spill length, per input
the byte offset after the last complete line and its validators) written every
`checkpoint_bytes` of input, after each input and when an input fails. A later run continues
each unfinished uncompressed input with `Range` from its offset; a compressed one restarts
from its first byte (a gzip stream cannot be entered midway). Offering a document again is
harmless (it was either kept, and is skipped, or rejected, and is rejected again), which is
what makes both safe. Changing budget, shares, seed or chars_per_token starts over.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from corpus.quarantine import Quarantined
from corpus.replay_jsonl import parse_line, subset_from_filename
from corpus.sampler import StreamingSampler
from download.core import Item, Session, origin_mirror
from download.files import file_hashes, is_safe_name, now_iso
from download.http import ContentChanged, DownloadError, Validators
from download.options import OptionsError, ReplayOptions

Options = ReplayOptions
HUB = "https://huggingface.co"
DEFAULT_RATE = 2.0
SAMPLE_FILES = (
    "arxiv_sample.jsonl",
    "book_sample.jsonl",
    "c4_sample.jsonl",
    "cc_2019-30_sample.jsonl",
    "cc_2020-05_sample.jsonl",
    "cc_2021-04_sample.jsonl",
    "cc_2022-05_sample.jsonl",
    "cc_2023-06_sample.jsonl",
    "github_sample.jsonl",
    "stackexchange_sample.jsonl",
    "wikipedia_sample.jsonl",
)
# RedPajama-1T's tokens per subset, in billions (its dataset card).
REDPAJAMA_TOKENS_B = {
    "common_crawl": 878,
    "c4": 175,
    "github": 59,
    "book": 26,
    "arxiv": 28,
    "wikipedia": 24,
    "stackexchange": 20,
}
STATE_DIR = "_replay_state"
SPILL_NAME = "candidates.spill.gz"
STATE_NAME = "state.json"
TOKEN_RULE = "ceil(len(text) / chars_per_token)"
_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json")
_STATE_VERSION = 1


def local_url(base_url: str | None) -> Callable[[str], str]:
    return origin_mirror(base_url, HUB)


def approx_tokens(text: str, chars_per_token: float) -> int:
    """The budget's token estimate of a text (TOKEN_RULE)."""
    return math.ceil(len(text) / chars_per_token)


def default_shares() -> dict[str, float]:
    total = sum(REDPAJAMA_TOKENS_B.values())
    return {subset: tokens / total for subset, tokens in REDPAJAMA_TOKENS_B.items()}


@dataclass(frozen=True)
class Input:
    url: str
    name: str

    @property
    def output(self) -> str:
        stem = next(self.name[: -len(s)] for s in _SUFFIXES if self.name.endswith(s))
        return f"{stem}.kept.jsonl.gz"


def list_inputs(options: ReplayOptions) -> list[Input]:
    urls = options.urls or [
        f"{HUB}/datasets/{options.repo}/resolve/main/{name}"
        for name in (options.files or SAMPLE_FILES)
    ]
    inputs = []
    for url in urls:
        name = unquote(PurePosixPath(urlsplit(url).path).name)
        if not is_safe_name(name) or not name.endswith(_SUFFIXES):
            raise OptionsError(
                f"{url}: replay inputs must be plain .jsonl/.json files, gzip or not"
                " (zstd has no decompressor here)"
            )
        inputs.append(Input(url, name))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise OptionsError("replay inputs must have distinct file names (outputs are per input)")
    return inputs


class _Spill:
    """Append-only candidates file: each checkpoint closes a gzip member, so truncating to a
    checkpoint's length leaves a valid gzip file."""

    def __init__(self, path: Path, offset: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            f.truncate(offset)
        self._raw = path.open("ab")
        self._gz: gzip.GzipFile | None = None

    def write(self, header: list[Any], raw: bytes) -> None:
        if self._gz is None:
            self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        self._gz.write(json.dumps(header).encode() + b"\t" + raw + b"\n")

    def seal(self) -> int:
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        self._raw.flush()
        os.fsync(self._raw.fileno())
        return self._raw.tell()

    def close(self) -> None:
        self.seal()
        self._raw.close()


def _read_spill(path: Path) -> Iterator[tuple[list[Any], bytes]]:
    if not path.is_file() or path.stat().st_size == 0:
        return
    with gzip.open(path, "rb") as f:
        for line in f:
            header, _, raw = line.rstrip(b"\n").partition(b"\t")
            yield json.loads(header), raw


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decompressed bytes of a gzip stream of one or more members; zlib.error when the
    stream is not gzip or ends inside a member."""
    inflater = zlib.decompressobj(wbits=31)
    in_member = False
    for chunk in chunks:
        while chunk:
            in_member = True
            yield inflater.decompress(chunk)
            if not inflater.eof:
                break
            chunk = inflater.unused_data
            inflater = zlib.decompressobj(wbits=31)
            in_member = False
    if in_member:
        raise zlib.error("the gzip stream ends inside a member")


class _Run:
    """One replay run: sampler, candidates and checkpoint."""

    def __init__(self, session: Session, options: ReplayOptions, inputs: list[Input]) -> None:
        self.session = session
        self.options = options
        self.inputs = inputs
        self.shares = options.subset_shares or default_shares()
        self.fingerprint = {
            "version": _STATE_VERSION,
            "budget_tokens": options.budget_tokens,
            "subset_shares": dict(sorted(self.shares.items())),
            "seed": options.seed,
            "chars_per_token": options.chars_per_token,
            "token_rule": TOKEN_RULE,
        }
        self.dir = session.to / STATE_DIR
        self.state, self.stale = self._load_state()
        self.sampler = StreamingSampler(options.budget_tokens, self.shares, options.seed)
        self.accepted: dict[str, tuple[str, int]] = {}
        self.spill: _Spill | None = None
        self.unreadable = 0

    def _load_state(self) -> tuple[dict[str, Any], bool]:
        """The checkpoint, and whether one exists for other sampling settings."""
        try:
            state = json.loads((self.dir / STATE_NAME).read_text())
        except (OSError, ValueError):
            state = None
        if state is not None and state.get("fingerprint") == self.fingerprint:
            return state, False
        fresh = {
            "fingerprint": self.fingerprint,
            "spill_offset": 0,
            "kept": [],
            "inputs": {},
            "positions": {},
            "done": {},
            "outputs_written": False,
        }
        return fresh, state is not None

    def restore(self) -> None:
        """Sampler and candidates as of the last checkpoint."""
        if self.stale:
            self.session.report.notes.append("sampling settings changed: replay starts over")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        spill_path = self.dir / SPILL_NAME
        self.spill = _Spill(spill_path, self.state["spill_offset"])
        self.spill.seal()
        for header, _ in _read_spill(spill_path):
            self.accepted[header[2]] = (header[3], header[4])
        # Offering the kept set again rebuilds the sampler exactly: select(kept) == kept.
        for doc_id, subset, n_tokens in self.state["kept"]:
            self.sampler.offer(doc_id, subset, n_tokens)

    def checkpoint(self) -> None:
        assert self.spill is not None
        self.state["spill_offset"] = self.spill.seal()
        self.state["kept"] = [[d, *self.accepted[d]] for d in sorted(self.sampler.selected())]
        tmp = self.dir / (STATE_NAME + ".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.dir / STATE_NAME)

    def offer(self, inp: Input, lineno: int, raw: bytes, name_subset: str) -> None:
        if not raw.strip():
            return
        row = parse_line(raw, lineno, name_subset)
        if isinstance(row, Quarantined):
            # Not kept, so ingest never sees it; counted in the input's manifest record.
            self.unreadable += 1
            return
        doc_id = row["doc_id"]
        if doc_id in self.accepted:
            return
        n_tokens = approx_tokens(row["text"], self.options.chars_per_token)
        if self.sampler.offer(doc_id, row["subset"], n_tokens):
            self.accepted[doc_id] = (row["subset"], n_tokens)
            assert self.spill is not None
            self.spill.write([inp.name, lineno, doc_id, row["subset"], n_tokens], raw)

    def stream(self, inp: Input) -> dict[str, Any]:
        """Offer every line of one input; on failure the position is checkpointed and
        DownloadError raised. Returns the input's manifest fields."""
        try:
            return self._stream(inp)
        except ContentChanged:
            # The file changed since the checkpoint: read it again from the start.
            self.state["positions"].pop(inp.url, None)
            return self._stream(inp)

    def _stream(self, inp: Input) -> dict[str, Any]:
        compressed = inp.name.endswith(".gz")
        position = None if compressed else self.state["positions"].get(inp.url)
        offset = position["offset"] if position else 0
        lineno = position["line"] if position else 0
        validators = Validators(**position["validators"]) if position else None
        name_subset = subset_from_filename(inp.name)
        # Before any of its documents reaches the candidates (and so the next checkpoint).
        self.state["inputs"].setdefault(inp.name, inp.url)
        self.unreadable = position.get("unreadable", 0) if position else 0
        opened: list[Validators] = []

        def on_open(start: int, found: Validators) -> None:
            if not opened and found.total is not None:
                self.session.expect(0, found.total - start)
            opened.append(found)

        stream = self.session.http.body(
            self.session.local_url(inp.url),
            offset=offset,
            validators=validators,
            rewind=False,
            on_open=on_open,
        )
        consumed = offset
        checkpointed = offset
        parts: list[bytes] = []

        def raw_chunks() -> Iterator[bytes]:
            for _, data in stream:
                self.session.advance(len(data))
                yield data

        def save_position() -> None:
            if not compressed:
                self.state["positions"][inp.url] = {
                    "offset": consumed,
                    "line": lineno,
                    "unreadable": self.unreadable,
                    "validators": (stream.validators or Validators()).as_dict(),
                }

        chunks = _gunzip(raw_chunks()) if compressed else raw_chunks()
        try:
            for data in chunks:
                start = 0
                while (end := data.find(b"\n", start)) != -1:
                    parts.append(data[start:end])
                    line = b"".join(parts)
                    parts = []
                    consumed += len(line) + 1
                    lineno += 1
                    self.offer(inp, lineno, line.rstrip(b"\r"), name_subset)
                    start = end + 1
                if start < len(data):
                    parts.append(data[start:])
                if consumed - checkpointed >= self.options.checkpoint_bytes and not compressed:
                    save_position()
                    self.checkpoint()
                    checkpointed = consumed
        except (DownloadError, zlib.error) as exc:
            save_position()
            self.checkpoint()
            if isinstance(exc, zlib.error):
                raise DownloadError(f"{inp.url}: not a valid gzip stream: {exc}") from exc
            raise
        if parts:
            lineno += 1
            self.offer(inp, lineno, b"".join(parts).rstrip(b"\r"), name_subset)
        found = stream.validators or Validators()
        return {
            "lines": lineno,
            "unreadable_lines": self.unreadable,
            "bytes": stream.total,
            "etag": found.etag,
            "last_modified": found.last_modified,
        }

    def streamed(self) -> list[Input]:
        """Every input this folder's sample covers, in the order they were first read (a
        later, shorter list does not shrink the sample)."""
        return [Input(url, name) for name, url in self.state["inputs"].items()]

    def write_outputs(self) -> None:
        """The kept documents, per input, each from its first input and line."""
        assert self.spill is not None
        self.spill.seal()
        spill_path = self.dir / SPILL_NAME
        selected = self.sampler.selected()
        inputs = self.streamed()
        order = {inp.name: i for i, inp in enumerate(inputs)}
        first: dict[str, tuple[int, int]] = {}
        for header, _ in _read_spill(spill_path):
            name, lineno, doc_id = header[0], header[1], header[2]
            if doc_id in selected:
                key = (order[name], lineno)
                first[doc_id] = min(first.get(doc_id, key), key)
        tokens: dict[str, int] = {}
        docs: dict[str, int] = {}
        writers: dict[str, tuple[Path, Any, gzip.GzipFile]] = {}
        try:
            for header, raw in _read_spill(spill_path):
                name, lineno, doc_id, _, n_tokens = header
                if first.get(doc_id) != (order[name], lineno):
                    continue
                if name not in writers:
                    final = self.session.to / inputs[order[name]].output
                    tmp = final.with_name(final.name + ".tmp")
                    f = tmp.open("wb")
                    # No name and no timestamp in the header: the same sample, the same bytes.
                    writers[name] = (tmp, f, gzip.GzipFile("", "wb", fileobj=f, mtime=0))
                writers[name][2].write(raw + b"\n")
                tokens[name] = tokens.get(name, 0) + n_tokens
                docs[name] = docs.get(name, 0) + 1
        finally:
            for _, f, gz in writers.values():
                gz.close()
                f.close()
        for inp in inputs:
            final = self.session.to / inp.output
            if inp.name not in writers:
                final.unlink(missing_ok=True)
                continue
            os.replace(writers[inp.name][0], final)
            md5, sha256 = file_hashes(final)
            self.session.manifest.append(
                {
                    "url": inp.url,
                    "path": inp.output,
                    "size": final.stat().st_size,
                    "md5": md5,
                    "sha256": sha256,
                    "fetched_at": now_iso(),
                    "status": "ok",
                    "source": "replay",
                    "docs": docs[inp.name],
                    "approx_tokens": tokens[inp.name],
                    "sampling": self.fingerprint,
                }
            )
        self.state["outputs_written"] = True
        self.checkpoint()
        kept = self.sampler.tokens()
        self.session.report.notes.append(
            "kept approx. tokens per subset (budget): "
            + ", ".join(f"{s} {kept[s]} ({b})" for s, b in self.sampler.budgets.items())
        )

    def outputs_current(self) -> bool:
        if not self.state["outputs_written"]:
            return False
        for inp in self.streamed():
            record = self.session.manifest.latest(inp.output)
            if record is None:
                continue  # no document of this input was kept
            path = self.session.to / inp.output
            if not path.is_file() or path.stat().st_size != record["size"]:
                return False
        return True


def fetch(session: Session, options: ReplayOptions, max_files: int | None) -> None:
    inputs = list_inputs(options)[:max_files]
    run = _Run(session, options, inputs)
    done: dict[str, Any] = run.state["done"]
    if session.dry_run:
        for inp in inputs:
            session.plan(Item(inp.url, inp.output), "unchanged" if inp.url in done else "new")
        chars = options.budget_tokens * options.chars_per_token
        session.report.notes.append(
            f"streams the inputs above and keeps about {options.budget_tokens} tokens"
            f" (~{chars / 1e6:.0f} MB of text)"
        )
        return
    run.restore()
    pending = [inp for inp in inputs if inp.url not in done]
    session.report.skipped_unchanged += len(inputs) - len(pending)
    session.expect(len(pending), None)
    try:
        for inp in pending:
            try:
                fields = run.stream(inp)
            except DownloadError as exc:
                session.fail(Item(inp.url, inp.output), str(exc))
                continue
            run.state["positions"].pop(inp.url, None)
            done[inp.url] = fields
            run.state["outputs_written"] = False
            run.checkpoint()
            session.manifest.append(
                {
                    "url": inp.url,
                    "path": None,
                    "status": "streamed",
                    "fetched_at": now_iso(),
                    "source": "replay",
                    **fields,
                }
            )
            session.report.fetched += 1
            session.file_done()
        missing = [inp.name for inp in inputs if inp.url not in done]
        if missing:
            session.report.notes.append(f"kept documents not written: {missing} unfinished")
        elif not run.outputs_current():
            run.write_outputs()
    finally:
        assert run.spill is not None
        run.spill.close()
