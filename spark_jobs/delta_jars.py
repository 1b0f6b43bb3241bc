"""Fetching the Delta Lake jars once (`make setup`) and finding them offline afterwards.

Besides Delta, an optional `s3` set (`--set s3`, in `<jar dir>/s3/`) makes `s3a://` work:
hadoop-aws for pyspark's Hadoop and the individual AWS SDK v2 modules it uses, about 13 MB,
instead of the 600 MB SDK bundle that hadoop-aws's POM names.
"""

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
_PYSPARK_JARS = Path(pyspark.__file__).parent / "jars"
# hadoop-aws must match the Hadoop that pyspark ships (hadoop-client-api-<version>.jar).
HADOOP_VERSION = next(
    (p.name[len("hadoop-client-api-") : -4] for p in _PYSPARK_JARS.glob("hadoop-client-api-*")),
    "3.5.0",
)
# The AWS SDK v2 version of hadoop-project's POM at that Hadoop version (3.5.0: 2.35.4).
AWS_SDK_VERSION = "2.35.4"
S3_PACKAGES = (
    f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}",
    *(
        f"software.amazon.awssdk:{module}:{AWS_SDK_VERSION}"
        for module in ("s3", "s3-transfer-manager", "sts", "apache-client")
    ),
)
# Maven coordinates per set, and what Ivy must leave out of it.
JAR_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "delta": ((DELTA_PACKAGE,), ()),
    "s3": (S3_PACKAGES, ("software.amazon.awssdk:bundle",)),
}


def default_jar_dir() -> Path:
    """GAPREPLAY_JARS_DIR, else `.cache/jars` in the source checkout this code runs from."""
    env = os.environ.get("GAPREPLAY_JARS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".cache" / "jars"


def set_dir(jar_dir: Path, jar_set: str) -> Path:
    """Where a set's jars are cached: Delta's in the jar folder, others in a subfolder."""
    return jar_dir if jar_set == "delta" else jar_dir / jar_set


def local_jars(jar_dir: Path | None = None) -> list[str]:
    """The cached jars (Delta, plus the `s3` set when fetched), or [] when `make setup` has
    not fetched Delta's (complete) yet."""
    jar_dir = jar_dir or default_jar_dir()
    if not (jar_dir / MARKER).exists():
        return []
    found = []
    for jar_set in JAR_SETS:
        folder = set_dir(jar_dir, jar_set)
        if (folder / MARKER).exists():
            found += sorted(str(p) for p in folder.glob("*.jar"))
    return found


def _artifact(jar_name: str) -> str:
    """`org.example_lib-1.2.3.jar` -> `lib`: the artifact name without group and version."""
    return _VERSION_SUFFIX.sub("", jar_name.split("_", 1)[-1])


def _marker_text(jar_set: str) -> str:
    return ",".join(JAR_SETS[jar_set][0]) + "\n"


def fetch(jar_dir: Path, jar_set: str = "delta") -> list[str]:
    """Resolve a set's packages through Spark's Ivy from Maven Central into its folder.

    Jars that pyspark already ships (Jackson, Parquet, Hadoop, Netty, …), or that the Delta
    set holds, are left out so that the classpath holds one copy of each library.
    """
    from pyspark.sql import SparkSession

    packages, excludes = JAR_SETS[jar_set]
    have = [*_PYSPARK_JARS.glob("*.jar")]
    if jar_set != "delta":
        have += jar_dir.glob("*.jar")
    shipped = {_VERSION_SUFFIX.sub("", p.name) for p in have} | {_artifact(p.name) for p in have}
    target = set_dir(jar_dir, jar_set)
    with tempfile.TemporaryDirectory() as ivy:
        builder = (
            SparkSession.builder.master("local[1]")
            .appName("gapreplay-fetch-jars")
            .config("spark.jars.packages", ",".join(packages))
            .config("spark.jars.ivy", ivy)
            .config("spark.ui.enabled", "false")
        )
        if excludes:
            builder = builder.config("spark.jars.excludes", ",".join(excludes))
        builder.getOrCreate().stop()
        resolved = sorted(Path(ivy, "jars").glob("*.jar"))
        first = packages[0].split(":")[1]
        if not any(first in p.name for p in resolved):
            raise RuntimeError(f"Ivy did not resolve {packages[0]} from Maven Central")
        target.mkdir(parents=True, exist_ok=True)
        kept = []
        for jar in resolved:
            if _artifact(jar.name) not in shipped:
                shutil.copy2(jar, target / jar.name)
                kept.append(str(target / jar.name))
    (target / MARKER).write_text(_marker_text(jar_set))
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the Delta Lake jars into a local cache")
    parser.add_argument("--to", type=Path, default=default_jar_dir())
    parser.add_argument(
        "--set", dest="jar_set", choices=sorted(JAR_SETS), default="delta", help="which jars"
    )
    args = parser.parse_args(argv)
    folder = set_dir(args.to, args.jar_set)
    marker = folder / MARKER
    if marker.exists() and marker.read_text() == _marker_text(args.jar_set):
        print(f"{args.jar_set} jars already cached in {folder}")
        return 0
    jars = fetch(args.to, args.jar_set)
    print(f"cached {len(jars)} jars for {_marker_text(args.jar_set).strip()} in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
