#!/usr/bin/env bash
# The `spark-submit` service of local/docker-compose.yml (apache/spark image): submits the job
# that EMR runs, emr_jobs/job.py, to the standalone master in client mode. Kafka is the `kafka`
# service's internal listener; the lake is s3a:// on MinIO. Extra arguments go to the job
# (for example `--available-now`).
#
# S3A settings (README, "The lake on any S3-compatible store"): endpoint, path-style access,
# plain HTTP, and credentials from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
# here MinIO's local dev login, set on this container and on the workers, whose executors
# write the Parquet files). No key is ever written into a Spark or Hadoop setting.
set -euo pipefail

APP=/opt/smartcity/app
JARS=/opt/smartcity/jars

if ! ls "$JARS"/spark/spark-sql-kafka-*.jar "$JARS"/s3a/hadoop-aws-*.jar >/dev/null 2>&1; then
  echo "submit-job: the Kafka and S3A jars are missing in .cache/jars; run 'make setup' on the host" >&2
  exit 2
fi
jars=$(ls "$JARS"/spark/*.jar "$JARS"/s3a/*.jar | paste -sd, -)

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
