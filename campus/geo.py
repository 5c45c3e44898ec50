"""Small geometry helpers on WGS84 coordinates (metres by haversine: a campus is flat enough)."""

import math

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def line_length_m(coords) -> float:
    return sum(
        haversine_m(a[0], a[1], b[0], b[1]) for a, b in zip(coords, coords[1:], strict=False)
    )


def interpolate(coords: list[tuple[float, float]], distance_m: float) -> tuple[float, float]:
    """The point `distance_m` along a polyline (clamped to its ends)."""
    if distance_m <= 0 or len(coords) == 1:
        return coords[0]
    walked = 0.0
    for a, b in zip(coords, coords[1:], strict=False):
        step = haversine_m(a[0], a[1], b[0], b[1])
        if step > 0 and walked + step >= distance_m:
            t = (distance_m - walked) / step
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        walked += step
    return coords[-1]
