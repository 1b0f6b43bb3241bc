"""Fetching the Delta Lake jars once (`make setup`) and finding them offline afterwards."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pyspark

DELTA_VERSION = "4.4.0"
SCALA = "2.13"
SPARK_MINOR = ".".join(pyspark.__version__.split(".")[:2])
DELTA_PACKAGE = f"io.delta:delta-spark_{SPARK_MINOR}_{SCALA}:{DELTA_VERSION}"
MARKER = ".complete"
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def default_jar_dir() -> Path:
    """GAPREPLAY_JARS_DIR, else `.cache/jars` in the source checkout this code runs from."""
    env = os.environ.get("GAPREPLAY_JARS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".cache" / "jars"


def local_jars(jar_dir: Path | None = None) -> list[str]:
    """The cached jars, or [] when `make setup` has not fetched them (complete) yet."""
    jar_dir = jar_dir or default_jar_dir()
    if not (jar_dir / MARKER).exists():
        return []
    return sorted(str(p) for p in jar_dir.glob("*.jar"))


def _artifact(jar_name: str) -> str:
    """`org.example_lib-1.2.3.jar` -> `lib`: the artifact name without group and version."""
    return _VERSION_SUFFIX.sub("", jar_name.split("_", 1)[-1])


def fetch(jar_dir: Path) -> list[str]:
    """Resolve DELTA_PACKAGE through Spark's Ivy from Maven Central into `jar_dir`.

    Jars that pyspark already ships (Jackson, Parquet, Hadoop, …) are left out so that the
    classpath holds one copy of each library.
    """
    from pyspark.sql import SparkSession

    shipped = {
        _VERSION_SUFFIX.sub("", p.name)
        for p in Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar")
    }
    with tempfile.TemporaryDirectory() as ivy:
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("gapreplay-fetch-jars")
            .config("spark.jars.packages", DELTA_PACKAGE)
            .config("spark.jars.ivy", ivy)
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        spark.stop()
        resolved = sorted(Path(ivy, "jars").glob("*.jar"))
        if not any("delta-spark" in p.name for p in resolved):
            raise RuntimeError(f"Ivy did not resolve {DELTA_PACKAGE} from Maven Central")
        jar_dir.mkdir(parents=True, exist_ok=True)
        kept = []
        for jar in resolved:
            if _artifact(jar.name) not in shipped:
                shutil.copy2(jar, jar_dir / jar.name)
                kept.append(str(jar_dir / jar.name))
    (jar_dir / MARKER).write_text(DELTA_PACKAGE + "\n")
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the Delta Lake jars into a local cache")
    parser.add_argument("--to", type=Path, default=default_jar_dir())
    args = parser.parse_args(argv)
    marker = args.to / MARKER
    if marker.exists() and marker.read_text().strip() == DELTA_PACKAGE:
        print(f"Delta jars already cached in {args.to}")
        return 0
    jars = fetch(args.to)
    print(f"cached {len(jars)} jars for {DELTA_PACKAGE} in {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
