"""Reads that rider pages and APIs share: the board, order cards, shifts, earnings, credit."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.apps import apps
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from campus.graph import campus_graph
from orders.models import Order, OrderEvent
from orders.rules import eligible_orders_q
from orders.selectors import DETAIL_RELATED
from orders.status import RIDER_NEXT, WITH_RIDER, Status
from riders.credit import (
    CREDIT_WINDOW_DAYS,
    ON_TIME_GRACE_SECONDS,
    CreditInputs,
    CreditReport,
    credit_compute,
)
from riders.models import Complaint, ComplaintStatus, RiderProfile, Shift

EARNED_STATUSES = (Status.DELIVERED, Status.COMPLETED)


def rider_profile_get(user) -> RiderProfile | None:
    return RiderProfile.objects.select_related("user", "campus").filter(user=user).first()


def rider_board(user) -> list[Order]:
    """Open orders this rider may grab, best first: their campus, their pool, buildings they
    may enter (orders.rules), then the campus's dispatch mode, capacity, reach and the board's
    score (dispatch.selectors.grab_board: each order gets ``grab_score`` with its parts)."""
    from dispatch.selectors import grab_board  # dispatch owns modes and the score

    profile = user.rider_profile
    orders = (
        Order.objects.filter(status=Status.OPEN, campus_id=profile.campus_id)
        .filter(eligible_orders_q(user.gender))
        .exclude(customer=user)
        .select_related(*DETAIL_RELATED)
        .order_by("created_at")
    )
    return grab_board(user, orders)


def rider_active_orders(user) -> QuerySet[Order]:
    return (
        Order.objects.filter(rider=user, status__in=WITH_RIDER)
        .select_related(*DETAIL_RELATED)
        .order_by("accepted_at")
    )


# --- order cards -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderCard:
    """What a rider needs to decide on an order at a glance."""

    order: Order
    walk_m: int | None  # pickup -> drop-off along the campus paths
    to_pickup_m: int | None  # from the rider's last fix to the pickup, when there is one
    deadline: datetime | None
    next_status: str | None = None

    @property
    def fee_yuan(self) -> str:
        fen = _fee_fen(self.order)
        return f"{fen / 100:.2f}"


class CardContext:
    """The campus path graph and the rider's last fix, read once per page and only if needed."""

    def __init__(self, user):
        self.user = user
        self._loaded: tuple | None = None

    def get(self, campus):
        if self._loaded is None:
            from tracking import live

            self._loaded = (campus_graph(campus), live.position_get(self.user.pk))
        return self._loaded


def order_cards(user, orders, *, with_next: bool = False, context=None) -> list[OrderCard]:
    orders = list(orders)
    if not orders:
        return []
    graph, position = (context or CardContext(user)).get(orders[0].campus)
    has_graph = len(graph.nodes) > 0
    walks: dict[tuple[int, int], int | None] = {}

    def walk(start: tuple[float, float], building) -> int | None:
        if not has_graph:
            return None
        return round(graph.route(start, (building.lng, building.lat)).distance_m)

    cards = []
    for order in orders:
        pickup = order.pickup_building
        key = (order.pickup_building_id, order.dropoff_building_id)
        if key not in walks:
            walks[key] = walk((pickup.lng, pickup.lat), order.dropoff_building)
        to_pickup = None
        if position and order.status in (Status.OPEN, Status.ACCEPTED):
            to_pickup = walk((position["lng"], position["lat"]), pickup)
        cards.append(
            OrderCard(
                order=order,
                walk_m=walks[key],
                to_pickup_m=to_pickup,
                deadline=getattr(order, "promised_at", None),
                next_status=RIDER_NEXT.get(order.status) if with_next else None,
            )
        )
    return cards


def rider_board_cards(user, limit: int = 50, context=None) -> list[OrderCard]:
    return order_cards(user, rider_board(user)[:limit], context=context)


def rider_task_cards(user, context=None) -> list[OrderCard]:
    return order_cards(user, rider_active_orders(user), with_next=True, context=context)


def rider_board_page(user) -> tuple[list[OrderCard], list[OrderCard]]:
    """(tasks, offers) for the board: offers only while online."""
    profile = user.rider_profile
    context = CardContext(user)
    tasks = rider_task_cards(user, context=context)
    offers = rider_board_cards(user, context=context) if profile.online else []
    return tasks, offers


# --- earnings and shifts ---------------------------------------------------------------------


def _fee_fen(order_or_values) -> int:
    return order_or_values.price_fen + (getattr(order_or_values, "tip_fen", 0) or 0)


@dataclass(frozen=True)
class Earning:
    at: datetime  # when the delivery that earned it happened
    fen: int
    settled: bool  # credited to the rider's earnings account (else: delivered, not yet settled)


def _ledger_earnings(user, since: datetime, until: datetime) -> list[Earning] | None:
    """What the payments ledger credited to the rider, dated by the delivery it pays for.

    Settlement happens when the order completes (the customer confirms, or later automatically),
    so money is attributed to the order's delivered_at, not to the settlement's own time.
    Withdrawals are not earnings. None when the payments app is not installed.
    """
    if not apps.is_installed("payments"):
        return None
    from django.db.models.functions import Coalesce

    from payments.models import AccountKind, Entry, TransactionKind

    rows = (
        Entry.objects.filter(account__kind=AccountKind.RIDER_EARNINGS, account__owner=user)
        .exclude(transaction__kind=TransactionKind.WITHDRAWAL)
        .annotate(at=Coalesce("transaction__order__delivered_at", "transaction__created_at"))
        .filter(at__gte=since, at__lt=until)
        .values_list("at", "amount_fen")
    )
    return [Earning(at, fen, True) for at, fen in rows]


def earnings_window(user, since: datetime, until: datetime) -> tuple[list[datetime], list[Earning]]:
    """Deliveries (their times) and earnings in [since, until), in two or three queries.

    With the payments app, earnings are the ledger's credits to the rider (fee and tip less the
    platform's commission, compensation for orders cancelled after acceptance); an order delivered
    but not yet settled counts as pending at its fee plus tip. Without it, every delivered order
    counts at its fee plus tip: errand fees go to the rider in full.
    """
    fields = ["delivered_at", "price_fen", "status"]
    has_tip = _model_field(Order, "tip_fen") is not None
    if has_tip:
        fields.append("tip_fen")
    delivered = list(
        Order.objects.filter(
            rider=user,
            status__in=EARNED_STATUSES,
            delivered_at__gte=since,
            delivered_at__lt=until,
        ).values_list(*fields)
    )
    times = [row[0] for row in delivered]
    ledger = _ledger_earnings(user, since, until)

    def fee(row) -> int:
        tip = (row[3] or 0) if has_tip else 0
        return row[1] + tip

    if ledger is None:
        return times, [Earning(row[0], fee(row), True) for row in delivered]
    pending = [Earning(row[0], fee(row), False) for row in delivered if row[2] == Status.DELIVERED]
    return times, ledger + pending


@dataclass(frozen=True)
class Takings:
    earned_fen: int = 0
    pending_fen: int = 0
    deliveries: int = 0

    @property
    def earned_yuan(self) -> str:
        return f"{self.earned_fen / 100:.2f}"

    @property
    def pending_yuan(self) -> str:
        return f"{self.pending_fen / 100:.2f}"


def _takings(times, earnings, start: datetime, end: datetime, *, closed: bool) -> Takings:
    def inside(at) -> bool:
        return start <= at < end if not closed else start <= at <= end

    return Takings(
        earned_fen=sum(e.fen for e in earnings if e.settled and inside(e.at)),
        pending_fen=sum(e.fen for e in earnings if not e.settled and inside(e.at)),
        deliveries=sum(1 for at in times if inside(at)),
    )


@dataclass(frozen=True)
class ShiftRow:
    shift: Shift
    takings: Takings

    @property
    def duration(self) -> timedelta:
        return (self.shift.ended_at or timezone.now()) - self.shift.started_at


@dataclass(frozen=True)
class DayRow:
    day: date
    takings: Takings
    online: timedelta


def rider_shift_list(user, limit: int = 20) -> list[ShiftRow]:
    """The latest shifts, each with what was delivered and earned while it was open."""
    shifts = list(Shift.objects.filter(rider=user).order_by("-started_at")[:limit])
    if not shifts:
        return []
    now = timezone.now()
    times, earnings = earnings_window(user, shifts[-1].started_at, now + timedelta(seconds=1))
    return [
        ShiftRow(
            shift=shift,
            takings=_takings(times, earnings, shift.started_at, shift.ended_at or now, closed=True),
        )
        for shift in shifts
    ]


def rider_daily_earnings(user, days: int = 7) -> list[DayRow]:
    """Today and the days before it (local dates), newest first, with time spent online."""
    now = timezone.now()
    today = timezone.localdate(now)
    tz = timezone.get_current_timezone()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=tz)
    times, earnings = earnings_window(user, since, now + timedelta(seconds=1))
    shifts = list(Shift.objects.filter(rider=user, started_at__lt=now).exclude(ended_at__lt=since))
    rows = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        end = start + timedelta(days=1)
        online = timedelta()
        for shift in shifts:
            overlap = min(shift.ended_at or now, end) - max(shift.started_at, start)
            if overlap > timedelta():
                online += overlap
        rows.append(
            DayRow(
                day=day, takings=_takings(times, earnings, start, end, closed=False), online=online
            )
        )
    return rows


def rider_open_shift(user) -> ShiftRow | None:
    shift = Shift.objects.filter(rider=user, ended_at__isnull=True).first()
    if shift is None:
        return None
    now = timezone.now()
    times, earnings = earnings_window(user, shift.started_at, now + timedelta(seconds=1))
    return ShiftRow(
        shift=shift, takings=_takings(times, earnings, shift.started_at, now, closed=True)
    )


# --- credit ----------------------------------------------------------------------------------


def _model_field(model, *names: str) -> str | None:
    fields = {f.name for f in model._meta.get_fields()}
    return next((n for n in names if n in fields), None)


def _rider_ratings(user, since: datetime) -> tuple[float, ...]:
    """Stars customers gave this rider, read defensively: ratings arrive with the ordering work."""
    try:
        rating_model = apps.get_model("orders", "Rating")
    except LookupError:
        return ()
    stars = _model_field(rating_model, "rider_stars", "rider_score", "stars", "score", "rating")
    if stars is None:
        return ()
    qs = rating_model.objects.all()
    if _model_field(rating_model, "rider"):
        qs = qs.filter(rider=user)
    elif _model_field(rating_model, "order"):
        qs = qs.filter(order__rider=user)
    else:
        return ()
    if created := _model_field(rating_model, "created_at", "created"):
        qs = qs.filter(**{f"{created}__gte": since})
    return tuple(float(v) for v in qs.values_list(stars, flat=True) if v is not None)


def rider_credit_inputs(user, now: datetime | None = None) -> CreditInputs:
    since = (now or timezone.now()) - timedelta(days=CREDIT_WINDOW_DAYS)
    promised = 0
    on_time = 0
    if _model_field(Order, "promised_at"):
        grace = timedelta(seconds=ON_TIME_GRACE_SECONDS)
        pairs = Order.objects.filter(
            rider=user, delivered_at__gte=since, promised_at__isnull=False
        ).values_list("delivered_at", "promised_at")
        for delivered_at, promised_at in pairs:
            promised += 1
            on_time += delivered_at <= promised_at + grace
    events = OrderEvent.objects.filter(actor=user, created_at__gte=since)
    return CreditInputs(
        delivered_with_promise=promised,
        delivered_on_time=on_time,
        accepted=events.filter(new_status=Status.ACCEPTED).count(),
        released=events.filter(old_status=Status.ACCEPTED, new_status=Status.OPEN).count(),
        ratings=_rider_ratings(user, since),
        upheld_complaints=Complaint.objects.filter(
            rider=user, status=ComplaintStatus.UPHELD, created_at__gte=since
        ).count(),
    )


def rider_credit_report(user) -> CreditReport:
    return credit_compute(rider_credit_inputs(user))


# --- idle riders -----------------------------------------------------------------------------


def _live_fix_at(user_id: int) -> datetime | None:
    from tracking import live  # tracking reads riders; imported here to keep the apps apart

    position = live.position_get(user_id)
    if not position or not position.get("recorded_at"):
        return None
    try:
        return datetime.fromisoformat(str(position["recorded_at"]))
    except ValueError:
        return None


def _tracked_since(user_ids, cutoff: datetime) -> set[int]:
    """Riders with a track point taken or received since cutoff: the live position lives in the
    cache, which a cron process does not share without Redis, and a phone's clock may lag."""
    from tracking.models import TrackPoint

    return set(
        TrackPoint.objects.filter(rider_id__in=list(user_ids))
        .filter(Q(recorded_at__gte=cutoff) | Q(received_at__gte=cutoff))
        .values_list("rider_id", flat=True)
        .distinct()
    )


def rider_last_seen(profile: RiderProfile) -> datetime | None:
    """When an online rider last gave a sign of life: their latest position (live or in the
    track, by the phone's clock or by the server's), or going online; None if nothing is known."""
    from tracking.models import TrackPoint

    latest = (
        TrackPoint.objects.filter(rider_id=profile.user_id)
        .order_by("-recorded_at")
        .values_list("recorded_at", "received_at")
        .first()
    )
    times = [_live_fix_at(profile.user_id), profile.online_since, *(latest or ())]
    return max((t for t in times if t is not None), default=None)


@dataclass(frozen=True)
class IdleRider:
    user: object
    last_seen: datetime | None
    carrying: int  # orders accepted and not yet delivered


def riders_idle(cutoff: datetime) -> list[IdleRider]:
    """Online riders with no position since cutoff (and online since before it), with the
    number of orders each carries. A few queries whatever the number of riders, plus one cache
    read per online rider."""
    profiles = list(
        RiderProfile.objects.filter(online=True)
        .filter(Q(online_since__lt=cutoff) | Q(online_since__isnull=True))
        .select_related("user")
    )
    stale = {}
    for profile in profiles:
        fix = _live_fix_at(profile.user_id)
        if fix is None or fix < cutoff:
            stale[profile.user_id] = (profile, fix)
    if not stale:
        return []
    fresh = _tracked_since(stale, cutoff)
    carrying = dict(
        Order.objects.filter(rider_id__in=list(stale), status__in=WITH_RIDER)
        .values("rider_id")
        .annotate(n=Count("pk"))
        .values_list("rider_id", "n")
    )
    return [
        IdleRider(user=profile.user, last_seen=fix, carrying=carrying.get(uid, 0))
        for uid, (profile, fix) in stale.items()
        if uid not in fresh
    ]


# --- complaints ------------------------------------------------------------------------------


def order_complaint_get(order: Order, user) -> Complaint | None:
    """The latest report this user filed about the order's rider."""
    return Complaint.objects.filter(order=order, filed_by=user).order_by("-created_at").first()
