# shellcheck shell=bash
# Starting, stopping and probing one long-running service, and the workspace's own stand-in
# schema registry (doorstep-schema-registry).

# Generic up for a service this script may start. PROGRAM is a word of the running
# process's command line (how a pid file is checked against pid reuse). Usage:
#   devservice_up NAME ADDRESS_SHOWN HOST PORT PROBE_ARGS PROGRAM -- CMD...
devservice_up() {
  local name=$1 shown=$2 host=$3 port=$4 probe=$5 program=$6 t0 pid
  shift 6
  [[ $1 == -- ]] && shift
  t0=$(now_ms)
  if pid=$(our_pid "$name" "$program"); then
    # shellcheck disable=SC2086 # probe args are words
    wait_for "$DOORSTEP_SERVICES_TIMEOUT" $probe >/dev/null \
      || { log_tail "$name"; die "our $program (pid $pid) does not answer on $host:$port"; }
    report "$name" "$shown" "running (ours, pid $pid)" "$(elapsed "$t0")"
    return 0
  fi
  if tcp_open "$host" "$port"; then
    # shellcheck disable=SC2086
    wait_for 5 $probe >/dev/null 2>&1 \
      || die "port $port is taken by something that does not answer as $name; free it or change its DOORSTEP_* variable"
    report "$name" "$shown" "reused (already answering)" "$(elapsed "$t0")"
    return 0
  fi
  is_local_host "$host" || die "$name does not answer at $shown and it is not local, so it cannot be started here"
  spawn "$name" "$DOORSTEP_STATE_DIR/$name" "$@"
  # shellcheck disable=SC2086
  if ! await_ready "$name" "$program" "${SERVICE_TIMEOUT:-$DOORSTEP_SERVICES_TIMEOUT}" probe_once $probe; then
    log_tail "$name"
    # Nothing half-started is left behind.
    stop_ours "$name" "$program" >/dev/null || true
    die "$name did not become ready on $host:$port within ${SERVICE_TIMEOUT:-$DOORSTEP_SERVICES_TIMEOUT}s and was stopped (log: $LOG_DIR/$name.log)"
  fi
  report "$name" "$shown" "started (pid $(our_pid "$name" "$program" || echo '?'))" "$(elapsed "$t0")"
}

devservice_down() {
  local name=$1 shown=$2 program=$3 host=$4 port=$5 pid
  if pid=$(stop_ours "$name" "$program"); then
    report "$name" "$shown" "stopped (pid $pid)"
  elif tcp_open "$host" "$port"; then
    report "$name" "$shown" "left running (not started by us)"
  else
    report "$name" "$shown" "not running"
  fi
}

devservice_status() {
  local name=$1 shown=$2 program=$3 probe=$4 pid
  # shellcheck disable=SC2086
  if [[ -x ${WAIT_BIN:-} ]] && wait_for 2 $probe >/dev/null 2>&1; then
    if pid=$(our_pid "$name" "$program"); then
      report "$name" "$shown" "up (ours, pid $pid)"
    else
      report "$name" "$shown" "up (external)"
    fi
  else
    report "$name" "$shown" "DOWN"
    return 1
  fi
}

registry_addr() { read -r REG_HOST REG_PORT <<<"$(host_port "$DOORSTEP_SCHEMA_REGISTRY_URL")"; }

schema_registry_up() {
  registry_addr
  ensure_devservices
  local data=()
  if [[ -n $DOORSTEP_SCHEMA_REGISTRY_DATA ]]; then
    mkdir -p "$(dirname "$DOORSTEP_SCHEMA_REGISTRY_DATA")"
    data=(--data "$DOORSTEP_SCHEMA_REGISTRY_DATA")
  fi
  devservice_up schema-registry "$DOORSTEP_SCHEMA_REGISTRY_URL" "$REG_HOST" "$REG_PORT" \
    "http ${DOORSTEP_SCHEMA_REGISTRY_URL%/}/subjects" doorstep-schema-registry \
    -- "$REGISTRY_BIN" --listen "$REG_HOST:$REG_PORT" "${data[@]}"
}
schema_registry_down() {
  registry_addr && devservice_down schema-registry "$DOORSTEP_SCHEMA_REGISTRY_URL" doorstep-schema-registry "$REG_HOST" "$REG_PORT"
}
schema_registry_status() {
  registry_addr && devservice_status schema-registry "$DOORSTEP_SCHEMA_REGISTRY_URL" doorstep-schema-registry "http ${DOORSTEP_SCHEMA_REGISTRY_URL%/}/subjects"
}
schema_registry_clean() {
  rm -rf "$DOORSTEP_STATE_DIR/schema-registry"
  [[ -z $DOORSTEP_SCHEMA_REGISTRY_DATA ]] || rm -f "$DOORSTEP_SCHEMA_REGISTRY_DATA"
}
