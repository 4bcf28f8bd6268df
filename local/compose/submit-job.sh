#!/usr/bin/env bash
# The `spark-submit` service of local/docker-compose.yml (apache/spark image): submits the job
# that EMR runs, emr_jobs/job.py, to the standalone master in client mode. Kafka is the `kafka`
# service's internal listener; the lake is Iceberg tables on MinIO (s3a://), with the catalog in
# a SQLite file on the driver (LAKE_CATALOG=jdbc, LAKE_CATALOG_URI). Extra arguments go to the
# job (for example `--available-now`).
#
# Jars (`make setup` on the host): .cache/jars/spark (Kafka source), .cache/jars/iceberg (the
# Iceberg runtime and the SQLite JDBC driver of the catalog) and .cache/jars/s3a (S3A, through
# which Iceberg's HadoopFileIO writes metadata and data files). --jars ships them to executors.
#
# S3A settings (local/README.md, "The lake on any S3-compatible store"): endpoint, path-style access,
# plain HTTP, and credentials from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
# here MinIO's local dev login, set on this container and on the workers, whose executors
# write the data files). No key is ever written into a Spark or Hadoop setting.
set -euo pipefail

APP=/opt/smartcity/app
JARS=/opt/smartcity/jars

for jar in spark/spark-sql-kafka-0-10_ iceberg/iceberg-spark-runtime- iceberg/sqlite-jdbc- \
           s3a/hadoop-aws-; do
  if ! ls "$JARS/$jar"*.jar >/dev/null 2>&1; then
    echo "submit-job: $JARS/$jar*.jar is missing (.cache/jars on the host); run 'make setup'" >&2
    exit 2
  fi
done
jars=$(ls "$JARS"/spark/*.jar "$JARS"/iceberg/*.jar "$JARS"/s3a/*.jar | paste -sd, -)

# SQLite creates the catalog file but not its directory.
catalog_file=${LAKE_CATALOG_URI:?}
catalog_file=${catalog_file#jdbc:sqlite:}
mkdir -p "$(dirname "$catalog_file")"

# The job and its contracts as --py-files, as on EMR; executors import emr_jobs from it.
(cd "$APP" && python3 -m zipfile -c /tmp/smartcity-job.zip emr_jobs)

exec /opt/spark/bin/spark-submit \
  --master "${SPARK_MASTER_URL:?}" \
  --deploy-mode client \
  --name smartcity-streaming-job \
  --jars "$jars" \
  --py-files /tmp/smartcity-job.zip \
  --conf spark.driver.host="$(hostname)" \
  --conf spark.driver.bindAddress=0.0.0.0 \
  --conf spark.executor.memory="${SPARK_EXECUTOR_MEMORY:-1g}" \
  --conf spark.executor.cores="${SPARK_EXECUTOR_CORES:-2}" \
  --conf spark.cores.max="${SPARK_CORES_MAX:-4}" \
  --conf spark.pyspark.python=python3 \
  --conf spark.ui.showConsoleProgress=false \
  --conf spark.hadoop.fs.s3a.endpoint="${S3_ENDPOINT_URL:?}" \
  --conf spark.hadoop.fs.s3a.endpoint.region="${S3_REGION:-us-east-1}" \
  --conf spark.hadoop.fs.s3a.path.style.access=true \
  --conf spark.hadoop.fs.s3a.connection.ssl.enabled=false \
  --conf spark.hadoop.fs.s3a.aws.credentials.provider=com.amazonaws.auth.EnvironmentVariableCredentialsProvider \
  "$APP/emr_jobs/job.py" "$@"
