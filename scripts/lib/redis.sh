# shellcheck shell=bash
# Single-node Redis: reuse one that answers PING at DOORSTEP_REDIS_URL, else start our own.

redis_ping() { [[ $(redis-cli -u "$1" --no-auth-warning ping 2>/dev/null) == PONG ]]; }

ensure_redis_installed() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server still missing after apt-get install; install Redis 7 and put redis-server on PATH"
}

redis_up() {
  local t0 host port pid
  t0=$(now_ms)
  read -r host port <<<"$(host_port "$DOORSTEP_REDIS_URL")"
  command -v redis-cli >/dev/null || ensure_redis_installed
  if redis_ping "$DOORSTEP_REDIS_URL"; then
    if pid=$(our_pid redis redis-server); then
      report redis "$DOORSTEP_REDIS_URL" "running (ours, pid $pid)" "$(elapsed "$t0")"
    else
      report redis "$DOORSTEP_REDIS_URL" "reused (already answering PING)" "$(elapsed "$t0")"
    fi
    return 0
  fi
  is_local_host "$host" || die "Redis at $DOORSTEP_REDIS_URL does not answer PING and is not local, so it cannot be started here"
  tcp_open "$host" "$port" && die "port $port is taken by something that is not Redis (DOORSTEP_REDIS_URL=$DOORSTEP_REDIS_URL)"
  ensure_redis_installed
  local dir="$DOORSTEP_STATE_DIR/redis"
  mkdir -p "$dir" "$PID_DIR" "$LOG_DIR"
  # Daemonised by redis itself, which writes the pid file; no persistence.
  redis-server --bind "$host" --port "$port" --save "" --appendonly no --dir "$dir" \
    --daemonize yes 9>&- --pidfile "$(pid_file redis)" --logfile "$LOG_DIR/redis.log" \
    || die "redis-server failed to start on port $port (log: $LOG_DIR/redis.log)"
  if ! await_ready redis redis-server "$DOORSTEP_SERVICES_TIMEOUT" redis_ping "$DOORSTEP_REDIS_URL"; then
    log_tail redis
    die "Redis on port $port did not answer PING within ${DOORSTEP_SERVICES_TIMEOUT}s"
  fi
  report redis "$DOORSTEP_REDIS_URL" "started (pid $(our_pid redis redis-server || echo '?'))" "$(elapsed "$t0")"
}

redis_down() {
  local pid
  if pid=$(stop_ours redis redis-server); then
    report redis "$DOORSTEP_REDIS_URL" "stopped (pid $pid)"
  elif command -v redis-cli >/dev/null && redis_ping "$DOORSTEP_REDIS_URL"; then
    report redis "$DOORSTEP_REDIS_URL" "left running (not started by us)"
  else
    report redis "$DOORSTEP_REDIS_URL" "not running"
  fi
}

redis_status() {
  local pid
  if command -v redis-cli >/dev/null && redis_ping "$DOORSTEP_REDIS_URL"; then
    if pid=$(our_pid redis redis-server); then
      report redis "$DOORSTEP_REDIS_URL" "up (ours, pid $pid)"
    else
      report redis "$DOORSTEP_REDIS_URL" "up (external)"
    fi
  else
    report redis "$DOORSTEP_REDIS_URL" "DOWN"
    return 1
  fi
}

redis_clean() { rm -rf "$DOORSTEP_STATE_DIR/redis"; }
