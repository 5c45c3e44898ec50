"""Small factories for tests: a tiny campus with single-gender dorms, users, riders, orders."""

import itertools

from django.contrib.gis.geos import LineString, Point, Polygon
from django.test import Client

from accounts.models import User
from campus.geo import line_length_m
from campus.models import Building, Campus, PathEdge, TransferStation
from orders import services as order_services
from orders.models import Kind
from orders.status import Status
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
        campus=campus,
        kind=kind,
        geometry=LineString(coords, srid=4326),
        length_m=line_length_m(coords),
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
    if defaults.get("pay", True):
        fund_wallet(customer, at_least=10_000)  # paid on creation, so the order opens
    return order_services.order_create(customer=customer, **defaults)


def point_in(campus: Campus, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    """(lat, lng) inside the test campus."""
    return (LAT0 + dy * DY, LNG0 + dx * DX)


def fund_wallet(user: User, fen: int = 0, *, at_least: int | None = None) -> int:
    """Credit `fen` to the user's wallet (or enough to reach `at_least`) through a promotional
    grant, the way the demo seed does; returns the new balance."""
    from payments import selectors as money
    from payments import services as payments

    if at_least is not None:
        fen = max(0, at_least - money.wallet_balance(user))
    if fen:
        payments.wallet_grant(user=user, amount_fen=fen, reference=f"test:{next(_seq)}:{user.pk}")
    return money.wallet_balance(user)


def fund_earnings(rider: User, fen: int) -> int:
    """Credit a rider's earnings (a bonus grant) without running orders; returns the balance."""
    from payments import selectors as money
    from payments import services as payments

    payments.earnings_grant(rider=rider, amount_fen=fen, reference=f"test:{next(_seq)}:{rider.pk}")
    return money.earnings_balance(rider)


# --- errand kinds, photos (ordering) ------------------------------------------------------------

ERRAND_DETAILS = {
    "parcel": {"courier": "sf", "pickup_code": "3-2-1045", "size_class": "small"},
    "buy": {"budget_cap_fen": 3000, "size_class": "small"},
    "document": {"confidential": True},
    "queue": {"duration_minutes": 60},  # start_at: see make_errand
    "custom": {"offered_price_fen": 800},
}


def image_bytes(fmt: str = "JPEG", size=(64, 48), color=(30, 120, 200), exif_gps: bool = False):
    """An image file's bytes; with exif_gps a JPEG carrying a camera model and a GPS position."""
    import io

    from PIL import Image

    image = Image.new("RGBA" if fmt == "PNG" else "RGB", size, color)
    out = io.BytesIO()
    kwargs = {}
    if exif_gps:
        exif = Image.Exif()
        exif[0x0110] = "Campus Phone 12"  # Model
        exif[0x8825] = {1: "N", 2: (30.0, 18.0, 0.0), 3: "E", 4: (120.0, 4.0, 48.0)}  # GPS IFD
        kwargs["exif"] = exif
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def photo_upload(fmt: str = "JPEG", name: str | None = None, **kw):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(fmt, fmt.lower())
    return SimpleUploadedFile(
        name or f"item.{ext}", image_bytes(fmt, **kw), content_type=f"image/{ext}"
    )


def make_errand(*, customer: User, campus: Campus, kind: str = "parcel", details=None, **kw):
    """An order of `kind` with valid details (through the real service, like make_order)."""
    from datetime import timedelta

    from django.utils import timezone

    full = dict(ERRAND_DETAILS[kind])
    if kind == "queue":
        full["start_at"] = timezone.now() + timedelta(minutes=20)
    full.update(details or {})
    pickup = kw.pop("pickup", "P1" if kind in ("parcel", "queue") else "C1")
    dropoff = kw.pop("dropoff", pickup if kind == "queue" else "D3")
    kw.setdefault("description", "列表: 牛奶, 面包" if kind == "buy" else "")
    return make_order(
        customer=customer,
        campus=campus,
        kind=kind,
        pickup=pickup,
        dropoff=dropoff,
        details=full,
        **kw,
    )


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


# --- merchants and takeout ------------------------------------------------------------------------


def open_all_week(merchant) -> None:
    """Opening hours covering every minute of the week (00:00–12:00 and 12:00–24:00 each day)."""
    import datetime as dt

    from merchants.models import OpeningHours

    OpeningHours.objects.bulk_create(
        OpeningHours(merchant=merchant, weekday=d, opens=a, closes=b)
        for d in range(7)
        for a, b in ((dt.time(0, 0), dt.time(12, 0)), (dt.time(12, 0), dt.time(0, 0)))
    )


def make_merchant(campus: Campus, *, staff=(), always_open: bool = True, **kw):
    """A canteen window in C1 (through the real service), open all week unless told otherwise."""
    from merchants import services as merchant_services

    n = next(_seq)
    merchant = merchant_services.merchant_create(
        campus=campus,
        building=building(campus, kw.pop("building", "C1")),
        slug=kw.pop("slug", f"window-{n}"),
        name=kw.pop("name", f"{n}号窗口"),
        kind=kw.pop("kind", "canteen_window"),
        staff=staff,
        **kw,
    )
    if always_open:
        open_all_week(merchant)
    return merchant


def make_item(merchant, *, name: str | None = None, price_fen: int = 1500, options=(), **kw):
    """A menu item; `options`: [(group name, required, multiple, [(option, delta_fen), ...])]."""
    from merchants.models import MenuItem, Option, OptionGroup

    item = MenuItem.objects.create(
        merchant=merchant, name=name or f"菜{next(_seq)}", price_fen=price_fen, **kw
    )
    for position, (group_name, required, multiple, choices) in enumerate(options):
        group = OptionGroup.objects.create(
            item=item, name=group_name, required=required, multiple=multiple, position=position
        )
        for i, (option_name, delta) in enumerate(choices):
            Option.objects.create(group=group, name=option_name, price_delta_fen=delta, position=i)
    return item


def option_ids(item, *names: str) -> list[int]:
    from merchants.models import Option

    return list(
        Option.objects.filter(group__item=item, name__in=names).values_list("pk", flat=True)
    )


def make_takeout(*, customer: User, merchant, lines, dropoff: str = "D3", fund: bool = True, **kw):
    """A paid takeout order: `lines` [(item, quantity[, option ids])] go in the cart, then
    checkout (through the real services). The wallet is funded first unless fund=False."""
    from merchants import services as merchant_services

    for line in lines:
        item, quantity = line[0], line[1]
        merchant_services.cart_add(
            user=customer, item=item, quantity=quantity, option_ids=line[2] if len(line) > 2 else ()
        )
    if fund:
        fund_wallet(customer, at_least=50_000)
    return merchant_services.takeout_checkout(
        customer=customer,
        merchant=merchant,
        dropoff_building=building(merchant.campus, dropoff),
        **kw,
    )


def logged_in(user: User, language: str = "en") -> Client:
    """A test client with `user`'s session, asking for pages in `language`."""
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def deliver(order, rider):
    """`rider` accepts `order` and carries it to the door: the order, delivered."""
    order_services.order_accept(order=order, rider=rider)
    for step in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=step, actor=rider)
    return order
