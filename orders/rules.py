"""Who may move an order where, and which riders may take it: the one place for these rules.

Riders are read through `user.rider_profile` (the riders app) without importing it, so that the
dependency stays riders -> orders.
"""

from django.db.models import Q
from django.utils.translation import gettext as _

from campus.models import Building, GenderRule
from orders.errors import NotAllowed
from orders.models import TAKEOUT, Order, RequiredGender
from orders.status import WITH_RIDER, Status

CUSTOMER_MAY_CANCEL = {Status.PENDING, Status.OPEN, Status.ACCEPTED}
RIDER_STEPS = {Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED, Status.AT_STATION}

# Used when a campus has no dispatch settings row yet; dispatch.models takes its field defaults
# from here so that both read the same numbers.
DEFAULT_RIDER_CAPACITY = 3  # orders carried (or heading for) at once
DEFAULT_REACH_M = 1500  # walking distance on the campus paths from the rider to the pickup
# Every gender a user can have: riders ride in their gender's pool.
POOLS = ("male", "female", "undisclosed")


def rider_refusal(user, order: Order) -> str | None:
    """Why this user may not take this order, or None if they may."""
    profile = getattr(user, "rider_profile", None)
    if profile is None:
        return _("Only riders can accept orders.")
    if not profile.verified:
        return _("Your rider account has not been approved yet.")
    if not profile.online:
        return _("Go online before accepting orders.")
    if profile.campus_id != order.campus_id:
        return _("This order is on another campus.")
    if order.customer_id == user.pk:
        return _("You cannot deliver your own order.")
    if refusal := scheduled_refusal(order):
        return refusal
    gender_rule = order.dropoff_building.gender_rule
    if gender_rule != GenderRule.ANY and relay_planned(order):
        gender_rule = GenderRule.ANY  # leg 1 ends at the transfer station (dispatch.relay)
    refusal = pool_refusal(user.gender, order.required_gender, gender_rule)
    if refusal:
        return refusal
    if (offers := getattr(order, "dispatch_offers", None)) is not None:
        # dispatch.Offer's reverse manager: a pending offer reserves the order for its rider.
        if offers.pending().exclude(rider_id=user.pk).exists():
            return _("This order is being offered to another rider right now.")
    if refusal := capacity_refusal(rider_load(user), rider_capacity(profile, order.campus)):
        return refusal
    return reach_refusal(pickup_distance_m(user, order), campus_reach_m(order.campus))


def pool_refusal(pool: str, required_gender: str, dropoff_gender_rule: str) -> str | None:
    """The gender rules alone, on plain values (the dispatcher applies them without queries)."""
    if required_gender != RequiredGender.ANY and required_gender != pool:
        return _("The customer asked for a rider of the other gender.")
    if not Building(gender_rule=dropoff_gender_rule).admits(pool):
        return _("Riders of your gender cannot enter the drop-off building.")
    return None


def relay_planned(order: Order) -> bool:
    """A relay through a transfer station is planned (dispatch.RelayLeg, read through its
    reverse relation without importing dispatch)."""
    legs = getattr(order, "relay_legs", None)
    return legs is not None and order.pk is not None and legs.exists()


def relay_leg2_refusal(order: Order, actor) -> str | None:
    """Who may take over at the station: leg 2's rider, of a gender the building admits."""
    legs = getattr(order, "relay_legs", None)
    if actor is None or legs is None or not legs.filter(number=2, rider=actor).exists():
        return _("Only the relay rider of the second leg can take over.")
    return pool_refusal(actor.gender, order.required_gender, order.dropoff_building.gender_rule)


def admitted_pools(required_gender: str, dropoff_gender_rule: str) -> frozenset[str]:
    """The rider pools that may carry an order with these gender settings."""
    return frozenset(
        pool for pool in POOLS if pool_refusal(pool, required_gender, dropoff_gender_rule) is None
    )


def _dispatch_settings(campus):
    # dispatch.CampusDispatchSettings through its reverse one-to-one (None until an operator
    # saves one): read without importing dispatch, which depends on orders.
    return getattr(campus, "dispatch_settings", None)


def rider_capacity(profile, campus=None) -> int:
    """How many orders this rider may carry at once: their own limit, else the campus's."""
    own = getattr(profile, "capacity", None)
    if own:
        return int(own)
    settings = _dispatch_settings(campus or profile.campus)
    return int(getattr(settings, "rider_capacity", None) or DEFAULT_RIDER_CAPACITY)


def campus_reach_m(campus) -> float:
    settings = _dispatch_settings(campus)
    return float(getattr(settings, "reach_m", None) or DEFAULT_REACH_M)


def rider_load(user) -> int:
    """Orders the rider has accepted and not yet delivered."""
    return Order.objects.filter(rider=user, status__in=WITH_RIDER).count()


def capacity_refusal(load: int, capacity: int) -> str | None:
    if load >= capacity:
        return _("You already carry %(n)d orders, your limit: deliver one first.") % {"n": load}
    return None


def reach_refusal(distance_m: float | None, reach_m: float) -> str | None:
    """Too far from the pickup? Unknown distance (no live position yet) is not held against
    the rider: the position is only known while they share it."""
    if distance_m is not None and distance_m > reach_m:
        return _("The pickup is %(d)d m away from you, beyond the %(r)d m reach.") % {
            "d": round(distance_m),
            "r": round(reach_m),
        }
    return None


def pickup_distance_m(user, order: Order) -> float | None:
    """Walking distance on the campus paths from the rider's live position to the pickup."""
    from campus.graph import campus_graph
    from tracking import live

    position = live.position_get(user.pk)
    if not position:
        return None
    graph = campus_graph(order.campus)
    if len(graph.nodes) == 0:
        return None
    pickup = order.pickup_building
    return graph.route((position["lng"], position["lat"]), (pickup.lng, pickup.lat)).distance_m


def eligible_orders_q(gender: str) -> Q:
    """The database form of rider_refusal's order rules, for boards and dispatch queries."""
    q = Q(required_gender__in=[RequiredGender.ANY, gender])
    barred = GenderRule.FEMALE_ONLY if gender == "male" else GenderRule.MALE_ONLY
    if gender not in ("male", "female"):
        # Riders are in a male or a female pool; anyone else sees nothing gender-restricted.
        return (
            Q(required_gender=RequiredGender.ANY)
            & Q(dropoff_building__gender_rule="any")
            & opened_q()
        )
    # A building the pool may not enter is fine once a relay is planned: leg 1 ends at the
    # transfer station (dispatch.RelayLeg, one leg 1 per order: no duplicate rows).
    return q & (~Q(dropoff_building__gender_rule=barred) | Q(relay_legs__number=1)) & opened_q()


def check_actor(order: Order, to: str, actor) -> None:
    """Raise NotAllowed unless `actor` may move `order` to `to` (None = the system itself)."""
    if to == Status.ACCEPTED:
        # Accepting makes the actor the order's rider: not even the platform accepts for nobody.
        if actor is None:
            raise NotAllowed(_("Only riders can accept orders."))
        reason = rider_refusal(actor, order)
        if reason:
            raise NotAllowed(reason)
        return
    if to == Status.RELAY_ACCEPTED and actor is not None and not actor.is_staff:
        # Taking over at the station makes the actor the order's rider (dispatch.relay).
        if reason := relay_leg2_refusal(order, actor):
            raise NotAllowed(reason)
        return
    if actor is None:
        return
    if actor.is_staff and to != Status.ACCEPTED:
        return
    is_customer = actor.pk == order.customer_id
    is_rider = order.rider_id is not None and actor.pk == order.rider_id
    if to == Status.CANCELLED and is_customer and order.status in CUSTOMER_MAY_CANCEL:
        return
    if to == Status.COMPLETED and is_customer:
        return
    if to in RIDER_STEPS and is_rider:
        return
    if to == Status.OPEN and order.status == Status.ACCEPTED and is_rider:
        return
    if is_customer and to in RIDER_STEPS:
        raise NotAllowed(_("Only the rider carrying the order can mark this."))
    raise NotAllowed()


# --- errand kinds and scheduled orders (orders/kinds.py, orders/pricing.py) ---------------------

# A check-in counts within this distance of the place's entrance (plus the fix's accuracy, up to
# CHECK_IN_ACCURACY_M): indoor GPS is rough.
CHECK_IN_RADIUS_M = 150
CHECK_IN_ACCURACY_M = 100
CHECK_IN_EARLY_MINUTES = 60
DELIVERY_CODE_TRIES = 5  # wrong delivery codes before the rider must wait
DELIVERY_CODE_LOCK_SECONDS = 600


def opened_q(now=None) -> Q:
    """Orders riders may see: not scheduled, or their opening time has come."""
    from django.utils import timezone

    return Q(opens_at__isnull=True) | Q(opens_at__lte=now or timezone.now())


def scheduled_refusal(order: Order, now=None) -> str | None:
    from django.utils import timezone

    if order.opens_at and order.opens_at > (now or timezone.now()):
        return _("This scheduled order opens to riders at %(t)s.") % {
            "t": timezone.localtime(order.opens_at).strftime("%H:%M")
        }
    return None


def can_see_pickup_code(order: Order, user) -> bool:
    """The customer, and the rider carrying the parcel until it is delivered; nobody else."""
    if not getattr(user, "is_authenticated", False) or not order.pickup_code:
        return False
    if user.pk == order.customer_id:
        return True
    return user.pk == order.rider_id and order.status in WITH_RIDER


def can_see_delivery_code(order: Order, user) -> bool:
    return bool(order.delivery_code) and getattr(user, "pk", None) == order.customer_id


def check_kind_step(order: Order, to: str, actor, *, code: str = "") -> None:
    """A kind's own conditions on a step (operators and the system may override them):
    buy-for-me is picked up after the cost is recorded, a queue after the rider checked in; the
    proof of pickup and delivery (pickup code, the customer's delivery code, a photo, the
    merchant's hand-over; a confidential document always needs the code) is tracking.proof's."""
    from orders.errors import StepNotReady
    from orders.models import Kind
    from tracking.proof import proof_confirm_step

    if actor is not None and not actor.is_staff:
        if to == Status.PICKED_UP and order.kind == Kind.BUY and order.actual_cost_fen is None:
            raise StepNotReady(_("Record the actual cost and the receipt photo first."))
        if to == Status.PICKED_UP and order.kind == Kind.QUEUE and order.checked_in_at is None:
            raise StepNotReady(_("Check in at the place first."))
        if order.kind == TAKEOUT:
            check_takeout_step(order, to, actor)
    # Records an operator's or the platform's step that skipped a required proof as an override.
    proof_confirm_step(order, to, actor, code=code)


def check_takeout_step(order: Order, to: str, actor) -> None:
    """Takeout, read from the merchant's ticket (merchants.TakeoutOrder, the order's `takeout`):
    a rider cannot confirm pickup before the merchant marks the food ready, nor take a group meal
    that has not filled; the customer cannot cancel once the merchant has accepted."""
    from orders.errors import StepNotReady

    ticket = getattr(order, "takeout", None)
    if ticket is None:
        return
    if to == Status.PICKED_UP and not ticket.is_ready:
        raise StepNotReady(_("The food is not ready yet: wait until the merchant marks it ready."))
    if to == Status.ACCEPTED and ticket.awaiting_group:
        raise StepNotReady(_("This group meal has not filled yet."))
    if to == Status.CANCELLED and actor.pk == order.customer_id:
        if ticket.source == "group_meal":
            raise NotAllowed(
                _("Leave the group meal on its page instead; it is refunded if it does not fill.")
            )
        if ticket.merchant_status != "new":
            raise StepNotReady(
                _("The merchant is already making your order: ask them or an operator to cancel.")
            )


def check_delivery_code(order: Order, code: str) -> None:
    from django.core.cache import cache

    from orders.errors import DeliveryCodeRefused

    key = f"orders:delivery-code-fails:{order.pk}"
    if (cache.get(key) or 0) >= DELIVERY_CODE_TRIES:
        raise DeliveryCodeRefused(
            _("Too many wrong codes. Ask the customer for the code and try again in 10 minutes.")
        )
    code = (code or "").strip()
    if not code:
        raise DeliveryCodeRefused(_("Enter the customer's 4-digit delivery code."))
    if code != order.delivery_code:
        cache.add(key, 0, DELIVERY_CODE_LOCK_SECONDS)
        cache.incr(key)
        raise DeliveryCodeRefused(_("That delivery code is wrong."))
    cache.delete(key)
