"""Run the streaming job locally with ``spark-submit``: local master, the Maven-resolved jars.

    python -m scripts.run_job [job flags...]       # e.g. --available-now --lake-uri file:///tmp/lake

Exactly what EMR runs (``emr_jobs/job.py``), with the jars from ``.cache/jars/spark`` on the
classpath instead of S3. Nothing is downloaded when the job starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import Settings

SPARK_JARS_DIR = REPO_ROOT / ".cache" / "jars" / "spark"
S3A_JARS_DIR = REPO_ROOT / ".cache" / "jars" / "s3a"
#: Iceberg runtime and SQLite JDBC driver: local and compose runs only (EMR ships its Iceberg).
ICEBERG_JARS_DIR = REPO_ROOT / ".cache" / "jars" / "iceberg"
JOB_SCRIPT = REPO_ROOT / "emr_jobs" / "job.py"
LOG4J_CONFIG = REPO_ROOT / "local" / "spark" / "log4j2.properties"


class JarsMissing(RuntimeError):
    pass


def job_jars(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    jars = sorted(SPARK_JARS_DIR.glob("*.jar"))
    if not any(j.name.startswith("spark-sql-kafka") for j in jars):
        raise JarsMissing(
            f"the Spark Kafka connector is missing in {SPARK_JARS_DIR}; run `make setup`"
        )
    iceberg = sorted(ICEBERG_JARS_DIR.glob("*.jar"))
    if not any(j.name.startswith("iceberg-spark-runtime") for j in iceberg):
        raise JarsMissing(f"the Iceberg runtime is missing in {ICEBERG_JARS_DIR}; run `make setup`")
    jars.extend(iceberg)
    for d in extra_dirs:
        jars.extend(sorted(Path(d).glob("*.jar")))
    return jars


def spark_submit_command(
    job_args: Sequence[str],
    *,
    master: str = "local[2]",
    driver_memory: str = "2g",
    extra_jar_dirs: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
) -> list[str]:
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [
        str(spark_submit),
        "--master",
        master,
        "--driver-memory",
        driver_memory,
        "--jars",
        ",".join(str(j) for j in job_jars(extra_jar_dirs)),
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--driver-java-options",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}",
    ]
    for key, value in (conf or {}).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(JOB_SCRIPT), *job_args]


def job_environment(*settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment: ``env`` (default: this process's), then each of ``settings``
    rendered over it (``Settings.to_env``), and the Python path of this checkout."""
    merged = dict(os.environ if env is None else env)
    for each in settings:
        merged.update(each.to_env())
    merged["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(REPO_ROOT), merged.get("PYTHONPATH", "")] if p
    )
    merged.setdefault("PYSPARK_PYTHON", sys.executable)
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = spark_submit_command(args)
    except JarsMissing as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return subprocess.call(command, env=job_environment())


if __name__ == "__main__":
    sys.exit(main())
