"""Small factories for tests: a tiny campus with single-gender dorms, users, riders, orders."""

import itertools

from django.contrib.gis.geos import LineString, Point, Polygon

from accounts.models import User
from campus.geo import line_length_m
from campus.models import Building, Campus, PathEdge, TransferStation
from orders import services as order_services
from orders.models import Kind
from riders.models import RiderProfile

_seq = itertools.count(1)

# A 600 m x 400 m campus around (120.08, 30.30); buildings sit on an east-west road.
LNG0, LAT0 = 120.080, 30.300
DX, DY = 0.001, 0.0009  # ~96 m east, ~100 m north


def make_campus(**kw) -> Campus:
    n = next(_seq)
    campus = Campus.objects.create(
        slug=kw.pop("slug", f"test-{n}"),
        name=kw.pop("name", f"测试大学{n}"),
        name_en=kw.pop("name_en", f"Test University {n}"),
        center=Point(LNG0, LAT0, srid=4326),
        bounds=Polygon.from_bbox((LNG0 - 4 * DX, LAT0 - 3 * DY, LNG0 + 4 * DX, LAT0 + 3 * DY)),
        **kw,
    )
    specs = [
        ("C1", "一食堂", "canteen", "any", -2),
        ("P1", "快递站", "parcel_station", "any", -1),
        ("D1", "男生宿舍1号楼", "dorm", "male_only", 1),
        ("D2", "女生宿舍1号楼", "dorm", "female_only", 2),
        ("D3", "研究生公寓", "dorm", "any", 3),
    ]
    nodes = []
    for code, name, kind, rule, x in specs:
        entrance = (LNG0 + x * DX, LAT0 + DY / 2)
        nodes.append((LNG0 + x * DX, LAT0))
        Building.objects.create(
            campus=campus,
            code=code,
            name=name,
            name_en=code,
            kind=kind,
            gender_rule=rule,
            entrance=Point(*entrance, srid=4326),
            footprint=Polygon.from_bbox(
                (entrance[0] - DX / 4, entrance[1], entrance[0] + DX / 4, entrance[1] + DY / 2)
            ),
        )
        add_path(campus, [nodes[-1], entrance])
    nodes.sort()
    for a, b in zip(nodes, nodes[1:], strict=False):
        add_path(campus, [a, b], kind="road")
    station = TransferStation.objects.create(
        campus=campus, code="T1", name="中转站", location=Point(LNG0, LAT0, srid=4326)
    )
    station.serves.set(Building.objects.filter(campus=campus, gender_rule="female_only"))
    add_path(campus, [(LNG0, LAT0), (LNG0 - DX, LAT0)])
    return campus


def add_path(campus: Campus, coords, kind: str = "walkway") -> PathEdge:
    return PathEdge.objects.create(
        campus=campus, kind=kind, geometry=LineString(coords, srid=4326), length_m=line_length_m(coords)
    )


def building(campus: Campus, code: str) -> Building:
    return Building.objects.get(campus=campus, code=code)


def make_user(*, username: str | None = None, gender: str = "female", **kw) -> User:
    user = User.objects.create_user(
        username=username or f"user{next(_seq)}", password="pw-123456", gender=gender, **kw
    )
    return user


def make_rider(campus: Campus, *, gender: str = "male", verified=True, online=True, **kw) -> User:
    user = make_user(gender=gender, **kw)
    RiderProfile.objects.create(
        user=user, campus=campus, verified=verified, online=online and verified
    )
    return user


def make_order(*, customer: User, campus: Campus, **kw):
    """An open order (placed through the real service)."""
    defaults = {
        "kind": Kind.PARCEL,
        "pickup_building": building(campus, kw.pop("pickup", "P1")),
        "dropoff_building": building(campus, kw.pop("dropoff", "D3")),
        "description": "一个小包裹",
    }
    defaults.update(kw)
    return order_services.order_create(customer=customer, **defaults)


def point_in(campus: Campus, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    """(lat, lng) inside the test campus."""
    return (LAT0 + dy * DY, LNG0 + dx * DX)


# --- dispatch -------------------------------------------------------------------------------------


def set_position(rider: User, dx: float = 0.0, dy: float = 0.0, *, at=None) -> dict:
    """Put a rider's live position at (LNG0 + dx*DX, LAT0 + dy*DY) on the test campus, as if
    their phone had just sent it (or at `at`)."""
    from django.utils import timezone

    from tracking import live

    position = {
        "rider": rider.pk,
        "lat": LAT0 + dy * DY,
        "lng": LNG0 + dx * DX,
        "accuracy": 5.0,
        "recorded_at": (at or timezone.now()).isoformat(),
    }
    live.position_set(rider.pk, position)
    return position


def dispatch_settings(campus: Campus, **kw):
    """Save the campus's dispatch settings (mode, capacity, reach, ...)."""
    from dispatch.models import CampusDispatchSettings

    settings, _ = CampusDispatchSettings.objects.update_or_create(campus=campus, defaults=kw)
    campus.dispatch_settings = settings  # this campus object's cached reverse relation
    return settings
