"""Local stand-ins for what Databricks gives a notebook: `spark`, `display` and `dbutils`
(widgets and `notebook.exit`).

A notebook's first code cell imports them only when `dbutils` is not defined already:

    if "dbutils" not in globals():
        from notebooks._local import dbutils, display, spark

On Databricks the real ones exist and this module is never imported. Locally the runner
(`python -m notebooks.run`, `notebooks.run.run_notebook`) puts its own instances in the
notebook's namespace; importing the names from here (a REPL, an IDE's cell runner) gets
module-wide ones, created on first use.

Widget values, first match wins: the runner's parameters, the environment variable
`GAPREPLAY_NB_<NAME>` (e.g. GAPREPLAY_NB_DOC_ID), then the default the notebook gives.
The `lakehouse` widget also reads GAPREPLAY_LAKEHOUSE, and a local path in it is made
absolute.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

# No window server here: figures are saved to PNG files instead of shown.
matplotlib.use("Agg")

ENV_PREFIX = "GAPREPLAY_NB_"
LAKEHOUSE_ENV = "GAPREPLAY_LAKEHOUSE"
# Databricks' display shows the first 10,000 rows; the local one keeps as many for the
# caller and prints the first SHOW_ROWS.
MAX_ROWS = 10_000
SHOW_ROWS = 40


class NotebookExit(Exception):
    """`dbutils.notebook.exit(value)`: the notebook stops here; the runner reports `value`."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class WidgetNotDefinedError(KeyError):
    """`dbutils.widgets.get` of a widget the notebook has not created (as on Databricks)."""


def widget_env_name(name: str) -> str:
    return ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in name).upper()


def _is_local_path(value: str) -> bool:
    return bool(value) and "://" not in value and not value.startswith("dbfs:")


class Widgets:
    """`dbutils.widgets`: text, dropdown, combobox and multiselect widgets with `get`."""

    def __init__(
        self, params: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self._params = {k: str(v) for k, v in (params or {}).items()}
        self._environ = os.environ if environ is None else environ
        self._defaults: dict[str, str] = {}
        self._choices: dict[str, list[str]] = {}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        self._defaults[name] = str(defaultValue)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: Iterable[str],
        label: str | None = None,
    ) -> None:
        choices = [str(c) for c in choices]
        if str(defaultValue) not in choices:
            raise ValueError(f"widget {name}: default {defaultValue!r} is not one of {choices}")
        self._defaults[name] = str(defaultValue)
        self._choices[name] = choices

    combobox = text

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: Iterable[str],
        label: str | None = None,
    ) -> None:
        self._defaults[name] = str(defaultValue)

    def get(self, name: str) -> str:
        if name not in self._defaults:
            raise WidgetNotDefinedError(f"no widget named {name!r}: create it before get()")
        value = self._value(name)
        choices = self._choices.get(name)
        if choices is not None and value not in choices:
            raise ValueError(f"widget {name}: {value!r} is not one of {choices}")
        if name == "lakehouse" and _is_local_path(value):
            value = os.path.abspath(value)
        return value

    # Older notebooks call getArgument.
    def getArgument(self, name: str, defaultValue: str | None = None) -> str:
        if name not in self._defaults and defaultValue is not None:
            self._defaults[name] = defaultValue
        return self.get(name)

    def getAll(self) -> dict[str, str]:
        return {name: self.get(name) for name in self._defaults}

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)
        self._choices.pop(name, None)

    def removeAll(self) -> None:
        self._defaults.clear()
        self._choices.clear()

    def _value(self, name: str) -> str:
        if name in self._params:
            return self._params[name]
        for env in (widget_env_name(name), *([LAKEHOUSE_ENV] if name == "lakehouse" else [])):
            if self._environ.get(env):
                return self._environ[env]
        return self._defaults[name]


class NotebookUtils:
    """`dbutils.notebook`: only `exit`."""

    def exit(self, value: str = "") -> None:
        raise NotebookExit(str(value))


class LocalDBUtils:
    """The part of Databricks' `dbutils` the notebooks use."""

    def __init__(self, params: Mapping[str, str] | None = None) -> None:
        self.widgets = Widgets(params)
        self.notebook = NotebookUtils()


@dataclass
class Displayed:
    """One `display(...)`: a table (pandas), a figure (the PNG's path) or text."""

    kind: str
    value: Any
    section: str = ""
    cell: int = -1


@dataclass
class Display:
    """`display(obj)` for a terminal: tables printed (their head), figures saved as PNG.

    Everything displayed is kept in `items`, with the notebook section it came from (the
    runner sets `section` and `cell`), so that a caller can check the numbers.
    """

    out_dir: str | None = None
    echo: bool = True
    max_rows: int = MAX_ROWS
    show_rows: int = SHOW_ROWS
    items: list[Displayed] = field(default_factory=list)
    section: str = ""
    cell: int = -1
    _printer: Callable[[str], None] = print

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> None:
        kind, value = self._convert(obj)
        self.items.append(Displayed(kind, value, self.section, self.cell))
        if self.echo:
            self._printer(self._render(kind, value))

    def _convert(self, obj: Any) -> tuple[str, Any]:
        if hasattr(obj, "toPandas") and hasattr(obj, "limit"):  # a Spark DataFrame
            # Nullable integer columns stay integers (pandas would make them floats).
            return "table", obj.limit(self.max_rows).toPandas().convert_dtypes()
        if isinstance(obj, pd.Series):
            return "table", obj.to_frame()
        if isinstance(obj, pd.DataFrame):
            return "table", obj
        if isinstance(obj, Figure):
            return "figure", self._save(obj)
        return "text", str(obj)

    def _save(self, fig: Any) -> str:
        if self.out_dir is None:
            self.out_dir = tempfile.mkdtemp(prefix="gapreplay-notebook-")
        Path(self.out_dir).mkdir(parents=True, exist_ok=True)
        path = Path(self.out_dir) / f"figure_{len(self.items):02d}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return str(path)

    def _render(self, kind: str, value: Any) -> str:
        if kind == "figure":
            return f"[figure saved to {value}]"
        if kind == "text":
            return value
        if value.empty:
            return f"(no rows; columns: {', '.join(map(str, value.columns))})\n"
        head = value.head(self.show_rows)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            text = head.to_string(index=False, max_colwidth=80)
        if len(value) > len(head):
            text += f"\n… {len(value)} rows, the first {len(head)} shown"
        return text + "\n"


def get_session() -> Any:
    """The active SparkSession, else a local one with Delta (GAPREPLAY_SPARK_MASTER or
    local[2])."""
    from spark_jobs.session import get_spark

    return get_spark(
        master=os.environ.get("GAPREPLAY_SPARK_MASTER", "local[2]"), app_name="gapreplay-notebook"
    )


_shared: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # `from notebooks._local import spark, display, dbutils`: made on first use.
    if name not in ("spark", "display", "dbutils"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _shared:
        makers = {"spark": get_session, "display": Display, "dbutils": LocalDBUtils}
        _shared[name] = makers[name]()
    return _shared[name]
