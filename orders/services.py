"""Every write to orders. order_transition is the only writer of Order.status."""

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campus.geo import haversine_m
from campus.models import Building
from orders import pricing, rules
from orders.errors import (
    AlreadyRated,
    InvalidTransition,
    NotAllowed,
    OrderError,
    OrderTaken,
    StepNotReady,
)
from orders.kinds import KIND_DETAILS
from orders.models import (
    TAKEOUT,
    CustomerRating,
    CustomerRatingTag,
    Kind,
    Order,
    OrderEvent,
    Rating,
    RatingTag,
    RequiredGender,
    yuan,
)
from orders.photos import photo_process, photo_store
from orders.status import TRANSITIONS, Status
from payments import services as payments
from payments.errors import AlreadyPaid, InsufficientFunds
from tracking import broadcast, proof

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
    description: str = "",
    pickup_detail: str = "",
    dropoff_detail: str = "",
    required_gender: str = RequiredGender.ANY,
    photo=None,
    details: dict | None = None,
    urgent: bool = False,
    deliver_by=None,
    tip_fen: int = 0,
    quote_id: str | None = None,
    pay: bool = True,
    prep_minutes: int = 0,
) -> Order:
    """Place an order, pending payment. With `pay` (the default) it is paid from the customer's
    wallet at once when the balance covers it, and so opens to riders; otherwise it stays pending
    until the customer tops up and pays (order_pay).

    The price is its quote's: the one the customer saw (`quote_id`, honoured within its lifetime,
    refused after: pricing.QuoteExpired) or, without one, priced now. A customer's input is
    checked before this by orders.kinds.order_input_clean (pages and API); this checks what must
    hold for every caller. `details` are the kind's own fields (orders/kinds.py)."""
    if pickup_building.campus_id != dropoff_building.campus_id:
        raise OrderError(_("Pickup and drop-off must be on the same campus."))
    if required_gender != RequiredGender.ANY and not dropoff_building.admits(required_gender):
        raise OrderError(
            _("%(building)s does not admit riders of the gender you asked for.")
            % {"building": dropoff_building.display_name}
        )
    # Takeout has no errand details: its food is on the merchant's ticket (merchants/).
    allowed = KIND_DETAILS[kind].base_fields if kind in KIND_DETAILS else {}
    details = {k: v for k, v in (details or {}).items() if k in allowed and v is not None}
    request = pricing.QuoteRequest.of(
        kind=kind,
        pickup=pickup_building,
        dropoff=dropoff_building,
        details=details,
        urgent=urgent,
        deliver_by=deliver_by,
        tip_fen=tip_fen,
    )
    if quote_id:
        quote = pricing.quote_check(token=quote_id, request=request, customer=customer)
    else:
        quote = pricing.quote_price(request=request)
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
        price_fen=quote.fee_fen,
        price_lines=[line.stored() for line in quote.lines if line.code in pricing.FEE_CODES],
        tip_fen=tip_fen,
        distance_m=quote.distance_m,
        urgent=request.urgent and kind in pricing.URGENT_KINDS,
        deliver_by=request.deliver_by,
        # Takeout: a rider can only leave once the food is ready (`prep_minutes`).
        promised_at=quote.promised_at
        if request.deliver_by
        else quote.promised_at + timedelta(minutes=prep_minutes),
        opens_at=quote.opens_at,
        status=Status.PENDING,
        # The kind's columns (a custom errand's offer is not one: it is the fee itself).
        **{k: v for k, v in details.items() if k != "offered_price_fen"},
    )
    if order.confidential or proof.delivery_code_wanted(order.campus_id, kind):
        # Sealed hand to hand (or the campus asks for it): the rider marks it delivered with this
        # code, which only the customer sees (tracking.proof).
        order.delivery_code = f"{secrets.randbelow(10**4):04d}"
    if photo is not None:
        photo_store(order.photo, order.photo_thumb, photo_process(photo, owner=customer))
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
    if pay:
        try:
            # Inserted by this transaction, the order is seen by nobody else yet: no row to lock
            # again. The savepoint undoes a short wallet's hold.
            return order_pay(order=order, payer=customer, created=True)
        except InsufficientFunds:
            pass  # stays pending: the order page offers top-up and pay
    broadcast.order_changed_on_commit(order, event)  # (once paid, "open" is the news)
    return order


@transaction.atomic
def order_pay(*, order: Order, payer, created: bool = False) -> Order:
    """Pay a pending order from the payer's wallet (wallet -> escrow) and open it to riders.

    The order's row lock makes two payments of one order at once charge once: the second finds
    it open and gets AlreadyPaid (409). `created`: order_create inserted `order` in this very
    transaction, so it is locked already and as fresh as can be.
    """
    if not created:
        order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    if order.status != Status.PENDING:
        raise AlreadyPaid()
    payments.order_payment_hold(order=order, payer=payer)
    return order_transition(
        order=order, to=Status.OPEN, actor=None, note="paid from wallet", locked=created
    )


@transaction.atomic
def order_transition(
    *, order: Order, to: str, actor, note: str = "", code: str = "", locked: bool = False
) -> Order:
    """Move an order to `to`: lock, check the table and the actor, log, push on commit.

    `actor` None is the platform itself (payment callbacks, expiry, dispatch). Accepting sets the
    actor as the rider; releasing (accepted -> open) clears it. `locked`: the caller holds the
    order's row lock in this transaction and `order` is fresh (order_pay of a new order).
    """
    if not locked:
        # of=("self",): lock the order row only; PostgreSQL refuses FOR UPDATE on the nullable
        # side of the outer join to the rider.
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("dropoff_building", "customer", "rider")
            .get(pk=order.pk)
        )
        # After waiting for the lock, PostgreSQL re-reads the locked order row but not the
        # joined rider: a rider who accepted meanwhile shows as rider_id set and rider None.
        # Drop the stale rider so that it loads by the fresh rider_id (found by payments'
        # cancel-vs-accept race test).
        if order.rider_id != (order.rider.pk if order.rider else None):
            Order.rider.field.delete_cached_value(order)
    old = order.status
    if to == Status.ACCEPTED and old != Status.OPEN:
        if old in (Status.ACCEPTED, Status.PICKED_UP, Status.DELIVERING) or order.rider_id:
            raise OrderTaken()
    if to not in TRANSITIONS[old]:
        raise InvalidTransition(old, to)
    rules.check_actor(order, to, actor)
    rules.check_kind_step(order, to, actor, code=code)  # cost recorded, checked in, delivery code

    now = timezone.now()
    changes: dict = {"status": to, "updated_at": now}
    if to == Status.ACCEPTED:
        changes["rider"] = actor
    elif to == Status.RELAY_ACCEPTED and actor is not None and not actor.is_staff:
        changes["rider"] = actor  # leg 2's rider carries it on from the station (dispatch.relay)
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
    if order.kind == TAKEOUT:
        # The merchant's side: its inbox, stock back on a cancellation (orders -> merchants,
        # imported here because merchants.services imports this module).
        from merchants import services as takeout

        takeout.takeout_on_order_transition(order=order, old=old, new=to)
    from riders.services import rider_credit_on_order_transition  # riders imports this module

    rider_credit_on_order_transition(order=order, old=old, new=to, actor=actor)
    broadcast.order_changed_on_commit(order, event)
    return order


def order_accept(*, order: Order, rider) -> Order:
    return order_transition(order=order, to=Status.ACCEPTED, actor=rider)


# --- errand kinds: the rider's steps, ratings, scheduled orders ---------------------------------


def _locked(order: Order) -> Order:
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("pickup_building", "customer", "rider")
        .get(pk=order.pk)
    )


def order_note(*, order: Order, actor, note: str) -> None:
    """Put a notable moment on the order's timeline and push it (the merchant's steps of a
    takeout order, for instance); the status does not change."""
    _note_event(order, actor, note)


def _note_event(order: Order, actor, note: str) -> None:
    """A notable moment that is not a status change: on the timeline, pushed like one."""
    event = OrderEvent.objects.create(
        order=order, old_status=order.status, new_status=order.status, actor=actor, note=note[:255]
    )
    broadcast.order_changed_on_commit(order, event)


@transaction.atomic
def order_record_cost(*, order: Order, rider, actual_cost_fen: int, receipt_photo) -> Order:
    """Buy for me: the rider records what the shopping cost, with the receipt.

    The customer pays this (never more than the budget cap they authorised) plus the fee; the
    ledger settles the difference to the cap (payments). The rider may correct it until delivery.
    """
    order = _locked(order)
    if order.kind != Kind.BUY:
        raise OrderError(_("Only buy-for-me errands have a cost to record."))
    if order.rider_id != rider.pk:
        raise NotAllowed(_("Only the rider carrying the order can record the cost."))
    if order.status not in (Status.ACCEPTED, Status.PICKED_UP, Status.DELIVERING):
        raise StepNotReady(_("The cost is recorded after accepting and before delivery."))
    errors = {}
    if actual_cost_fen is None or actual_cost_fen <= 0:
        errors["actual_cost_fen"] = _("Enter what the shopping cost.")
    elif actual_cost_fen > order.budget_cap_fen:
        errors["actual_cost_fen"] = _(
            "That is more than the ¥%(cap)s the customer authorised: buy less, or ask them to "
            "cancel and order again with a higher budget."
        ) % {"cap": yuan(order.budget_cap_fen)}
    if not receipt_photo:
        errors["receipt_photo"] = _("Add a photo of the receipt.")
    if errors:
        raise ValidationError(errors)
    clean = photo_process(receipt_photo, owner=rider)
    old_files = [order.receipt_photo.name, order.receipt_thumb.name]
    photo_store(order.receipt_photo, order.receipt_thumb, clean)
    order.actual_cost_fen = actual_cost_fen
    order.cost_recorded_at = timezone.now()
    order.save(
        update_fields=[
            "actual_cost_fen",
            "receipt_photo",
            "receipt_thumb",
            "cost_recorded_at",
            "updated_at",
        ]
    )
    storage = order.receipt_photo.storage
    transaction.on_commit(lambda: [storage.delete(n) for n in old_files if n])
    _note_event(
        order,
        rider,
        _("Cost recorded: ¥%(cost)s (budget ¥%(cap)s)")
        % {"cost": yuan(actual_cost_fen), "cap": yuan(order.budget_cap_fen)},
    )
    return order


@transaction.atomic
def order_check_in(
    *, order: Order, rider, lat: float, lng: float, accuracy_m: float | None = None
) -> Order:
    """Queue / seat holding: the rider checks in at the place; position and time are recorded."""
    order = _locked(order)
    if order.kind != Kind.QUEUE:
        raise OrderError(_("Only queue errands have a check-in."))
    if order.rider_id != rider.pk:
        raise NotAllowed(_("Only the rider carrying the order can check in."))
    if order.status not in (Status.ACCEPTED, Status.PICKED_UP):
        raise StepNotReady(_("Check in after accepting the order and before handing over."))
    if order.checked_in_at:
        return order
    now = timezone.now()
    earliest = order.start_at - timedelta(minutes=rules.CHECK_IN_EARLY_MINUTES)
    if now < earliest:
        at = timezone.localtime(earliest).strftime("%H:%M")
        raise StepNotReady(_("Too early: check in from %(t)s.") % {"t": at})
    place = order.pickup_building
    distance = haversine_m(lng, lat, place.lng, place.lat)
    slack = min(max(accuracy_m or 0, 0), rules.CHECK_IN_ACCURACY_M)
    if distance > rules.CHECK_IN_RADIUS_M + slack:
        raise StepNotReady(
            _("You are %(d)d m from %(place)s: check in when you are there.")
            % {"d": round(distance), "place": place.display_name}
        )
    order.checked_in_at = now
    order.check_in_lat, order.check_in_lng = lat, lng
    order.check_in_distance_m = round(distance)
    order.save(
        update_fields=[
            "checked_in_at",
            "check_in_lat",
            "check_in_lng",
            "check_in_distance_m",
            "updated_at",
        ]
    )
    _note_event(
        order,
        rider,
        _("Rider checked in at %(place)s (%(d)d m)")
        % {"place": place.display_name, "d": round(distance)},
    )
    return order


def _rate(model, *, order: Order, tag_values, stars, tags, comment, late):
    """One rating per order and direction, after delivery: the rule for both directions."""
    if order.status not in (Status.DELIVERED, Status.COMPLETED) or not order.rider_id:
        raise StepNotReady(late)
    if not 1 <= int(stars) <= 5:
        raise ValidationError({"stars": _("Give 1 to 5 stars.")})
    unknown = set(tags) - set(tag_values)
    if unknown:
        raise ValidationError({"tags": _("Unknown tag: %(t)s") % {"t": ", ".join(unknown)}})
    if model.objects.filter(order=order).exists():
        raise AlreadyRated()
    try:
        with transaction.atomic():
            return model.objects.create(
                order=order,
                customer_id=order.customer_id,
                rider_id=order.rider_id,
                stars=int(stars),
                tags=sorted(set(tags)),
                comment=comment.strip()[:500],
            )
    except IntegrityError:
        raise AlreadyRated() from None


@transaction.atomic
def order_rate(*, order: Order, customer, stars: int, tags=(), comment: str = "") -> Rating:
    """The customer rates the rider once, after delivery."""
    if order.customer_id != customer.pk:
        raise NotAllowed(_("Only the customer can rate this order."))
    rating = _rate(
        Rating,
        order=order,
        tag_values=RatingTag.values,
        stars=stars,
        tags=tags,
        comment=comment,
        late=_("You can rate the rider once the order is delivered."),
    )
    from riders.services import credit_refresh_on_commit  # riders imports this module

    if order.rider_id:  # ratings count towards the rider's credit
        credit_refresh_on_commit(order.rider_id)
    return rating


@transaction.atomic
def order_rate_customer(
    *, order: Order, rider, stars: int, tags=(), comment: str = ""
) -> CustomerRating:
    """The rider rates the customer once, after delivery."""
    if not order.rider_id or order.rider_id != rider.pk:
        raise NotAllowed(_("Only the rider who delivered this order can rate the customer."))
    return _rate(
        CustomerRating,
        order=order,
        tag_values=CustomerRatingTag.values,
        stars=stars,
        tags=tags,
        comment=comment,
        late=_("You can rate the customer once the order is delivered."),
    )


def order_open_due_scheduled(*, now=None) -> int:
    """Open scheduled orders whose time has come: clear `opens_at` and tell everyone.

    Riders already see an order once `opens_at` has passed (rules.opened_q), so a late run of
    this job hides nothing; it records the moment on the timeline and pushes it to the customer
    and to the riders' boards. Returns how many orders it opened. Run every minute
    (`manage.py open_scheduled_orders`; the demo process runs it too).
    """
    now = now or timezone.now()
    due = Order.objects.filter(status=Status.OPEN, opens_at__lte=now).values_list("pk", flat=True)
    opened = 0
    for pk in list(due):
        with transaction.atomic():
            won = Order.objects.filter(pk=pk, status=Status.OPEN, opens_at__lte=now).update(
                opens_at=None, updated_at=now
            )
            if not won:
                continue
            order = Order.objects.select_related("rider").get(pk=pk)
            _note_event(order, None, _("Scheduled time reached: open to riders now"))
            opened += 1
    return opened
