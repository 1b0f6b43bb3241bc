"""The SparkSession factory: Delta configured and verified, sized for the machine."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from spark_jobs import delta_jars

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class DeltaUnavailableError(RuntimeError):
    """Delta Lake is not on the session's classpath."""


def _default_driver_memory() -> str:
    # In local mode the driver is also the executor: give it about a third of the RAM,
    # leaving the rest to the Python workers that parse, hash and tokenize.
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4g"
    return f"{max(2, min(16, total // (3 << 30)))}g"


def s3a_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Spark settings that point `s3a://` at the endpoint the AWS environment names.

    The same variables configure boto (s3fs, for the files tasks upload) and delta-rs (Spark-
    free reads), so one environment serves all three clients: AWS_ENDPOINT_URL (an
    S3-compatible server: path-style access, plain HTTP when the URL says so) and AWS_REGION.
    Credentials need nothing here: s3a's default chain reads AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, then the instance's role.
    """
    env = os.environ if env is None else env
    settings = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        settings["fs.s3a.endpoint"] = endpoint
        settings["fs.s3a.path.style.access"] = "true"
        settings["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https:")).lower()
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        settings["fs.s3a.endpoint.region"] = region
    return {f"spark.hadoop.{key}": value for key, value in settings.items()}


def get_spark(
    master: str | None = None,
    app_name: str = "gapreplay",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """The active session if there is one (Databricks, a test's), else a new one.

    `master` defaults to GAPREPLAY_SPARK_MASTER or `local[*]`; `spark://…` runs on a
    standalone cluster. Raises DeltaUnavailableError when the Delta jars are missing.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        check_delta(active)
        return active
    # Under spark-submit the JVM already runs, with the master and classpath its --master
    # and --jars / --packages gave: jars named now would not reach the driver, so only check
    # that Delta loads, and keep its master unless one is named here.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    master = master or os.environ.get("GAPREPLAY_SPARK_MASTER")
    if master is None and not submitted:
        master = "local[*]"
    jars = [] if submitted else delta_jars.local_jars()
    if not jars and not submitted:
        raise DeltaUnavailableError(
            f"Delta Lake jars are not in {delta_jars.default_jar_dir()}: run `make setup` "
            "(it fetches them from Maven Central once), or point GAPREPLAY_JARS_DIR at a "
            "folder holding them"
        )
    # Python workers must run this interpreter (it has pyarrow and the gapreplay packages).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    named = master or ""  # empty: spark-submit's --master
    if named.startswith("local") or "127.0.0.1" in named:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    cores = os.cpu_count() or 2
    settings = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": os.environ.get("GAPREPLAY_DRIVER_MEMORY", _default_driver_memory()),
        "spark.sql.shuffle.partitions": str(max(4, 2 * cores)),
        "spark.default.parallelism": str(max(4, 2 * cores)),
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.ui.enabled": os.environ.get("GAPREPLAY_SPARK_UI", "false"),
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta's default retention check would refuse the short vacuum windows tests use.
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        **s3a_settings(),
    }
    if jars:
        settings["spark.jars"] = ",".join(jars)
    if named.startswith("local"):
        # Delta rebuilds a table's snapshot in 50 tasks by default: on one machine that
        # scheduling overhead costs seconds per read of a small table.
        settings["spark.databricks.delta.snapshotPartitions"] = str(max(2, cores))
    if named.startswith("spark://"):
        settings["spark.driver.host"] = os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")
    settings.update(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    log.info("starting Spark (%s), Delta jars: %s", named or "spark-submit", jars or "--jars")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("GAPREPLAY_SPARK_LOG_LEVEL", "ERROR"))
    check_delta(spark)
    return spark


def check_delta(spark: SparkSession) -> None:
    """Fail now, with a clear reason, rather than at the first query with an obscure one."""
    try:
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        loader = jvm.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(DELTA_CATALOG, False, loader)
    except Exception as exc:
        raise DeltaUnavailableError(
            f"this Spark session cannot load Delta Lake ({DELTA_CATALOG}): start it with the "
            f"Delta jars ({delta_jars.DELTA_PACKAGE}); `make setup` caches them (spark-submit: "
            "pass them with --jars, or --packages)"
        ) from exc
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in extensions:
        raise DeltaUnavailableError(
            f"this Spark session lacks spark.sql.extensions={DELTA_EXTENSION}"
        )
