"""Reads for dispatch: settings, the state a dispatch cycle works on, the grab board, offers,
planned routes and the rider's offer record (for the credit score).

Nothing here calls ``timezone.now()`` below the entry points: a ``now`` passes down, so that a
simulator can drive the same code on its own clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from campus.models import Building, Campus
from dispatch.matching import Courier, Job, RoutePlan, grab_score, plan_route
from dispatch.matrix import CampusMatrix, campus_matrix, speed_for
from dispatch.models import (
    UNANSWERED,
    Action,
    CampusDispatchSettings,
    DispatchDecision,
    Mode,
    Offer,
    OfferStatus,
)
from orders import rules
from orders.models import Order
from orders.status import WITH_RIDER, Status
from riders.models import RiderProfile
from tracking import live

# Statuses in which the rider has the item: only the drop-off is left on their route.
CARRIED = frozenset(WITH_RIDER) - {Status.ACCEPTED}
# Handing over at each end, on top of walking from the path to the door.
PICKUP_SERVICE_S = 60.0
DROPOFF_SERVICE_S = 60.0

# Repeated declines (and offers left to expire) lower the credit dispatch uses: the first few a
# week are free (a rider may have good reasons), each one after costs points.
DECLINE_WINDOW = timedelta(days=7)
FREE_DECLINES = 3
DECLINE_PENALTY_POINTS = 2.0
MAX_DECLINE_PENALTY = 30.0
DEFAULT_CREDIT = 100.0


def dispatch_settings_get(campus: Campus) -> CampusDispatchSettings:
    """The campus's settings, or the defaults (unsaved) until an operator saves some. Read
    through the reverse one-to-one, so it is cached on the campus object (orders.rules reads
    the same attribute)."""
    found = getattr(campus, "dispatch_settings", None)
    return found or CampusDispatchSettings(campus=campus)


def campus_with_settings(campus_id: int) -> Campus:
    """One query for a campus and its dispatch settings (cached on it, missing or not)."""
    return Campus.objects.select_related("dispatch_settings").get(pk=campus_id)


def order_due(order: Order, settings: CampusDispatchSettings) -> datetime:
    """The promised delivery time (Order.promised_at once ordering sets it)."""
    promised = getattr(order, "promised_at", None)
    return promised or order.created_at + timedelta(minutes=settings.promise_minutes)


def order_ready(order: Order) -> datetime | None:
    """When the item can be picked up (a merchant's ready time), if the order says."""
    for name in ("ready_at", "expected_ready_at", "merchant_ready_at"):
        value = getattr(order, name, None)
        if isinstance(value, datetime):
            return value
    return None


def rider_fee_fen(order: Order) -> int:
    """What the rider earns for carrying the order: the fee and any tip."""
    return order.price_fen + (getattr(order, "tip_fen", 0) or 0)


def rider_speed(profile: RiderProfile, settings: CampusDispatchSettings) -> float:
    mode = (
        getattr(profile, "travel_mode", "")
        or getattr(profile, "vehicle", "")
        or settings.default_travel_mode
    )
    return speed_for(
        mode, walking_mps=settings.walking_speed_mps, cycling_mps=settings.cycling_speed_mps
    )


# --- credit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRecord:
    offered: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0

    @property
    def turned_down(self) -> int:
        return self.declined + self.expired


def rider_offer_record(user, *, since: datetime, until: datetime | None = None) -> OfferRecord:
    """What a rider did with the offers made to them in [since, until): the input the credit
    score (riders.credit) may read for declines."""
    qs = Offer.objects.filter(rider=user, created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    counts = dict(qs.values_list("status").annotate(n=Count("id")))
    return OfferRecord(
        offered=sum(counts.values()),
        accepted=counts.get(OfferStatus.ACCEPTED, 0),
        declined=counts.get(OfferStatus.DECLINED, 0),
        expired=counts.get(OfferStatus.EXPIRED, 0),
    )


def decline_penalty(turned_down: int) -> float:
    return min(MAX_DECLINE_PENALTY, DECLINE_PENALTY_POINTS * max(0, turned_down - FREE_DECLINES))


def _riders_credit_counts_declines() -> bool:
    # When riders.credit starts reading rider_offer_record itself it sets this flag, and the
    # penalty is no longer subtracted here (it would count twice).
    try:
        from riders import credit
    except ImportError:
        return False
    return bool(getattr(credit, "COUNTS_DISPATCH_DECLINES", False))


def turned_down_counts(user_ids, *, now: datetime) -> dict[int, int]:
    rows = (
        Offer.objects.filter(
            rider_id__in=list(user_ids),
            status__in=UNANSWERED,
            responded_at__gte=now - DECLINE_WINDOW,
        )
        .values_list("rider_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def rider_dispatch_credit(profile: RiderProfile, *, now: datetime, turned_down=None) -> float:
    """The credit score dispatch weighs: the rider's 信用分 less the penalty for declines."""
    base = getattr(profile, "credit_score", None)
    base = DEFAULT_CREDIT if base is None else float(base)
    if _riders_credit_counts_declines():
        return base
    if turned_down is None:
        turned_down = turned_down_counts([profile.user_id], now=now).get(profile.user_id, 0)
    return max(0.0, base - decline_penalty(turned_down))


# --- the state of a campus, for a dispatch cycle --------------------------------------------------


@dataclass
class Snapshot:
    campus: Campus
    settings: CampusDispatchSettings
    now: datetime
    matrix: CampusMatrix
    jobs: list[Job]
    couriers: list[Courier]
    open_orders: dict[int, Order]  # every open order, jobs or not
    riders: dict[int, RiderProfile]  # user id -> profile (online, approved)
    active: dict[int, list[Order]]  # user id -> orders they carry or head for
    pending: dict[int, list[Offer]]  # user id -> offers waiting for their answer
    fallback: set[int] = field(default_factory=set)  # hybrid: order ids now on the board
    board_jobs: list[Job] = field(default_factory=list)  # those orders, watched for risk only
    positions: dict[int, dict | None] = field(default_factory=dict)
    job_of: dict[int, Job] = field(default_factory=dict)  # order id -> Job (active ones too)

    @property
    def now_s(self) -> float:
        return self.now.timestamp()


class _Places:
    """Buildings as matrix nodes, plus the walk from the path to the door (served on foot)."""

    def __init__(self, matrix: CampusMatrix, settings: CampusDispatchSettings):
        self.matrix, self.walk = matrix, settings.walking_speed_mps
        self._memo: dict[int, tuple[int, float]] = {}

    def node(self, building: Building) -> tuple[int, float]:
        hit = self._memo.get(building.pk)
        if hit is None:
            node, snap = self.matrix.locate(building.lng, building.lat)
            hit = self._memo[building.pk] = (node, snap / self.walk)
        return hit


def _relay_station_of(order: Order):
    """The transfer station of the order's planned relay, for leg 1 (None without one)."""
    if order.dropoff_building.gender_rule == "any" or order.status not in (
        Status.OPEN,
        Status.ACCEPTED,
        Status.PICKED_UP,
    ):
        return None
    leg = order.relay_legs.filter(number=1).select_related("station").first()
    return leg.station if leg else None


def _handover_station(order: Order):
    """Where this order's carrier takes it: the relay's station when they may not enter the
    drop-off building (or nobody carries it yet), else None (to the door)."""
    station = _relay_station_of(order)
    if station is None:
        return None
    carrier = getattr(order.rider, "gender", None) if order.rider_id else None
    if carrier is None or not order.dropoff_building.admits(carrier):
        return station
    return None


def order_job(
    order: Order,
    places: _Places,
    settings: CampusDispatchSettings,
    *,
    excluded: frozenset[int] = frozenset(),
) -> Job:
    pickup, walk_p = places.node(order.pickup_building)
    dropoff, walk_d = places.node(order.dropoff_building)
    gender_rule = order.dropoff_building.gender_rule
    if (station := _handover_station(order)) is not None:
        # A planned relay (dispatch.relay): whoever may not enter carries it to the station.
        dropoff, walk_d = places.matrix.locate(station.location.x, station.location.y)
        walk_d /= places.walk
        gender_rule = "any"
    ready = order_ready(order)
    return Job(
        id=order.pk,
        pickup=pickup,
        dropoff=dropoff,
        due=order_due(order, settings).timestamp(),
        ready=ready.timestamp() if ready else -math.inf,
        pools=rules.admitted_pools(order.required_gender, gender_rule),
        customer=order.customer_id,
        fee_fen=rider_fee_fen(order),
        excluded=excluded,
        pickup_service=PICKUP_SERVICE_S + walk_p,
        dropoff_service=DROPOFF_SERVICE_S + walk_d,
    )


def _courier(
    profile: RiderProfile,
    *,
    matrix: CampusMatrix,
    settings: CampusDispatchSettings,
    position: dict | None,
    carried: tuple[Job, ...],
    assigned: tuple[Job, ...],
    credit: float,
) -> Courier:
    if position and matrix.size:
        node, offset = matrix.locate(position["lng"], position["lat"])
        known = True
    else:
        # No live fix: plan from the campus centre, and do not hold reach against the rider.
        centre = profile.campus.center
        node, offset = matrix.locate(centre.x, centre.y) if matrix.size else (0, 0.0)
        known = False
    return Courier(
        id=profile.user_id,
        pool=profile.user.gender,
        location=node,
        speed=rider_speed(profile, settings),
        capacity=rules.rider_capacity(profile),
        offset_m=offset,
        known_position=known,
        credit=credit,
        carried=carried,
        assigned=assigned,
    )


_ORDER_PLACES = ("pickup_building", "dropoff_building")


def dispatch_snapshot(
    campus: Campus, *, now: datetime, settings: CampusDispatchSettings | None = None
) -> Snapshot:
    """Open orders and online riders of a campus as the pure core's jobs and couriers."""
    settings = settings or dispatch_settings_get(campus)
    matrix = campus_matrix(campus)
    places = _Places(matrix, settings)

    opened = getattr(rules, "opened_q", None)  # scheduled orders wait for their opening time
    open_orders = list(
        Order.objects.filter(campus=campus, status=Status.OPEN)
        .filter(opened(now) if opened else Q())
        .select_related(*_ORDER_PLACES)
        .annotate(
            pending_offers=Count("dispatch_offers", filter=Q(dispatch_offers__status="pending")),
            unanswered=Count("dispatch_offers", filter=Q(dispatch_offers__status__in=UNANSWERED)),
        )
        .order_by("created_at", "pk")
    )
    # Riders who turned an order down, or had it taken from them, are not offered it again.
    said_no: dict[int, set[int]] = {}
    open_ids = [o.pk for o in open_orders]
    refusals = Offer.objects.filter(order__in=open_ids, status__in=UNANSWERED).values_list(
        "order_id", "rider_id"
    )
    taken_from = DispatchDecision.objects.filter(
        order__in=open_ids, action=Action.REASSIGNED, rider__isnull=False
    ).values_list("order_id", "rider_id")
    for order_id, rider_id in [*refusals, *taken_from]:
        said_no.setdefault(order_id, set()).add(rider_id)

    fallback = set()
    jobs, board_jobs = [], []
    job_of: dict[int, Job] = {}
    for order in open_orders:
        if settings.mode == Mode.HYBRID and order.unanswered >= settings.hybrid_fallback_offers:
            fallback.add(order.pk)
            board_jobs.append(order_job(order, places, settings))
            continue
        if order.pending_offers:
            continue
        job = order_job(order, places, settings, excluded=frozenset(said_no.get(order.pk, ())))
        jobs.append(job)
        job_of[order.pk] = job

    profiles = {
        p.user_id: p
        for p in RiderProfile.objects.filter(campus=campus, online=True, verified=True)
        .select_related("user")
        .order_by("user_id")
    }
    for profile in profiles.values():
        profile.campus = campus  # one campus object: its dispatch settings are read once
    active: dict[int, list[Order]] = {uid: [] for uid in profiles}
    for order in (
        Order.objects.filter(rider_id__in=list(profiles), status__in=WITH_RIDER)
        .select_related(*_ORDER_PLACES)
        .order_by("accepted_at", "pk")
    ):
        active[order.rider_id].append(order)
    pending: dict[int, list[Offer]] = {uid: [] for uid in profiles}
    for offer in (
        Offer.objects.pending()
        .filter(rider_id__in=list(profiles))
        .select_related("order__pickup_building", "order__dropoff_building")
        .order_by("created_at", "pk")
    ):
        pending[offer.rider_id].append(offer)
    turned_down = turned_down_counts(profiles, now=now)

    couriers = []
    positions = {}
    for uid, profile in profiles.items():
        carried, assigned = [], []
        for order in active[uid]:
            job = order_job(order, places, settings)
            job_of[order.pk] = job
            (carried if order.status in CARRIED else assigned).append(job)
        for offer in pending[uid]:
            job = order_job(offer.order, places, settings)
            job_of[offer.order_id] = job
            assigned.append(job)
        positions[uid] = live.position_get(uid)
        couriers.append(
            _courier(
                profile,
                matrix=matrix,
                settings=settings,
                position=positions[uid],
                carried=tuple(carried),
                assigned=tuple(assigned),
                credit=rider_dispatch_credit(profile, now=now, turned_down=turned_down.get(uid, 0)),
            )
        )
    return Snapshot(
        campus=campus,
        settings=settings,
        now=now,
        matrix=matrix,
        jobs=jobs,
        couriers=couriers,
        open_orders={o.pk: o for o in open_orders},
        riders=profiles,
        active=active,
        pending=pending,
        fallback=fallback,
        board_jobs=board_jobs,
        positions=positions,
        job_of=job_of,
    )


# --- the grab board ----------------------------------------------------------------------------


def grab_board(user, orders: QuerySet[Order], *, now: datetime | None = None) -> list[Order]:
    """The open orders this rider may grab, best first, each with ``grab_score`` (its parts
    shown on the card) and ``grab_due``.

    ``orders`` is the board's base query (campus, pool, building rules: orders.rules). Here the
    mode, capacity, reach and offers reserved for other riders are applied, and the score."""
    now = now or timezone.now()
    profile = user.rider_profile
    profile.campus = campus = campus_with_settings(profile.campus_id)
    settings = dispatch_settings_get(campus)
    if settings.mode == Mode.AUTO:
        return []
    if rules.capacity_refusal(rules.rider_load(user), rules.rider_capacity(profile)):
        return []
    rows = list(
        orders.annotate(
            reserved=Count(
                "dispatch_offers",
                filter=Q(dispatch_offers__status="pending") & ~Q(dispatch_offers__rider=user),
            ),
            unanswered=Count("dispatch_offers", filter=Q(dispatch_offers__status__in=UNANSWERED)),
        )
    )
    position = live.position_get(user.pk)
    matrix = campus_matrix(campus) if position else None
    reach = rules.campus_reach_m(campus)
    board = []
    for order in rows:
        if order.reserved:
            continue
        if settings.mode == Mode.HYBRID and order.unanswered < settings.hybrid_fallback_offers:
            continue
        distance = None
        if matrix is not None and matrix.size:
            pickup = order.pickup_building
            distance = matrix.distance_m(
                (position["lng"], position["lat"]), (pickup.lng, pickup.lat)
            )
        if rules.reach_refusal(distance, reach):
            continue
        due = order_due(order, settings)
        order.grab_due = due
        order.grab_score = grab_score(distance, rider_fee_fen(order), (due - now).total_seconds())
        board.append(order)
    board.sort(key=lambda o: (-o.grab_score.total, o.created_at, o.pk))
    return board


# --- offers, routes, decisions -----------------------------------------------------------------


def rider_offers(user, *, now: datetime | None = None) -> list[Offer]:
    """Offers waiting for this rider's answer, soonest deadline first."""
    now = now or timezone.now()
    offers = list(
        Offer.objects.pending()
        .filter(rider=user, expires_at__gt=now)
        .select_related("order", "order__pickup_building", "order__dropoff_building")
        .order_by("expires_at", "pk")
    )
    for offer in offers:
        offer.seconds_left = max(0, int((offer.expires_at - now).total_seconds()))
    return offers


def offer_for_rider(user, offer_id: int) -> Offer | None:
    return Offer.objects.select_related("order", "campus").filter(pk=offer_id, rider=user).first()


@dataclass(frozen=True)
class PlannedStop:
    order: Order
    kind: str  # "pickup" | "delivery"
    building: Building
    eta: datetime
    due: datetime | None  # promised time, on drop-offs
    station: object = None  # the transfer station a relay's leg 1 ends at (a drop-off stop)

    @property
    def late(self) -> bool:
        return self.due is not None and self.eta > self.due

    @property
    def point(self) -> tuple[float, float]:
        """(lng, lat) the rider heads for: the station on a relay's leg 1, else the building."""
        if self.station is not None:
            return (self.station.location.x, self.station.location.y)
        return (self.building.lng, self.building.lat)


@dataclass(frozen=True)
class PlannedRoute:
    stops: list[PlannedStop]
    path: list[tuple[float, float]]  # (lng, lat) from the rider's position through every stop
    distance_m: float
    planned_at: datetime
    method: str
    from_live_position: bool


def rider_route(user, *, now: datetime | None = None) -> PlannedRoute:
    """The rider's planned stop order and path, from where they are now: a rider who deviates
    gets a new plan from their new position on the next read."""
    now = now or timezone.now()
    profile = user.rider_profile
    settings = dispatch_settings_get(profile.campus)
    matrix = campus_matrix(profile.campus)
    places = _Places(matrix, settings)
    orders = list(
        Order.objects.filter(rider=user, status__in=WITH_RIDER)
        .select_related(*_ORDER_PLACES)
        .order_by("accepted_at", "pk")
    )
    position = live.position_get(user.pk)
    carried, assigned = [], []
    for order in orders:
        job = order_job(order, places, settings)
        (carried if order.status in CARRIED else assigned).append(job)
    courier = _courier(
        profile,
        matrix=matrix,
        settings=settings,
        position=position,
        carried=tuple(carried),
        assigned=tuple(assigned),
        credit=DEFAULT_CREDIT,
    )
    plan: RoutePlan = plan_route(courier, matrix.distances, now.timestamp())
    by_id = {o.pk: o for o in orders}
    stops = []
    for (order_id, kind), arrival in zip(plan.visits, plan.arrivals, strict=True):
        order = by_id[order_id]
        stops.append(
            PlannedStop(
                order=order,
                kind=kind,
                building=order.pickup_building if kind == "pickup" else order.dropoff_building,
                eta=datetime.fromtimestamp(arrival, tz=UTC),
                due=order_due(order, settings) if kind == "delivery" else None,
                station=_handover_station(order) if kind == "delivery" else None,
            )
        )
    path: list[tuple[float, float]] = []
    distance = 0.0
    here = (position["lng"], position["lat"]) if position else None
    graph = matrix.graph
    for stop in stops:
        there = stop.point
        if here is not None and len(graph.nodes):
            leg = graph.route(here, there)
            distance += leg.distance_m
            path.extend(leg.coords if not path else leg.coords[1:])
        elif not path:
            path.append(there)
        here = there
    return PlannedRoute(
        stops=stops,
        path=path,
        distance_m=distance,
        planned_at=now,
        method=plan.method,
        from_live_position=position is not None,
    )


def order_decisions(order: Order) -> QuerySet[DispatchDecision]:
    return (
        DispatchDecision.objects.filter(order=order)
        .select_related("rider")
        .order_by("created_at", "pk")
    )
