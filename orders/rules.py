"""Who may move an order where, and which riders may take it: the one place for these rules.

Riders are read through `user.rider_profile` (the riders app) without importing it, so that the
dependency stays riders -> orders.
"""

from django.db.models import Q
from django.utils.translation import gettext as _

from campus.models import GenderRule
from orders.errors import NotAllowed
from orders.models import Order, RequiredGender
from orders.status import Status

CUSTOMER_MAY_CANCEL = {Status.PENDING, Status.OPEN, Status.ACCEPTED}
RIDER_STEPS = {Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED, Status.AT_STATION}


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
    pool = user.gender
    if order.required_gender != RequiredGender.ANY and order.required_gender != pool:
        return _("The customer asked for a rider of the other gender.")
    if not order.dropoff_building.admits(pool):
        return _("Riders of your gender cannot enter the drop-off building.")
    return None


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
    if actor is None:
        return
    if to == Status.ACCEPTED:
        reason = rider_refusal(actor, order)
        if reason:
            raise NotAllowed(reason)
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
