# shellcheck shell=bash
# Redis Cluster: three masters on DOORSTEP_REDIS_CLUSTER_PORTS, formed once with
# `redis-cli --cluster create`; node configs under the state dir let it re-form on restart.

# Compact address for report lines: redis://127.0.0.1:{17000,17001,17002}
cluster_shown() { echo "redis://127.0.0.1:{$(tr ' ' ',' <<<"$DOORSTEP_REDIS_CLUSTER_PORTS")}"; }

cluster_dir() { echo "$DOORSTEP_STATE_DIR/redis-cluster/$1"; }

cluster_node_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

# Value of one `CLUSTER INFO` field on a node.
cluster_info() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }

cluster_ok() {
  local p n=0
  for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
    n=$((n + 1))
    [[ $(cluster_info "$p" cluster_state) == ok ]] || return 1
  done
  for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
    [[ $(cluster_info "$p" cluster_known_nodes) == "$n" ]] || return 1
  done
}

redis_cluster_up() {
  local t0 p started=0 started_ports=""
  t0=$(now_ms)
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    ensure_redis_installed
  fi
  for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
    if cluster_node_ping "$p"; then
      [[ -n $(cluster_info "$p" cluster_state) ]] \
        || die "port $p answers as a Redis without cluster mode; free it or set DOORSTEP_REDIS_CLUSTER_PORTS"
      continue
    fi
    tcp_open 127.0.0.1 "$p" && die "port $p is taken by something that is not Redis; set DOORSTEP_REDIS_CLUSTER_PORTS"
    # Each node also listens on its cluster bus port, port + 10000.
    tcp_open 127.0.0.1 $((p + 10000)) && die "cluster bus port $((p + 10000)) (port $p + 10000) is taken; free it or set DOORSTEP_REDIS_CLUSTER_PORTS"
    mkdir -p "$(cluster_dir "$p")" "$PID_DIR" "$LOG_DIR"
    redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "nodes-$p.conf" --dir "$(cluster_dir "$p")" \
      --save "" --appendonly no --daemonize yes 9>&- \
      --pidfile "$(pid_file "redis-cluster-$p")" --logfile "$LOG_DIR/redis-cluster-$p.log" \
      || die "redis-server (cluster node) failed to start on port $p (log: $LOG_DIR/redis-cluster-$p.log)"
    started=$((started + 1))
    started_ports="$started_ports $p"
  done
  for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
    if [[ " $started_ports " == *" $p "* ]]; then
      await_ready "redis-cluster-$p" redis-server "$DOORSTEP_SERVICES_TIMEOUT" cluster_node_ping "$p"
    else
      retry_until "$DOORSTEP_SERVICES_TIMEOUT" cluster_node_ping "$p"
    fi || { log_tail "redis-cluster-$p"; die "cluster node on port $p did not answer PING"; }
  done

  local state="running"
  ((started > 0)) && state="started $started node(s)"
  if ! cluster_ok; then
    local assigned=0 n
    for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
      n=$(cluster_info "$p" cluster_slots_assigned)
      assigned=$((assigned + ${n:-0}))
    done
    # No slots anywhere: a new cluster to create. Otherwise nodes restarted from their
    # nodes-*.conf re-form by themselves (gossip); the wait below covers that.
    if ((assigned == 0)); then
      local addrs=()
      for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do addrs+=("127.0.0.1:$p"); done
      redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
        >>"$LOG_DIR/redis-cluster-create.log" 2>&1 \
        || { tail -n 15 "$LOG_DIR/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
      state="$state, cluster created"
    fi
    retry_until "$DOORSTEP_SERVICES_TIMEOUT" cluster_ok \
      || die "Redis Cluster on ports $DOORSTEP_REDIS_CLUSTER_PORTS is not healthy (cluster_state != ok); reset it with: scripts/services clean redis-cluster"
  fi
  report redis-cluster "$(cluster_shown)" "$state" "$(elapsed "$t0")"
}

redis_cluster_down() {
  local p stopped=0 other=0
  for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
    if stop_ours "redis-cluster-$p" redis-server >/dev/null; then
      stopped=$((stopped + 1))
    elif command -v redis-cli >/dev/null && cluster_node_ping "$p"; then
      other=$((other + 1))
    fi
  done
  local msg="stopped $stopped node(s)"
  ((other > 0)) && msg="$msg, left $other not started by us"
  ((stopped == 0 && other == 0)) && msg="not running"
  report redis-cluster "$(cluster_shown)" "$msg"
}

redis_cluster_status() {
  if command -v redis-cli >/dev/null && cluster_ok; then
    local p ours=0
    for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do
      our_pid "redis-cluster-$p" redis-server >/dev/null && ours=$((ours + 1))
    done
    report redis-cluster "$(cluster_shown)" "up (cluster_state ok, $ours ours)"
  else
    report redis-cluster "$(cluster_shown)" "DOWN"
    return 1
  fi
}

redis_cluster_clean() { rm -rf "$DOORSTEP_STATE_DIR/redis-cluster"; }
