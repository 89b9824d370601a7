# shellcheck shell=bash
# Shared helpers for scripts/services: configuration, logging, timing, pid files, probes.
# Sourced, not executed. Expects REPO_ROOT to be set by the caller.

# ---------------------------------------------------------------- configuration

: "${DOORSTEP_STATE_DIR:=$REPO_ROOT/.services}"
: "${DOORSTEP_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/doorstep}"
: "${DOORSTEP_SERVICES_TIMEOUT:=60}"

: "${DOORSTEP_REDIS_URL:=redis://127.0.0.1:6379}"
if [[ -z "${DOORSTEP_REDIS_CLUSTER_PORTS:-}" && -n "${DOORSTEP_REDIS_CLUSTER_URLS:-}" ]]; then
  # Derive the ports from explicit URLs (redis://host:port,...).
  DOORSTEP_REDIS_CLUSTER_PORTS=$(tr ',' '\n' <<<"$DOORSTEP_REDIS_CLUSTER_URLS" | sed -E 's#.*:([0-9]+)/?$#\1#' | tr '\n' ' ')
fi
: "${DOORSTEP_REDIS_CLUSTER_PORTS:=17000 17001 17002}"
DOORSTEP_REDIS_CLUSTER_PORTS=$(tr ',' ' ' <<<"$DOORSTEP_REDIS_CLUSTER_PORTS" | xargs)
if [[ -z "${DOORSTEP_REDIS_CLUSTER_URLS:-}" ]]; then
  DOORSTEP_REDIS_CLUSTER_URLS=$(for p in $DOORSTEP_REDIS_CLUSTER_PORTS; do printf 'redis://127.0.0.1:%s,' "$p"; done)
  DOORSTEP_REDIS_CLUSTER_URLS=${DOORSTEP_REDIS_CLUSTER_URLS%,}
fi
: "${DOORSTEP_KAFKA_BROKERS:=127.0.0.1:19092}"
: "${DOORSTEP_KAFKA_CONTROLLER_PORT:=19093}"
: "${DOORSTEP_KAFKA_HEAP:=1g}"
: "${DOORSTEP_CQL_NODES:=127.0.0.1:19042}"
: "${DOORSTEP_CASSANDRA_STORAGE_PORT:=19070}"
: "${DOORSTEP_CASSANDRA_HEAP:=2g}"
: "${DOORSTEP_SCHEMA_REGISTRY_URL:=http://127.0.0.1:18081}"
# Registry persistence file; set to empty to keep the registry in memory only.
: "${DOORSTEP_SCHEMA_REGISTRY_DATA=$DOORSTEP_STATE_DIR/schema-registry/registry.json}"
: "${DOORSTEP_OSRM_URL:=http://127.0.0.1:15000}"
: "${DOORSTEP_OSRM_VERSION:=26.10.0}"
: "${DOORSTEP_PYROSM_VERSION:=0.25.0}"

export DOORSTEP_STATE_DIR DOORSTEP_CACHE_DIR DOORSTEP_REDIS_URL DOORSTEP_REDIS_CLUSTER_PORTS \
  DOORSTEP_REDIS_CLUSTER_URLS DOORSTEP_KAFKA_BROKERS DOORSTEP_CQL_NODES \
  DOORSTEP_SCHEMA_REGISTRY_URL DOORSTEP_OSRM_URL

PID_DIR="$DOORSTEP_STATE_DIR/pids"
LOG_DIR="$DOORSTEP_STATE_DIR/logs"

# ---------------------------------------------------------------- output

# Log a progress note to stderr.
note() { printf 'services: %s\n' "$*" >&2; }

# Print the one clear line about what is missing and how to get it, then exit non-zero.
die() {
  printf 'services: error: %s\n' "$*" >&2
  exit 1
}

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Seconds elapsed since a now_ms value, as "1.23s".
elapsed() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}

# One result line per service: name, address, state, time.
report() { printf '%-15s %-52s %-34s %s\n' "$1" "$2" "$3" "${4:-}"; }

# ---------------------------------------------------------------- addresses

# "redis://h:p/..." or "h:p" or "http://h:p/x" -> "h p"
host_port() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  rest=${rest%%,*}
  echo "${rest%:*} ${rest##*:}"
}

# True when host is a loopback name or address (a service we may start here).
is_local_host() { [[ $1 == 127.* || $1 == localhost || $1 == ::1 || $1 == "[::1]" ]]; }

# True when something accepts TCP connections on host port.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------- processes

pid_file() { echo "$PID_DIR/$1.pid"; }

# True while a process exists and is not a zombie (an exited daemon whose new parent has
# not reaped it yet still answers kill -0).
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed -E 's/^.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# Prints the pid recorded for a service we started if that process still runs the
# expected program (guards against pid reuse); fails otherwise.
our_pid() {
  local name=$1 program=$2 file pid
  file=$(pid_file "$name")
  [[ -f $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [[ -n $pid ]] && running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$program" || return 1
  echo "$pid"
}

# Starts a long-running command in its own session, detached, logging to LOG_DIR/name.log,
# and records its pid. Usage: spawn NAME DIR CMD...
spawn() {
  local name=$1 dir=$2
  shift 2
  mkdir -p "$PID_DIR" "$LOG_DIR" "$dir"
  # 9>&-: do not let the daemon inherit the lock held by this run (see take_lock).
  (cd "$dir" && exec setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$(pid_file "$name")"
}

# Stops a service we started (SIGTERM, then SIGKILL after 10 s). Prints what it did.
stop_ours() {
  local name=$1 program=$2 pid
  if ! pid=$(our_pid "$name" "$program"); then
    rm -f "$(pid_file "$name")"
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    note "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$name")"
  echo "$pid"
}

# Last lines of a service's log, indented, for error messages.
log_tail() {
  if [[ -f "$LOG_DIR/$1.log" ]]; then
    tail -n "${2:-15}" "$LOG_DIR/$1.log" | sed 's/^/    | /' >&2
  fi
}

# Retries a command until it succeeds or DOORSTEP_SERVICES_TIMEOUT passes.
# Usage: retry_until SECONDS CMD...
retry_until() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
}

# Waits for a service we started: runs CHECK until it succeeds, failing early (after a 2 s
# grace for daemons to write their pid file) when the process has exited.
# Usage: await_ready NAME PROGRAM SECONDS CHECK...
await_ready() {
  local name=$1 program=$2 seconds=$3 start
  shift 3
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) - start >= 2)) && ! our_pid "$name" "$program" >/dev/null; then
      note "$name exited during start-up"
      return 1
    fi
    (($(date +%s) - start < seconds)) || return 1
    sleep 0.1
  done
}

# A doorstep-wait probe short enough to interleave with liveness checks.
probe_once() { wait_for 1 "$@"; }

# ---------------------------------------------------------------- packages

APT_UPDATED=0
# Installs Debian packages, running apt-get update once first if needed.
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* automatically: no apt-get here; install it with your package manager"
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  mkdir -p "$LOG_DIR"
  note "installing $* with apt-get"
  if ! "${sudo[@]}" apt-get install -y -q "$@" >>"$LOG_DIR/apt.log" 2>&1; then
    if [[ $APT_UPDATED == 0 ]]; then
      APT_UPDATED=1
      "${sudo[@]}" apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 || true
      "${sudo[@]}" apt-get install -y -q "$@" >>"$LOG_DIR/apt.log" 2>&1 && return 0
    fi
    die "could not install $* (see $LOG_DIR/apt.log); run: apt-get update && apt-get install -y $*"
  fi
}

# ---------------------------------------------------------------- devservices binaries

# Directory holding the workspace's debug binaries.
target_bin_dir() {
  if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    echo "$CARGO_TARGET_DIR/debug"
  else
    echo "$REPO_ROOT/target/debug"
  fi
}

DEVSERVICES_BINS=(doorstep-schema-registry doorstep-wait)

# Builds the devservices binaries (debug profile) when missing or older than their sources.
# Skipping the no-op cargo call keeps a warm `up` fast even while cargo's lock is held.
ensure_devservices() {
  local dir stale=0 b
  dir=$(target_bin_dir)
  for b in "${DEVSERVICES_BINS[@]}"; do
    if [[ ! -x $dir/$b ]] || [[ -n $(find "$REPO_ROOT/devservices" -newer "$dir/$b" -type f 2>/dev/null | head -n 1) ]]; then
      stale=1
    fi
  done
  if [[ $stale == 1 ]]; then
    command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then rerun"
    local t0
    t0=$(now_ms)
    note "building doorstep-devservices binaries (cargo build -p doorstep-devservices --bins)"
    mkdir -p "$LOG_DIR"
    if ! (cd "$REPO_ROOT" && cargo build -p doorstep-devservices --bins) >"$LOG_DIR/cargo-build.log" 2>&1; then
      tail -n 20 "$LOG_DIR/cargo-build.log" >&2
      die "cargo build -p doorstep-devservices --bins failed (log: $LOG_DIR/cargo-build.log)"
    fi
    note "built devservices in $(elapsed "$t0")"
    for b in "${DEVSERVICES_BINS[@]}"; do
      [[ -x $dir/$b ]] || die "built, but $dir/$b is missing (is build.target-dir set in a cargo config? set CARGO_TARGET_DIR)"
      # Sources cargo did not need (e.g. test-only files) must not trigger a build next time.
      touch "$dir/$b"
    done
  fi
  # Used by the service modules sourced beside this file.
  # shellcheck disable=SC2034
  WAIT_BIN="$dir/doorstep-wait"
  # shellcheck disable=SC2034
  REGISTRY_BIN="$dir/doorstep-schema-registry"
}

# Probe with doorstep-wait: wait_for TIMEOUT_SECONDS kafka|cql|http ARGS...
wait_for() {
  local timeout=$1
  shift
  "$WAIT_BIN" --timeout "$timeout" --interval-ms 100 "$@"
}
