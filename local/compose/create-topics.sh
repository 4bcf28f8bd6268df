#!/bin/sh
# The `topics` service of local/docker-compose.yml: creates the seven topics with the Kafka CLI
# of the broker image, the same names, partitions and retention as `python -m scripts.topics
# create` (scripts/topics.py): the five the producer writes and the two the job derives (alerts,
# road conditions). Idempotent: an existing topic is left as it is.
set -eu

: "${KAFKA_BOOTSTRAP_SERVERS:?}"
retention_ms=$(( ${TOPIC_RETENTION_HOURS:-168} * 3600000 ))
created=""
for topic in "${VEHICLE_TOPIC:?}" "${GPS_TOPIC:?}" "${TRAFFIC_TOPIC:?}" "${WEATHER_TOPIC:?}" \
             "${EMERGENCY_TOPIC:?}" "${ALERTS_TOPIC:?}" "${ROAD_CONDITIONS_TOPIC:?}"; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
    --create --if-not-exists --topic "$topic" \
    --partitions "${TOPIC_PARTITIONS:-3}" \
    --replication-factor "${TOPIC_REPLICATION_FACTOR:-1}" \
    --config "retention.ms=$retention_ms"
  created="${created:+$created,}$topic"
done
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe \
  --topic "$created"
