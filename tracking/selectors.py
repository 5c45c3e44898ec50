"""Reads shared by the operators' pages and APIs: the live map, a rider's route, an order's
recorded track (the dispute replay) and the windows in which a rider carried an order."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.status import ACTIVE, WITH_RIDER, Status, all_status_meta
from tracking import live

STALE_FIX_SECONDS = 120  # a rider's fix older than this is drawn grey on the map
MAP_ORDERS_MAX = 2000


def _has_merchant() -> bool:
    """Takeout orders carry a merchant's ticket (merchants.TakeoutOrder, `order.takeout`) once the
    merchants app is installed."""
    try:
        Order._meta.get_field("takeout")
    except Exception:
        return False
    return True


def _merchant_of(order) -> dict | None:
    ticket = getattr(order, "takeout", None)  # the reverse one-to-one: None for errands
    merchant = getattr(ticket, "merchant", None)
    if merchant is None:
        return None
    return {"id": merchant.pk, "name": str(getattr(merchant, "display_name", merchant))}


def _positions(rider_ids) -> dict[int, dict]:
    from tracking.eta import positions_of

    return positions_of(rider_ids)


def _place(building) -> dict:
    return {"name": building.display_name, "lat": building.lat, "lng": building.lng}


def ops_map_state(*, now: datetime | None = None) -> dict:
    """Every online rider (pool, load, last fix, stale or not) and every active order."""
    from riders.models import RiderProfile

    now = now or timezone.now()
    profiles = list(
        RiderProfile.objects.filter(online=True).select_related("user").order_by("user_id")
    )
    ids = [p.user_id for p in profiles]
    loads = dict(
        Order.objects.filter(rider_id__in=ids, status__in=WITH_RIDER)
        .values("rider_id")
        .annotate(n=Count("pk"))
        .values_list("rider_id", "n")
    )
    positions = _positions(ids)
    riders = []
    for profile in profiles:
        position = positions.get(profile.user_id)
        age = None
        if position:
            age = now.timestamp() - datetime.fromisoformat(position["recorded_at"]).timestamp()
        riders.append(
            {
                "id": profile.user_id,
                "name": profile.user.username,
                "pool": profile.user.gender,
                "load": loads.get(profile.user_id, 0),
                "capacity": profile.capacity,
                "campus": profile.campus_id,
                "credit": profile.credit_score,
                "position": position,
                "stale": age is None or age > STALE_FIX_SECONDS,
            }
        )
    related = ["pickup_building", "dropoff_building", "rider"]
    merchant = _has_merchant()
    if merchant:
        related.append("takeout__merchant")
    orders_qs = (
        Order.objects.filter(status__in=ACTIVE - {Status.PENDING})
        .select_related(*related)
        .order_by("-created_at")[:MAP_ORDERS_MAX]
    )
    orders = []
    for order in orders_qs:
        row = {
            "number": order.number,
            "status": order.status,
            "kind": order.kind,
            "kind_label": str(order.get_kind_display()),
            "pickup": _place(order.pickup_building),
            "dropoff": _place(order.dropoff_building),
            "rider": order.rider_id,
            "rider_name": order.rider.username if order.rider_id else None,
            "pool": order.required_gender,
            "campus": order.campus_id,
            "promised_at": order.promised_at.isoformat() if order.promised_at else None,
            "created_at": order.created_at.isoformat(),
            "merchant": None,
        }
        if merchant:
            row["merchant"] = _merchant_of(order)
        orders.append(row)
    return {
        "at": now.isoformat(),
        "riders": riders,
        "orders": orders,
        "statuses": all_status_meta(),
        "stale_after_s": STALE_FIX_SECONDS,
        "has_merchants": merchant,
    }


def _stop(order, kind: str, building) -> dict:
    return {"number": order.number, "kind": kind, "place": _place(building)}


def ops_rider_route(rider) -> dict:
    """The rider's current route for the map: dispatch's plan when it has one, else their active
    orders in the order they were accepted, each picked up then delivered."""
    from campus.graph import campus_graph

    profile = rider.rider_profile
    position = live.position_get(rider.pk)
    stops: list[dict] = []
    path: list[tuple[float, float]] = []
    method = "accepted_order"
    try:
        from dispatch.selectors import rider_route

        planned = rider_route(rider)
        stops = [
            {
                "number": s.order.number,
                "kind": s.kind,
                "place": _place(s.building),
                "eta": s.eta.isoformat(),
                "late": s.late,
            }
            for s in planned.stops
        ]
        path = list(planned.path)
        method = f"dispatch:{planned.method}"
    except Exception:
        orders = (
            Order.objects.filter(rider=rider, status__in=WITH_RIDER)
            .select_related("pickup_building", "dropoff_building")
            .order_by("accepted_at", "pk")
        )
        for order in orders:
            if order.status == Status.ACCEPTED:
                stops.append(_stop(order, "pickup", order.pickup_building))
            stops.append(_stop(order, "delivery", order.dropoff_building))
        graph = campus_graph(profile.campus)
        here = (position["lng"], position["lat"]) if position else None
        for stop in stops:
            there = (stop["place"]["lng"], stop["place"]["lat"])
            if here is not None and len(graph.nodes):
                leg = graph.route(here, there).coords
                path.extend(leg if not path else leg[1:])
            elif not path:
                path.append(there)
            here = there
    return {
        "rider": rider.pk,
        "position": position,
        "stops": stops,
        "path": [[round(lat, 6), round(lng, 6)] for lng, lat in path],
        "method": method,
    }


# --- the windows in which a rider carried an order, its recorded track ---------------------------


@dataclass(frozen=True)
class Window:
    """A rider carried (or headed for) the order from `start` to `end` (None: still does)."""

    rider_id: int
    start: datetime
    end: datetime | None


_OPENS = {Status.ACCEPTED, Status.RELAY_ACCEPTED}
_CLOSES = {
    Status.AT_STATION,
    Status.DELIVERED,
    Status.COMPLETED,
    Status.CANCELLED,
    Status.EXPIRED,
    Status.OPEN,
}


def order_windows(order, events=None) -> list[Window]:
    """From the order's event log: a rider's window opens when they accept (or take over a
    relay) and closes when they hand over at a station, deliver, give it back, or it is cancelled.
    """
    if events is None:
        events = list(OrderEvent.objects.filter(order=order).order_by("created_at", "pk"))
    windows: list[Window] = []
    current: tuple[int, datetime] | None = None
    for event in events:
        new = event.new_status
        if new == event.old_status:
            continue  # a note on the timeline, not a change
        if new in _OPENS:
            rider_id = event.actor_id or order.rider_id  # accepting makes the actor the rider
            if current is not None and current[0] != rider_id:
                windows.append(Window(current[0], current[1], event.created_at))
                current = None
            if current is None and rider_id is not None:
                current = (rider_id, event.created_at)
        elif new in _CLOSES and current is not None:
            windows.append(Window(current[0], current[1], event.created_at))
            current = None
    if current is not None:
        windows.append(Window(current[0], current[1], None))
    return windows


def order_track(order) -> list[dict]:
    """The order's recorded track, oldest first: the raw fixes still kept inside its windows and
    the downsampled points archived for it (tracking.retention) — for the dispute replay."""
    from tracking.models import ArchivedTrackPoint, TrackPoint

    points: dict[tuple[int, float], dict] = {}

    def add(rider_id, point, accuracy, at, archived):
        points[(rider_id, at.timestamp())] = {
            "rider": rider_id,
            "lat": round(point.y, 7),
            "lng": round(point.x, 7),
            "accuracy": accuracy,
            "at": at.astimezone(UTC).isoformat(),
            "archived": archived,
        }

    for p in ArchivedTrackPoint.objects.filter(order=order).order_by("recorded_at"):
        add(p.rider_id, p.point, p.accuracy_m, p.recorded_at, True)
    for window in order_windows(order):
        raw = TrackPoint.objects.filter(rider_id=window.rider_id, recorded_at__gte=window.start)
        if window.end is not None:
            raw = raw.filter(recorded_at__lte=window.end)
        for p in raw.order_by("recorded_at").only("point", "accuracy_m", "recorded_at"):
            add(window.rider_id, p.point, p.accuracy_m, p.recorded_at, False)
    return [points[k] for k in sorted(points, key=lambda k: k[1])]
