"""The auditors' report: one self-contained HTML page (charts inline as PNG, no external CSS
or JavaScript) showing what the corpus holds and how each stage got there, read from the
lakehouse with delta-rs (gapreplay.read), so it needs no JVM.

`overview_tables` gives the page's main tables as DataFrames, for `make audit` to print.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from corpus.silver_stages import CROSS_STAGES, DOCUMENT_STAGES
from gapreplay.read import Lakehouse
from schemas.gold import CORPUS, SHARDS
from schemas.runs import RUNS
from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS, SOURCES
from spark_jobs import storage
from spark_jobs.summary import BRONZE, DECISION_STAGES

# Rows of the per-stage tables, in pipeline order.
STAGES = ("ingest", *(job for job, _ in DECISION_STAGES), "mix", "shards")
# Decision stages in the order a document meets them; others sort after, by name.
DECISION_ORDER = (*DOCUMENT_STAGES, *CROSS_STAGES, *(s for _, s in DECISION_STAGES[1:]), "mix")
DECONTAMINATION = dict(DECISION_STAGES)["decontaminate"]
LANGUAGE_DETAIL = re.compile(r"^(?P<language>\S+) p=(?P<prob>[0-9.]+)")
NO_DATA = '<p class="nodata">no data</p>'
# Cells of long listings shown before "… n more".
MAX_ROWS = 50


def overview_tables(root: str) -> dict[str, pd.DataFrame]:
    """The corpus overview: `documents` and `tokens` (stage × source, with a total column;
    tokens exist from the mix on) and `removals` (documents dropped per stage, reason and
    source)."""
    return _overview(Lakehouse(root))


def _overview(lh: Lakehouse) -> dict[str, pd.DataFrame]:
    counts = stage_counts(lh)
    return {
        "documents": _by_stage(counts, "documents"),
        "tokens": _by_stage(counts.dropna(subset=["tokens"]), "tokens"),
        "removals": removals(lh),
    }


def stage_counts(lh: Lakehouse) -> pd.DataFrame:
    """Rows (stage, source, documents, tokens) counted as spark_jobs.summary.stage_counts does:
    bronze rows, documents kept by each job's last decision stage, then gold/corpus and
    gold/shards; tokens is NaN before the mix counts them."""
    rows: list[dict[str, object]] = []
    for source, spec in BRONZE.items():
        if lh.exists(spec.path):
            rows.append({"stage": "ingest", "source": source, "documents": lh.count(spec.path)})
    decisions = _frame(lh, DECISIONS.path, ["stage", "source", "kept"])
    kept = decisions[decisions["kept"]].groupby(["stage", "source"]).size()
    for job, stage in DECISION_STAGES:
        rows += [
            {"stage": job, "source": source, "documents": int(kept[(stage, source)])}
            for source in BRONZE
            if (stage, source) in kept.index
        ]
    corpus = _frame(lh, CORPUS.path, ["source", "n_tokens"])
    mixed = corpus.groupby("source").agg(documents=("n_tokens", "size"), tokens=("n_tokens", "sum"))
    shards = _frame(lh, SHARDS.path, ["source", "n_docs", "n_tokens"])
    sharded = shards.groupby("source").agg(documents=("n_docs", "sum"), tokens=("n_tokens", "sum"))
    for stage, frame in (("mix", mixed), ("shards", sharded)):
        rows += [{"stage": stage, "source": s, **r} for s, r in frame.iterrows()]
    return pd.DataFrame(rows, columns=["stage", "source", "documents", "tokens"])


def removals(lh: Lakehouse) -> pd.DataFrame:
    """Documents dropped per (stage, reason, source), stages in pipeline order."""
    decisions = _frame(lh, DECISIONS.path, ["stage", "reason", "source", "kept"])
    dropped = decisions[~decisions["kept"]]
    counts = dropped.groupby(["stage", "reason", "source"]).size().rename("documents")
    counts = counts.reset_index()
    order = counts["stage"].map(_decision_rank)
    return (
        counts.assign(_order=order)
        .sort_values(["_order", "stage", "reason", "source"])[
            ["stage", "reason", "source", "documents"]
        ]
        .reset_index(drop=True)
    )


def write_report(root: str, out: Path, shards_dir: str | Path | None = None) -> Path:
    """Write the HTML report of the lakehouse at `root` to `out` (with the dataset card that
    the shards job wrote into `shards_dir`, a folder or a URI, when given) and return its
    path."""
    lh = Lakehouse(root)
    overview = _overview(lh)
    sections = [
        ("stages", "Documents and tokens per source and stage", _stages_section(overview)),
        ("removals", "Documents removed per rule", _removals_section(overview)),
        ("lengths", "Document lengths", _lengths_section(lh)),
        ("dedup", "Near-duplicate clusters", _dedup_section(lh)),
        ("languages", "Languages", _languages_section(lh)),
        ("decontamination", "Decontamination hits", _decontamination_section(lh)),
        ("card", "Dataset card", _card_section(shards_dir)),
        ("build", "Build: runs and config hashes", _runs_section(lh)),
        ("versions", "Delta versions of the tables", _versions_section(lh)),
    ]
    toc = "".join(f'<li><a href="#{key}">{title}</a></li>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{title}</h2>{content}</section>'
        for key, title, content in sections
    )
    page = _PAGE.format(
        style=_STYLE,
        root=html.escape(str(root)),
        headline=_headline(overview),
        toc=toc,
        body=body,
        script=_IMAGE_CHECK,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(out.name + ".tmp")
    staging.write_text(page, encoding="utf-8")
    staging.replace(out)
    return out


# Sections. Each returns HTML, NO_DATA where its tables are missing or empty.


def _headline(overview: dict[str, pd.DataFrame]) -> str:
    documents, tokens, dropped = overview["documents"], overview["tokens"], overview["removals"]
    if documents.empty:
        return NO_DATA
    last = documents.index[-1]
    text = f"{documents.loc[last, 'total']:,} documents after {last}"
    if last in tokens.index:
        text += f", {tokens.loc[last, 'total']:,} tokens"
    rules = len(dropped[["stage", "reason"]].drop_duplicates())
    text += (
        f"; {documents['total'].iloc[0]:,} at {documents.index[0]};"
        f" {dropped['documents'].sum():,} documents removed by {rules:,} rules."
    )
    return f'<p class="headline">{html.escape(text)}</p>'


def _stages_section(overview: dict[str, pd.DataFrame]) -> str:
    documents, tokens = overview["documents"], overview["tokens"]
    if documents.empty:
        return NO_DATA
    parts = [
        "<h3>Documents</h3>",
        "<p>Rows ingested into bronze, then documents kept by each job's last decision stage"
        " (clean: exact_dedup, dedup: near_dedup, decontaminate: decontamination), documents"
        " in gold/corpus (mix) and sequences in gold/shards.</p>",
        _table(documents.reset_index(), cls="stages-documents"),
        _image(_grouped_bars(documents.drop(columns="total"), "documents"), "documents"),
        "<h3>Tokens</h3>",
    ]
    if tokens.empty:
        parts.append(NO_DATA)
    else:
        parts += [
            "<p>Tokens with the configured tokenizer, EOD included (counted from the mix on).</p>",
            _table(tokens.reset_index(), cls="stages-tokens"),
            _image(_grouped_bars(tokens.drop(columns="total"), "tokens"), "tokens"),
        ]
    return "".join(parts)


def _removals_section(overview: dict[str, pd.DataFrame]) -> str:
    table = overview["removals"]
    if table.empty:
        return NO_DATA
    wide = table.pivot_table(
        index=["stage", "reason"], columns="source", values="documents", fill_value=0, sort=False
    )
    wide = wide[[s for s in SOURCES if s in wide.columns]]
    labels = [f"{stage}: {reason}" for stage, reason in wide.index]
    figure, ax = _figure(height=1.0 + 0.35 * len(wide))
    left = np.zeros(len(wide))
    for source in wide.columns:
        ax.barh(labels, wide[source], left=left, label=source, color=_color(source))
        left += wide[source].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("documents removed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_outside(ax)
    return (
        "<p>Every document dropped, with the stage and the reason recorded in"
        f" silver/decisions: {int(table['documents'].sum()):,} in all.</p>"
        + _table(table, cls="removals")
        + _image(figure, "documents removed per stage and reason")
    )


def _lengths_section(lh: Lakehouse) -> str:
    documents = _frame(lh, DOCUMENTS.path, ["source", "n_chars"])
    corpus = _frame(lh, CORPUS.path, ["source", "n_tokens"])
    parts = []
    for title, frame, column in (
        ("Characters per document (silver/documents)", documents, "n_chars"),
        ("Tokens per document (gold/corpus)", corpus, "n_tokens"),
    ):
        parts.append(f"<h3>{title}</h3>")
        if frame.empty:
            parts.append(NO_DATA)
            continue
        stats = frame.groupby("source")[column].describe(percentiles=[0.1, 0.5, 0.9])
        stats = stats.reindex([s for s in SOURCES if s in stats.index])
        stats.insert(1, "total", frame.groupby("source")[column].sum())
        parts.append(_table(stats.drop(columns=["std"]).reset_index(), cls=f"lengths-{column}"))
        parts.append(_image(_histograms(frame, column), f"{column} per source"))
    return "".join(parts)


def _dedup_section(lh: Lakehouse) -> str:
    clusters = _frame(
        lh,
        DEDUP_CLUSTERS.path,
        ["doc_id", "cluster_id", "representative_id", "jaccard_to_representative", "source"],
    )
    if clusters.empty:
        return NO_DATA
    per_cluster = clusters.groupby("cluster_id").agg(
        size=("doc_id", "size"),
        representative=("representative_id", "first"),
        sources=("source", lambda s: ", ".join(sorted(set(s)))),
        min_jaccard=("jaccard_to_representative", "min"),
    )
    by_size = per_cluster.groupby("size").size().rename("clusters").reset_index()
    by_size["documents"] = by_size["size"] * by_size["clusters"]
    by_size["removed"] = (by_size["size"] - 1) * by_size["clusters"]
    figure, ax = _figure()
    ax.bar(by_size["size"].astype(str), by_size["clusters"], color="#4c72b0")
    ax.set_xlabel("documents in the cluster")
    ax.set_ylabel("clusters")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    largest = per_cluster.sort_values(["size", "min_jaccard"], ascending=[False, True])
    return (
        f"<p>{len(per_cluster):,} clusters holding {len(clusters):,} documents; the"
        " representative of each is kept, the others are removed (near_dedup).</p>"
        + _table(by_size, cls="cluster-sizes")
        + _image(figure, "near-duplicate cluster sizes")
        + "<h3>Largest clusters</h3>"
        + _table(largest.reset_index(), cls="clusters")
    )


def _languages_section(lh: Lakehouse) -> str:
    documents = _frame(lh, DOCUMENTS.path, ["source", "language"])
    parts = ["<h3>Languages of the documents kept (silver/documents)</h3>"]
    if documents.empty:
        parts.append(NO_DATA)
    else:
        mix = documents.pivot_table(
            index="language", columns="source", aggfunc="size", fill_value=0
        )
        mix = mix[[s for s in SOURCES if s in mix.columns]]
        mix = mix.loc[mix.sum(axis=1).sort_values(ascending=False).index]
        parts += [
            _table(mix.reset_index(), cls="languages"),
            _image(_language_bars(mix), "language share per source"),
        ]
    decisions = _frame(lh, DECISIONS.path, ["source", "stage", "kept", "reason", "detail"])
    dropped = decisions[(decisions["stage"] == "language") & ~decisions["kept"]]
    parts.append("<h3>Documents dropped by the language filter</h3>")
    if dropped.empty:
        parts.append("<p>None.</p>")
    else:
        # The detail reads "<language> p=<probability>[, tagged <source's tag>]".
        detected = dropped["detail"].fillna("").str.extract(LANGUAGE_DETAIL)["language"]
        table = (
            dropped.assign(language=detected.fillna("?"))
            .groupby(["language", "reason", "source"])
            .size()
            .rename("documents")
            .reset_index()
            .sort_values(["documents", "language"], ascending=[False, True])
        )
        parts.append(_table(table, cls="language-dropped"))
    return "".join(parts)


def _decontamination_section(lh: Lakehouse) -> str:
    decisions = _frame(
        lh, DECISIONS.path, ["doc_id", "source", "stage", "kept", "reason", "detail"]
    )
    hit = decisions[(decisions["stage"] == DECONTAMINATION) & ~decisions["kept"]]
    if hit.empty:
        checked = (decisions["stage"] == DECONTAMINATION).sum()
        return f"<p>No document matched a benchmark item ({checked:,} checked).</p>"
    matches = pd.DataFrame(
        [
            {"doc_id": doc_id, "source": source, "reason": reason, **item}
            for doc_id, source, reason, detail in hit[
                ["doc_id", "source", "reason", "detail"]
            ].itertuples(index=False)
            for item in _items(detail)
        ],
        columns=["doc_id", "source", "reason", "item", "benchmark", "kind", "n"],
    )
    by_benchmark = (
        matches.groupby("benchmark")
        .agg(
            documents=("doc_id", "nunique"),
            items=("item", "nunique"),
            matches=("item", "size"),
            ngrams=("n", "sum"),
        )
        .sort_values("documents", ascending=False)
    )
    by_source = hit.groupby(["reason", "source"]).size().rename("documents").reset_index()
    figure, ax = _figure(height=1.0 + 0.4 * len(by_benchmark))
    ax.barh(by_benchmark.index, by_benchmark["documents"], color="#c44e52")
    ax.invert_yaxis()
    ax.set_xlabel("documents removed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return (
        f"<p>{len(hit):,} documents removed for overlapping held-out benchmark items.</p>"
        "<h3>By benchmark</h3>"
        + _table(by_benchmark.reset_index(), cls="decontamination")
        + _image(figure, "decontamination hits per benchmark")
        + "<h3>By reason and source</h3>"
        + _table(by_source, cls="decontamination-sources")
        + "<h3>Matches</h3>"
        + _table(matches.sort_values(["benchmark", "doc_id", "item"]), cls="matches")
    )


def _card_section(shards_dir: str | Path | None) -> str:
    if shards_dir is None:
        return NO_DATA
    location = storage.join(str(shards_dir), "dataset_card.md")
    if not storage.exists(location):
        return NO_DATA
    with storage.local_copy(location) as card:
        text = card.read_text(encoding="utf-8")
    return f'<div class="card">{markdown_to_html(text)}</div>'


def _runs_section(lh: Lakehouse) -> str:
    runs = _frame(
        lh,
        RUNS.path,
        [
            "stage",
            "status",
            "run_id",
            "started_at",
            "finished_at",
            "config_sha256",
            "code_version",
            "rows_in",
            "rows_out",
            "table_versions",
            "error",
        ],
    )
    if runs.empty:
        return NO_DATA
    succeeded = runs[runs["status"] == "succeeded"].sort_values("finished_at")
    latest = succeeded.groupby("stage").tail(1)
    # delta-rs gives a map as (key, value) pairs.
    written = latest["table_versions"].map(
        lambda pairs: ", ".join(f"{k}@{v}" for k, v in sorted(pairs or []))
    )
    columns = ["stage", "run_id", "finished_at", "config_sha256", "code_version"]
    parts = [
        "<p>The latest succeeded run of each stage, in the order they finished, with the"
        " Delta version of each table it wrote (table@version).</p>",
        _table(
            latest[[*columns, "rows_in", "rows_out"]].assign(tables_written=written), cls="runs"
        ),
    ]
    failed = runs[runs["status"] == "failed"].sort_values("started_at")
    if not failed.empty:
        parts += [
            f"<h3>Failed runs ({len(failed):,})</h3>",
            _table(failed[["stage", "run_id", "started_at", "error"]], cls="failed-runs"),
        ]
    return "".join(parts)


def _versions_section(lh: Lakehouse) -> str:
    rows = []
    for name in lh.tables():
        last = lh.history(name, limit=1)[0]
        committed = datetime.fromtimestamp(last["timestamp"] / 1000, tz=UTC)
        rows.append(
            {
                "table": name,
                "version": lh.version(name),
                "rows": lh.count(name),
                "last operation": last.get("operation"),
                "committed": committed,
            }
        )
    if not rows:
        return NO_DATA
    return _table(pd.DataFrame(rows), cls="versions")


# Data helpers.


def _frame(lh: Lakehouse, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """The table's columns, or an empty frame with them when the table does not exist."""
    if not lh.exists(name):
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "kept" else object) for c in columns})
    return lh.to_pandas(name, columns)


def _by_stage(counts: pd.DataFrame, value: str) -> pd.DataFrame:
    """Stage × source of `value` (stages and sources in pipeline order) with a total."""
    if counts.empty:
        return pd.DataFrame(columns=["total"], index=pd.Index([], name="stage"))
    wide = counts.pivot_table(
        index="stage", columns="source", values=value, aggfunc="sum", fill_value=0
    )
    wide = wide.reindex(
        index=[s for s in STAGES if s in wide.index],
        columns=[s for s in SOURCES if s in wide.columns],
    ).astype("int64")
    wide["total"] = wide.sum(axis=1)
    wide.columns.name = None
    return wide


def _decision_rank(stage: str) -> int:
    return DECISION_ORDER.index(stage) if stage in DECISION_ORDER else len(DECISION_ORDER)


def _items(detail: str | None) -> list[dict[str, object]]:
    """The matched items of a decontamination decision (`{"items": [...]}`)."""
    try:
        items = json.loads(detail or "")["items"]
    except (ValueError, KeyError, TypeError):
        return [{"item": None, "benchmark": "(unreadable detail)", "kind": None, "n": 0}]
    return [
        {k: i.get(k) for k in ("item", "benchmark", "kind", "n")}
        for i in items
        if isinstance(i, dict)
    ]


# Charts.


def _figure(height: float = 3.5) -> tuple[Figure, Axes]:
    # A bare Figure with its own Agg canvas: no pyplot state, no global backend switch.
    figure = Figure(figsize=(8, max(height, 2.0)), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _color(source: str) -> str:
    palette = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")
    return palette[SOURCES.index(source)] if source in SOURCES else palette[-1]


def _grouped_bars(wide: pd.DataFrame, label: str) -> Figure:
    figure, ax = _figure()
    x = np.arange(len(wide.index))
    width = 0.8 / max(len(wide.columns), 1)
    for i, source in enumerate(wide.columns):
        ax.bar(x + i * width, wide[source], width, label=source, color=_color(source))
    ax.set_xticks(x + width * (len(wide.columns) - 1) / 2, wide.index)
    values = wide.to_numpy()
    # Sources differ by orders of magnitude in a real corpus: linear bars would hide the
    # small ones.
    if values.size and values.min() > 0 and values.max() / values.min() > 50:
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(label)
    _legend_outside(ax)
    return figure


def _histograms(frame: pd.DataFrame, column: str) -> Figure:
    sources = [s for s in SOURCES if s in set(frame["source"])]
    rows = (len(sources) + 1) // 2
    figure = Figure(figsize=(10, 0.4 + 2.4 * rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 2, squeeze=False).ravel()
    for ax, source in zip(axes, sources, strict=False):
        values = frame.loc[frame["source"] == source, column].to_numpy(dtype=float)
        low, high = max(values.min(), 1.0), max(values.max(), 1.0)
        if high / low > 20:
            # Lengths are heavy-tailed: geometric bins on a log axis.
            ax.hist(values, bins=np.geomspace(low, high * 1.001, 30), color=_color(source))
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        else:
            ax.hist(values, bins=20, range=(low - 0.5, high + 0.5), color=_color(source))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{source} ({len(values):,} documents)", fontsize=10)
        ax.set_xlabel(column)
        ax.set_ylabel("documents")
    for ax in axes[len(sources) :]:
        ax.set_visible(False)
    figure.tight_layout()
    return figure


def _language_bars(mix: pd.DataFrame) -> Figure:
    top = mix.head(8)
    if len(mix) > len(top):
        top = pd.concat([top, mix.iloc[len(top) :].sum().to_frame("other").T])
    share = top / top.sum()
    figure, ax = _figure(height=1.2 + 0.5 * len(share.columns))
    left = np.zeros(len(share.columns))
    for language, row in share.iterrows():
        ax.barh(share.columns, row, left=left, label=language)
        left += row.to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("share of the source's documents")
    _legend_outside(ax)
    return figure


def _legend_outside(ax: Axes) -> None:
    # Beside the plot, so that it hides no bar.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)


def _image(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# HTML.


def _table(frame: pd.DataFrame, cls: str) -> str:
    """An HTML table of the frame, every value escaped; long listings are cut."""
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = [
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>"
        for row in frame.head(MAX_ROWS).itertuples(index=False)
    ]
    more = len(frame) - MAX_ROWS
    if more > 0:
        rows.append(f'<tr><td colspan="{len(frame.columns)}">… {more:,} more</td></tr>')
    return (
        f'<div class="scroll"><table class="{cls}"><tr>{header}</tr>{"".join(rows)}</table></div>'
    )


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "<td></td>"
    if isinstance(value, bool | np.bool_):
        text, numeric = str(bool(value)).lower(), False
    elif isinstance(value, int | np.integer):
        text, numeric = f"{int(value):,}", True
    elif isinstance(value, float | np.floating):
        text, numeric = (f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"), True
    elif isinstance(value, pd.Timestamp | datetime):
        text, numeric = value.isoformat(timespec="seconds"), False
    else:
        text, numeric = str(value), False
    return f'<td class="num">{text}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def markdown_to_html(text: str) -> str:
    """The little markdown the dataset card uses (headings, pipe tables, `-` lists,
    paragraphs, `code` and **bold**) as HTML, every character of the text escaped."""
    out: list[str] = []
    block: list[str] = []
    kind = ""

    def flush() -> None:
        nonlocal kind
        rows = [r for r in block if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*", r)]
        if kind == "table" and rows:
            cells = [[_inline(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block) + "</ul>")
        elif kind == "para":
            out.append(f"<p>{_inline(' '.join(block))}</p>")
        block.clear()
        kind = ""

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        new = (
            "heading"
            if heading
            else "table"
            if stripped.startswith("|")
            else "list"
            if stripped.startswith(("- ", "* "))
            else "para"
            if stripped
            else ""
        )
        if new != kind or new == "heading":
            flush()
        if heading:
            # The card's headings sit under the report's own h2.
            level = min(len(heading.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif new == "list":
            block.append(stripped[2:])
            kind = new
        elif new:
            block.append(stripped)
            kind = new
    flush()
    return "".join(out)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;display:block;margin:.8em 0}
.nodata{color:#888;font-style:italic}code{background:#f3f3f3;padding:0 .2em}
.card{border-left:4px solid #ddd;padding-left:1em}.scroll{overflow-x:auto}
.headline{font-size:1.1em;background:#f6f8fa;padding:.6em 1em;border-radius:4px}
"""

# Written into <body> once the page has loaded: how many images decoded, so that a headless
# browser can tell a broken chart from a good one (tests/test_report.py).
_IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-images-total", String(images.length));
  document.body.setAttribute("data-images-ok", String(images.filter(function (i) {
    return i.complete && i.naturalWidth > 0;
  }).length));
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>gapreplay corpus report</title><style>{style}</style></head>
<body><h1>gapreplay corpus report</h1>
<p>Lakehouse: <code>{root}</code></p>
{headline}
<nav><ul>{toc}</ul></nav>
{body}
<script>{script}</script>
</body></html>
"""
