#!/usr/bin/env bash
# Prepares OSRM's routing graph from an OpenStreetMap extract: osrm-extract with the car
# profile, then osrm-contract (Contraction Hierarchies, served with `--algorithm ch`).
# Run by the `osrm-prepare` service in docker-compose.yml (OSRM's own image); the result
# goes to $OSRM_DATA_DIR/region.osrm.* for `osrm-routed`.
#
# The work is done once per extract and profile: a stamp with both files' SHA-256 makes
# later runs exit at once; a new extract or profile prepares again.
#
# Environment:
#   OSRM_PBF       the extract (.osm.pbf), required
#   OSRM_PROFILE   [/opt/car.lua] the image's car profile
#   OSRM_DATA_DIR  [/data] where the graph goes (a volume)
set -euo pipefail

pbf=${OSRM_PBF:?OSRM_PBF must name the .osm.pbf extract}
profile=${OSRM_PROFILE:-/opt/car.lua}
out=${OSRM_DATA_DIR:-/data}
base=$out/region

log() { printf 'osrm-prepare: %s\n' "$*"; }
fail() { printf 'osrm-prepare: error: %s\n' "$*" >&2; exit 1; }

[[ -f $pbf ]] || fail "no map extract at $pbf. Put an OpenStreetMap extract (.osm.pbf) of the \
delivery area in deploy/osrm/maps/region.osm.pbf (or set DOORSTEP_OSRM_MAPS / DOORSTEP_OSRM_PBF); \
see deploy/osrm/README.md"
[[ -f $profile ]] || fail "no OSRM profile at $profile"
mkdir -p "$out"

wanted="$(sha256sum "$pbf" | cut -d ' ' -f 1) $(sha256sum "$profile" | cut -d ' ' -f 1)"
if [[ -f $base.osrm.hsgr && -f $base.stamp && $(<"$base.stamp") == "$wanted" ]]; then
  log "routing graph for $pbf is up to date"
  exit 0
fi

log "preparing the routing graph from $pbf with $profile"
rm -f "$base.stamp" "$base".osrm* "$base.osm.pbf"
# Work on a copy: the extract is mounted read-only and osrm-extract writes beside its input.
cp "$pbf" "$base.osm.pbf"
osrm-extract -p "$profile" "$base.osm.pbf"
osrm-contract "$base.osrm"
rm -f "$base.osm.pbf"
printf '%s\n' "$wanted" >"$base.stamp"
log "routing graph ready: $base.osrm"
