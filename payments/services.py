"""Every write to money. Each service moves money through ONE balanced ledger transaction
(payments.ledger.post) whose `reference` is unique, so the same money can never move twice.

Locking rules (PostgreSQL; SQLite serialises writers anyway):
- a debit locks the account it debits before reading its balance (ledger.post);
- every movement of an order's escrow happens while the order's row is locked (order_transition
  holds it for the hooks, order_pay and dispute_resolve take it), so escrow reads are stable;
- a withdrawal request locks the rider's earnings account; a decision locks the withdrawal row;
- a gateway callback locks its top-up row.

Money flows (account that loses -> account that gains):
- top-up: gateway clearing -> wallet                       (on the gateway's accepted callback)
- grant: promotions expense -> wallet                       (welcome credit, demo seed)
- bonus: promotions expense -> rider earnings              (rider incentives)
- order payment: wallet -> order escrow                     (pending -> open)
- cancel before acceptance / expiry: escrow -> wallet       (full refund)
- cancel after acceptance: escrow -> wallet + rider earnings (refund minus the rider's compensation)
- dispute resolution: escrow -> wallet                       (the refund the operator decides)
- completion: escrow -> rider earnings + platform revenue    (commission at the campus rate on
  the fee; tip and buy-for-me items to the rider in full; unused shopping budget -> wallet)
- late delivery: compensation expense -> wallet             (once per order)
- withdrawal approved: rider earnings -> gateway clearing   (payout)
"""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.errors import NotAllowed
from orders.models import TAKEOUT, Order
from orders.status import Status
from payments import ledger, selectors
from payments.errors import (
    AlreadyPaid,
    DisputeOpen,
    InsufficientFunds,
    InvalidAmount,
    PaymentError,
    PaymentRequired,
    UnknownGateway,
)
from payments.gateways import enabled_gateways, get_gateway
from payments.gateways.base import CallbackRefused, CallbackResult, PaymentIntent
from payments.models import (
    Account,
    AccountKind,
    CallbackOutcome,
    Dispute,
    DisputeStatus,
    GatewayCallback,
    LedgerTransaction,
    TopUp,
    TopUpStatus,
    TransactionKind,
    Withdrawal,
    WithdrawalStatus,
)

TOPUP_MIN_FEN = 100  # ¥1
TOPUP_MAX_FEN = 100_000  # ¥1,000 per top-up
WITHDRAWAL_MIN_FEN = 100
# After pickup an order is no longer cancelled: the customer opens a dispute instead.
DISPUTABLE = {
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.RELAY_ACCEPTED,
    Status.DELIVERING,
    Status.DELIVERED,
}

# What each callback outcome answers (sandbox and WeChat-style gateways: 2xx stops retries; a
# replay is acknowledged so that a genuine gateway retry stops, but nothing is processed twice).
CALLBACK_HTTP_STATUS = {
    CallbackOutcome.ACCEPTED: 200,
    CallbackOutcome.PAYMENT_FAILED: 200,
    CallbackOutcome.REPLAYED: 200,
    CallbackOutcome.DUPLICATE: 409,
    CallbackOutcome.UNKNOWN_INTENT: 404,
    CallbackOutcome.AMOUNT_MISMATCH: 400,
    CallbackOutcome.BAD_SIGNATURE: 401,
    CallbackOutcome.MALFORMED: 400,
    CallbackOutcome.STALE: 400,
}
ACCEPTED_OUTCOMES = {CallbackOutcome.ACCEPTED, CallbackOutcome.PAYMENT_FAILED}


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


def _wallet(user):
    return ledger.account_for_owner(AccountKind.WALLET, user)


def _earnings(user):
    return ledger.account_for_owner(AccountKind.RIDER_EARNINGS, user)


# In the order hooks people are named by id (order.customer_id, order.rider_id), never through
# order.customer / order.rider: after order_transition's SELECT ... FOR UPDATE waited for another
# transaction, PostgreSQL re-checks the locked order row but not the joined rows, so a rider who
# accepted meanwhile shows as rider_id set and `rider` None.


# --- wallet ---------------------------------------------------------------------------------


@transaction.atomic
def wallet_grant(
    *, user, amount_fen: int, reference: str, memo: str = "", actor=None
) -> LedgerTransaction:
    """Promotional credit (welcome bonus, demo money): promotions expense -> wallet.

    Idempotent on `reference`: granting again with the same reference returns the first grant.
    """
    if amount_fen <= 0:
        raise InvalidAmount()
    reference = f"grant:{reference}"
    if existing := ledger.already_posted(reference):
        return existing
    return ledger.post(
        kind=TransactionKind.GRANT,
        reference=reference,
        lines=[
            (ledger.account_system(AccountKind.PROMOTIONS_EXPENSE), -amount_fen),
            (_wallet(user), amount_fen),
        ],
        actor=actor,
        memo=memo or _("Promotional credit"),
    )


@transaction.atomic
def earnings_grant(
    *, rider, amount_fen: int, reference: str, memo: str = "", actor=None
) -> LedgerTransaction:
    """A rider incentive (peak bonus, referral): promotions expense -> rider earnings.
    Idempotent on `reference`, like wallet_grant."""
    if amount_fen <= 0:
        raise InvalidAmount()
    reference = f"bonus:{reference}"
    if existing := ledger.already_posted(reference):
        return existing
    return ledger.post(
        kind=TransactionKind.GRANT,
        reference=reference,
        lines=[
            (ledger.account_system(AccountKind.PROMOTIONS_EXPENSE), -amount_fen),
            (_earnings(rider), amount_fen),
        ],
        actor=actor,
        memo=memo or _("Rider bonus"),
    )


@transaction.atomic
def topup_create(*, user, amount_fen: int, gateway: str = "sandbox") -> tuple[TopUp, PaymentIntent]:
    """Start a top-up: a pending TopUp and the gateway's payment intent. No money moves until
    the gateway's callback says the payer paid."""
    adapter = get_gateway(gateway)
    if not TOPUP_MIN_FEN <= amount_fen <= TOPUP_MAX_FEN:
        raise InvalidAmount(
            _("Top up between %(min)s and %(max)s.")
            % {"min": yuan(TOPUP_MIN_FEN), "max": yuan(TOPUP_MAX_FEN)}
        )
    topup = TopUp.objects.create(
        intent_id=f"ti_{secrets.token_hex(12)}", user=user, gateway=gateway, amount_fen=amount_fen
    )
    return topup, adapter.create_intent(topup)


def gateway_callback_receive(
    *, gateway: str, body: bytes, headers, remote_addr: str | None = None
) -> CallbackResult:
    """A gateway's asynchronous notice about a top-up. Every attempt is recorded with its outcome;
    the wallet is credited exactly once, however often (or however forged) the notice comes."""
    adapter = get_gateway(gateway)
    try:
        notice = adapter.parse_callback(body=body, headers=headers)
    except CallbackRefused as refused:
        return _callback_record(
            gateway=gateway,
            outcome=refused.outcome,
            intent_id=refused.intent_id,
            gateway_txn_id=refused.gateway_txn_id,
            signature=_header(headers, "X-Sandbox-Signature"),
            body=body,
            remote_addr=remote_addr,
        )
    return _callback_apply(gateway=gateway, notice=notice, body=body, remote_addr=remote_addr)


def _header(headers, name: str) -> str:
    return str(headers.get(name, "") or "")[:256]


@transaction.atomic
def _callback_apply(*, gateway: str, notice, body: bytes, remote_addr) -> CallbackResult:
    topup = (
        TopUp.objects.select_for_update()
        .filter(intent_id=notice.intent_id, gateway=gateway)
        .first()
    )
    processed = GatewayCallback.objects.filter(
        gateway=gateway, gateway_txn_id=notice.gateway_txn_id, accepted=True
    ).exists()
    if topup is None:
        outcome = CallbackOutcome.UNKNOWN_INTENT
    elif processed:
        outcome = CallbackOutcome.REPLAYED
    elif topup.status == TopUpStatus.SUCCEEDED:
        outcome = CallbackOutcome.DUPLICATE
    elif notice.amount_fen != topup.amount_fen:
        outcome = CallbackOutcome.AMOUNT_MISMATCH
    elif not notice.succeeded:
        outcome = CallbackOutcome.PAYMENT_FAILED
        topup.status = TopUpStatus.FAILED
        topup.save(update_fields=["status"])
    else:
        outcome = CallbackOutcome.ACCEPTED
        txn = ledger.post(
            kind=TransactionKind.TOPUP,
            reference=f"topup:{topup.intent_id}",
            lines=[
                (ledger.account_system(AccountKind.GATEWAY_CLEARING), -topup.amount_fen),
                (_wallet(topup.user), topup.amount_fen),
            ],
            actor=topup.user,
            memo=f"{gateway} {notice.gateway_txn_id}",
        )
        topup.status = TopUpStatus.SUCCEEDED
        topup.gateway_txn_id = notice.gateway_txn_id
        topup.transaction = txn
        topup.paid_at = timezone.now()
        topup.save(update_fields=["status", "gateway_txn_id", "transaction", "paid_at"])
    return _callback_record(
        gateway=gateway,
        outcome=outcome,
        intent_id=notice.intent_id,
        gateway_txn_id=notice.gateway_txn_id,
        signature=notice.signature,
        body=body,
        remote_addr=remote_addr,
        topup=topup,
    )


def _callback_record(
    *, gateway, outcome, intent_id, gateway_txn_id, signature, body, remote_addr, topup=None
) -> CallbackResult:
    GatewayCallback.objects.create(
        gateway=gateway,
        outcome=outcome,
        accepted=outcome in ACCEPTED_OUTCOMES,
        intent_id=(intent_id or "")[:64],
        gateway_txn_id=(gateway_txn_id or "")[:64],
        signature=signature[:256],
        body=body.decode("utf-8", "replace")[:10_000],
        remote_addr=remote_addr,
        topup=topup,
    )
    return CallbackResult(
        outcome=outcome,
        accepted=outcome in ACCEPTED_OUTCOMES,
        http_status=CALLBACK_HTTP_STATUS[outcome],
        topup=topup,
    )


def sandbox_pay(*, topup: TopUp, payer, succeeded: bool = True) -> CallbackResult:
    """The sandbox cashier's confirm button: the "gateway" sends its signed callback, which goes
    through exactly the path a real callback takes (gateway_callback_receive)."""
    if topup.user_id != payer.pk:
        raise NotAllowed()
    if topup.gateway != "sandbox":
        raise UnknownGateway()
    adapter = get_gateway("sandbox")
    body, headers = adapter.notification(topup, succeeded=succeeded)
    return gateway_callback_receive(gateway="sandbox", body=body, headers=headers)


# --- orders ---------------------------------------------------------------------------------


def order_amount_due(order: Order) -> int:
    """What paying the order takes from the wallet: fee + tip + the pre-authorised shopping
    budget of a buy-for-me order (Order.total_fen; the bare fee for orders without one)."""
    return getattr(order, "total_fen", order.price_fen)


def settlement_split(
    *,
    held: int,
    fee: int,
    tip: int = 0,
    budget_cap: int | None = None,
    actual_cost: int | None = None,
    rate_bp: int,
    has_rider: bool = True,
) -> dict[str, int]:
    """How a completed order's escrow is shared out, claim by claim, each capped by what is left
    (a dispute refund may have taken some):

    1. the rider is reimbursed the items they bought (buy-for-me actual cost), no commission;
    2. the unused shopping budget (cap - actual cost) goes back to the customer;
    3. the tip goes to the rider in full;
    4. the platform takes its commission on the rest (the fee), rounded half up to the fen, and
       the rider gets what remains, so no fen is lost to rounding.
    """
    left = held
    items = min(actual_cost or 0, left)
    left -= items
    unused = min(max((budget_cap or 0) - (actual_cost or 0), 0), left) if budget_cap else 0
    left -= unused
    tip_paid = min(tip, left)
    left -= tip_paid
    commission = (left * rate_bp + 5_000) // 10_000 if has_rider else left + items + tip_paid
    rider = items + tip_paid + left - commission if has_rider else 0
    return {"rider": rider, "commission": commission, "customer": unused}


def rider_leg_shares(order: Order, rider_fen: int) -> list[tuple[int, int]]:
    """The rider's share, per leg: a relayed order (dispatch.RelayLeg, both legs ridden by two
    riders) pays each by their leg's planned distance, leg 1 taking the rounding; otherwise all
    goes to the order's rider."""
    legs = getattr(order, "relay_legs", None)
    ridden = list(legs.filter(rider__isnull=False).order_by("number")) if legs is not None else []
    if len(ridden) != 2 or ridden[0].rider_id == ridden[1].rider_id:
        return [(order.rider_id, rider_fen)]
    total = sum(max(leg.distance_m, 1.0) for leg in ridden)
    second = int(rider_fen * max(ridden[1].distance_m, 1.0) / total)
    return [(ridden[0].rider_id, rider_fen - second), (ridden[1].rider_id, second)]


def promised_at_of(order: Order):
    """The promised delivery time, once orders carries one (Order.promised_at)."""
    return getattr(order, "promised_at", None)


def order_payment_hold(*, order: Order, payer) -> LedgerTransaction | None:
    """Wallet -> the order's escrow (created here: one per order). Runs inside
    orders.services.order_pay's transaction, which holds the order's row lock and then opens
    the order. InsufficientFunds if the wallet is short (order_pay's savepoint undoes it all)."""
    if order.customer_id != payer.pk:
        raise NotAllowed(_("Only the customer can pay for this order."))
    # A second payment is refused before this (order_pay: the order is no longer pending under
    # its row lock); the transaction's unique reference is the backstop.
    reference = f"order-payment:{order.pk}"
    amount = order_amount_due(order)
    if amount == 0:
        return None
    return ledger.post(
        kind=TransactionKind.ORDER_PAYMENT,
        reference=reference,
        lines=[
            (_wallet(payer), -amount),
            (Account.objects.create(kind=AccountKind.ESCROW, order=order), amount),
        ],
        order=order,
        actor=payer,
        memo=_("Order %(number)s") % {"number": order.number},
    )


def order_money_on_transition(*, order: Order, old: str, new: str, actor=None, note: str = ""):
    """The money side of an order's status change; orders.services.order_transition calls it
    inside its transaction, with the order's row locked, after the status is written."""
    if new == Status.OPEN and old == Status.PENDING:
        if selectors.order_paid_fen(order) < order_amount_due(order):
            raise PaymentRequired()
    elif new in (Status.CANCELLED, Status.EXPIRED):
        _order_refund(order=order, old=old, new=new, actor=actor, note=note)
    elif new == Status.DELIVERED:
        _late_compensation(order=order)
    elif new == Status.COMPLETED:
        _order_settle(order=order, actor=actor)


def _order_refund(*, order: Order, old: str, new: str, actor, note: str) -> None:
    if order.kind == TAKEOUT:
        return _takeout_refund(order=order, old=old, new=new, actor=actor, note=note)
    escrow = selectors.escrow_account(order)
    held = ledger.balance(escrow)
    if held <= 0:
        return
    compensation = 0
    if new == Status.CANCELLED and old == Status.ACCEPTED and order.rider_id:
        rules = selectors.campus_money_settings(order.campus_id)
        compensation = min(rules.rider_cancel_compensation_fen, held)
    lines = [(escrow, -held), (_wallet(order.customer_id), held - compensation)]
    if compensation:
        lines.append((_earnings(order.rider_id), compensation))
    why = _("expired: no rider accepted in time") if new == Status.EXPIRED else _("cancelled")
    ledger.post(
        kind=TransactionKind.ORDER_REFUND,
        reference=f"order-refund:{order.pk}",
        lines=lines,
        order=order,
        actor=actor,
        memo=f"{why}. {note}".strip()[:255],
    )


def _order_settle(*, order: Order, actor) -> None:
    if Dispute.objects.filter(order=order, status=DisputeStatus.OPEN).exists():
        raise DisputeOpen()
    if order.kind == TAKEOUT:
        return _takeout_settle(order=order, actor=actor)
    escrow = selectors.escrow_account(order)
    held = ledger.balance(escrow)
    if held <= 0:
        return
    rate = selectors.campus_money_settings(order.campus_id).commission_rate_bp
    split = settlement_split(
        held=held,
        fee=order.price_fen,
        tip=getattr(order, "tip_fen", 0) or 0,
        budget_cap=getattr(order, "budget_cap_fen", None),
        actual_cost=getattr(order, "actual_cost_fen", None),
        rate_bp=rate,
        has_rider=order.rider_id is not None,
    )
    lines = [
        (escrow, -held),
        (ledger.account_system(AccountKind.PLATFORM_REVENUE), split["commission"]),
        (_wallet(order.customer_id), split["customer"]),
    ]
    if order.rider_id:
        shares = rider_leg_shares(order, split["rider"])  # a relay pays each leg's rider
        lines.extend((_earnings(rider_id), fen) for rider_id, fen in shares)
    ledger.post(
        kind=TransactionKind.ORDER_SETTLEMENT,
        reference=f"order-settlement:{order.pk}",
        lines=lines,
        order=order,
        actor=actor,
        memo=_("Commission %(rate)s%%") % {"rate": f"{rate / 100:g}"},
    )


def _late_compensation(*, order: Order) -> None:
    promised = promised_at_of(order)
    if promised is None or order.delivered_at is None:
        return
    rules = selectors.campus_money_settings(order.campus_id)
    if rules.late_compensation_fen <= 0:
        return
    if order.delivered_at <= promised + timedelta(minutes=rules.late_grace_minutes):
        return
    reference = f"late-compensation:{order.pk}"
    if ledger.already_posted(reference):
        return
    late_minutes = int((order.delivered_at - promised).total_seconds() // 60)
    ledger.post(
        kind=TransactionKind.LATE_COMPENSATION,
        reference=reference,
        lines=[
            (ledger.account_system(AccountKind.COMPENSATION_EXPENSE), -rules.late_compensation_fen),
            (_wallet(order.customer_id), rules.late_compensation_fen),
        ],
        order=order,
        memo=_("Delivered %(minutes)d min after the promised time") % {"minutes": late_minutes},
    )


# --- disputes -------------------------------------------------------------------------------


@transaction.atomic
def dispute_open(*, order: Order, customer, reason: str) -> Dispute:
    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    if order.customer_id != customer.pk:
        raise NotAllowed(_("Only the customer can dispute this order."))
    if order.status not in DISPUTABLE:
        if order.status in (Status.PENDING, Status.OPEN, Status.ACCEPTED):
            raise PaymentError(_("This order has not been picked up yet: cancel it instead."))
        raise PaymentError(_("This order can no longer be disputed."))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount(_("Say what went wrong."))
    if Dispute.objects.filter(order=order, status=DisputeStatus.OPEN).exists():
        raise PaymentError(_("A dispute is already open on this order."))
    return Dispute.objects.create(order=order, opened_by=customer, reason=reason[:1000])


@transaction.atomic
def dispute_resolve(*, dispute: Dispute, operator, refund_fen: int, note: str = "") -> Dispute:
    """An operator settles a dispute: refund_fen (0 = no refund) goes from the order's escrow back
    to the customer's wallet; it can never exceed what the order still holds."""
    if not operator.is_staff:
        raise NotAllowed()
    dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if dispute.status != DisputeStatus.OPEN:
        raise PaymentError(_("This dispute has already been resolved."))
    order = Order.objects.select_for_update(of=("self",)).get(pk=dispute.order_id)
    escrow = selectors.escrow_account(order)
    held = ledger.balance(escrow)
    if not isinstance(refund_fen, int) or not 0 <= refund_fen <= held:
        raise InvalidAmount(
            _("The refund must be between ¥0.00 and %(held)s, what the order still holds.")
            % {"held": yuan(held)}
        )
    if refund_fen:
        dispute.transaction = ledger.post(
            kind=TransactionKind.DISPUTE_REFUND,
            reference=f"dispute-refund:{dispute.pk}",
            lines=[(escrow, -refund_fen), (_wallet(order.customer_id), refund_fen)],
            order=order,
            actor=operator,
            memo=(note or dispute.reason)[:255],
        )
    dispute.status = DisputeStatus.RESOLVED
    dispute.refund_fen = refund_fen
    dispute.resolution_note = note[:255]
    dispute.resolved_by = operator
    dispute.resolved_at = timezone.now()
    dispute.save()
    return dispute


# --- withdrawals ----------------------------------------------------------------------------


@transaction.atomic
def withdrawal_request(*, rider, amount_fen: int) -> Withdrawal:
    """A rider asks to be paid out. The amount is reserved (counted against what they may still
    request) until an operator decides; two requests at once cannot reserve more than earned."""
    if not hasattr(rider, "rider_profile"):
        raise NotAllowed(_("Only riders have earnings to withdraw."))
    if amount_fen < WITHDRAWAL_MIN_FEN:
        raise InvalidAmount(_("Withdraw at least %(min)s.") % {"min": yuan(WITHDRAWAL_MIN_FEN)})
    account = _earnings(rider)
    ledger.lock(account)
    available = ledger.balance(account) - selectors.withdrawals_pending_fen(rider)
    if amount_fen > available:
        raise InsufficientFunds(
            _("You can withdraw at most %(available)s.") % {"available": yuan(max(available, 0))}
        )
    return Withdrawal.objects.create(rider=rider, amount_fen=amount_fen)


def _decidable(withdrawal: Withdrawal) -> Withdrawal:
    withdrawal = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
    if withdrawal.status != WithdrawalStatus.REQUESTED:
        raise PaymentError(_("This withdrawal has already been decided."))
    return withdrawal


@transaction.atomic
def withdrawal_approve(*, withdrawal: Withdrawal, operator, note: str = "") -> Withdrawal:
    """Pay out: rider earnings -> gateway clearing, and ask the gateway for the transfer.

    A real adapter's payout() must be idempotent on the withdrawal id (WeChat's out_batch_no,
    Alipay's out_biz_no), since a retry after a crash may ask twice.
    """
    if not operator.is_staff:
        raise NotAllowed()
    withdrawal = _decidable(withdrawal)
    withdrawal.transaction = ledger.post(
        kind=TransactionKind.WITHDRAWAL,
        reference=f"withdrawal:{withdrawal.pk}",
        lines=[
            (_earnings(withdrawal.rider), -withdrawal.amount_fen),
            (ledger.account_system(AccountKind.GATEWAY_CLEARING), withdrawal.amount_fen),
        ],
        actor=operator,
        memo=note[:255],
    )
    gateways = enabled_gateways()
    # Without a gateway the operator pays by hand (bank transfer) and records it here.
    withdrawal.payout_reference = (
        get_gateway(gateways[0]).payout(withdrawal) if gateways else "manual"
    )
    withdrawal.status = WithdrawalStatus.APPROVED
    withdrawal.decided_by = operator
    withdrawal.decided_at = timezone.now()
    withdrawal.decision_note = note[:255]
    withdrawal.save()
    return withdrawal


@transaction.atomic
def withdrawal_reject(*, withdrawal: Withdrawal, operator, note: str = "") -> Withdrawal:
    """No money moves: the reserved amount becomes available to request again."""
    if not operator.is_staff:
        raise NotAllowed()
    withdrawal = _decidable(withdrawal)
    withdrawal.status = WithdrawalStatus.REJECTED
    withdrawal.decided_by = operator
    withdrawal.decided_at = timezone.now()
    withdrawal.decision_note = note[:255]
    withdrawal.save()
    return withdrawal


# --- takeout (added for merchants/) -----------------------------------------------------------
# A takeout order's escrow may be paid by several people (a group order's members, a group
# meal's joiners); a refund gives each payer back what they put in; completion pays the merchant
# as well as the rider. The merchant's ticket (order.takeout, merchants.TakeoutOrder) states the
# terms through `settlement_terms()`, read here without importing merchants.
#
#   share paid:         wallet -> order escrow                          (each payer)
#   share given back:   order escrow -> wallet                          (leaving a group meal)
#   cancel / expire / merchant rejects: escrow -> each payer's wallet   (what each paid; a rider
#       who had accepted is compensated from the customer's refund when the customer cancels,
#       by the platform (compensation expense) otherwise)
#   completion: escrow + promotions expense (the platform-funded discounts)
#       -> merchant payable (food less the discounts it funds, less its commission)
#        + rider earnings (fee less the campus commission, tip in full)
#        + platform revenue (both commissions)


@transaction.atomic
def takeout_share_pay(
    *, order: Order, payer, amount_fen: int, reference: str, memo: str = ""
) -> LedgerTransaction:
    """One person's share of a takeout order: their wallet -> the order's escrow.
    InsufficientFunds (nothing moves) if their wallet is short; AlreadyPaid for a reference
    that was paid before."""
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidAmount()
    reference = f"takeout-share:{reference}"
    if ledger.already_posted(reference):
        raise AlreadyPaid()
    return ledger.post(
        kind=TransactionKind.ORDER_PAYMENT,
        reference=reference,
        lines=[
            (_wallet(payer), -amount_fen),
            (ledger.account_for_order(AccountKind.ESCROW, order), amount_fen),
        ],
        order=order,
        actor=payer,
        memo=memo or _("Order %(number)s") % {"number": order.number},
    )


@transaction.atomic
def takeout_share_refund(
    *, order: Order, payer, amount_fen: int, reference: str, memo: str = ""
) -> LedgerTransaction:
    """Give one payer's share back before the order ends: the order's escrow -> their wallet."""
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidAmount()
    return ledger.post(
        kind=TransactionKind.ORDER_REFUND,
        reference=f"takeout-share-refund:{reference}",
        lines=[
            (ledger.account_for_order(AccountKind.ESCROW, order), -amount_fen),
            (_wallet(payer), amount_fen),
        ],
        order=order,
        actor=payer,
        memo=memo[:255],
    )


def takeout_payers(order: Order) -> dict[int, int]:
    """{user id: what they paid into this order and did not get back yet}, payers in the order
    they first paid (the customer first when they paid first)."""
    from django.db.models import Min, Sum

    from payments.models import Entry

    rows = (
        Entry.objects.filter(
            transaction__order=order,
            transaction__kind__in=[TransactionKind.ORDER_PAYMENT, TransactionKind.ORDER_REFUND],
            account__kind=AccountKind.WALLET,
        )
        .values("account__owner_id")
        .annotate(net=Sum("amount_fen"), first=Min("id"))
        .order_by("first")
    )
    return {row["account__owner_id"]: -row["net"] for row in rows if row["net"] < 0}


def takeout_refund_split(*, held: int, paid: dict[int, int]) -> dict[int, int]:
    """Share what the escrow holds among the payers: each gets what they paid when it is all
    there; otherwise in proportion, by the largest remainder (the shares add up to `held`)."""
    payers = list(paid)
    total = sum(paid.values())
    if held >= total or total <= 0:
        shares = dict(paid)
        if payers and held > total:
            shares[payers[0]] += held - total
        return shares
    weights = [paid[p] for p in payers]
    floors = [held * w // total for w in weights]
    rest = held - sum(floors)
    by_remainder = sorted(range(len(payers)), key=lambda i: (-(held * weights[i] % total), i))
    for i in by_remainder[:rest]:
        floors[i] += 1
    return dict(zip(payers, floors, strict=True))


def _takeout_refund(*, order: Order, old: str, new: str, actor, note: str) -> None:
    from django.contrib.auth import get_user_model

    escrow = selectors.escrow_account(order)
    held = ledger.balance(escrow)
    if held <= 0:
        return
    shares = takeout_refund_split(held=held, paid=takeout_payers(order))
    users = get_user_model().objects.in_bulk(list(shares))
    lines = [(escrow, -held)]
    compensation = 0
    if new == Status.CANCELLED and old == Status.ACCEPTED and order.rider_id:
        rules = selectors.campus_money_settings(order.campus_id)
        compensation = rules.rider_cancel_compensation_fen
    if compensation:
        by_customer = actor is not None and actor.pk == order.customer_id
        if by_customer and shares.get(order.customer_id, 0) > 0:
            compensation = min(compensation, shares[order.customer_id])
            shares[order.customer_id] -= compensation
        else:  # the merchant or the platform called it off: the platform pays the trip
            lines.append((ledger.account_system(AccountKind.COMPENSATION_EXPENSE), -compensation))
        lines.append((_earnings(order.rider_id), compensation))
    lines.extend((_wallet(users[uid]), amount) for uid, amount in shares.items() if amount)
    why = _("expired: no rider accepted in time") if new == Status.EXPIRED else _("cancelled")
    ledger.post(
        kind=TransactionKind.ORDER_REFUND,
        reference=f"order-refund:{order.pk}",
        lines=lines,
        order=order,
        actor=actor,
        memo=f"{why}. {note}".strip()[:255],
    )


def takeout_settlement_split(
    *,
    held: int,
    fee: int,
    tip: int = 0,
    merchant_gross: int,
    platform_funded: int = 0,
    merchant_rate_bp: int,
    rider_rate_bp: int,
    has_rider: bool = True,
) -> dict[str, int]:
    """How a completed takeout order's escrow (plus the platform-funded discounts, paid from
    promotions expense) is shared out. Claims in order, each capped by what is left (a dispute
    refund may have taken some): the rider's fee and tip, then the merchant's food. Each
    commission is rounded half up to the fen; whatever is left over goes back to the customer.
    Without a rider the fee goes to the platform."""
    pool = held + platform_funded
    rider_claim = min(fee + tip, pool)
    merchant_claim = min(merchant_gross, pool - rider_claim)
    tip_paid = min(tip, rider_claim)
    rider_commission = ((rider_claim - tip_paid) * rider_rate_bp + 5_000) // 10_000
    merchant_commission = (merchant_claim * merchant_rate_bp + 5_000) // 10_000
    split = {
        "rider": rider_claim - rider_commission,
        "merchant": merchant_claim - merchant_commission,
        "commission": rider_commission + merchant_commission,
        "promotions": platform_funded,
        "customer": pool - rider_claim - merchant_claim,
    }
    if not has_rider:
        split["commission"] += split["rider"]
        split["rider"] = 0
    return split


def _takeout_settle(*, order: Order, actor) -> None:
    escrow = selectors.escrow_account(order)
    held = ledger.balance(escrow)
    terms = order.takeout.settlement_terms()
    if held <= 0 and not terms["platform_funded_fen"]:
        return
    split = takeout_settlement_split(
        held=held,
        fee=order.price_fen,
        tip=order.tip_fen or 0,
        merchant_gross=terms["merchant_gross_fen"],
        platform_funded=terms["platform_funded_fen"],
        merchant_rate_bp=terms["commission_rate_bp"],
        rider_rate_bp=selectors.campus_money_settings(order.campus_id).commission_rate_bp,
        has_rider=order.rider_id is not None,
    )
    lines = [
        (escrow, -held),
        (ledger.account_system(AccountKind.PROMOTIONS_EXPENSE), -split["promotions"]),
        (ledger.account_for_owner(AccountKind.MERCHANT_PAYABLE, terms["payee"]), split["merchant"]),
        (ledger.account_system(AccountKind.PLATFORM_REVENUE), split["commission"]),
        (_wallet(order.customer_id), split["customer"]),
    ]
    if order.rider_id:
        lines.append((_earnings(order.rider_id), split["rider"]))
    ledger.post(
        kind=TransactionKind.ORDER_SETTLEMENT,
        reference=f"order-settlement:{order.pk}",
        lines=lines,
        order=order,
        actor=actor,
        memo=_("Takeout from %(merchant)s, commission %(rate)s%%")
        % {"merchant": terms["merchant"], "rate": f"{terms['commission_rate_bp'] / 100:g}"},
    )
