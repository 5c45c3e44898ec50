"""Transfer-station relays (中转): an order to a single-gender building carried by a rider of
the other gender goes in two legs.

- ``relay_plan``: leg 1 from the pickup to the transfer station serving the drop-off building,
  leg 2 from the station to the door; leg 2 gets an explicit hand-over slot after leg 1's planned
  arrival (VROOM cannot link timing across riders). Once planned, riders of either gender may
  take leg 1 (orders.rules reads ``relay_legs``).
- ``relay_arrive``: leg 1's rider at the station (picked up -> at station).
- ``relay_dispatch``: gives leg 2 to the nearest free rider of the admitted gender; a leg 2
  without a rider once its slot has begun is flagged to operators (dispatch's at-risk flag).
- ``handoff_confirm``: each rider enters the other's code; when both are in, the order moves to
  relay_accepted and leg 2's rider carries it (orders.services switches the rider).
- ``relay_view`` / ``relay_annotate`` / ``relay_leg2_waiting``: a relay as one of its riders sees
  it, for the board's cards and the hand-over page (dispatch/views.py).

Both riders are paid for their leg (payments.services.rider_leg_shares). The customer's timeline
shows at_station and relay_accepted like any status.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.geo import haversine_m
from campus.models import GenderRule, TransferStation
from dispatch.models import RelayLeg
from orders import rules
from orders import services as order_services
from orders.errors import NotAllowed, OrderError, StepNotReady
from orders.models import Order, RequiredGender
from orders.status import WITH_RIDER, Status
from tracking import broadcast

# Leg 2's slot: from leg 1's planned arrival, this long for leg 2's rider to be there.
HANDOFF_WINDOW = timedelta(minutes=10)
# A leg 2 still without a rider this long into its slot goes to operators.
FIND_LEG2_WITHIN = timedelta(minutes=3)
# Wrong hand-over codes a rider may enter for one order before having to wait.
HANDOFF_CODE_TRIES = 5
HANDOFF_CODE_LOCK_SECONDS = 600
# Statuses in which leg 1's rider still has the item (before the hand-over).
BEFORE_HANDOFF = (Status.ACCEPTED, Status.PICKED_UP, Status.AT_STATION)


class HandoffCodeRefused(OrderError):
    http_status = 400
    code = "handoff_code_refused"
    default_message = gettext_lazy("That hand-over code is wrong.")


def relay_station(order: Order) -> TransferStation | None:
    """The station serving the order's drop-off building, when the building admits one gender
    and the customer did not ask for a rider gender the building refuses."""
    building = order.dropoff_building
    if building.gender_rule == GenderRule.ANY:
        return None
    if order.required_gender != RequiredGender.ANY and not building.admits(order.required_gender):
        return None
    return building.transfer_stations.order_by("code").first()


def relay_legs(order: Order) -> tuple[RelayLeg | None, RelayLeg | None]:
    legs = {leg.number: leg for leg in RelayLeg.objects.filter(order=order)}
    return legs.get(1), legs.get(2)


def _code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _pt(point) -> tuple[float, float]:
    return (point.x, point.y)


@transaction.atomic
def relay_plan(
    *, order: Order, now: datetime | None = None, leg1_eta: datetime | None = None
) -> tuple[RelayLeg, RelayLeg] | None:
    """Split an open order into two legs through its station (idempotent); None when the order
    needs no relay or has no station."""
    now = now or timezone.now()
    existing = relay_legs(order)
    if existing[0] and existing[1]:
        return existing
    if order.status not in (Status.OPEN, Status.ACCEPTED):
        return None
    station = relay_station(order)
    if station is None:
        return None
    pickup, dropoff = order.pickup_building, order.dropoff_building
    d1 = haversine_m(pickup.lng, pickup.lat, *_pt(station.location))
    d2 = haversine_m(*_pt(station.location), dropoff.lng, dropoff.lat)
    # Leg 1 at cycling pace plus the pickup, unless the dispatcher knows better.
    eta = leg1_eta or now + timedelta(seconds=60 + d1 * 1.4 / 4.0)
    leg1 = RelayLeg.objects.create(
        order=order, number=1, station=station, distance_m=d1, handoff_code=_code(),
        created_at=now, rider_id=order.rider_id,
    )  # fmt: skip
    leg2 = RelayLeg.objects.create(
        order=order, number=2, station=station, distance_m=d2, handoff_code=_code(),
        window_start=eta, window_end=eta + HANDOFF_WINDOW, created_at=now,
    )  # fmt: skip
    order_services.order_note(
        order=order,
        actor=None,
        note=_("Relay planned through %(station)s: a second rider takes it to the door.")
        % {"station": str(station)},
    )
    return leg1, leg2


def relay_planned(order: Order) -> bool:
    return RelayLeg.objects.filter(order=order).exists()


@transaction.atomic
def relay_arrive(*, order: Order, rider, now: datetime | None = None) -> Order:
    """Leg 1's rider is at the station with the item."""
    now = now or timezone.now()
    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)  # fresh, and locked
    leg1, leg2 = relay_legs(order)
    if leg1 is None:
        raise StepNotReady(_("This order has no relay."))
    if order.rider_id != rider.pk:
        if leg2.rider_id == rider.pk:
            raise NotAllowed(_("You carry the second leg: the first rider marks the arrival."))
        raise NotAllowed(_("Only the rider carrying the order can mark this."))
    if order.status == Status.ACCEPTED:
        raise StepNotReady(_("Pick the order up before taking it to the station."))
    order = order_services.order_transition(
        order=order, to=Status.AT_STATION, actor=rider, note=str(leg1.station)
    )
    RelayLeg.objects.filter(pk=leg1.pk).update(rider=rider, arrived_at=now)
    if leg2.window_start is None or leg2.window_start > now:
        # Earlier than planned: the slot starts now.
        RelayLeg.objects.filter(pk=leg2.pk).update(
            window_start=now, window_end=now + HANDOFF_WINDOW
        )
    return order


@transaction.atomic
def relay_leg2_assign(*, order: Order, rider, now: datetime | None = None) -> RelayLeg:
    """Give leg 2 to a rider the drop-off building admits (dispatcher or operator)."""
    _leg1, leg2 = relay_legs(order)
    if leg2 is None:
        raise StepNotReady(_("This order has no relay."))
    refusal = leg2_refusal(rider, order)
    if refusal:
        raise NotAllowed(refusal)
    won = RelayLeg.objects.filter(pk=leg2.pk, rider__isnull=True).update(rider=rider)
    if not won:
        raise NotAllowed(_("Another rider already has this relay."))
    leg2.rider = rider
    # Her app reloads its board at once and rings for the leg-2 card (no waiting for its poll).
    broadcast.board_changed_on_commit(rider.pk, number=order.number, reason="relay_leg2")
    return leg2


def leg2_refusal(rider, order: Order) -> str | None:
    profile = getattr(rider, "rider_profile", None)
    if profile is None or not profile.verified or not profile.online:
        return _("Only riders online can take a relay.")
    if profile.campus_id != order.campus_id:
        return _("This order is on another campus.")
    if rider.pk == order.rider_id:
        return _("You are carrying leg 1 of this order.")
    return rules.pool_refusal(
        rider.gender, order.required_gender, order.dropoff_building.gender_rule
    )


@transaction.atomic
def handoff_confirm(*, order: Order, rider, code: str, now: datetime | None = None) -> Order:
    """A rider at the station enters the other rider's code. When both codes are in, leg 2's
    rider takes over (at_station -> relay_accepted)."""
    now = now or timezone.now()
    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    leg1, leg2 = relay_legs(order)
    if leg1 is None or leg2 is None:
        raise StepNotReady(_("This order has no relay."))
    if rider.pk not in (leg1.rider_id, leg2.rider_id) or rider.pk is None:
        raise NotAllowed(_("Only the two relay riders can confirm the hand-over."))
    if order.status in (Status.ACCEPTED, Status.PICKED_UP):
        raise StepNotReady(_("The first rider has not reached the station yet."))
    if order.status != Status.AT_STATION:
        raise StepNotReady(_("The hand-over happens at the station."))
    if leg2.rider_id is None:
        raise StepNotReady(_("No rider has the second leg yet: wait for them at the station."))
    # Each confirms the other's code: leg 1's rider enters leg 2's code and vice versa.
    mine, other = (leg1, leg2) if rider.pk == leg1.rider_id else (leg2, leg1)
    _handoff_code_check(order, rider, (code or "").strip(), mine=mine, other=other)
    RelayLeg.objects.filter(pk=other.pk, code_confirmed_at__isnull=True).update(
        code_confirmed_at=now
    )
    if rider.pk == leg2.rider_id:
        RelayLeg.objects.filter(pk=leg2.pk, arrived_at__isnull=True).update(arrived_at=now)
    if RelayLeg.objects.filter(order=order, code_confirmed_at__isnull=False).count() == 2:
        order = order_services.order_transition(
            order=order, to=Status.RELAY_ACCEPTED, actor=leg2.rider, note=str(leg2.station)
        )
    return order


def _handoff_code_check(order: Order, rider, code: str, *, mine: RelayLeg, other: RelayLeg):
    """The other rider's code, or HandoffCodeRefused; a few wrong codes lock the rider out for a
    while (six digits are not to be guessed with the item still at the station)."""
    key = f"dispatch:handoff-fails:{order.pk}:{rider.pk}"
    if (cache.get(key) or 0) >= HANDOFF_CODE_TRIES:
        raise HandoffCodeRefused(
            _("Too many wrong codes. Check the other rider's screen and try again in 10 minutes.")
        )
    if code == other.handoff_code:
        cache.delete(key)
        return
    cache.add(key, 0, HANDOFF_CODE_LOCK_SECONDS)
    cache.incr(key)
    if code == mine.handoff_code:
        raise HandoffCodeRefused(
            _("That is your own code: enter the code shown on the other rider's phone.")
        )
    raise HandoffCodeRefused()


def relay_leg_for(order: Order, rider) -> RelayLeg | None:
    """This rider's leg of the order: theirs by name, or leg 1 while they carry the order to
    the station (leg 1 is named on arrival)."""
    leg = RelayLeg.objects.filter(order=order, rider=rider).select_related("station").first()
    if leg is None and order.rider_id == rider.pk:
        leg = (
            RelayLeg.objects.filter(order=order, number=1, rider__isnull=True)
            .select_related("station")
            .first()
        )
    return leg


def handoff_code_for(order: Order, rider) -> str | None:
    """The code this rider shows the other rider at the station (None if not a relay rider)."""
    leg = relay_leg_for(order, rider)
    return leg.handoff_code if leg else None


# --- what a relay rider sees (the board's cards, the hand-over page) ---------------------------


@dataclass(frozen=True)
class RelayView:
    """A relay as one of its two riders sees it."""

    order: Order
    leg: RelayLeg  # the viewer's own leg
    other: RelayLeg

    @property
    def number(self) -> int:
        return self.leg.number

    @property
    def station(self):
        return self.leg.station

    @property
    def code(self) -> str:
        return self.leg.handoff_code

    @property
    def at_station(self) -> bool:
        return self.order.status == Status.AT_STATION

    @property
    def handed_over(self) -> bool:
        return self.order.status not in BEFORE_HANDOFF

    @property
    def i_confirmed(self) -> bool:
        """This rider has entered the other rider's code."""
        return self.other.code_confirmed_at is not None

    @property
    def they_confirmed(self) -> bool:
        """The other rider has entered this rider's code."""
        return self.leg.code_confirmed_at is not None

    @property
    def partner_known(self) -> bool:
        return self.other.rider_id is not None or self.number == 2

    @property
    def can_arrive(self) -> bool:
        return self.number == 1 and self.order.status == Status.PICKED_UP

    @property
    def can_confirm(self) -> bool:
        return self.at_station and self.partner_known and not self.i_confirmed

    @property
    def hides_next_step(self) -> bool:
        """Leg 1 ends at the station: the card's "on the way" button is not this rider's."""
        return self.number == 1 and self.order.status == Status.PICKED_UP

    @property
    def waits_for_leg1(self) -> bool:
        return self.number == 2 and self.order.status in (Status.ACCEPTED, Status.PICKED_UP)

    @property
    def state(self) -> str:
        """Changes whenever the hand-over page would show something new (it polls this)."""
        return ":".join(
            (
                self.order.status,
                str(int(self.partner_known)),
                str(int(self.i_confirmed)),
                str(int(self.they_confirmed)),
            )
        )


def _relay_view(order: Order, rider, legs: list[RelayLeg]) -> RelayView | None:
    by_number = {leg.number: leg for leg in legs}
    leg1, leg2 = by_number.get(1), by_number.get(2)
    if leg1 is None or leg2 is None or rider is None or rider.pk is None:
        return None
    if leg2.rider_id == rider.pk:
        return RelayView(order=order, leg=leg2, other=leg1)
    if order.status in (Status.OPEN, Status.ACCEPTED, Status.PICKED_UP):
        # On the way to the station leg 1 is whoever carries the order (named on arrival).
        if order.rider_id != rider.pk:
            return None
        if leg2.rider_id is None and order.dropoff_building.admits(rider.gender):
            return None  # the building admits this rider: they deliver it to the door themselves
        return RelayView(order=order, leg=leg1, other=leg2)
    if leg1.rider_id == rider.pk:
        return RelayView(order=order, leg=leg1, other=leg2)
    return None


def relay_view(order: Order, rider) -> RelayView | None:
    """The relay of this order as `rider` sees it; None when they ride no leg of it."""
    legs = list(RelayLeg.objects.filter(order=order).select_related("station"))
    return _relay_view(order, rider, legs)


def relay_view_get(*, number: str, rider) -> RelayView | None:
    """The relay of the order with this number as `rider` sees it (None: no such order, or not
    one of its relay riders)."""
    from orders.selectors import DETAIL_RELATED

    order = Order.objects.select_related(*DETAIL_RELATED).filter(number=number).first()
    return relay_view(order, rider) if order is not None else None


def relay_annotate(rider, orders) -> None:
    """Give each order its ``relay_view`` for this rider (None if none), in one query."""
    orders = list(orders)
    by_order: dict[int, list[RelayLeg]] = {o.pk: [] for o in orders}
    if orders:
        for leg in RelayLeg.objects.filter(order__in=list(by_order)).select_related("station"):
            by_order[leg.order_id].append(leg)
    for order in orders:
        order.relay_view = _relay_view(order, rider, by_order[order.pk])


def relay_leg2_waiting(rider):
    """Orders whose second leg this rider has and that are not yet handed over to them (they
    are still leg 1's rider's orders, so the board's own query does not find them)."""
    from orders.selectors import DETAIL_RELATED

    return (
        Order.objects.filter(relay_legs__number=2, relay_legs__rider=rider)
        .filter(status__in=BEFORE_HANDOFF)
        .exclude(rider=rider)
        .select_related(*DETAIL_RELATED)
        .order_by("accepted_at", "pk")
    )


# --- the dispatcher's part -----------------------------------------------------------------------


def relays_plan_open(*, campus, now: datetime, wait: timedelta = timedelta(minutes=5)) -> int:
    """Plan relays for open orders to single-gender buildings that the admitted pool has left
    waiting (`wait`), or that no free admitted rider is online for -- but only when a rider of
    the admitted pool is expected to have room by the hand-over slot (``_leg2_free_times``):
    leg 1's rider waits at the station with the item, so a relay nobody can take up ties two
    riders down instead of one. Returns how many were planned."""
    planned = 0
    candidates = (
        Order.objects.filter(campus=campus, status=Status.OPEN)
        .exclude(dropoff_building__gender_rule=GenderRule.ANY)
        .filter(dropoff_building__transfer_stations__isnull=False)
        .exclude(relay_legs__isnull=False)
        .select_related("pickup_building", "dropoff_building")
        .order_by("created_at", "pk")
        .distinct()
    )
    pools: dict[str, _Pool] = {}
    for order in candidates:
        rule = order.dropoff_building.gender_rule
        gender = "female" if rule == GenderRule.FEMALE_ONLY else "male"
        pool = pools.get(gender)
        if pool is None:
            pool = pools[gender] = _Pool.read(campus, gender, now)
        if not pool.online:
            continue  # nobody could take leg 2: no relay (the order is flagged as it is)
        if now - order.created_at < wait and pool.free:
            continue  # a free admitted rider may still take it to the door
        handover = _leg1_arrival(order, now)
        if not pool.claim(handover + HANDOFF_WINDOW):
            continue  # no admitted rider will have room by then: wait for one to take it whole
        planned += relay_plan(order=order, now=now, leg1_eta=handover) is not None
    return planned


# Leg 1's rider has to be found and reach the pickup before the ride to the station starts.
LEG1_START = timedelta(minutes=3)


def _leg1_arrival(order: Order, now: datetime) -> datetime:
    """When leg 1 is expected at the station: found and at the pickup, then the pickup and the
    ride at cycling pace (the dispatcher re-plans with the real route once a rider has it)."""
    station = relay_station(order)
    pickup = order.pickup_building
    d1 = haversine_m(pickup.lng, pickup.lat, *_pt(station.location))
    return now + LEG1_START + timedelta(seconds=60 + d1 * 1.4 / 4.0)


@dataclass
class _Pool:
    """The riders of one gender online on a campus, as relay planning needs them: how many,
    how many have room now, and when each is expected to have room for a leg 2 (sorted), less
    the leg 2s already planned and waiting for a rider."""

    online: int
    free: int
    free_times: list[datetime]

    @classmethod
    def read(cls, campus, gender: str, now: datetime) -> _Pool:
        from dispatch.selectors import rider_route
        from riders.models import RiderProfile

        profiles = list(
            RiderProfile.objects.filter(
                campus=campus, online=True, verified=True, user__gender=gender
            ).select_related("user", "campus")
        )
        times = []
        for p in profiles:
            if rules.rider_load(p.user) < rules.rider_capacity(p):
                times.append(now)
            else:  # full: room once the planned route's next drop-off is done
                drops = [s.eta for s in rider_route(p.user, now=now).stops if s.kind == "delivery"]
                times.append(min(drops, default=now))
        times.sort()
        waiting = RelayLeg.objects.filter(
            number=2,
            rider__isnull=True,
            order__campus=campus,
            order__status__in=BEFORE_HANDOFF + (Status.OPEN,),
            order__dropoff_building__gender_rule=(
                GenderRule.FEMALE_ONLY if gender == "female" else GenderRule.MALE_ONLY
            ),
        ).count()
        free = sum(1 for t in times if t <= now)
        return cls(online=len(profiles), free=free, free_times=times[waiting:])

    def claim(self, by: datetime) -> bool:
        """Reserve the first rider expected to have room by `by` for a new leg 2."""
        if self.free_times and self.free_times[0] <= by:
            self.free_times.pop(0)
            return True
        return False


def relay_dispatch(*, campus, now: datetime, mode: str = "") -> tuple[int, int]:
    """Leg 2s without a rider whose slot is near: the nearest free admitted rider to the station
    gets it. A leg 2 not placed FIND_LEG2_WITHIN into its slot is flagged to operators.
    Returns (assigned, escalated)."""
    from dispatch import selectors
    from dispatch import services as dispatch
    from riders.models import RiderProfile
    from tracking import live

    assigned = escalated = 0
    legs = (
        RelayLeg.objects.filter(
            number=2, rider__isnull=True, order__campus=campus, order__status__in=WITH_RIDER
        )
        .select_related("order__dropoff_building", "order__campus", "order__rider", "station")
        .order_by("window_start", "pk")
    )
    busy = set(
        RelayLeg.objects.filter(number=2, order__status__in=WITH_RIDER, order__campus=campus)
        .exclude(order__status=Status.RELAY_ACCEPTED)
        .exclude(order__status=Status.DELIVERING)
        .exclude(rider__isnull=True)
        .values_list("rider_id", flat=True)
    )
    profiles = list(
        RiderProfile.objects.filter(campus=campus, online=True, verified=True).select_related(
            "user", "campus"
        )
    )
    for leg in legs:
        order = leg.order
        if order.rider_id and order.dropoff_building.admits(order.rider.gender):
            continue  # leg 1's rider may enter: they deliver it themselves, no relay
        if order.status != Status.AT_STATION:
            # The scarce admitted riders are not tied down before the item is at the station.
            continue
        sx, sy = _pt(leg.station.location)
        best, best_d = None, float("inf")
        for p in profiles:
            if p.user_id in busy or leg2_refusal(p.user, order):
                continue
            if rules.rider_load(p.user) >= rules.rider_capacity(p):
                continue
            pos = live.position_get(p.user_id)
            d = haversine_m(pos["lng"], pos["lat"], sx, sy) if pos else 1e6
            if d < best_d:
                best, best_d = p, d
        if best is not None:
            relay_leg2_assign(order=order, rider=best.user, now=now)
            busy.add(best.user_id)
            assigned += 1
            continue
        if leg.window_start and now - leg.window_start >= FIND_LEG2_WITHIN:
            settings = selectors.dispatch_settings_get(order.campus)
            flagged = dispatch.risk_flag(
                order=order,
                reason=_("No relay rider found at %(station)s.") % {"station": str(leg.station)},
                promised_at=selectors.order_due(order, settings),
                predicted_at=None,
                now=now,
                mode=mode or settings.mode,
            )
            if flagged is not None:
                RelayLeg.objects.filter(pk=leg.pk).update(escalated_at=now)
                escalated += 1
    return assigned, escalated
