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

Estimates are pushed to the order's watchers only when they change meaningfully (the time or an
end of the range by PUSH_SHIFT_SECONDS or more, the number of stops before yours, the risk), by
a ticker that runs in each socket server process for the orders watched there (`start`,
`watch`); the snapshot carries the latest estimate. The page trims the path it drew as the rider
moves along it; a new path is pushed with the estimate only when the rider leaves the drawn one.
A round shares one Dijkstra tree per stop (building) between all its estimates (PathDistances).
"""

import asyncio
import hashlib
import logging
import math
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from campus.geo import haversine_m
from campus.graph import campus_graph
from campus_errand.compiled import Compiled
from orders.status import WITH_RIDER, Status
from tracking import broadcast, live
from tracking.threads import yield_to_loop

logger = logging.getLogger("tracking.eta")

TICK_SECONDS = float(getattr(settings, "TRACKING_ETA_TICK_SECONDS", 10.0))
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
ROUTE_SLACK_M = 30
FRESH_SECONDS = max(3 * TICK_SECONDS, 15)  # a stored estimate this young serves a snapshot
PLAN_TTL = 30
# Speed samples and the estimates last told, written together (one round trip): long enough for
# a sample window and for the ticker's comparisons; how fresh either is goes by its own times.
STORE_TTL = max(FRESH_SECONDS * 4, SAMPLE_WINDOW_S * 2)
SETTINGS_TTL = 60
YIELD_EVERY = 10  # orders (or rows) of a ticker round between two yields to the event loop
# A round's pushes go out PUSH_BATCH at a time, PUSH_PAUSE_S apart: when every rider of a busy
# process has moved since the last round, its few hundred estimates (with new paths, the largest
# messages of all) reach the watchers spread over a few seconds instead of in one burst ahead of
# the live positions (measured at 2,000 fixes/s: the 90th percentile 8-13 ms instead of 23-55).
PUSH_BATCH = 10
PUSH_PAUSE_S = 0.05

# Merchants: functions order -> datetime | None, the time the order is ready at its pickup.
PREP_PROVIDERS: list[Callable] = []


_namespaces: dict[str, str] = {}


def _ns() -> str:
    """Like tracking.live's keys: two databases sharing one Redis never read each other's."""
    from django.db import connections

    name = str(connections.settings["default"].get("NAME") or "")
    ns = _namespaces.get(name)
    if ns is None:
        ns = _namespaces[name] = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return ns


# --- speed -------------------------------------------------------------------------------------


def _cache():
    """The process's one cache client (tracking.live.shared_cache): Django's `cache` is one per
    asyncio task, so each socket's snapshot would open a Redis connection of its own."""
    return live.shared_cache()


def _samples_key(rider_id: int) -> str:
    return f"eta-samples:{_ns()}:{rider_id}"


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def speed_observe(
    rider_id: int, position: dict | None, samples: list | None = None, *, store: dict | None = None
) -> list:
    """Add the rider's live position to their recent history (once per fix); returns it.
    `samples`: the history as already read; `store`: collects the write for the caller's one
    set_many (STORE_TTL) instead of writing it here."""
    if samples is None:
        samples = _cache().get(_samples_key(rider_id)) or []
    if not position:
        return samples
    at = _ts(position["recorded_at"])
    if samples and at <= samples[-1][0]:
        return samples
    samples = [s for s in samples if s[0] >= at - SAMPLE_WINDOW_S][-(SAMPLES_MAX - 1) :]
    samples.append((at, position["lng"], position["lat"]))
    if store is not None:
        store[_samples_key(rider_id)] = samples
    else:
        _cache().set(_samples_key(rider_id), samples, STORE_TTL)
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


def _speed_key(campus_id: int) -> str:
    return f"eta-speed:{_ns()}:{campus_id}"


def _handling_key(campus_id: int, kind: str) -> str:
    return f"eta-handling:{_ns()}:{campus_id}:{kind}"


def _settings_keys(orders) -> list[str]:
    """The cache keys of the settings estimating these orders reads (read them in one trip and
    pass them as `known`)."""
    keys = {_speed_key(o.campus_id) for o in orders}
    keys.update(_handling_key(o.campus_id, o.kind) for o in orders if o.status == Status.ACCEPTED)
    return list(keys)


def _setting(key: str, known: dict | None, load: Callable[[], float]) -> float:
    """A cached setting: from `known` (read beforehand with the others) or the cache, else
    loaded and cached SETTINGS_TTL -- and added to `known`, so that the round's next orders
    neither read nor load it again."""
    value = known.get(key) if known is not None else _cache().get(key)
    if value is None:
        value = load()
        _cache().set(key, value, SETTINGS_TTL)
        if known is not None:
            known[key] = value
    return value


def default_speed(campus, known: dict | None = None) -> float:
    """The campus's usual rider speed: dispatch settings when dispatch has them, else walking."""

    def load() -> float:
        found = getattr(campus, "dispatch_settings", None)
        if found is None:
            return WALKING_MPS
        cycling = getattr(found, "default_travel_mode", "") == "cycling"
        return float(
            getattr(found, "cycling_speed_mps" if cycling else "walking_speed_mps", WALKING_MPS)
        )

    return _setting(_speed_key(campus.pk), known, load)


# --- the time at the pickup --------------------------------------------------------------------


def handling_seconds(order, known: dict | None = None) -> float:
    """The kind's handling time at the pickup (orders.ErrandKindSetting), cached a minute."""

    def load() -> float:
        from orders.pricing import kind_setting_for

        try:
            return kind_setting_for(order.campus, order.kind).handling_minutes
        except KeyError:  # a kind orders does not know (yet): no handling time
            return 0

    return _setting(_handling_key(order.campus_id, order.kind), known, load) * 60.0


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
    legs_m: list[float],
    stops: list[Stop],
    *,
    now: float,
    speed: float,
    service_factor: float = 1.0,
    start_delay_s: float = 0.0,
) -> float:
    """POSIX time of arrival at the last stop; legs_m[i]: metres to stops[i] from the point
    before it."""
    t = now + start_delay_s
    for i, stop in enumerate(stops):
        t += legs_m[i] / speed
        if i == len(stops) - 1:
            return t
        t += stop.service_s * service_factor
        if stop.not_before is not None:
            t = max(t, stop.not_before)
    return t


class _Segments:
    """Every path segment of a graph, for projecting a point onto the nearest one (numpy)."""

    def __init__(self, graph):
        self.graph = graph
        lat0 = float(np.mean(graph.nodes[:, 1])) if len(graph.nodes) else 0.0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))  # metres per degree, locally
        self.ky = 110_574.0
        rows = []  # (edge index, point index, cumulative metres at the segment's start)
        self.edges: list[tuple[int, int, list, float]] = []  # (u, v, coords from u, metres)
        for (u, v), coords in graph.edge_coords.items():
            if u > v:
                continue
            walked = 0.0
            e = len(self.edges)
            for i, (a, b) in enumerate(zip(coords, coords[1:], strict=False)):
                rows.append((e, i, walked, a[0], a[1], b[0], b[1]))
                walked += haversine_m(a[0], a[1], b[0], b[1])
            self.edges.append((u, v, coords, walked))
        arr = np.array(rows, dtype=float).reshape(-1, 7)
        self.edge_of, self.index, self.cum = arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2]
        self.a = arr[:, 3:5]
        self.b = arr[:, 5:7]

    def project(self, lng: float, lat: float):
        """(edge index, point index, t, projected (lng, lat), metres off the path, metres along
        the edge from its first node) of the nearest point on any segment."""
        scale = np.array([self.kx, self.ky])
        p = np.array([lng, lat]) * scale
        a, b = self.a * scale, self.b * scale
        ab = b - a
        length2 = (ab**2).sum(axis=1)
        t = np.clip(((p - a) * ab).sum(axis=1) / np.where(length2 > 0, length2, 1), 0, 1)
        q = a + ab * t[:, None]
        off = np.sqrt(((q - p) ** 2).sum(axis=1))
        k = int(np.argmin(off))
        point = tuple(self.a[k] + (self.b[k] - self.a[k]) * t[k])
        seg_m = haversine_m(*self.a[k], *self.b[k])
        along = float(self.cum[k] + t[k] * seg_m)
        return int(self.edge_of[k]), int(self.index[k]), float(t[k]), point, float(off[k]), along


_segments: dict[int, _Segments] = {}


def _segments_for(graph) -> _Segments:
    found = _segments.get(id(graph))
    if found is None or found.graph is not graph:  # a rebuilt graph is a new object
        if len(_segments) > 32:
            _segments.clear()
        found = _segments[id(graph)] = _Segments(graph)
    return found


class PathDistances:
    """Path distances and paths on the campus graph *towards stops* (buildings): one Dijkstra tree
    per stop node, shared by every estimate that uses this object (a ticker round shares one per
    campus), so a round costs a tree per building, not per rider. The starting point (a rider
    between two junctions) is projected onto the nearest path segment and leaves it by whichever
    end is shorter; stops sit on graph nodes (entrances). Points the paths do not connect walk
    straight."""

    DETOUR = 1.4

    def __init__(self, graph):
        self.graph = graph
        self._trees: dict[int, tuple] = {}
        self._nodes: dict[tuple[float, float], tuple[int, float]] = {}
        self._starts: dict[tuple[float, float], tuple] = {}

    def _node(self, pt) -> tuple[int, float]:
        key = (round(pt[0], 7), round(pt[1], 7))
        found = self._nodes.get(key)
        if found is None:
            node = self.graph.nearest_node(*pt)
            x, y = self.graph.nodes[node]
            found = self._nodes[key] = (node, haversine_m(pt[0], pt[1], float(x), float(y)))
        return found

    def _start(self, pt):
        key = (round(pt[0], 7), round(pt[1], 7))
        found = self._starts.get(key)
        if found is None:
            found = self._starts[key] = _segments_for(self.graph).project(*pt)
        return found

    def _tree(self, node: int):
        tree = self._trees.get(node)
        if tree is None:
            from scipy.sparse.csgraph import dijkstra

            tree = self._trees[node] = dijkstra(
                self.graph.matrix, indices=node, return_predecessors=True
            )
        return tree

    def _exit(self, a, nb: int):
        """How the start leaves its segment towards stop node nb: (metres, via node, edge, index,
        t, projected point, metres off), or None if the paths do not lead to nb."""
        e, i, t, point, off, along = self._start(a)
        u, v, _coords, total = _segments_for(self.graph).edges[e]
        dist = self._tree(nb)[0]
        options = [(along + dist[u], u), (total - along + dist[v], v)]
        metres, via = min(options)
        if not math.isfinite(metres):
            return None
        return metres + off, via, e, i, t, point, off

    def __call__(self, a, b) -> float:
        if len(self.graph.nodes) == 0:
            return haversine_m(*a, *b) * self.DETOUR
        nb, sb = self._node(b)
        found = self._exit(a, nb)
        if found is None:
            return haversine_m(*a, *b) * self.DETOUR
        return found[0] + sb

    def path(self, a, b) -> list[tuple[float, float]]:
        """(lng, lat) points from a to b along the paths."""
        if len(self.graph.nodes) == 0:
            return [tuple(a), tuple(b)]
        nb, _ = self._node(b)
        found = self._exit(a, nb)
        if found is None:
            return [tuple(a), tuple(b)]
        _m, via, e, i, _t, point, _off = found
        u, _v, coords, _total = _segments_for(self.graph).edges[e]
        # Along the start's own segment to the node it leaves by, then node to node.
        along = list(reversed(coords[: i + 1])) if via == u else list(coords[i + 1 :])
        out = [tuple(a), point, *along]
        pred = self._tree(nb)[1]
        chain = [via]
        while chain[-1] != nb:  # the tree is rooted at b: predecessors lead from via to b
            chain.append(int(pred[chain[-1]]))
        for x, y in zip(chain, chain[1:], strict=False):
            out.extend(self.graph.edge_coords[(x, y)][1:])
        out.append(tuple(b))
        clean = [out[0]]
        for c in out[1:]:
            c = (float(c[0]), float(c[1]))
            if haversine_m(*c, *clean[-1]) > 0.01:
                clean.append(c)
        return clean


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
    # GEOS coordinate access costs microseconds a time: a ticker round reads each entrance once.
    found = getattr(building, "_eta_place", None)
    if found is None:
        found = building._eta_place = (building.lng, building.lat)
    return found


def own_stops(order, now: float, known: dict | None = None) -> list[Stop]:
    """This order's stops still ahead: its pickup (while not picked up) and its drop-off."""
    dropoff = Stop(*_place(order.dropoff_building))
    if order.status != Status.ACCEPTED:
        return [dropoff]
    ready = ready_at(order)
    pickup = Stop(
        *_place(order.pickup_building),
        service_s=handling_seconds(order, known),
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
    key = f"eta-plan:{_ns()}:{rider_id}"
    found = _cache().get(key)
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
    _cache().set(key, plan, PLAN_TTL)
    return plan or None


def estimate(
    order,
    *,
    position: dict | None,
    others=(),
    samples: list | None = None,
    now: datetime | None = None,
    graph=None,
    plan: list | None = None,
    distances: "PathDistances | None" = None,
    known: dict | None = None,
) -> Eta | None:
    """The order's ETA, or None when there is nothing to estimate (no rider yet, over, a queue
    errand whose rider stays at the place). `others`: the rider's other active orders; `known`:
    the cached settings already read (_settings_keys)."""
    from orders.models import Kind

    if order.status not in WITH_RIDER or order.rider_id is None or order.kind == Kind.QUEUE:
        return None
    now_dt = now or datetime.now(UTC)
    now_ts = now_dt.timestamp()
    if distances is None:
        distances = PathDistances(graph if graph is not None else campus_graph(order.campus))

    speed = recent_speed(samples or [])
    source = "recent" if speed is not None else "default"
    if speed is None:
        speed = default_speed(order.campus, known)

    before = None
    if plan:
        before = planned_stops_before(order, plan)
    if before is None:
        before = fifo_stops_before(order, others)
    mine = own_stops(order, now_ts, known)
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

    points = [start] + [(stop.lng, stop.lat) for stop in stops]
    legs = [distances(points[i], points[i + 1]) for i in range(len(stops))]

    def arrive(speed_factor: float, service_factor: float, extra_s: float = 0.0) -> float:
        return extra_s + walk(
            legs,
            stops,
            now=now_ts,
            speed=speed * speed_factor,
            service_factor=service_factor,
            start_delay_s=delay,
        )

    wide = source == "default"
    at = arrive(1.0, 1.0)
    low = arrive(1.4 if wide else 1.25, 0.5)
    # An old position: the rider may be anywhere the time since allowed (capped).
    stale_s = min(age, 600) if age > STALE_POSITION_S else 0.0
    high = arrive(0.6 if wide else 0.75, 1.5, extra_s=stale_s)
    remaining = sum(legs)
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
    """Whether watchers should hear of a new estimate: its time or either end of its range moved
    by PUSH_SHIFT_SECONDS or more (a shift, not a minute boundary crossed, so that an estimate
    hovering around hh:mm:00 does not flap), or the stops before it, the risk to the promise or
    the wait for the merchant changed."""
    if (old is None) != (new is None):
        return True
    if old is None:
        return False
    return (
        any(abs(_ts(new[k]) - _ts(old[k])) >= PUSH_SHIFT_SECONDS for k in ("at", "low", "high"))
        or new["stops_before"] != old["stops_before"]
        or new["risk"] != old["risk"]
        or new["waiting_for"] != old["waiting_for"]
    )


# --- the path still ahead ----------------------------------------------------------------------


def _own_legs(order, position: dict | None) -> list[tuple]:
    """(from, to) legs of the path drawn for this order: from the rider's position (when the
    viewer may see it, else from the pickup) through this order's own stops. Stops for other
    customers are never drawn."""
    pickup, dropoff = _place(order.pickup_building), _place(order.dropoff_building)
    if order.status in (Status.PENDING, Status.OPEN):
        return [(pickup, dropoff)]
    start = (position["lng"], position["lat"]) if position else pickup
    if order.status == Status.ACCEPTED:
        return [(start, pickup), (pickup, dropoff)]
    if order.status in WITH_RIDER:
        return [(start, dropoff)]
    return []


def remaining_route(order, position: dict | None, graph=None, *, distances=None) -> list:
    """The planned path still ahead on the campus graph, [lat, lng] pairs for the map."""
    if distances is None:
        distances = PathDistances(graph if graph is not None else campus_graph(order.campus))
    if len(distances.graph.nodes) == 0:
        return []
    coords: list[tuple[float, float]] = []
    for a, b in _own_legs(order, position):
        part = distances.path(a, b)
        coords.extend(part if not coords else part[1:])
    return [[round(lat, 6), round(lng, 6)] for lng, lat in coords]


def _own_metres(order, position: dict | None, distances) -> float:
    return sum(distances(a, b) for a, b in _own_legs(order, position))


# --- what watchers were last told (cache) ------------------------------------------------------


def _state_key(number: str) -> str:
    return f"eta-state:{_ns()}:{number}"


@dataclass
class Told:
    """The last estimate an order's watchers were given, and where the path they were given
    starts (route_from, None: from the pickup) and how long it was then (route_m)."""

    eta: dict | None
    route_from: tuple[float, float] | None
    route_m: float
    at: float  # POSIX time it was stored

    def as_cache(self) -> dict:
        return {"eta": self.eta, "from": self.route_from, "m": self.route_m, "at": self.at}


def _told(raw) -> Told | None:
    return Told(raw["eta"], raw["from"], raw.get("m", 0.0), raw["at"]) if raw else None


def off_the_drawn_path(told: Told | None, origin: dict | None, own_m: float) -> bool:
    """Whether watchers need a new path: they have none from the rider yet, or the rider left the
    one they have. Along it, the page trims the path itself (static/tracking/order_live.js); the
    rider has left it when the path still ahead is longer than the drawn one less the straight
    distance covered since (plus ROUTE_SLACK_M for GPS noise)."""
    if origin is None:
        return False
    here = (origin["lng"], origin["lat"])
    if told is None or told.route_from is None:
        return True
    moved = haversine_m(*told.route_from, *here)
    if moved < ROUTE_MOVE_M:
        return False
    return own_m > told.route_m - moved + ROUTE_SLACK_M


_TICK_FIELDS = (
    "id",
    "number",
    "campus_id",
    "customer_id",
    "rider_id",
    "kind",
    "status",
    "confidential",
    "pickup_building_id",
    "dropoff_building_id",
    "promised_at",
    "accepted_at",
    "created_at",
)


def _rider_orders(rider_id: int):
    from orders.models import Order

    return (
        Order.objects.filter(rider_id=rider_id, status__in=WITH_RIDER)
        .only(*_TICK_FIELDS)
        .order_by("pk")
    )


# Read by every order socket's snapshot (a crowd of them after a deploy): compiled once.
_rider_orders_read = Compiled(_rider_orders, int)


def _others_of(rider_id: int) -> list:
    """The rider's orders with her (the stops before the one estimated, itself included), with
    their buildings from the memo: the estimate reads only their entrances."""
    from campus.selectors import building_remembered

    rows = _rider_orders_read.all(rider_id)
    for other in rows:
        other.pickup_building = building_remembered(other.pickup_building_id)
        other.dropoff_building = building_remembered(other.dropoff_building_id)
    return rows


def _attach_buildings(orders) -> None:
    """Load the orders' pickup and drop-off buildings once (entrances only) and attach them."""
    from campus.models import Building

    ids = {o.pickup_building_id for o in orders} | {o.dropoff_building_id for o in orders}
    found = {b.pk: b for b in Building.objects.filter(pk__in=ids).only("id", "entrance")}
    for order in orders:
        order.pickup_building = found[order.pickup_building_id]
        order.dropoff_building = found[order.dropoff_building_id]


def positions_of(rider_ids) -> dict[int, dict]:
    """The live positions of these riders (tracking.live's batch read when it has one)."""
    many = getattr(live, "positions_get", None)
    if many is not None:
        return {r: p for r, p in many(list(rider_ids)).items() if p}
    found = {r: live.position_get(r) for r in rider_ids}
    return {r: p for r, p in found.items() if p}


_positions = positions_of


def _visible_position(order, position):
    from tracking.privacy import customer_visible_statuses

    return position if order.status in customer_visible_statuses(order.campus) else None


@dataclass
class SnapshotReads:
    """What an order's snapshot needs from the cache, read in one round trip (snapshot_reads):
    the rider's live position, the estimate last told, the rider's speed samples and the
    settings estimating reads."""

    position: dict | None = None
    told: "Told | None" = None
    samples: list | None = None
    known: dict | None = None


def snapshot_reads(order) -> SnapshotReads:
    if order.rider_id is None:
        return SnapshotReads()
    rider = order.rider_id
    keys = [live.position_key(rider)]
    if order.status in WITH_RIDER:
        keys += [_state_key(order.number), _samples_key(rider), *_settings_keys([order])]
    found = _cache().get_many(keys)
    return SnapshotReads(
        position=live.position_in(found, rider),
        told=_told(found.get(_state_key(order.number))),
        samples=found.get(_samples_key(rider)) or [],
        known=found,
    )


def eta_for_snapshot(order, reads: SnapshotReads, *, distances=None) -> dict | None:
    """The estimate a watcher joining now is given: the one last told if it is fresh, else a new
    one (then stored as told, so that the ticker pushes changes relative to it). `reads`: from
    snapshot_reads(order)."""
    if order.status not in WITH_RIDER or order.rider_id is None:
        return None
    told, position = reads.told, reads.position
    now = datetime.now(UTC)
    if told is not None and now.timestamp() - told.at < FRESH_SECONDS:
        return told.eta
    if distances is None:
        distances = PathDistances(campus_graph(order.campus))
    store: dict = {}
    samples = speed_observe(order.rider_id, position, reads.samples, store=store)
    others = _others_of(order.rider_id)
    plan = rider_plan(order.rider_id) if len(others) > 1 else None
    found = estimate(
        order,
        position=position,
        others=others,
        samples=samples,
        now=now,
        plan=plan,
        distances=distances,
        known=reads.known,
    )
    payload = found.payload() if found else None
    if told is not None and not changed_meaningfully(told.eta, payload):
        payload = told.eta  # keep what watchers were told: the ticker measures drift from it
    # A joining page draws the path from the snapshot: that is now the path watchers have.
    origin = _visible_position(order, position)
    route_from = (origin["lng"], origin["lat"]) if origin else None
    state = Told(payload, route_from, _own_metres(order, origin, distances), now.timestamp())
    store[_state_key(order.number)] = state.as_cache()
    _cache().set_many(store, STORE_TTL)
    return payload


def tick(numbers, *, now: datetime | None = None) -> list[tuple[str, dict]]:
    """Estimate every watched order with a rider; return (number, layer message) for those whose
    watchers should hear of it: a meaningful change, or the rider left the path drawn for them."""
    from orders.models import Order

    now = now or datetime.now(UTC)
    watched = set(numbers)
    # One query for the watched orders and every other active order of their riders (the stops
    # before them), without the geometry columns nobody here reads; one for their buildings.
    riders_q = Order.objects.filter(number__in=list(watched), status__in=WITH_RIDER).values(
        "rider_id"
    )
    rows = []
    query = (
        Order.objects.filter(status__in=WITH_RIDER, rider_id__in=riders_q)
        .select_related("campus")
        .only(*_TICK_FIELDS, "campus__id", "campus__tracking_visible_from")
        .order_by("pk")
    )
    # The round runs beside the sockets' event loop: it lets the loop in every few milliseconds
    # of its work (tracking.threads.yield_to_loop), here between chunks of rows.
    for row in query.iterator(chunk_size=YIELD_EVERY):
        rows.append(row)
        if len(rows) % YIELD_EVERY == 0:
            yield_to_loop()
    _attach_buildings(rows)
    yield_to_loop()
    orders = [o for o in rows if o.number in watched]
    if not orders:
        return []
    riders = {o.rider_id for o in orders}
    others: dict[int, list] = {r: [] for r in riders}
    for row in rows:
        others[row.rider_id].append(row)
    positions = _positions(riders)
    # The riders' speed samples, the estimates last told and the settings: one round trip.
    found_cached = _cache().get_many(
        [_samples_key(r) for r in riders]
        + [_state_key(o.number) for o in orders]
        + _settings_keys(orders)
    )
    store: dict[str, object] = {}  # and one to write the samples and estimates back
    samples = {
        r: speed_observe(r, positions.get(r), found_cached.get(_samples_key(r)) or [], store=store)
        for r in riders
    }
    trees: dict[int, PathDistances] = {}  # per campus, shared by the whole round
    out: list[tuple[str, dict]] = []
    for done, order in enumerate(orders):
        if done % YIELD_EVERY == 0:
            yield_to_loop()
        distances = trees.get(order.campus_id)
        if distances is None:
            distances = trees[order.campus_id] = PathDistances(campus_graph(order.campus))
        rider = order.rider_id
        mine = others.get(rider, [])
        position = positions.get(rider)
        try:
            found = estimate(
                order,
                position=position,
                others=mine,
                samples=samples.get(rider),
                now=now,
                plan=rider_plan(rider) if len(mine) > 1 else None,
                distances=distances,
                known=found_cached,
            )
        except Exception:
            logger.exception("eta: could not estimate order %s", order.number)
            continue
        payload = found.payload() if found else None
        told = _told(found_cached.get(_state_key(order.number)))
        origin = _visible_position(order, position)
        own_m = _own_metres(order, origin, distances) if origin else 0.0
        redraw = off_the_drawn_path(told, origin, own_m)
        eta_changed = told is None or changed_meaningfully(told.eta, payload)
        if not eta_changed and not redraw:
            continue
        route = remaining_route(order, origin, distances=distances) if redraw else None
        eta_out = payload if eta_changed else told.eta
        out.append((order.number, broadcast.eta_message(order.number, eta_out, route)))
        if redraw:
            route_from, route_m = (origin["lng"], origin["lat"]), own_m
        else:
            route_from = told.route_from if told else None
            route_m = told.route_m if told else 0.0
        store[_state_key(order.number)] = Told(
            eta_out, route_from, route_m, now.timestamp()
        ).as_cache()
    if store:
        _cache().set_many(store, STORE_TTL)
    return out


# --- the ticker of a socket server process -----------------------------------------------------

# Orders watched, per event loop: a loop's ticker estimates only for its own sockets (a test
# process may run a real server's loop beside the test client's loops; see the e2e tests).
_watched: dict[asyncio.AbstractEventLoop | None, Counter] = {}
_started_loops: weakref.WeakSet = weakref.WeakSet()
_tasks: list = []
_executor: ThreadPoolExecutor | None = None


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def watch(number: str) -> None:
    _watched.setdefault(_current_loop(), Counter())[number] += 1


def unwatch(number: str) -> None:
    loop = _current_loop()
    counts = _watched.get(loop)
    if counts is None:
        return
    counts[number] -= 1
    if counts[number] <= 0:
        del counts[number]
    if not counts:
        del _watched[loop]


def watched() -> list[str]:
    """The orders watched by sockets on the running loop."""
    return list(_watched.get(_current_loop(), ()))


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


_pause = asyncio.sleep  # between a round's batches of pushes (tests replace it)


async def _push_paced(layer, messages) -> None:
    for start in range(0, len(messages), PUSH_BATCH):
        if start:
            await _pause(PUSH_PAUSE_S)
        await asyncio.gather(
            *(
                broadcast.push(layer, [broadcast.order_group(number)], message)
                for number, message in messages[start : start + PUSH_BATCH]
            )
        )


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
            await _push_paced(layer, messages)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep ticking: the next round may well work
            logger.exception("eta: ticker round failed")
