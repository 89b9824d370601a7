# shellcheck shell=bash
# Kafka protocol: the nisshi broker (installed once with cargo into ~/.cargo/bin).

CARGO_BIN_DIR="${CARGO_HOME:-$HOME/.cargo}/bin"

kafka_addr() {
  local first=${DOORSTEP_KAFKA_BROKERS%%,*}
  read -r KAFKA_HOST KAFKA_PORT <<<"$(host_port "$first")"
}

nisshi_ok() { [[ -x $1 ]] && [[ $("$1" --version 2>/dev/null) == "nisshi $DOORSTEP_NISSHI_VERSION" ]]; }

# Prints the path of a nisshi binary of the wanted version, or fails.
find_nisshi() {
  local c
  for c in "$(command -v nisshi 2>/dev/null || true)" "$CARGO_BIN_DIR/nisshi"; do
    if [[ -n $c ]] && nisshi_ok "$c"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

nisshi_build_running() { pgrep -f 'cargo (\+[^ ]+ )?install .*nisshi' >/dev/null 2>&1; }

# rustc's minor version for a toolchain selector (empty for the default), or 0.
rustc_minor() { rustc ${1:+"$1"} --version 2>/dev/null | sed -nE 's/^rustc 1\.([0-9]+).*/\1/p' | grep . || echo 0; }

install_nisshi() {
  if nisshi_build_running; then
    note "another 'cargo install nisshi' is already running; waiting for it to finish (up to 40 min)"
    local deadline=$(($(date +%s) + 2400))
    while nisshi_build_running && (($(date +%s) < deadline)); do sleep 10; done
    find_nisshi >/dev/null && return 0
  fi
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then rerun"
  # nisshi 0.8.1 needs rustc >= 1.96.
  local toolchain=()
  if (($(rustc_minor) >= 96)); then
    toolchain=()
  elif (($(rustc_minor +nightly) >= 96)); then
    toolchain=(+nightly)
  else
    die "nisshi $DOORSTEP_NISSHI_VERSION needs rustc >= 1.96 and neither the default toolchain nor a nightly has it; get one with: rustup toolchain install nightly --profile minimal  (then rerun; the build takes 15-20 min)"
  fi
  local t0
  t0=$(now_ms)
  mkdir -p "$LOG_DIR"
  note "building nisshi $DOORSTEP_NISSHI_VERSION: cargo ${toolchain[*]} install --locked nisshi (15-20 min on 2 cores, once; log: $LOG_DIR/nisshi-install.log)"
  cargo "${toolchain[@]}" install --locked nisshi --version "$DOORSTEP_NISSHI_VERSION" \
    >"$LOG_DIR/nisshi-install.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/nisshi-install.log" >&2; die "cargo install nisshi $DOORSTEP_NISSHI_VERSION failed (log: $LOG_DIR/nisshi-install.log)"; }
  note "nisshi built in $(elapsed "$t0")"
  find_nisshi >/dev/null || die "nisshi was installed but $CARGO_BIN_DIR/nisshi --version is not $DOORSTEP_NISSHI_VERSION"
}

start_nisshi() {
  local bin=$1 storage=$2
  spawn kafka "$DOORSTEP_STATE_DIR/kafka" "$bin" broker \
    --listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
    --advertised-listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
    --storage-engine "$storage" \
    --group-initial-rebalance-delay "$DOORSTEP_KAFKA_GROUP_REBALANCE_DELAY"
}

kafka_up() {
  local t0 pid bin storage=$DOORSTEP_KAFKA_STORAGE
  t0=$(now_ms)
  kafka_addr
  ensure_devservices
  if pid=$(our_pid kafka nisshi); then
    wait_for "$DOORSTEP_SERVICES_TIMEOUT" kafka "$KAFKA_HOST:$KAFKA_PORT" >/dev/null \
      || { log_tail kafka; die "our nisshi (pid $pid) does not answer on $KAFKA_HOST:$KAFKA_PORT"; }
    report kafka "$DOORSTEP_KAFKA_BROKERS" "running (ours, pid $pid)" "$(elapsed "$t0")"
    return 0
  fi
  if tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    wait_for 5 kafka "$KAFKA_HOST:$KAFKA_PORT" >/dev/null 2>&1 \
      || die "port $KAFKA_PORT is taken by something that does not speak Kafka; free it or set DOORSTEP_KAFKA_BROKERS"
    report kafka "$DOORSTEP_KAFKA_BROKERS" "reused (already answering)" "$(elapsed "$t0")"
    return 0
  fi
  is_local_host "$KAFKA_HOST" || die "no Kafka broker answers at $DOORSTEP_KAFKA_BROKERS and it is not local, so it cannot be started here"
  bin=$(find_nisshi) || { install_nisshi && bin=$(find_nisshi); }
  mkdir -p "$DOORSTEP_STATE_DIR/kafka"
  start_nisshi "$bin" "$storage"
  if ! await_ready kafka nisshi "$DOORSTEP_SERVICES_TIMEOUT" probe_once kafka "$KAFKA_HOST:$KAFKA_PORT"; then
    if [[ $storage == sqlite:* ]] && grep -q "failed its schema setup" "$LOG_DIR/kafka.log" 2>/dev/null; then
      log_tail kafka 3
      note "nisshi could not open $storage; falling back to memory://nisshi/ (topics will not survive a broker restart)"
      storage="memory://nisshi/"
      start_nisshi "$bin" "$storage"
      await_ready kafka nisshi "$DOORSTEP_SERVICES_TIMEOUT" probe_once kafka "$KAFKA_HOST:$KAFKA_PORT" \
        || { log_tail kafka; die "nisshi did not become ready on $KAFKA_HOST:$KAFKA_PORT"; }
    else
      log_tail kafka
      die "nisshi did not become ready on $KAFKA_HOST:$KAFKA_PORT within ${DOORSTEP_SERVICES_TIMEOUT}s (log: $LOG_DIR/kafka.log)"
    fi
  fi
  report kafka "$DOORSTEP_KAFKA_BROKERS" "started (pid $(our_pid kafka nisshi || echo '?'), ${storage%%:*})" "$(elapsed "$t0")"
}

kafka_down() {
  local pid
  kafka_addr
  if pid=$(stop_ours kafka nisshi); then
    report kafka "$DOORSTEP_KAFKA_BROKERS" "stopped (pid $pid)"
  elif tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    report kafka "$DOORSTEP_KAFKA_BROKERS" "left running (not started by us)"
  else
    report kafka "$DOORSTEP_KAFKA_BROKERS" "not running"
  fi
}

kafka_status() {
  local pid
  kafka_addr
  if [[ -x ${WAIT_BIN:-} ]] && wait_for 2 kafka "$KAFKA_HOST:$KAFKA_PORT" >/dev/null 2>&1; then
    if pid=$(our_pid kafka nisshi); then
      report kafka "$DOORSTEP_KAFKA_BROKERS" "up (ours, pid $pid)"
    else
      report kafka "$DOORSTEP_KAFKA_BROKERS" "up (external)"
    fi
  else
    report kafka "$DOORSTEP_KAFKA_BROKERS" "DOWN"
    return 1
  fi
}

kafka_clean() { rm -rf "$DOORSTEP_STATE_DIR/kafka"; }
