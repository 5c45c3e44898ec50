"""Who may move an order where, and which riders may take it: the one place for these rules.

Riders are read through `user.rider_profile` (the riders app) without importing it, so that the
dependency stays riders -> orders.
"""

from django.db.models import Q
from django.utils.translation import gettext as _

from campus.models import Building, GenderRule
from orders.errors import NotAllowed
from orders.models import Order, RequiredGender
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
    refusal = pool_refusal(user.gender, order.required_gender, order.dropoff_building.gender_rule)
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
        return Q(required_gender=RequiredGender.ANY) & Q(dropoff_building__gender_rule="any")
    return q & ~Q(dropoff_building__gender_rule=barred)


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
