# shellcheck shell=bash
# CQL: Apache Cassandra 5 (scripts/lib/cassandra/node), jars from Maven Central.

CASSANDRA_NODE="$LIB/cassandra/node"
# The JVM's command line names this class: how our pid file is told from a reused pid.
CASSANDRA_PROGRAM=CassandraDaemon

cassandra_addr() { read -r CQL_HOST CQL_PORT <<<"$(host_port "${DOORSTEP_CQL_NODES%%,*}")"; }

cassandra_up() {
  cassandra_addr
  ensure_devservices
  local dir="$DOORSTEP_STATE_DIR/cassandra"
  if ! our_pid cassandra "$CASSANDRA_PROGRAM" >/dev/null && ! tcp_open "$CQL_HOST" "$CQL_PORT" \
    && is_local_host "$CQL_HOST"; then
    "$CASSANDRA_NODE" prepare >/dev/null
    require_memory cassandra $(($(heap_mib "$DOORSTEP_CASSANDRA_HEAP") + 768))
    if tcp_open 127.0.0.1 "$DOORSTEP_CASSANDRA_STORAGE_PORT"; then
      die "cassandra: the storage port $DOORSTEP_CASSANDRA_STORAGE_PORT is taken by another program; free it or set DOORSTEP_CASSANDRA_STORAGE_PORT"
    fi
  fi
  # A first start creates the system keyspaces: allow it more than the usual timeout.
  SERVICE_TIMEOUT=$((DOORSTEP_SERVICES_TIMEOUT * 2)) \
    devservice_up cassandra "$DOORSTEP_CQL_NODES" "$CQL_HOST" "$CQL_PORT" \
    "cql $CQL_HOST:$CQL_PORT" "$CASSANDRA_PROGRAM" \
    -- "$CASSANDRA_NODE" run "$dir" "$CQL_PORT" "$DOORSTEP_CASSANDRA_STORAGE_PORT"
}

cassandra_down() {
  cassandra_addr
  devservice_down cassandra "$DOORSTEP_CQL_NODES" "$CASSANDRA_PROGRAM" "$CQL_HOST" "$CQL_PORT"
}

cassandra_status() {
  cassandra_addr
  devservice_status cassandra "$DOORSTEP_CQL_NODES" "$CASSANDRA_PROGRAM" "cql $CQL_HOST:$CQL_PORT"
}

cassandra_clean() { rm -rf "$DOORSTEP_STATE_DIR/cassandra"; }
