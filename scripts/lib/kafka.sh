# shellcheck shell=bash
# Kafka: Apache Kafka 4 in KRaft mode (scripts/lib/kafka/node), jars from Maven Central.

KAFKA_NODE="$LIB/kafka/node"
# The JVM's command line names this class: how our pid file is told from a reused pid.
KAFKA_PROGRAM=kafka.Kafka

kafka_addr() {
  local first=${DOORSTEP_KAFKA_BROKERS%%,*}
  read -r KAFKA_HOST KAFKA_PORT <<<"$(host_port "$first")"
}

kafka_up() {
  kafka_addr
  ensure_devservices
  local dir="$DOORSTEP_STATE_DIR/kafka"
  if ! our_pid kafka "$KAFKA_PROGRAM" >/dev/null && ! tcp_open "$KAFKA_HOST" "$KAFKA_PORT" \
    && is_local_host "$KAFKA_HOST"; then
    # Everything that can fail before the JVM starts fails here, with its own sentence.
    "$KAFKA_NODE" prepare >/dev/null
    require_memory kafka $(($(heap_mib "$DOORSTEP_KAFKA_HEAP") + 384))
    if tcp_open 127.0.0.1 "$DOORSTEP_KAFKA_CONTROLLER_PORT"; then
      die "kafka: the controller port $DOORSTEP_KAFKA_CONTROLLER_PORT is taken by another program; free it or set DOORSTEP_KAFKA_CONTROLLER_PORT"
    fi
  fi
  devservice_up kafka "$DOORSTEP_KAFKA_BROKERS" "$KAFKA_HOST" "$KAFKA_PORT" \
    "kafka $KAFKA_HOST:$KAFKA_PORT" "$KAFKA_PROGRAM" \
    -- "$KAFKA_NODE" run "$dir" "$KAFKA_PORT" "$DOORSTEP_KAFKA_CONTROLLER_PORT"
}

kafka_down() {
  kafka_addr
  devservice_down kafka "$DOORSTEP_KAFKA_BROKERS" "$KAFKA_PROGRAM" "$KAFKA_HOST" "$KAFKA_PORT"
}

kafka_status() {
  kafka_addr
  devservice_status kafka "$DOORSTEP_KAFKA_BROKERS" "$KAFKA_PROGRAM" "kafka $KAFKA_HOST:$KAFKA_PORT"
}

kafka_clean() { rm -rf "$DOORSTEP_STATE_DIR/kafka"; }
