"""A campus day, simulated through the real services (``manage.py simulate_day``).

Customers place orders with ``orders.services.order_create`` (paid from wallets funded by a
promotional grant, as the demo seed does); simulated riders move along the campus path graph on
a simulated clock, post their live positions (``tracking.live``) and press the same buttons
through the same functions as the rider app (``order_accept`` / ``offer_accept``,
``order_transition`` to picked up, delivering and delivered with the customer's code); the
dispatcher cycle (``dispatch.services.dispatch_cycle``) runs on the simulated clock. Riders
come and go by the hour (``RIDERS_PER_HOUR``, through the rider's own online switch) unless a
fixed number is given.

The clock: ``django.utils.timezone.now`` is patched to the simulated time for the run, so every
timestamp the services write (created, accepted, delivered, promised) is simulated time.

Each run happens inside a transaction that is rolled back at the end: nothing stays in the
database (live positions written to the cache are cleared too). Run it on a throwaway database
if you want to look at the orders afterwards (``--keep``).

Policies (the same seeded demand for all):
- ``grab``: nearest-rider first-come grab: each open order, oldest first, is taken by the
  nearest idle eligible rider within reach (one order at a time, the classic baseline);
- ``auto``: the dispatcher offers orders (min-cost matching), one order per rider at a time;
- ``auto-batch``: the dispatcher with batching (up to the campus capacity, 3 matching rounds),
  riders follow the planned stop order (``dispatch.selectors.rider_route``).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings as django_settings
from django.db import connection, transaction

from campus.geo import haversine_m
from campus.graph import campus_graph
from campus.models import Building, Campus

POLICIES = ("grab", "auto", "auto-batch")

# Orders per hour on the demo campus (about 8,000 students): lunch and dinner peaks, the
# evening parcel peak. Scaled by SimConfig.demand_scale.
DEMAND_PER_HOUR = {
    7: 12, 8: 18, 9: 12, 10: 20, 11: 90, 12: 110, 13: 40, 14: 16, 15: 16, 16: 24,
    17: 80, 18: 95, 19: 45, 20: 60, 21: 70, 22: 30,
}  # fmt: skip
# Riders online per hour (before scaling).
RIDERS_PER_HOUR = {
    7: 4, 8: 5, 9: 5, 10: 8, 11: 14, 12: 14, 13: 10, 14: 6, 15: 6, 16: 8,
    17: 14, 18: 14, 19: 10, 20: 12, 21: 12, 22: 8,
}  # fmt: skip
MEAL_HOURS = {10, 11, 12, 13, 16, 17, 18, 19}
PARCEL_HOURS = {20, 21, 22}

SERVICE_S = 60.0  # at each stop: finding the counter, the hand-over
SIM_DAY = datetime(2026, 9, 14, tzinfo=UTC)  # a Monday in term (Beijing time = UTC+8)
BEIJING = timedelta(hours=8)


@dataclass
class SimConfig:
    campus: str = "demo"
    seed: int = 1
    start_hour: int = 11  # Beijing time
    end_hour: int = 13  # exclusive: orders are placed in [start, end)
    policy: str = "auto-batch"
    riders: int | None = None  # fixed number online; default: the hourly profile (shifts)
    female_rider_share: float = 0.4
    female_dorm_share: float | None = None  # None: drop-offs by the building mix
    demand_scale: float = 1.0
    step_s: int = 10
    drain_minutes: int = 60  # after the last order, riders finish what they carry
    expire_after_minutes: int = 30  # an order nobody took this long after its promise expires
    promise_minutes: int | None = None
    minutes: int | None = None  # a short run: this many minutes instead of the hours
    stations: bool = True  # False: the campus's transfer stations are removed for the run
    progress: bool = True


@dataclass
class Kpis:
    policy: str
    orders: int = 0
    delivered: int = 0
    expired: int = 0
    undelivered: int = 0
    avg_click_to_door_min: float = 0.0
    p90_click_to_door_min: float = 0.0
    # Where the click-to-door time goes (delivered orders; the three add up to the average):
    # waiting for a rider to take it (offer and answer, or grab), riding to the pickup, and from
    # the pickup to the door (service at the counter, other stops on the way, relays).
    avg_to_accept_min: float = 0.0
    avg_to_pickup_min: float = 0.0
    avg_pickup_to_door_min: float = 0.0
    on_time_rate: float = 0.0
    orders_per_rider_hour: float = 0.0
    distance_per_order_m: float = 0.0
    relayed_share: float = 0.0
    riders: int = 0
    rider_hours: float = 0.0
    wall_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Demand:
    at_s: float  # seconds after the start
    pickup: str
    dropoff: str
    customer: int


@dataclass
class SimRider:
    user: object
    position: tuple[float, float]
    path: list[tuple[float, float]] = field(default_factory=list)
    cum: list[float] = field(default_factory=list)  # cumulative metres along path
    walked: float = 0.0  # along the current path
    target: tuple[int, str] | None = None  # (order id, "pickup" | "delivery")
    busy_until: float = 0.0  # at a stop
    distance_m: float = 0.0
    speed: float = 4.0
    replan: bool = True
    online: bool = True
    leaving: bool = False  # their shift is over: they go offline once they carry nothing
    online_s: float = 0.0  # seconds online, for orders per rider-hour


class _Rollback(Exception):
    pass


class SimClock:
    def __init__(self, start: datetime):
        self.t = start

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@contextmanager
def simulated_time(clock: SimClock):
    """Every ``timezone.now()`` in the services reads the simulated clock."""
    with mock.patch("django.utils.timezone.now", clock.now):
        yield


# --- demand --------------------------------------------------------------------------------------


def _hours(config: SimConfig) -> list[int]:
    return list(range(config.start_hour, config.end_hour))


def duration_s(config: SimConfig) -> float:
    if config.minutes:
        return config.minutes * 60.0
    return 3600.0 * len(_hours(config))


def demand_generate(config: SimConfig, buildings: dict[str, Building]) -> list[Demand]:
    """The seeded order stream: Poisson arrivals at the hourly rate, pickups by the hour (meals
    from canteens and shops, parcels from the parcel station in the evening), drop-offs at dorms
    (and teaching buildings at lunch). Independent of the policy."""
    rng = random.Random(config.seed)
    codes = set(buildings)
    canteens = sorted(c for c in codes if buildings[c].kind == "canteen")
    shops = sorted(c for c in codes if buildings[c].kind == "shop")
    parcels = sorted(c for c in codes if buildings[c].kind == "parcel_station")
    dorms = sorted(c for c in codes if buildings[c].kind == "dorm")
    female = [c for c in dorms if buildings[c].gender_rule == "female_only"]
    others = [c for c in dorms if c not in female]
    teaching = sorted(c for c in codes if buildings[c].kind in ("teaching", "library"))
    out: list[Demand] = []
    total = duration_s(config)
    t = 0.0
    while True:
        hour = config.start_hour + int(t // 3600)
        rate = DEMAND_PER_HOUR.get(hour % 24, 10) * config.demand_scale / 3600.0
        t += rng.expovariate(rate) if rate > 0 else 3600
        if t >= total:
            break
        hour = config.start_hour + int(t // 3600)
        if hour in PARCEL_HOURS:
            pickup = rng.choice(parcels) if rng.random() < 0.7 else rng.choice(shops)
        elif hour in MEAL_HOURS:
            pickup = rng.choice(canteens) if rng.random() < 0.75 else rng.choice(shops)
        else:
            pickup = rng.choice(shops + parcels + canteens)
        if config.female_dorm_share is not None:
            dropoff = rng.choice(female if rng.random() < config.female_dorm_share else others)
        elif hour in (11, 12) and rng.random() < 0.2:
            dropoff = rng.choice(teaching)
        else:
            dropoff = rng.choice(dorms)
        out.append(Demand(at_s=t, pickup=pickup, dropoff=dropoff, customer=rng.randrange(60)))
    return out


# --- the engine ----------------------------------------------------------------------------------


class SimDay:
    def __init__(self, config: SimConfig, *, log=None):
        if config.policy not in POLICIES:
            raise ValueError(f"unknown policy {config.policy!r}: one of {', '.join(POLICIES)}")
        self.config = config
        self.log = log or (lambda s: None)
        self.rng = random.Random(config.seed * 7919 + 1)

    # setup ------
    def _campus(self) -> Campus:
        campus = Campus.objects.filter(slug=self.config.campus).first()
        if campus is None:
            from campus.services import campus_load_geojson

            campus = campus_load_geojson(path=Path(django_settings.DEMO_CAMPUS_FILE))
        return campus

    def _setup(self):
        from accounts.models import User
        from dispatch.models import CampusDispatchSettings, Mode
        from payments import services as payments
        from riders.models import RiderProfile

        config = self.config
        campus = self._campus()
        batch = config.policy == "auto-batch"
        mode = Mode.GRAB if config.policy == "grab" else Mode.AUTO
        defaults = {"mode": mode, "rider_capacity": 3 if batch or mode == Mode.GRAB else 1}
        if config.promise_minutes:
            defaults["promise_minutes"] = config.promise_minutes
        settings, _ = CampusDispatchSettings.objects.update_or_create(
            campus=campus, defaults=defaults
        )
        campus.dispatch_settings = settings
        self.campus, self.settings = campus, settings
        if not config.stations:
            from campus.models import TransferStation

            TransferStation.objects.filter(campus=campus).delete()  # rolled back at the end
        self.buildings = {b.code: b for b in Building.objects.filter(campus=campus)}
        self.graph = campus_graph(campus)
        from dispatch.matrix import campus_matrix

        self.matrix = campus_matrix(campus)

        tag = f"sim{config.seed}"
        self.customers = []
        for i in range(60):
            user = User.objects.create_user(
                username=f"{tag}-c{i}", password=None, gender="female" if i % 2 else "male"
            )
            payments.wallet_grant(user=user, amount_fen=1_000_000, reference=f"{tag}:c{i}")
            self.customers.append(user)
        share = config.female_rider_share
        if self.shifts:
            # Riders come and go by the hour (RIDERS_PER_HOUR): the first n of the roster are
            # online at an hour that wants n, and every prefix of the roster has the female share.
            n = max(self._riders_wanted(h) for h in _hours(config))
            female = [round((i + 1) * share) > round(i * share) for i in range(n)]
        else:
            n = config.riders or RIDERS_PER_HOUR.get(config.start_hour, 8)
            female = [i < round(n * share) for i in range(n)]
        online = self._riders_wanted(config.start_hour)
        rng = random.Random(config.seed)
        starts = sorted(self.buildings)
        self.riders: dict[int, SimRider] = {}
        from dispatch.selectors import rider_speed

        for i in range(n):
            gender = "female" if female[i] else "male"
            user = User.objects.create_user(username=f"{tag}-r{i}", password=None, gender=gender)
            profile = RiderProfile.objects.create(
                user=user, campus=campus, verified=True, online=i < online
            )
            where = self.buildings[rng.choice(starts)]
            rider = SimRider(
                user=user,
                position=(where.lng, where.lat),
                speed=rider_speed(profile, settings),
                online=i < online,
            )
            self.riders[user.pk] = rider
        self.demand = demand_generate(config, self.buildings)

    @property
    def shifts(self) -> bool:
        """Riders by the hourly profile (no fixed --riders, a run over hours that want
        different numbers)."""
        config = self.config
        wanted = {RIDERS_PER_HOUR.get(h, 8) for h in _hours(config)}
        return config.riders is None and not config.minutes and len(wanted) > 1

    def _riders_wanted(self, hour: int) -> int:
        return self.config.riders or RIDERS_PER_HOUR.get(hour, 8)

    def _roster(self, t: float, total: float) -> None:
        """Shifts: at each hour the first n riders of the roster are online; the others finish
        what they carry (and answer no new offers), then switch off through the rider's own
        service. During the drain the last hour's riders stay."""
        from riders import services as riders

        hours = _hours(self.config)
        hour = hours[min(int(t // 3600), len(hours) - 1)] if t < total else hours[-1]
        wanted = self._riders_wanted(hour)
        for i, rider in enumerate(self.riders.values()):
            # The services read the rider's profile from the user object the simulated phone
            # holds: it gets the profile as the switch left it.
            if i < wanted:
                rider.leaving = False
                if not rider.online:
                    rider.user.rider_profile = riders.rider_set_online(user=rider.user, online=True)
                    rider.online, rider.replan = True, True
            elif rider.online:
                rider.leaving = True
                if not self._carrying(rider) and not self._leg2_of(rider):
                    rider.user.rider_profile = riders.rider_set_online(
                        user=rider.user, online=False
                    )
                    rider.online, rider.target, rider.path = False, None, []

    def _leg2_of(self, rider: SimRider) -> bool:
        from dispatch.models import RelayLeg
        from orders.status import Status

        return RelayLeg.objects.filter(
            number=2,
            rider=rider.user,
            order__status__in=[Status.ACCEPTED, Status.PICKED_UP, Status.AT_STATION],
        ).exists()

    # helpers ------
    def _post_position(self, rider: SimRider) -> None:
        from tracking import live

        lng, lat = rider.position
        live.position_set(
            rider.user.pk,
            {
                "rider": rider.user.pk,
                "lat": lat,
                "lng": lng,
                "accuracy": 5.0,
                "recorded_at": self.clock.now().isoformat(),
            },
            at=self.clock.now().timestamp(),
        )

    def _set_path(self, rider: SimRider, place: tuple[float, float]) -> None:
        route = self.graph.route(rider.position, place)
        coords = route.coords
        cum = [0.0]
        for a, b in zip(coords, coords[1:], strict=False):
            cum.append(cum[-1] + haversine_m(*a, *b))
        rider.path, rider.cum, rider.walked = coords, cum, 0.0

    def _move(self, rider: SimRider, seconds: float) -> bool:
        """Walk along the path; True on arrival."""
        if not rider.path:
            return True
        total = rider.cum[-1]
        step = min(rider.speed * seconds, total - rider.walked)
        rider.walked += step
        rider.distance_m += step
        if rider.walked >= total - 1e-6:
            rider.position = rider.path[-1]
            rider.path = []
            return True
        i = max(0, next(k for k, c in enumerate(rider.cum) if c >= rider.walked) - 1)
        a, b = rider.path[i], rider.path[i + 1]
        seg = rider.cum[i + 1] - rider.cum[i]
        f = (rider.walked - rider.cum[i]) / seg if seg else 1.0
        rider.position = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
        return False

    def _orders_of(self, rider: SimRider):
        from orders.models import Order
        from orders.status import WITH_RIDER

        return list(
            Order.objects.filter(rider=rider.user, status__in=WITH_RIDER)
            .select_related("pickup_building", "dropoff_building")
            .order_by("accepted_at", "pk")
        )

    def _relay_leg1(self, rider: SimRider, order) -> bool:
        """This rider carries the order only to the transfer station (a planned relay)."""
        if order.dropoff_building.admits(rider.user.gender):
            return False
        return order.relay_legs.exists()

    def _next_stop(self, rider: SimRider):
        """(order, kind) the rider heads for next: a relay hand-over first, then the planned stop
        order when batching, the order taken first otherwise. Kinds: pickup, delivery, station1
        (leg 1 to the station), wait (leg 1 at the station), station2 (leg 2 at the station)."""
        from dispatch.models import RelayLeg
        from orders.status import Status

        legs = RelayLeg.objects.filter(
            number=2,
            rider=rider.user,
            order__status__in=[Status.ACCEPTED, Status.PICKED_UP, Status.AT_STATION],
        ).select_related("order__pickup_building", "order__dropoff_building")
        # The hand-overs waiting at a station first.
        leg2 = min(
            legs,
            key=lambda leg: (leg.order.status != Status.AT_STATION, leg.order_id),
            default=None,
        )
        if leg2 is not None:
            return leg2.order, "station2"
        orders = self._orders_of(rider)
        if not orders:
            return None
        for order in orders:
            if order.status == Status.AT_STATION:
                return order, "wait"
        if self.config.policy == "auto-batch" and len(orders) > 1:
            from dispatch.selectors import rider_route

            route = rider_route(rider.user, now=self.clock.now())
            if route.stops:
                stop = route.stops[0]
                order, kind = stop.order, stop.kind
                if kind == "delivery" and self._relay_leg1(rider, order):
                    kind = "station1"
                return order, kind
        order = orders[0]
        if order.status == Status.ACCEPTED:
            return order, "pickup"
        return order, ("station1" if self._relay_leg1(rider, order) else "delivery")

    def _place(self, order, kind: str) -> tuple[float, float]:
        if kind == "pickup":
            return (order.pickup_building.lng, order.pickup_building.lat)
        if kind in ("station1", "station2", "wait"):
            station = order.relay_legs.select_related("station").first().station
            return (station.location.x, station.location.y)
        return (order.dropoff_building.lng, order.dropoff_building.lat)

    def _arrive(self, rider: SimRider, order, kind: str) -> bool:
        """The rider's button at the stop; False while they wait there (a hand-over)."""
        from dispatch import relay
        from orders import services as order_services
        from orders.errors import OrderError
        from orders.status import Status

        now = self.clock.now()
        try:
            if kind == "pickup":
                order = order_services.order_transition(
                    order=order, to=Status.PICKED_UP, actor=rider.user, code=order.pickup_code
                )
                if not self._relay_leg1(rider, order):
                    order_services.order_transition(
                        order=order, to=Status.DELIVERING, actor=rider.user
                    )
            elif kind == "station1":
                relay.relay_arrive(order=order, rider=rider.user, now=now)
                # Everything else this rider carries for the same station is left there too.
                station_id = order.relay_legs.first().station_id
                for other in self._orders_of(rider):
                    if (
                        other.pk != order.pk
                        and other.status == Status.PICKED_UP
                        and self._relay_leg1(rider, other)
                        and other.relay_legs.first().station_id == station_id
                    ):
                        relay.relay_arrive(order=other, rider=rider.user, now=now)
                return False  # waits for leg 2's rider
            elif kind == "wait":
                return order.status != Status.AT_STATION
            elif kind == "station2":
                if order.status != Status.AT_STATION:
                    return False  # leg 1 not there yet
                leg1, leg2 = relay.relay_legs(order)
                relay.handoff_confirm(
                    order=order, rider=rider.user, code=leg1.handoff_code, now=now
                )
                order = relay.handoff_confirm(
                    order=order, rider=leg1.rider, code=leg2.handoff_code, now=now
                )
                order_services.order_transition(order=order, to=Status.DELIVERING, actor=rider.user)
                self.riders[leg1.rider_id].replan = True
            else:
                order_services.order_transition(
                    order=order, to=Status.DELIVERED, actor=rider.user, code=order.delivery_code
                )
        except OrderError as exc:
            self.errors.append(f"{order.number} {kind}: {exc}")
        return True

    # policies ------
    def _grab(self) -> None:
        """Nearest idle eligible rider within reach takes each open order, oldest first."""
        from orders import rules
        from orders import services as order_services
        from orders.errors import OrderError
        from orders.models import Order
        from orders.status import Status

        idle = [
            r
            for r in self.riders.values()
            if r.online and not r.leaving and r.target is None and not self._carrying(r)
        ]
        if not idle:
            return
        reach = self.settings.reach_m
        for order in (
            Order.objects.filter(campus=self.campus, status=Status.OPEN)
            .select_related("pickup_building", "dropoff_building")
            .order_by("created_at", "pk")
        ):
            if not idle:
                break
            node, _ = self.matrix.locate(order.pickup_building.lng, order.pickup_building.lat)
            best, best_d = None, math.inf
            for r in idle:
                if rules.pool_refusal(
                    r.user.gender, order.required_gender, order.dropoff_building.gender_rule
                ):
                    continue
                here, off = self.matrix.locate(*r.position)
                d = float(self.matrix.distances[here, node]) + off
                if d <= reach and d < best_d:
                    best, best_d = r, d
            if best is None:
                continue
            try:
                order_services.order_accept(order=order, rider=best.user)
            except OrderError as exc:
                self.errors.append(f"grab {order.number}: {exc}")
                continue
            idle.remove(best)
            best.replan = True

    def _carrying(self, rider: SimRider) -> bool:
        return bool(self._orders_of(rider))

    def _answer_offers(self) -> None:
        from dispatch import services as dispatch
        from dispatch.models import Offer
        from orders.errors import OrderError

        for offer in Offer.objects.pending().filter(campus=self.campus).select_related("rider"):
            rider = self.riders.get(offer.rider_id)
            if rider is None:
                continue
            try:
                if rider.leaving:
                    dispatch.offer_decline(
                        offer=offer, rider=rider.user, now=self.clock.now(), reason="shift over"
                    )
                    continue
                dispatch.offer_accept(offer=offer, rider=rider.user, now=self.clock.now())
            except OrderError as exc:
                self.errors.append(f"offer {offer.pk}: {exc}")
            rider.replan = True

    def _expire_stale(self) -> None:
        from orders import services as order_services
        from orders.models import Order
        from orders.status import Status

        limit = self.clock.now() - timedelta(minutes=self.config.expire_after_minutes)
        for order in Order.objects.filter(
            campus=self.campus, status=Status.OPEN, promised_at__lt=limit
        ):
            order_services.order_transition(
                order=order, to=Status.EXPIRED, actor=None, note="simulated: nobody took it"
            )

    # the loop ------
    def _run(self) -> Kpis:
        from dispatch import services as dispatch
        from orders import services as order_services
        from orders.models import Kind

        config = self.config
        began = time.perf_counter()
        self._setup()
        for rider in self.riders.values():
            if rider.online:
                self._post_position(rider)
        total = duration_s(config)
        end = total + config.drain_minutes * 60
        pending = list(self.demand)
        self.orders: list[int] = []
        step = float(config.step_s)
        t = 0.0
        next_cycle = 0.0
        auto = config.policy != "grab"
        bar = _Progress(end, enabled=config.progress)
        while t < end:
            while pending and pending[0].at_s <= t:
                d = pending.pop(0)
                order = order_services.order_create(
                    customer=self.customers[d.customer],
                    kind=Kind.DOCUMENT
                    if self.buildings[d.pickup].kind == "parcel_station"
                    else Kind.CUSTOM,
                    pickup_building=self.buildings[d.pickup],
                    dropoff_building=self.buildings[d.dropoff],
                    description="simulated",
                    details={"offered_price_fen": 600},
                )
                self.orders.append(order.pk)
            if auto:
                self._answer_offers()
                if t >= next_cycle:
                    dispatch.dispatch_cycle(campus=self.campus, now=self.clock.now())
                    next_cycle = t + self.settings.cycle_seconds
            else:
                self._grab()
            for rider in self.riders.values():
                if rider.online:
                    rider.online_s += step
                    self._ride(rider, t, step)
            if int(t) % 60 == 0:
                self._expire_stale()
                if self.shifts:
                    self._roster(t, total)
            if t >= total and not pending and not self._anything_active():
                break
            # The day is one transaction that never commits while it runs: the services'
            # after-commit work (socket pushes, credit refreshes) would never run, yet pile up,
            # and Django scans that pile at every rolled-back savepoint (most of a day's time).
            connection.run_on_commit.clear()
            t += step
            self.clock.advance(step)
            bar.update(t)
        bar.done()
        kpis = self._kpis()
        kpis.wall_seconds = round(time.perf_counter() - began, 1)
        return kpis

    def _anything_active(self) -> bool:
        from orders.models import Order
        from orders.status import ACTIVE

        return Order.objects.filter(pk__in=self.orders, status__in=ACTIVE).exists()

    def _ride(self, rider: SimRider, t: float, step: float) -> None:
        # The phone sends a fix every step, moving or not (dispatch reassigns silent riders).
        self._post_position(rider)
        if t < rider.busy_until:
            return
        if rider.target is None or rider.replan:
            rider.replan = False
            nxt = self._next_stop(rider)
            if nxt is None:
                rider.target = None
                return
            order, kind = nxt
            if rider.target != (order.pk, kind):
                rider.target = (order.pk, kind)
                self._set_path(rider, self._place(order, kind))
        arrived = self._move(rider, step)
        if arrived:
            from orders.models import Order

            order = Order.objects.select_related("pickup_building", "dropoff_building").get(
                pk=rider.target[0]
            )
            if self._arrive(rider, order, rider.target[1]):
                rider.busy_until = t + SERVICE_S
                rider.target = None
            rider.replan = True

    def _kpis(self) -> Kpis:
        from orders.models import Order
        from orders.status import Status

        orders = list(Order.objects.filter(pk__in=self.orders))
        delivered = [o for o in orders if o.delivered_at]
        minutes = sorted((o.delivered_at - o.created_at).total_seconds() / 60 for o in delivered)
        on_time = sum(1 for o in delivered if o.delivered_at <= o.promised_at)
        rider_hours = sum(r.online_s for r in self.riders.values()) / 3600.0
        from orders.models import OrderEvent

        relayed = (
            OrderEvent.objects.filter(order__in=self.orders, new_status=Status.AT_STATION)
            .values("order")
            .distinct()
            .count()
        )
        label = self.config.policy + ("" if self.config.stations else " (no stations)")
        k = Kpis(policy=label, orders=len(orders), riders=len(self.riders))
        k.delivered = len(delivered)
        k.expired = sum(1 for o in orders if o.status == Status.EXPIRED)
        k.undelivered = len(orders) - k.delivered - k.expired
        if minutes:
            k.avg_click_to_door_min = round(sum(minutes) / len(minutes), 2)
            k.p90_click_to_door_min = round(_percentile(minutes, 0.9), 2)
            stages = [
                (o.created_at, o.accepted_at or o.created_at, o.picked_up_at, o.delivered_at)
                for o in delivered
            ]
            stages = [(c, a, p or a, d) for c, a, p, d in stages]

            def mean_min(pairs) -> float:
                return round(sum((b - a).total_seconds() for a, b in pairs) / 60 / len(pairs), 2)

            k.avg_to_accept_min = mean_min([(c, a) for c, a, _p, _d in stages])
            k.avg_to_pickup_min = mean_min([(a, p) for _c, a, p, _d in stages])
            k.avg_pickup_to_door_min = mean_min([(p, d) for _c, _a, p, d in stages])
        k.on_time_rate = round(on_time / len(orders), 4) if orders else 0.0
        k.rider_hours = round(rider_hours, 2)
        k.orders_per_rider_hour = round(k.delivered / rider_hours, 2) if rider_hours else 0.0
        distance = sum(r.distance_m for r in self.riders.values())
        k.distance_per_order_m = round(distance / k.delivered) if k.delivered else 0.0
        k.relayed_share = round(relayed / len(orders), 4) if orders else 0.0
        return k

    def run(self, *, keep: bool = False) -> Kpis:
        from tracking import live

        start = SIM_DAY + timedelta(hours=self.config.start_hour) - BEIJING
        self.clock = SimClock(start)
        self.errors: list[str] = []
        self.riders = {}
        result: Kpis | None = None
        try:
            with simulated_time(self.clock), transaction.atomic():
                result = self._run()
                if not keep:
                    raise _Rollback
        except _Rollback:
            pass
        finally:
            for rider_id in self.riders:
                live.position_clear(rider_id)
        return result


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class _Progress:
    """A plain textual progress bar on stderr."""

    def __init__(self, total: float, *, enabled: bool, width: int = 30):
        self.total, self.enabled, self.width = total, enabled, width
        self.last = -1

    def update(self, value: float) -> None:
        if not self.enabled:
            return
        pct = min(100, int(100 * value / self.total))
        if pct == self.last:
            return
        self.last = pct
        filled = self.width * pct // 100
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}%")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# --- reports -------------------------------------------------------------------------------------

COLUMNS = [
    ("policy", "policy"),
    ("orders", "orders"),
    ("delivered", "delivered"),
    ("expired", "expired"),
    ("avg_click_to_door_min", "avg min"),
    ("p90_click_to_door_min", "p90 min"),
    ("avg_to_accept_min", "to accept"),
    ("avg_to_pickup_min", "to pickup"),
    ("avg_pickup_to_door_min", "pickup to door"),
    ("on_time_rate", "on time"),
    ("orders_per_rider_hour", "orders/rider-h"),
    ("distance_per_order_m", "m/order"),
    ("relayed_share", "relayed"),
]


def markdown_table(rows: list[Kpis]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for k in rows:
        d = k.as_dict()
        cells = []
        for key, _ in COLUMNS:
            v = d[key]
            if key in ("on_time_rate", "relayed_share"):
                v = f"{100 * v:.1f}%"
            cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def svg_bar_chart(rows: list[Kpis], *, title: str) -> str:
    """A small hand-drawn SVG: average and p90 click-to-door minutes per policy."""
    width, height, left, bottom, top = 560, 300, 50, 60, 40
    plot_h = height - bottom - top
    vmax = max([k.p90_click_to_door_min for k in rows] + [1.0])
    vmax = math.ceil(vmax / 5) * 5
    group = (width - left - 20) / max(1, len(rows))
    bar = group * 0.3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{_esc(title)}</text>',
    ]
    for i in range(6):
        v = vmax * i / 5
        y = top + plot_h - plot_h * v / vmax
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    for i, k in enumerate(rows):
        x0 = left + i * group + group * 0.15
        for j, (value, color) in enumerate(
            ((k.avg_click_to_door_min, "#1e88e5"), (k.p90_click_to_door_min, "#fb8c00"))
        ):
            h = plot_h * value / vmax
            x = x0 + j * bar
            y = top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{color}"/><text x="{x + bar / 2 - 1:.1f}" y="{y - 3:.1f}" '
                f'text-anchor="middle" font-size="10">{value:.1f}</text>'
            )
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{_esc(k.policy)}</text>"
            f'<text x="{x0 + bar:.1f}" y="{top + plot_h + 30}" text-anchor="middle" '
            f'font-size="10" fill="#555">{100 * k.on_time_rate:.0f}% on time</text>'
        )
    y = height - 12
    parts.append(
        f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="#1e88e5"/>'
        f'<text x="{left + 14}" y="{y}">average click-to-door (min)</text>'
        f'<rect x="{left + 220}" y="{y - 9}" width="10" height="10" fill="#fb8c00"/>'
        f'<text x="{left + 234}" y="{y}">p90 (min)</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def save_report(rows: list[Kpis], *, out: Path, name: str, title: str, extra: dict | None = None):
    out.mkdir(parents=True, exist_ok=True)
    payload = {"kpis": [k.as_dict() for k in rows], **(extra or {})}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    (out / f"{name}.md").write_text(f"## {title}\n\n" + markdown_table(rows) + "\n")
    if len(rows) > 1:
        (out / f"{name}.svg").write_text(svg_bar_chart(rows, title=title))


# --- the targets ----------------------------------------------------------------------


def check_targets(base: dict, *, log=None) -> dict:
    """Run the two simulator targets and say whether each holds:

    1. lunch peak (12:00-13:00): auto dispatch (with batching) cuts the average click-to-door
       time by >= 15% against nearest-rider grab, same seeded demand, same run;
    2. an evening (20:00-22:00) where one order in three goes to a female dorm and one rider in
       five online is female: with transfer stations, >= 95% on time (and without, for contrast).
    """
    log = log or (lambda s: None)
    base = {k: v for k, v in base.items() if v is not None}
    for key in ("start_hour", "end_hour", "female_rider_share", "female_dorm_share", "minutes"):
        base.pop(key, None)
    lunch = {**base, "start_hour": 12, "end_hour": 13}
    evening = {**base, "start_hour": 20, "end_hour": 22, "female_rider_share": 0.2}
    evening["female_dorm_share"] = 1 / 3
    rows = []
    for policy in ("grab", "auto", "auto-batch"):
        log(f"lunch {policy}:")
        rows.append(SimDay(SimConfig(policy=policy, **lunch)).run())
    grab, auto_batch = rows[0], rows[2]
    cut = 1 - auto_batch.avg_click_to_door_min / grab.avg_click_to_door_min
    evening_rows = []
    for stations in (True, False):
        log(f"evening auto-batch, stations={stations}:")
        evening_rows.append(
            SimDay(SimConfig(policy="auto-batch", stations=stations, **evening)).run()
        )
    with_st = evening_rows[0]
    targets = {
        "lunch_cut_vs_grab": round(cut, 4),
        "lunch_cut_target": 0.15,
        "lunch_cut_met": cut >= 0.15,
        "evening_on_time_with_stations": with_st.on_time_rate,
        "evening_on_time_without_stations": evening_rows[1].on_time_rate,
        "evening_on_time_target": 0.95,
        "evening_on_time_met": with_st.on_time_rate >= 0.95,
    }
    lines = [
        "Lunch peak 12:00-13:00 (same seeded demand):",
        markdown_table(rows),
        f"auto-batch vs grab, average click-to-door: {100 * cut:+.1f}% cut "
        f"(target >= 15%): {'MET' if targets['lunch_cut_met'] else 'NOT MET'}",
        "",
        "Evening 20:00-22:00, 1/3 of orders to female dorms, 1/5 of riders female:",
        markdown_table(evening_rows),
        f"on time with transfer stations: {100 * with_st.on_time_rate:.1f}% (target >= 95%): "
        f"{'MET' if targets['evening_on_time_met'] else 'NOT MET'}",
    ]
    return {
        "rows": rows + evening_rows,
        "targets": targets,
        "lines": lines,
        "title": "simulate_day targets: lunch peak and a female-dorm evening",
    }
