"""Every write to orders. order_transition is the only writer of Order.status."""

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campus.models import Building
from orders import rules
from orders.errors import InvalidTransition, OrderError, OrderTaken
from orders.models import Order, OrderEvent, RequiredGender
from orders.photos import photo_process
from orders.status import TRANSITIONS, Status
from payments import services as payments
from payments.errors import AlreadyPaid, InsufficientFunds
from tracking import broadcast

TIMESTAMP_FIELD = {
    Status.ACCEPTED: "accepted_at",
    Status.PICKED_UP: "picked_up_at",
    Status.DELIVERED: "delivered_at",
}


def new_order_number() -> str:
    """Date (read aloud easily) + 8 random digits (nobody can guess a neighbour's order)."""
    today = timezone.localdate().strftime("%y%m%d")
    return f"{today}{secrets.randbelow(10**8):08d}"


@transaction.atomic
def order_create(
    *,
    customer,
    kind: str,
    pickup_building: Building,
    dropoff_building: Building,
    description: str,
    pickup_detail: str = "",
    dropoff_detail: str = "",
    required_gender: str = RequiredGender.ANY,
    photo=None,
    pay: bool = True,
) -> Order:
    """Place an order, pending payment. With `pay` (the default) it is paid from the customer's
    wallet at once when the balance covers it, and so opens to riders; otherwise it stays pending
    until the customer tops up and pays (order_pay)."""
    if pickup_building.campus_id != dropoff_building.campus_id:
        raise OrderError(_("Pickup and drop-off must be on the same campus."))
    if required_gender != RequiredGender.ANY and not dropoff_building.admits(required_gender):
        raise OrderError(
            _("%(building)s does not admit riders of the gender you asked for.")
            % {"building": dropoff_building.display_name}
        )
    order = Order(
        campus_id=pickup_building.campus_id,
        customer=customer,
        kind=kind,
        pickup_building=pickup_building,
        pickup_detail=pickup_detail,
        dropoff_building=dropoff_building,
        dropoff_detail=dropoff_detail,
        description=description,
        required_gender=required_gender,
        # Placeholder until the pricing service lands (see the ordering-and-money issue).
        price_fen=settings.PLACEHOLDER_ORDER_FEE_FEN,
        status=Status.PENDING,
    )
    if photo is not None:
        clean = photo_process(photo)
        order.photo.save(clean.name, clean, save=False)
    for _attempt in range(5):
        order.number = new_order_number()
        try:
            with transaction.atomic():
                order.save()
            break
        except IntegrityError:
            if Order.objects.filter(number=order.number).exists():
                continue
            raise
    event = OrderEvent.objects.create(
        order=order, old_status="", new_status=Status.PENDING, actor=customer
    )
    broadcast.order_changed_on_commit(order, event)
    if pay:
        try:
            return order_pay(order=order, payer=customer)  # its savepoint undoes a short wallet
        except InsufficientFunds:
            pass  # stays pending: the order page offers top-up and pay
    return order


@transaction.atomic
def order_pay(*, order: Order, payer) -> Order:
    """Pay a pending order from the payer's wallet (wallet -> escrow) and open it to riders.

    The order's row lock makes two payments of one order at once charge once: the second finds
    it open and gets AlreadyPaid (409).
    """
    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    if order.status != Status.PENDING:
        raise AlreadyPaid()
    payments.order_payment_hold(order=order, payer=payer)
    return order_transition(order=order, to=Status.OPEN, actor=None, note="paid from wallet")


@transaction.atomic
def order_transition(*, order: Order, to: str, actor, note: str = "") -> Order:
    """Move an order to `to`: lock, check the table and the actor, log, push on commit.

    `actor` None is the platform itself (payment callbacks, expiry, dispatch). Accepting sets the
    actor as the rider; releasing (accepted -> open) clears it.
    """
    # of=("self",): lock the order row only; PostgreSQL refuses FOR UPDATE on the nullable side
    # of the outer join to the rider.
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("dropoff_building", "customer", "rider")
        .get(pk=order.pk)
    )
    # After waiting for the lock, PostgreSQL re-reads the locked order row but not the joined
    # rider: a rider who accepted meanwhile shows as rider_id set and rider None. Drop the stale
    # rider so that it loads by the fresh rider_id (found by payments' cancel-vs-accept race test).
    if order.rider_id != (order.rider.pk if order.rider else None):
        Order.rider.field.delete_cached_value(order)
    old = order.status
    if to == Status.ACCEPTED and old != Status.OPEN:
        if old in (Status.ACCEPTED, Status.PICKED_UP, Status.DELIVERING) or order.rider_id:
            raise OrderTaken()
    if to not in TRANSITIONS[old]:
        raise InvalidTransition(old, to)
    rules.check_actor(order, to, actor)

    now = timezone.now()
    changes: dict = {"status": to, "updated_at": now}
    if to == Status.ACCEPTED:
        changes["rider"] = actor
    elif to == Status.OPEN and old == Status.ACCEPTED:
        changes["rider"] = None
        changes["accepted_at"] = None
    if field := TIMESTAMP_FIELD.get(to):
        changes[field] = now
    # The conditional update is the race guard where row locks are not available (SQLite).
    won = Order.objects.filter(pk=order.pk, status=old).update(**changes)
    if not won:
        raise OrderTaken() if to == Status.ACCEPTED else InvalidTransition(old, to)
    for name, value in changes.items():
        setattr(order, name, value)
    event = OrderEvent.objects.create(
        order=order, old_status=old, new_status=to, actor=actor, note=note[:255]
    )
    # The money side (refund by stage, settlement, late compensation): one call, same transaction.
    payments.order_money_on_transition(order=order, old=old, new=to, actor=actor, note=note)
    broadcast.order_changed_on_commit(order, event)
    return order


def order_accept(*, order: Order, rider) -> Order:
    return order_transition(order=order, to=Status.ACCEPTED, actor=rider)
