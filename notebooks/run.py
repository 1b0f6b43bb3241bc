"""Run a Databricks source-format notebook locally, cell by cell.

    python -m notebooks.run notebooks/01_corpus_overview.py [--lakehouse DIR] [--param k=v]

Markdown cells (`# MAGIC %md`) are not run; their first heading names the section that
the following displays belong to. Code cells run in one namespace holding local `spark`,
`display` and `dbutils` (notebooks._local). `run_notebook` returns what was displayed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notebooks._local import Display, LocalDBUtils, NotebookExit, get_session

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
NOTEBOOK_DIR = Path(__file__).resolve().parent


class NotebookError(RuntimeError):
    """A cell of the notebook raised; the cause is chained."""


@dataclass(frozen=True)
class Cell:
    index: int
    kind: str  # "python", "markdown" or "magic" (%sql, %sh, …: not run locally)
    source: str
    first_line: int  # line of the cell's first line in the file, from 1
    heading: str = ""  # markdown cells: the first heading's text


def parse_notebook(text: str) -> list[Cell]:
    """The cells of a notebook in Databricks source format."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"not a Databricks source notebook: the first line is not {HEADER!r}")
    cells: list[Cell] = []
    start, chunk = 2, []
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == SEPARATOR:
            cells.append(_cell(len(cells), chunk, start))
            start, chunk = number + 1, []
        else:
            chunk.append(line)
    cells.append(_cell(len(cells), chunk, start))
    return [c for c in cells if c.source.strip()]


def _cell(index: int, lines: list[str], first_line: int) -> Cell:
    source = "\n".join(lines)
    body = [line for line in lines if line.strip()]
    if body and all(line.startswith(MAGIC) for line in body):
        magic = [line[len(MAGIC) :].removeprefix(" ") for line in body]
        if magic[0].strip().startswith("%md"):
            heading = next(
                (m.lstrip("#").strip() for m in magic[1:] if m.startswith("#")),
                "",
            )
            return Cell(index, "markdown", source, first_line, heading)
        return Cell(index, "magic", source, first_line)
    return Cell(index, "python", source, first_line)


def run_notebook(
    path: str | Path,
    params: Mapping[str, str] | None = None,
    lakehouse: str | None = None,
    *,
    spark: Any = None,
    out_dir: str | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Run the notebook at `path` with widget values `params` (and `lakehouse`, the widget
    of that name) and return what it showed:

    - `displays`: every `display(...)` in order, as notebooks._local.Displayed (kind
      "table" with a pandas DataFrame, "figure" with a PNG path, or "text"), with the
      section (markdown heading) and cell it came from;
    - `sections`: heading -> the values displayed under it, in order;
    - `stdout`: everything the cells printed; `exit`: the value given to
      `dbutils.notebook.exit`, else None; `params`: the widget values used;
      `namespace`: the notebook's variables after the run.
    """
    path = Path(path)
    values = dict(params or {})
    if lakehouse is not None:
        values["lakehouse"] = str(lakehouse)
    dbutils = LocalDBUtils(values)
    display = Display(out_dir=out_dir, echo=echo)
    namespace: dict[str, Any] = {
        "__name__": "__notebook__",
        "__file__": str(path),
        "spark": spark if spark is not None else get_session(),
        "display": display,
        "dbutils": dbutils,
    }
    stdout = io.StringIO()
    exit_value = None
    with contextlib.redirect_stdout(_Tee(stdout, sys.stdout if echo else None)):
        for cell in parse_notebook(path.read_text(encoding="utf-8")):
            if cell.kind == "markdown":
                display.section = cell.heading or display.section
                continue
            if cell.kind == "magic":
                print(f"[cell {cell.index}: magic command, not run locally]")
                continue
            display.cell = cell.index
            # Padded so that tracebacks give the line numbers of the notebook file.
            code = compile("\n" * (cell.first_line - 1) + cell.source, str(path), "exec")
            try:
                exec(code, namespace)
            except NotebookExit as stop:
                exit_value = stop.value
                print(f"[notebook exited: {stop.value}]")
                break
            except Exception as exc:
                raise NotebookError(
                    f"{path.name}: cell {cell.index} (line {cell.first_line}) failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    sections: dict[str, list[Any]] = {}
    for item in display.items:
        sections.setdefault(item.section, []).append(item.value)
    return {
        "notebook": str(path),
        "displays": display.items,
        "sections": sections,
        "stdout": stdout.getvalue(),
        "exit": exit_value,
        "params": _widget_values(dbutils),
        "namespace": namespace,
    }


def _widget_values(dbutils: LocalDBUtils) -> dict[str, str]:
    try:
        return dbutils.widgets.getAll()
    except (KeyError, ValueError):
        return {}


class _Tee(io.TextIOBase):
    def __init__(self, keep: io.StringIO, echo: Any) -> None:
        self._keep, self._echo = keep, echo

    def write(self, text: str) -> int:
        self._keep.write(text)
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        if self._echo is not None:
            self._echo.flush()


def resolve(name: str) -> Path:
    """A notebook path, or a name in notebooks/ ("01", "01_corpus_overview")."""
    path = Path(name)
    if path.is_file():
        return path
    matches = sorted(NOTEBOOK_DIR.glob(f"{path.stem}*.py"))
    matches = [m for m in matches if not m.name.startswith("_") and m.name != "run.py"]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.name for p in notebooks())
    raise FileNotFoundError(f"no notebook {name!r} (notebooks: {known})")


def notebooks() -> list[Path]:
    """The notebooks in notebooks/, in order."""
    return [
        p
        for p in sorted(NOTEBOOK_DIR.glob("*.py"))
        if p.read_text(encoding="utf-8").startswith(HEADER)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notebooks.run",
        description="Run a Databricks source-format notebook locally.",
    )
    parser.add_argument("notebook", help="notebook file, or its name in notebooks/ (e.g. 01)")
    parser.add_argument("--lakehouse", default=None, help="lakehouse root (default: ./lakehouse)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="widget value (repeatable), e.g. --param doc_id=pubmed:39000002",
    )
    parser.add_argument("--out", default=None, help="folder for the figures (default: a temp dir)")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item!r}: expected NAME=VALUE")
        params[name] = value
    try:
        path = resolve(args.notebook)
        result = run_notebook(path, params, args.lakehouse, out_dir=args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotebookError as exc:
        import traceback

        traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[{path.name}: {len(result['displays'])} displays; widgets {result['params']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
