"""Proof of pickup and delivery: what confirms each step, checked inside the one transition.

What a step needs comes from the campus's ProofSettings for the order's kind (DEFAULTS when the
campus has none):

* pickup: the parcel's pickup code (取件码, typed from the parcel's label), a photo, or the
  merchant's confirmation (takeout: the merchant portal calls `proof_merchant_confirm` when it
  hands the food over; until then a rider cannot mark it picked up);
* delivery: the customer's 4-digit delivery code (Order.delivery_code, shown to the customer
  only), a photo of the hand-over, or either. A confidential document always needs the code.

`orders.services.order_transition` calls `proof_confirm_step` (through orders.rules) for every
status change; it raises ProofRequired when a rider's step lacks its proof and records how the
step was confirmed (OrderProof) in the same transaction. A photo is uploaded first
(`proof_photo_add`) and then counts for its step. Operators and the platform itself may move an
order without proof: that is recorded as an override.
"""

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from campus_errand.memo import remembered
from orders.errors import DeliveryCodeRefused, NotAllowed, OrderError, StepNotReady
from orders.status import Status
from tracking.models import OrderProof, ProofMethod, ProofSettings, ProofStage

M = ProofMethod
# What a campus asks when it has no ProofSettings row for a kind. Nothing but the built-in rule
# (confidential documents need the customer's code): operators switch proofs on per kind.
# Takeout (merchants) is picked up on the merchant's confirmation.
DEFAULTS: dict[str, tuple[str, str]] = {
    "parcel": (M.NONE, M.NONE),
    "buy": (M.NONE, M.NONE),
    "document": (M.NONE, M.NONE),
    "queue": (M.NONE, M.NONE),
    "custom": (M.NONE, M.NONE),
    "takeout": (M.MERCHANT, M.NONE),
}
PHOTOS_PER_STEP = 3
STEP_OF = {Status.PICKED_UP: ProofStage.PICKUP, Status.DELIVERED: ProofStage.DELIVERY}
# The statuses in which a rider may add a photo for a stage (before the step it confirms).
PHOTO_WHILE = {
    ProofStage.PICKUP: {Status.ACCEPTED},
    ProofStage.DELIVERY: {Status.PICKED_UP, Status.RELAY_ACCEPTED, Status.DELIVERING},
}
_CODE_CLEAN = re.compile(r"[\s\-_]+")


class ProofRequired(OrderError):
    """The step needs its proof (a code, a photo, the merchant's confirmation)."""

    http_status = 400
    code = "proof_required"


def settings_for(campus_id: int, kind: str) -> tuple[str, str]:
    """(pickup method, delivery method) set for this campus and kind."""

    def load() -> tuple[str, str]:
        row = (
            ProofSettings.objects.filter(campus_id=campus_id, kind=kind)
            .values_list("pickup", "delivery")
            .first()
        )
        return tuple(row) if row else DEFAULTS.get(kind, (M.NONE, M.NONE))

    return remembered(f"proof:{campus_id}:{kind}", load)


def delivery_code_wanted(campus_id: int, kind: str) -> bool:
    """Whether a new order of this kind gets a delivery code (orders.services.order_create)."""
    return settings_for(campus_id, kind)[1] in (M.CODE, M.CODE_OR_PHOTO)


def required_method(order, stage: str, configured: tuple[str, str] | None = None) -> str:
    """What this order's step needs, after the order's own facts: a code the order does not have
    cannot be asked for (an order placed before the campus asked for codes), so a photo is."""
    pickup, delivery = configured or settings_for(order.campus_id, order.kind)
    if stage == ProofStage.DELIVERY:
        if order.confidential:
            return M.CODE
        method, has_code = delivery, bool(order.delivery_code)
    else:
        method, has_code = pickup, bool(order.pickup_code)
    if method in (M.CODE, M.CODE_OR_PHOTO) and not has_code:
        return M.PHOTO
    return method


@dataclass(frozen=True)
class StepProof:
    """What the rider's next step needs, for the rider's forms (templates/tracking/_proof_form)."""

    to: str
    stage: str
    method: str

    @property
    def label(self) -> str:
        return str(Status(self.to).label)

    @property
    def takes_code(self) -> bool:
        return self.method in (M.CODE, M.CODE_OR_PHOTO)

    @property
    def takes_photo(self) -> bool:
        return self.method in (M.PHOTO, M.CODE_OR_PHOTO)

    @property
    def needs_merchant(self) -> bool:
        return self.method == M.MERCHANT

    @property
    def code_label(self) -> str:
        if self.stage == ProofStage.PICKUP:
            return _("Pickup code on the parcel")
        return _("Customer's delivery code")


def step_proof(order, to: str | None) -> StepProof | None:
    """The proof the rider's step to `to` needs, or None when it needs none."""
    stage = STEP_OF.get(to)
    if stage is None:
        return None
    method = required_method(order, stage)
    return None if method == M.NONE else StepProof(to=to, stage=stage, method=method)


def _has(order, stage: str, method: str) -> bool:
    return OrderProof.objects.filter(order=order, stage=stage, method=method).exists()


def _same_code(given: str, expected: str) -> bool:
    def clean(value: str) -> str:
        return _CODE_CLEAN.sub("", value or "").upper()

    return bool(clean(given)) and clean(given) == clean(expected)


def proof_confirm_step(order, to: str, actor, *, code: str = "") -> None:
    """Check that a step carries its proof and record how it was confirmed.

    Called by orders.rules.check_kind_step inside order_transition (the order row is locked):
    whatever it writes is undone if the transition fails.
    """
    stage = STEP_OF.get(to)
    if stage is None:
        return
    method = required_method(order, stage)
    if method == M.NONE:
        return
    if actor is None or actor.is_staff:
        OrderProof.objects.create(
            order=order, stage=stage, method=OrderProof.Method.OVERRIDE, actor=actor
        )
        return
    code = (code or "").strip()
    if method == M.MERCHANT:
        if not _has(order, stage, OrderProof.Method.MERCHANT):
            raise StepNotReady(_("Wait for the merchant to hand the order over."))
        return
    if code and method in (M.CODE, M.CODE_OR_PHOTO):
        _check_code(order, stage, code)
        OrderProof.objects.create(
            order=order, stage=stage, method=OrderProof.Method.CODE, actor=actor
        )
        return
    if method in (M.PHOTO, M.CODE_OR_PHOTO) and _has(order, stage, OrderProof.Method.PHOTO):
        return
    if stage == ProofStage.DELIVERY and method != M.PHOTO:
        raise DeliveryCodeRefused(_missing_message(stage, method))
    raise ProofRequired(_missing_message(stage, method))


def _check_code(order, stage: str, code: str) -> None:
    if stage == ProofStage.DELIVERY:
        from orders.rules import check_delivery_code

        check_delivery_code(order, code)  # wrong codes count towards the lock-out
        return
    if not _same_code(code, order.pickup_code):
        raise ProofRequired(_("That is not this parcel's pickup code: check the label."))


def _missing_message(stage: str, method: str) -> str:
    if stage == ProofStage.PICKUP:
        return {
            M.CODE: _("Enter the pickup code on the parcel's label."),
            M.PHOTO: _("Add a photo of the item to confirm the pickup."),
            M.CODE_OR_PHOTO: _("Enter the pickup code on the parcel, or add a photo of it."),
        }[method]
    return {
        M.CODE: _("Enter the customer's 4-digit delivery code."),
        M.PHOTO: _("Add a photo of the hand-over to confirm the delivery."),
        M.CODE_OR_PHOTO: _("Enter the customer's 4-digit delivery code, or add a photo."),
    }[method]


@transaction.atomic
def proof_photo_add(*, order, rider, stage: str, photo) -> OrderProof:
    """The rider's photo of the item (pickup) or of the hand-over (delivery), kept for disputes.

    Re-encoded like every photo (no EXIF, no GPS); at most PHOTOS_PER_STEP per step."""
    from orders.models import Order
    from orders.photos import photo_process, photo_store

    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    if stage not in ProofStage.values:
        raise OrderError(_("Unknown step."))
    if order.rider_id != rider.pk:
        raise NotAllowed(_("Only the rider carrying the order can add a proof photo."))
    if order.status not in PHOTO_WHILE[stage]:
        raise StepNotReady(_("This is not the time for a photo of this step."))
    taken = OrderProof.objects.filter(
        order=order, stage=stage, method=OrderProof.Method.PHOTO
    ).count()
    if taken >= PHOTOS_PER_STEP:
        raise OrderError(
            _("This step already has %(n)d photos, the most it takes.") % {"n": PHOTOS_PER_STEP}
        )
    clean = photo_process(photo)
    proof = OrderProof(order=order, stage=stage, method=OrderProof.Method.PHOTO, actor=rider)
    photo_store(proof.photo, proof.photo_thumb, clean)
    proof.save()
    return proof


def proof_merchant_confirm(*, order, by) -> OrderProof:
    """The merchant handed the order to its rider (the merchant portal's hook).

    The caller checks that `by` speaks for the order's merchant. Idempotent."""
    existing = OrderProof.objects.filter(
        order=order, stage=ProofStage.PICKUP, method=OrderProof.Method.MERCHANT
    ).first()
    if existing:
        return existing
    return OrderProof.objects.create(
        order=order, stage=ProofStage.PICKUP, method=OrderProof.Method.MERCHANT, actor=by
    )


def proofs_for(order) -> list[OrderProof]:
    return list(OrderProof.objects.filter(order=order).select_related("actor"))
