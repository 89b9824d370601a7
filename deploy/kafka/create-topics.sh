#!/usr/bin/env bash
# Creates Doorstep's Kafka topics with the Kafka distribution's own CLI, idempotently.
# Run by the `kafka-init` service in docker-compose.yml (apache/kafka image); exits 0 when
# every topic exists with the wanted partition count and configs, non-zero otherwise.
#
# Environment:
#   DOORSTEP_TOPICS     one topic per line: <name> <partitions> [<config>=<value> ...]
#                       (blank lines and lines starting with # are ignored)
#   BOOTSTRAP_SERVERS   [kafka:9092]
#   REPLICATION_FACTOR  [1]
#   KAFKA_BIN           [/opt/kafka/bin] where kafka-topics.sh and kafka-configs.sh live
#
# An existing topic is never re-partitioned: keys are hashed onto partitions, so a new
# count would move orders to other partitions and break their ordering and keyed state.
# A mismatch is reported and fails the run; fix it deliberately (new topic, migration).
# Configs listed for a topic are (re)applied on every run, so changing one here converges.
set -euo pipefail

bootstrap=${BOOTSTRAP_SERVERS:-kafka:9092}
replication=${REPLICATION_FACTOR:-1}
bin=${KAFKA_BIN:-/opt/kafka/bin}
topics=${DOORSTEP_TOPICS:?DOORSTEP_TOPICS must list the topics, one per line}

log() { printf 'kafka-init: %s\n' "$*"; }
fail() { printf 'kafka-init: error: %s\n' "$*" >&2; exit 1; }

[[ -x $bin/kafka-topics.sh ]] || fail "$bin/kafka-topics.sh not found (set KAFKA_BIN)"

count=0
while read -r name partitions configs; do
  [[ -z ${name:-} || $name == \#* ]] && continue
  [[ ${partitions:-} =~ ^[1-9][0-9]*$ ]] || fail "topic $name: partitions must be a positive number, got '${partitions:-}'"

  config_args=()
  for c in ${configs:-}; do
    [[ $c == *=* ]] || fail "topic $name: config '$c' is not <key>=<value>"
    config_args+=(--config "$c")
  done

  "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$replication" \
    "${config_args[@]}"

  # The topic may have existed before: check what it really has.
  description=$("$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --describe --topic "$name")
  actual=$(sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' <<<"$description" | head -n 1)
  [[ -n $actual ]] || fail "topic $name: could not read its partition count from: $description"
  if [[ $actual != "$partitions" ]]; then
    fail "topic $name has $actual partitions, docker-compose.yml wants $partitions; not changing it (see the comment in $0)"
  fi

  if [[ -n ${configs:-} ]]; then
    "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type topics \
      --entity-name "$name" --add-config "$(tr -s ' ' ',' <<<"$configs")"
  fi

  log "topic $name: $partitions partitions${configs:+, $configs}"
  count=$((count + 1))
done <<<"$topics"

[[ $count -gt 0 ]] || fail "DOORSTEP_TOPICS lists no topic"
log "$count topics ready"
