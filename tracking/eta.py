"""When will my order arrive: an estimated time and a range, and whether the promise holds.

The estimate walks the rider's stops in order on the campus path graph, from the rider's live
position:

* the stops before yours: dispatch's planned route for the rider (dispatch.selectors.rider_route)
  when dispatch is installed and the rider carries more than one order, else the rider's other
  active orders accepted before yours, each served in turn (pickup, then drop-off); every stop
  costs STOP_SECONDS of handing over;
* your pickup, while the order is not picked up yet: the kind's handling time there (queueing at
  the counter, shopping: orders.ErrandKindSetting) and the merchant's preparation (the rider
  cannot leave before the food is ready: see `ready_at` and PREP_PROVIDERS);
* your drop-off: the estimate is the arrival there.

Travel time is path distance over the rider's recent speed: the live positions are sampled into
a short history in the cache (SAMPLE_WINDOW_S, by the ETA ticker and by every estimate) and the
speed is what the rider covered while moving, within [MIN_SPEED, MAX_SPEED]; without enough
history, the campus's default speed (dispatch settings, else walking). The range is the same walk
at a faster and a slower speed with shorter and longer stops (wider when the speed is a default
guess or the position is old).

Estimates are pushed to the order's watchers only when they change meaningfully (the time by
PUSH_SHIFT_SECONDS or more, the range's minutes, the number of stops before yours, the risk), by
a ticker that runs in each socket server process for the orders watched there (`start`,
`watch`); the snapshot carries the latest estimate. The path still ahead is pushed with it when
the rider has moved on, so the customer's map redraws it.
"""

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections

from campus.geo import haversine_m
from campus.graph import campus_graph
from orders.status import WITH_RIDER, Status
from tracking import broadcast, live

logger = logging.getLogger("tracking.eta")

TICK_SECONDS = float(getattr(settings, "TRACKING_ETA_TICK_SECONDS", 5.0))
SAMPLE_WINDOW_S = 120
SAMPLES_MAX = 40
MOVING_MPS = 0.5  # slower than this between two samples: standing (at a counter, a door)
MIN_MOVING_S = 10  # seconds of movement needed before the recent speed is trusted
MIN_SPEED, MAX_SPEED = 0.8, 8.0
WALKING_MPS = 1.3
STOP_SECONDS = 60  # handing an order over at a stop before yours
RELAY_WAIT_SECONDS = 300  # at a transfer station, until the relay rider takes it on
NO_POSITION_APPROACH_S = 600  # an accepted order whose rider's position is unknown
STALE_POSITION_S = 60
PUSH_SHIFT_SECONDS = 60
ROUTE_MOVE_M = 15
FRESH_SECONDS = max(3 * TICK_SECONDS, 15)  # a stored estimate this young serves a snapshot
PLAN_TTL = 30
SETTINGS_TTL = 60

# Merchants: functions order -> datetime | None, the time the order is ready at its pickup.
PREP_PROVIDERS: list[Callable] = []


# --- speed -------------------------------------------------------------------------------------


def _samples_key(rider_id: int) -> str:
    return f"eta-samples:{live._ns()}:{rider_id}"


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def speed_observe(rider_id: int, position: dict | None, samples: list | None = None) -> list:
    """Add the rider's live position to their recent history (once per fix); returns it."""
    if samples is None:
        samples = cache.get(_samples_key(rider_id)) or []
    if not position:
        return samples
    at = _ts(position["recorded_at"])
    if samples and at <= samples[-1][0]:
        return samples
    samples = [s for s in samples if s[0] >= at - SAMPLE_WINDOW_S][-(SAMPLES_MAX - 1) :]
    samples.append((at, position["lng"], position["lat"]))
    cache.set(_samples_key(rider_id), samples, SAMPLE_WINDOW_S * 2)
    return samples


def recent_speed(samples: list) -> float | None:
    """Metres per second while moving over the recent samples, or None without enough movement."""
    moved_m = moving_s = 0.0
    for (t0, x0, y0), (t1, x1, y1) in zip(samples, samples[1:], strict=False):
        dt = t1 - t0
        if dt <= 0:
            continue
        d = haversine_m(x0, y0, x1, y1)
        if d / dt >= MOVING_MPS:
            moved_m += d
            moving_s += dt
    if moving_s < MIN_MOVING_S:
        return None
    return min(MAX_SPEED, max(MIN_SPEED, moved_m / moving_s))


def default_speed(campus) -> float:
    """The campus's usual rider speed: dispatch settings when dispatch has them, else walking."""
    key = f"eta-speed:{live._ns()}:{campus.pk}"
    speed = cache.get(key)
    if speed is None:
        speed = WALKING_MPS
        found = getattr(campus, "dispatch_settings", None)
        if found is not None:
            cycling = getattr(found, "default_travel_mode", "") == "cycling"
            speed = float(
                getattr(found, "cycling_speed_mps" if cycling else "walking_speed_mps", speed)
            )
        cache.set(key, speed, SETTINGS_TTL)
    return speed


# --- the time at the pickup --------------------------------------------------------------------


def handling_seconds(order) -> float:
    """The kind's handling time at the pickup (orders.ErrandKindSetting), cached a minute."""
    key = f"eta-handling:{live._ns()}:{order.campus_id}:{order.kind}"
    minutes = cache.get(key)
    if minutes is None:
        from orders.pricing import kind_setting_for

        try:
            minutes = kind_setting_for(order.campus, order.kind).handling_minutes
        except KeyError:  # a kind orders does not know (yet): no handling time
            minutes = 0
        cache.set(key, minutes, SETTINGS_TTL)
    return minutes * 60.0


def ready_at(order) -> datetime | None:
    """When the merchant will have the order ready (takeout), if anyone says: the merchant's
    ticket (merchants.TakeoutOrder: its expected ready time until it is ready), else any of
    PREP_PROVIDERS."""
    if order.kind == "takeout":
        ticket = getattr(order, "takeout", None)  # the ticket, through its one-to-one
        if ticket is not None:
            if getattr(ticket, "ready_at", None) is None:
                return getattr(ticket, "expected_ready_at", None)
            return None
    for name in ("merchant_ready_at", "ready_at", "expected_ready_at"):
        value = getattr(order, name, None)
        if isinstance(value, datetime):
            return value
    for provider in PREP_PROVIDERS:
        value = provider(order)
        if value is not None:
            return value
    return None


# --- the walk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    lng: float
    lat: float
    service_s: float = 0.0  # time spent there before moving on
    not_before: float | None = None  # POSIX: cannot move on before (the food is ready)


def walk(
    start: tuple[float, float],
    stops: list[Stop],
    *,
    now: float,
    speed: float,
    service_factor: float = 1.0,
    distance: Callable[[tuple, tuple], float],
    start_delay_s: float = 0.0,
) -> float:
    """POSIX time of arrival at the last stop."""
    t = now + start_delay_s
    here = start
    for i, stop in enumerate(stops):
        there = (stop.lng, stop.lat)
        t += distance(here, there) / speed
        if i == len(stops) - 1:
            return t
        t += stop.service_s * service_factor
        if stop.not_before is not None:
            t = max(t, stop.not_before)
        here = there
    return t


@dataclass(frozen=True)
class Eta:
    at: datetime
    low: datetime
    high: datetime
    remaining_m: int
    stops_before: int
    speed_mps: float
    speed_source: str  # "recent" | "default"
    promised_at: datetime | None
    waiting_for: str | None  # "merchant" while the rider waits for the food
    computed_at: datetime

    @property
    def risk(self) -> str | None:
        if self.promised_at is None:
            return None
        if self.at > self.promised_at:
            return "late"
        if self.high > self.promised_at:
            return "at_risk"
        return "on_time"

    def payload(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "low": self.low.isoformat(),
            "high": self.high.isoformat(),
            "minutes": max(0, round((self.at - self.computed_at).total_seconds() / 60)),
            "remaining_m": self.remaining_m,
            "stops_before": self.stops_before,
            "speed_mps": round(self.speed_mps, 1),
            "speed_source": self.speed_source,
            "promised_at": self.promised_at.isoformat() if self.promised_at else None,
            "risk": self.risk,
            "waiting_for": self.waiting_for,
            "computed_at": self.computed_at.isoformat(),
        }


def _place(building) -> tuple[float, float]:
    return (building.lng, building.lat)


def own_stops(order, now: float) -> list[Stop]:
    """This order's stops still ahead: its pickup (while not picked up) and its drop-off."""
    dropoff = Stop(*_place(order.dropoff_building))
    if order.status != Status.ACCEPTED:
        return [dropoff]
    ready = ready_at(order)
    pickup = Stop(
        *_place(order.pickup_building),
        service_s=handling_seconds(order),
        not_before=ready.timestamp() if ready else None,
    )
    return [pickup, dropoff]


def fifo_stops_before(order, others) -> list[Stop]:
    """Without a plan: the rider serves the orders accepted before this one first, in turn."""
    stops: list[Stop] = []
    mine = (order.accepted_at or order.created_at, order.pk)
    for other in sorted(others, key=lambda o: (o.accepted_at or o.created_at, o.pk)):
        if other.pk == order.pk or (other.accepted_at or other.created_at, other.pk) >= mine:
            continue
        if other.status == Status.ACCEPTED:
            stops.append(Stop(*_place(other.pickup_building), service_s=STOP_SECONDS))
        stops.append(Stop(*_place(other.dropoff_building), service_s=STOP_SECONDS))
    return stops


def planned_stops_before(order, plan: list[tuple[int, str, float, float]]) -> list[Stop] | None:
    """The stops dispatch plans before this order's drop-off, or None if the plan lacks it."""
    stops: list[Stop] = []
    for order_id, kind, lng, lat in plan:
        if order_id == order.pk:
            if kind == "delivery":
                return stops
            continue  # this order's own pickup: own_stops adds it with its handling time
        stops.append(Stop(lng, lat, service_s=STOP_SECONDS))
    return None


def rider_plan(rider_id: int) -> list[tuple[int, str, float, float]] | None:
    """Dispatch's planned stop order for the rider [(order id, "pickup"|"delivery", lng, lat)],
    cached PLAN_TTL seconds; None when dispatch offers no plan."""
    key = f"eta-plan:{live._ns()}:{rider_id}"
    found = cache.get(key)
    if found is not None:
        return found or None
    plan: list = []
    try:
        from accounts.models import User
        from dispatch.selectors import rider_route

        route = rider_route(User.objects.select_related("rider_profile__campus").get(pk=rider_id))
        plan = [(s.order.pk, s.kind, s.building.lng, s.building.lat) for s in route.stops]
    except Exception:  # dispatch not installed, or its planner failed: fall back to FIFO
        logger.debug("eta: no dispatch plan for rider %s", rider_id, exc_info=True)
    cache.set(key, plan, PLAN_TTL)
    return plan or None


def _distance_fn(graph) -> Callable[[tuple, tuple], float]:
    if len(graph.nodes) == 0:
        return lambda a, b: haversine_m(*a, *b) * 1.3
    return lambda a, b: graph.route(a, b).distance_m


def estimate(
    order,
    *,
    position: dict | None,
    others=(),
    samples: list | None = None,
    now: datetime | None = None,
    graph=None,
    plan: list | None = None,
) -> Eta | None:
    """The order's ETA, or None when there is nothing to estimate (no rider yet, over, a queue
    errand whose rider stays at the place). `others`: the rider's other active orders."""
    from orders.models import Kind

    if order.status not in WITH_RIDER or order.rider_id is None or order.kind == Kind.QUEUE:
        return None
    now_dt = now or datetime.now(UTC)
    now_ts = now_dt.timestamp()
    graph = graph if graph is not None else campus_graph(order.campus)
    distance = _distance_fn(graph)

    speed = recent_speed(samples or [])
    source = "recent" if speed is not None else "default"
    if speed is None:
        speed = default_speed(order.campus)

    before = None
    if plan:
        before = planned_stops_before(order, plan)
    if before is None:
        before = fifo_stops_before(order, others)
    mine = own_stops(order, now_ts)
    stops = before + mine

    delay = 0.0
    age = 0.0
    if order.status == Status.AT_STATION:
        delay = RELAY_WAIT_SECONDS
    if position:
        start = (position["lng"], position["lat"])
        age = max(0.0, now_ts - _ts(position["recorded_at"]))
    elif order.status == Status.ACCEPTED:
        # Somewhere on campus, heading for the pickup: a usual approach, then on from there.
        start, delay = _place(order.pickup_building), delay + NO_POSITION_APPROACH_S
    else:
        start = _place(order.pickup_building)

    def arrive(speed_factor: float, service_factor: float, extra_s: float = 0.0) -> float:
        return (
            walk(
                start,
                stops,
                now=now_ts,
                speed=speed * speed_factor,
                service_factor=service_factor,
                distance=distance,
                start_delay_s=delay,
            )
            + extra_s
        )

    wide = source == "default"
    at = arrive(1.0, 1.0)
    low = arrive(1.4 if wide else 1.25, 0.5)
    # An old position: the rider may be anywhere the time since allowed (capped).
    stale_s = min(age, 600) if age > STALE_POSITION_S else 0.0
    high = arrive(0.6 if wide else 0.75, 1.5, extra_s=stale_s)
    remaining = 0.0
    here = start
    for stop in stops:
        remaining += distance(here, (stop.lng, stop.lat))
        here = (stop.lng, stop.lat)
    waiting = None
    ready = ready_at(order) if order.status == Status.ACCEPTED else None
    if ready is not None and ready.timestamp() > now_ts:
        waiting = "merchant"
    return Eta(
        at=datetime.fromtimestamp(at, UTC),
        low=datetime.fromtimestamp(min(low, at), UTC),
        high=datetime.fromtimestamp(max(high, at), UTC),
        remaining_m=round(remaining),
        stops_before=len(before),
        speed_mps=speed,
        speed_source=source,
        promised_at=order.promised_at,
        waiting_for=waiting,
        computed_at=now_dt,
    )


def changed_meaningfully(old: dict | None, new: dict | None) -> bool:
    """Whether watchers should hear of a new estimate."""
    if (old is None) != (new is None):
        return True
    if old is None:
        return False

    def minute(iso: str) -> int:
        return int(datetime.fromisoformat(iso).timestamp() // 60)

    shift = abs(_ts(new["at"]) - _ts(old["at"]))
    return (
        shift >= PUSH_SHIFT_SECONDS
        or minute(new["low"]) != minute(old["low"])
        or minute(new["high"]) != minute(old["high"])
        or new["stops_before"] != old["stops_before"]
        or new["risk"] != old["risk"]
        or new["waiting_for"] != old["waiting_for"]
    )


# --- the path still ahead ----------------------------------------------------------------------


def remaining_route(order, position: dict | None, graph=None) -> list[list[float]]:
    """The planned path still ahead on the campus graph, [lat, lng] pairs for the map: from the
    rider's position (when the viewer may see it, else from the pickup) through this order's
    own stops. Stops for other customers are never drawn."""
    graph = graph if graph is not None else campus_graph(order.campus)
    if len(graph.nodes) == 0:
        return []
    pickup, dropoff = _place(order.pickup_building), _place(order.dropoff_building)
    if order.status in (Status.PENDING, Status.OPEN):
        legs = [(pickup, dropoff)]
    elif order.status == Status.ACCEPTED:
        start = (position["lng"], position["lat"]) if position else pickup
        legs = [(start, pickup), (pickup, dropoff)]
    elif order.status in WITH_RIDER:
        start = (position["lng"], position["lat"]) if position else pickup
        legs = [(start, dropoff)]
    else:
        return []
    coords: list[tuple[float, float]] = []
    for a, b in legs:
        part = graph.route(a, b).coords
        coords.extend(part if not coords else part[1:])
    return [[round(lat, 6), round(lng, 6)] for lng, lat in coords]


# --- what watchers were last told (cache) ------------------------------------------------------


def _state_key(number: str) -> str:
    return f"eta-state:{live._ns()}:{number}"


@dataclass
class Told:
    """The last estimate (and path origin) an order's watchers were given."""

    eta: dict | None
    route_from: tuple[float, float] | None
    at: float  # POSIX time it was stored

    def as_cache(self) -> dict:
        return {"eta": self.eta, "from": self.route_from, "at": self.at}


def _told(raw) -> Told | None:
    return Told(raw["eta"], raw["from"], raw["at"]) if raw else None


def _others_for(riders: set[int]) -> dict[int, list]:
    from orders.models import Order

    found: dict[int, list] = {r: [] for r in riders}
    rows = Order.objects.filter(rider_id__in=riders, status__in=WITH_RIDER).select_related(
        "pickup_building", "dropoff_building"
    )
    for other in rows:
        found[other.rider_id].append(other)
    return found


def _positions(rider_ids) -> dict[int, dict]:
    keys = {live._key(r): r for r in rider_ids}
    return {keys[k]: v["p"] for k, v in cache.get_many(list(keys)).items() if v}


def _visible_position(order, position):
    from tracking.privacy import customer_visible_statuses

    return position if order.status in customer_visible_statuses(order.campus) else None


def eta_for_snapshot(order, position: dict | None = None, *, graph=None) -> dict | None:
    """The estimate a watcher joining now is given: the one last told if it is fresh, else a new
    one (then stored as told, so that the ticker pushes changes relative to it)."""
    if order.status not in WITH_RIDER or order.rider_id is None:
        return None
    told = _told(cache.get(_state_key(order.number)))
    now = datetime.now(UTC)
    if told is not None and now.timestamp() - told.at < FRESH_SECONDS:
        return told.eta
    if position is None:
        position = live.position_get(order.rider_id)
    samples = speed_observe(order.rider_id, position)
    others = _others_for({order.rider_id})[order.rider_id]
    plan = rider_plan(order.rider_id) if len(others) > 1 else None
    found = estimate(
        order,
        position=position,
        others=others,
        samples=samples,
        now=now,
        graph=graph,
        plan=plan,
    )
    payload = found.payload() if found else None
    origin = _visible_position(order, position)
    route_from = (origin["lng"], origin["lat"]) if origin else None
    if told is not None and not changed_meaningfully(told.eta, payload):
        payload = told.eta  # keep what watchers were told: the ticker measures drift from it
    cache.set(
        _state_key(order.number),
        Told(
            payload, route_from or (told.route_from if told else None), now.timestamp()
        ).as_cache(),
        max(FRESH_SECONDS * 4, 120),
    )
    return payload


def tick(numbers, *, now: datetime | None = None) -> list[tuple[str, dict]]:
    """Estimate every watched order with a rider; return (number, layer message) for those whose
    watchers should hear of it (meaningful change, or the rider moved on along the path)."""
    from orders.models import Order

    now = now or datetime.now(UTC)
    orders = list(
        Order.objects.filter(number__in=list(numbers), status__in=WITH_RIDER, rider__isnull=False)
        .select_related("campus", "pickup_building", "dropoff_building")
        .order_by("pk")
    )
    if not orders:
        return []
    riders = {o.rider_id for o in orders}
    positions = _positions(riders)
    samples_found = cache.get_many([_samples_key(r) for r in riders])
    samples = {
        r: speed_observe(r, positions.get(r), samples_found.get(_samples_key(r)) or [])
        for r in riders
    }
    others = _others_for(riders)
    told_raw = cache.get_many([_state_key(o.number) for o in orders])
    graphs: dict[int, object] = {}
    out: list[tuple[str, dict]] = []
    store: dict[str, dict] = {}
    for order in orders:
        graph = graphs.get(order.campus_id)
        if graph is None:
            graph = graphs[order.campus_id] = campus_graph(order.campus)
        rider = order.rider_id
        mine = others.get(rider, [])
        plan = rider_plan(rider) if len(mine) > 1 else None
        position = positions.get(rider)
        try:
            found = estimate(
                order,
                position=position,
                others=mine,
                samples=samples.get(rider),
                now=now,
                graph=graph,
                plan=plan,
            )
        except Exception:
            logger.exception("eta: could not estimate order %s", order.number)
            continue
        payload = found.payload() if found else None
        told = _told(told_raw.get(_state_key(order.number)))
        origin = _visible_position(order, position)
        route_from = (origin["lng"], origin["lat"]) if origin else None
        moved = route_from is not None and (
            told is None
            or told.route_from is None
            or haversine_m(*told.route_from, *route_from) >= ROUTE_MOVE_M
        )
        eta_changed = told is None or changed_meaningfully(told.eta, payload)
        if not eta_changed and not moved:
            continue
        route = remaining_route(order, origin, graph) if moved else None
        eta_out = payload if eta_changed else told.eta
        out.append((order.number, broadcast.eta_message(order.number, eta_out, route)))
        store[_state_key(order.number)] = Told(
            eta_out,
            route_from if moved else (told.route_from if told else None),
            now.timestamp(),
        ).as_cache()
    if store:
        cache.set_many(store, max(FRESH_SECONDS * 4, 120))
    return out


# --- the ticker of a socket server process -----------------------------------------------------

_watched: Counter = Counter()
_started_loops: weakref.WeakSet = weakref.WeakSet()
_tasks: list = []
_executor: ThreadPoolExecutor | None = None


def watch(number: str) -> None:
    _watched[number] += 1


def unwatch(number: str) -> None:
    _watched[number] -= 1
    if _watched[number] <= 0:
        del _watched[number]


def watched() -> list[str]:
    return list(_watched)


def start() -> None:
    """Start this process's ETA ticker on the running loop (idempotent; a real server only)."""
    global _executor
    if TICK_SECONDS <= 0:
        return
    loop = asyncio.get_running_loop()
    if loop in _started_loops:
        return
    _started_loops.add(loop)
    if _executor is None:
        # Its own thread: estimates must not queue behind (or hold up) the location hot path's
        # database_sync_to_async calls.
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking-eta")
    _tasks.append(loop.create_task(_ticker()))


def _tick_in_thread(numbers) -> list[tuple[str, dict]]:
    close_old_connections()
    try:
        return tick(numbers)
    finally:
        close_old_connections()


async def _ticker() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(TICK_SECONDS)
        numbers = watched()
        if not numbers or layer is None:
            continue
        try:
            messages = await loop.run_in_executor(_executor, _tick_in_thread, numbers)
            for number, message in messages:
                await broadcast.push(layer, [broadcast.order_group(number)], message)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep ticking: the next round may well work
            logger.exception("eta: ticker round failed")
