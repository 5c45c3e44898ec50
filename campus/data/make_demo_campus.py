#!/usr/bin/env python3
"""Generate ``demo_campus.geojson``: the fictional campus of 演示大学 (Demo University).

Run from anywhere:  python campus/data/make_demo_campus.py
The output is deterministic (same input -> byte-identical file).

The campus is laid out in local metres (x east, y north) around an origin in
Hangzhou and projected to WGS84 lon/lat with an equirectangular approximation
(error well below 1 m over ~1.5 km), rounded to 6 decimals (~0.1 m).

Layout (x: -580..580, y: -430..430, roughly 1.2 km x 0.9 km):

    北环路 (y=430) ───────────────────────────────────────────────
    │ 竹园 男生宿舍区 │ 一食堂 超市    │ 二食堂 奶茶店   │ 桃园 女生宿舍区 │
    │  (D9-D16)       │ 研究生公寓     │ 菜鸟驿站        │  (D1-D8)        │
    学府路 (y=130) ───────────────────────────────────────────────
    │ 体育馆 三食堂   │ 教学楼 实验楼  │ 教学楼 信息楼   │ 活动中心 后勤   │ 东门
    (the middle and north rows are crossed by 生活区步道 y=280, 教学区步道 y=-20,
     and the 西/东林荫道 walkways x=-150 / x=150 between them)
    明德路 (y=-170) ──────────────────────────────────────────────
    │ 校医院 湖       │ 行政楼         │ 图书馆          │ 国际交流中心    │
    南环路 (y=-430) ──────────────────────────────────────────────
                               南门
    Vertical roads: 西环路 x=-580, 松竹路 x=-300, 中轴大道 x=0,
                    桃李路 x=300, 东环路 x=580.

The walking graph is built from the roads/walkways above plus one short
walkway per building entrance / transfer station, all split at every
intersection so that lines only ever meet at shared endpoints.
"""

import json
import math
from pathlib import Path

OUT_PATH = Path(__file__).resolve().parent / "demo_campus.geojson"

ORIGIN_LNG, ORIGIN_LAT = 120.080, 30.300
EARTH_RADIUS_M = 6371008.8
M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180.0
M_PER_DEG_LNG = M_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT))

BOUNDS_MARGIN_M = 150.0
ENTRANCE_OFFSET_M = 2.0  # entrances sit just outside the footprint edge
EPS = 1e-6


def to_lnglat(x, y):
    """Local metres -> [lng, lat] rounded to 6 decimals."""
    return [
        round(ORIGIN_LNG + x / M_PER_DEG_LNG, 6),
        round(ORIGIN_LAT + y / M_PER_DEG_LAT, 6),
    ]


# --------------------------------------------------------------------------
# Roads and main walkways (local metres).  Connectors are added later.
# --------------------------------------------------------------------------

MAIN_PATHS = [
    # (name, kind, vertices)
    ("北环路", "road", [(-580, 430), (580, 430)]),
    ("学府路", "road", [(-580, 130), (580, 130)]),
    ("明德路", "road", [(-580, -170), (580, -170)]),
    ("南环路", "road", [(-580, -430), (580, -430)]),
    ("西环路", "road", [(-580, -430), (-580, 430)]),
    ("松竹路", "road", [(-300, -430), (-300, 430)]),
    ("中轴大道", "road", [(0, -430), (0, 430)]),
    ("桃李路", "road", [(300, -430), (300, 430)]),
    ("东环路", "road", [(580, -430), (580, 430)]),
    ("生活区步道", "walkway", [(-580, 280), (580, 280)]),
    ("教学区步道", "walkway", [(-580, -20), (580, -20)]),
    # north-south tree-lined walkways linking canteens, dorms and teaching area
    ("西林荫道", "walkway", [(-150, 280), (-150, -20)]),
    ("东林荫道", "walkway", [(150, 280), (150, -20)]),
    # a curved path around the small lake south of the campus hospital
    (
        "湖畔步道",
        "walkway",
        [
            (-580, -330),
            (-545, -370),
            (-495, -395),
            (-440, -402),
            (-385, -395),
            (-335, -370),
            (-300, -330),
        ],
    ),
]

# --------------------------------------------------------------------------
# Buildings: (code, name, name_en, kind, gender_rule, cx, cy, w, h, door)
# cx/cy = footprint centre, w = east-west size, h = north-south size (m),
# door = side of the footprint with the entrance (N/S/E/W).
# --------------------------------------------------------------------------

# Dorm slots inside one dorm block: 2 columns x 4 rows; each row's entrance
# faces the nearest road/walkway (北环路 y=430, 生活区步道 y=280, 学府路 y=130).
DORM_ROWS = [(395, "N"), (320, "S"), (240, "N"), (165, "S")]
DORM_W, DORM_H = 80, 36


def dorm_block(prefix_cn, prefix_en, first_code, gender, columns):
    """Eight dorms numbered 1..8 row by row (north to south, west to east)."""
    out = []
    n = 0
    for cy, door in DORM_ROWS:
        for cx in columns:
            n += 1
            out.append(
                (
                    f"D{first_code + n - 1}",
                    f"{prefix_cn}{n}号楼",
                    f"{prefix_en} Dorm {n}",
                    "dorm",
                    gender,
                    cx,
                    cy,
                    DORM_W,
                    DORM_H,
                    door,
                )
            )
    return out


FEMALE_DORMS = dorm_block("桃园", "Peach", 1, "female_only", columns=(370, 510))
MALE_DORMS = dorm_block("竹园", "Bamboo", 9, "male_only", columns=(-510, -370))

OTHER_BUILDINGS = [
    # north-centre: canteens, shops, graduate dorms, parcel station
    ("D17", "研究生公寓1号楼", "Graduate Apartment 1", "dorm", "any", -220, 205, 80, 40, "N"),
    ("D18", "研究生公寓2号楼", "Graduate Apartment 2", "dorm", "any", -80, 205, 80, 40, "N"),
    ("C1", "一食堂", "No.1 Canteen", "canteen", "any", -150, 360, 100, 60, "S"),
    ("C2", "二食堂", "No.2 Canteen", "canteen", "any", 150, 360, 100, 60, "S"),
    ("S1", "校园超市", "Campus Supermarket", "shop", "any", -50, 395, 40, 30, "N"),
    ("S2", "奶茶店", "Milk Tea Shop", "shop", "any", 40, 395, 30, 30, "N"),
    ("S3", "水果店", "Fruit Shop", "shop", "any", 250, 395, 30, 30, "N"),
    ("P1", "菜鸟驿站", "Cainiao Parcel Station", "parcel_station", "any", 90, 200, 70, 40, "N"),
    # middle: sports, third canteen, teaching area, student services
    ("O1", "体育馆", "Gymnasium", "other", "any", -440, 60, 110, 70, "S"),
    ("C3", "三食堂", "No.3 Canteen", "canteen", "any", -440, -95, 90, 50, "N"),
    ("J1", "第一教学楼", "Teaching Building 1", "teaching", "any", -220, 65, 90, 50, "S"),
    ("J2", "实验楼", "Laboratory Building", "teaching", "any", -80, 65, 80, 50, "S"),
    ("J3", "第二教学楼", "Teaching Building 2", "teaching", "any", -150, -95, 120, 50, "N"),
    ("J4", "第三教学楼", "Teaching Building 3", "teaching", "any", 80, 65, 90, 50, "S"),
    ("J5", "第四教学楼", "Teaching Building 4", "teaching", "any", 220, 65, 90, 50, "S"),
    ("J6", "信息楼", "Information Building", "teaching", "any", 150, -95, 120, 50, "N"),
    ("O2", "大学生活动中心", "Student Activity Center", "other", "any", 440, 65, 90, 50, "S"),
    ("O3", "后勤服务中心", "Logistics Service Center", "other", "any", 440, -95, 100, 50, "N"),
    # south: hospital, admin, library, guest house
    ("O4", "校医院", "Campus Hospital", "other", "any", -440, -230, 80, 50, "N"),
    ("O5", "行政楼", "Administration Building", "other", "any", -150, -260, 100, 60, "N"),
    ("L1", "图书馆", "Library", "library", "any", 150, -290, 110, 90, "N"),
    ("O6", "国际交流中心", "International Exchange Center", "other", "any", 440, -260, 90, 60, "N"),
    # gates, outside the ring roads
    ("G1", "南门", "South Gate", "gate", "any", 0, -470, 60, 30, "N"),
    ("G2", "东门", "East Gate", "gate", "any", 620, -20, 30, 50, "W"),
]

BUILDINGS = FEMALE_DORMS + MALE_DORMS + OTHER_BUILDINGS

# Transfer stations: (code, name, name_en, x, y, direction to walk to the
# path network, dorm codes served).  Riders hand over orders here because
# they may not enter single-gender dorm areas.
TRANSFER_STATIONS = [
    (
        "T1",
        "桃园中转站",
        "Peach Garden Transfer Station",
        285,
        290,
        "S",
        [code for code, *_ in FEMALE_DORMS],
    ),
    (
        "T2",
        "竹园中转站",
        "Bamboo Garden Transfer Station",
        -285,
        290,
        "S",
        [code for code, *_ in MALE_DORMS],
    ),
]

DIRECTIONS = {"N": (0, 1), "S": (0, -1), "E": (1, 0), "W": (-1, 0)}


# --------------------------------------------------------------------------
# Geometry helpers (local metres)
# --------------------------------------------------------------------------


def footprint(cx, cy, w, h):
    """Counter-clockwise closed rectangle ring."""
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def entrance_point(cx, cy, w, h, door):
    dx, dy = DIRECTIONS[door]
    return (cx + dx * (w / 2 + ENTRANCE_OFFSET_M), cy + dy * (h / 2 + ENTRANCE_OFFSET_M))


def ray_hit(origin, direction, paths):
    """First point where a ray from origin hits one of the paths' segments."""
    ox, oy = origin
    dx, dy = DIRECTIONS[direction]
    best = None
    for _, _, pts in paths:
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            ex, ey = bx - ax, by - ay
            denom = dx * ey - dy * ex
            if abs(denom) < EPS:
                continue  # parallel
            # origin + t*d = a + u*e
            t = ((ax - ox) * ey - (ay - oy) * ex) / denom
            u = ((ax - ox) * dy - (ay - oy) * dx) / denom
            if t > EPS and -EPS <= u <= 1 + EPS and (best is None or t < best[0]):
                best = (t, (round(ox + t * dx, 3), round(oy + t * dy, 3)))
    if best is None:
        raise ValueError(f"no path reachable from {origin} heading {direction}")
    return best[1]


def seg_intersection(p1, p2, q1, q2):
    """Intersection point of two segments (None if disjoint or collinear)."""
    rx, ry = p2[0] - p1[0], p2[1] - p1[1]
    sx, sy = q2[0] - q1[0], q2[1] - q1[1]
    denom = rx * sy - ry * sx
    if abs(denom) < EPS:
        return None  # parallel; the layout has no overlapping collinear lines
    qpx, qpy = q1[0] - p1[0], q1[1] - p1[1]
    t = (qpx * sy - qpy * sx) / denom
    u = (qpx * ry - qpy * rx) / denom
    if -EPS <= t <= 1 + EPS and -EPS <= u <= 1 + EPS:
        return (round(p1[0] + t * rx, 3), round(p1[1] + t * ry, 3))
    return None


def point_on_segment(p, a, b):
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > 1e-3:
        return False
    return (
        min(a[0], b[0]) - EPS <= p[0] <= max(a[0], b[0]) + EPS
        and min(a[1], b[1]) - EPS <= p[1] <= max(a[1], b[1]) + EPS
    )


def split_paths(paths):
    """Split every polyline at all points where it meets another polyline."""
    cuts = [set() for _ in paths]
    for i, (_, _, pi) in enumerate(paths):
        for j in range(i + 1, len(paths)):
            pj = paths[j][2]
            for a, b in zip(pi, pi[1:]):
                for c, d in zip(pj, pj[1:]):
                    hit = seg_intersection(a, b, c, d)
                    if hit is not None:
                        cuts[i].add(hit)
                        cuts[j].add(hit)

    pieces = []
    for (name, kind, pts), cut_pts in zip(paths, cuts):
        current = [pts[0]]
        for a, b in zip(pts, pts[1:]):
            seg_len = math.dist(a, b)
            on_seg = sorted(
                (math.dist(a, c), c)
                for c in cut_pts
                if point_on_segment(c, a, b) and 0 < math.dist(a, c) < seg_len
            )
            for _, c in on_seg:
                current.append(c)
                pieces.append((name, kind, current))
                current = [c]
            current.append(b)
        pieces.append((name, kind, current))
    return pieces


# --------------------------------------------------------------------------
# Build the FeatureCollection
# --------------------------------------------------------------------------


def build():
    paths = [(n, k, [tuple(map(float, p)) for p in pts]) for n, k, pts in MAIN_PATHS]
    main_only = list(paths)

    building_features = []
    for code, name, name_en, kind, gender, cx, cy, w, h, door in BUILDINGS:
        entrance = entrance_point(cx, cy, w, h, door)
        paths.append((None, "walkway", [entrance, ray_hit(entrance, door, main_only)]))
        building_features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[to_lnglat(x, y) for x, y in footprint(cx, cy, w, h)]],
                },
                "properties": {
                    "feature": "building",
                    "code": code,
                    "name": name,
                    "name_en": name_en,
                    "kind": kind,
                    "gender_rule": gender,
                    "entrance": to_lnglat(*entrance),
                },
            }
        )

    station_features = []
    for code, name, name_en, x, y, direction, serves in TRANSFER_STATIONS:
        point = (float(x), float(y))
        paths.append((None, "walkway", [point, ray_hit(point, direction, main_only)]))
        station_features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": to_lnglat(*point)},
                "properties": {
                    "feature": "transfer_station",
                    "code": code,
                    "name": name,
                    "name_en": name_en,
                    "serves": serves,
                },
            }
        )

    path_features = []
    for name, kind, pts in split_paths(paths):
        props = {"feature": "path", "kind": kind}
        if name:
            props["name"] = name
        path_features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [to_lnglat(x, y) for x, y in pts],
                },
                "properties": props,
            }
        )

    # bounds: everything plus a margin, centre = middle of the bounds
    xs, ys = [], []
    for _, _, pts in paths:
        xs += [p[0] for p in pts]
        ys += [p[1] for p in pts]
    for _, _, _, _, _, cx, cy, w, h, _ in BUILDINGS:
        xs += [cx - w / 2, cx + w / 2]
        ys += [cy - h / 2, cy + h / 2]
    min_x, max_x = min(xs) - BOUNDS_MARGIN_M, max(xs) + BOUNDS_MARGIN_M
    min_y, max_y = min(ys) - BOUNDS_MARGIN_M, max(ys) + BOUNDS_MARGIN_M

    return {
        "type": "FeatureCollection",
        "campus": {
            "slug": "demo",
            "name": "演示大学",
            "name_en": "Demo University",
            "center": to_lnglat((min_x + max_x) / 2, (min_y + max_y) / 2),
            "bounds": to_lnglat(min_x, min_y) + to_lnglat(max_x, max_y),
        },
        "features": building_features + station_features + path_features,
    }


def main():
    data = build()

    # one feature per line: compact but still diff-friendly
    def dump(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    text = (
        '{"type":"FeatureCollection",\n'
        f'"campus":{dump(data["campus"])},\n'
        '"features":[\n' + ",\n".join(dump(f) for f in data["features"]) + "\n]}\n"
    )
    OUT_PATH.write_text(text, encoding="utf-8")
    counts = {}
    for f in data["features"]:
        counts[f["properties"]["feature"]] = counts.get(f["properties"]["feature"], 0) + 1
    print(f"wrote {OUT_PATH} {counts}")


if __name__ == "__main__":
    main()
