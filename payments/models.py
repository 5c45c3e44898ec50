"""Money: a double-entry ledger, and the records around it (top-ups, withdrawals, disputes).

The ledger
----------
`Account` rows name where money sits; `LedgerTransaction` is one business event (a top-up, an order
payment, a refund...) and owns two or more `Entry` rows whose signed `amount_fen` sum to zero.
A balance is always the sum of an account's entries: nothing stores or edits it. Transactions and
entries are append-only, like orders.OrderEvent (a correction is a new transaction).

Sign convention: an entry's amount is the change in what the platform *owes* the account's holder.
Wallets, escrow, rider earnings, merchant payables and platform revenue therefore carry positive
balances; gateway clearing (cash held at the payment gateway) and the expense accounts (promotions,
compensation) carry negative ones. All balances together always sum to zero.

Escrow is one account per order (created when the order is paid): its balance is exactly what the
order still holds, it can be locked on its own, and "escrow returns to zero when the order ends"
is a check on one row's entries.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campus_errand.append_only import AppendOnlyModel


class AccountKind(models.TextChoices):
    WALLET = "wallet", _("Wallet")
    ESCROW = "escrow", _("Order escrow")
    RIDER_EARNINGS = "rider_earnings", _("Rider earnings")
    MERCHANT_PAYABLE = "merchant_payable", _("Merchant payable")
    PLATFORM_REVENUE = "platform_revenue", _("Platform revenue")
    PROMOTIONS_EXPENSE = "promotions_expense", _("Promotions expense")
    COMPENSATION_EXPENSE = "compensation_expense", _("Compensation expense")
    GATEWAY_CLEARING = "gateway_clearing", _("Gateway clearing")


# Held for one user (a merchant is keyed by the user who owns it until merchants/ exists).
OWNED_KINDS = {AccountKind.WALLET, AccountKind.RIDER_EARNINGS, AccountKind.MERCHANT_PAYABLE}
# One per order.
ORDER_KINDS = {AccountKind.ESCROW}
# One for the whole platform.
SYSTEM_KINDS = {
    AccountKind.PLATFORM_REVENUE,
    AccountKind.PROMOTIONS_EXPENSE,
    AccountKind.COMPENSATION_EXPENSE,
    AccountKind.GATEWAY_CLEARING,
}
# Money the platform owes someone: these never go below zero (checked under a row lock).
NEVER_NEGATIVE = OWNED_KINDS | ORDER_KINDS


class Account(models.Model):
    kind = models.CharField(_("kind"), max_length=24, choices=AccountKind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="money_accounts",
        verbose_name=_("owner"),
    )
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="money_accounts",
        verbose_name=_("order"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["kind", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "owner"],
                condition=Q(owner__isnull=False),
                name="account_one_per_kind_and_owner",
            ),
            models.UniqueConstraint(
                fields=["kind", "order"],
                condition=Q(order__isnull=False),
                name="account_one_per_kind_and_order",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(owner__isnull=True, order__isnull=True),
                name="account_one_system_account_per_kind",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=sorted(OWNED_KINDS), owner__isnull=False, order__isnull=True)
                    | Q(kind__in=sorted(ORDER_KINDS), owner__isnull=True, order__isnull=False)
                    | Q(kind__in=sorted(SYSTEM_KINDS), owner__isnull=True, order__isnull=True)
                ),
                name="account_holder_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        if self.owner_id:
            return f"{self.get_kind_display()} · {self.owner}"
        if self.order_id:
            return f"{self.get_kind_display()} · {self.order}"
        return str(self.get_kind_display())


class TransactionKind(models.TextChoices):
    TOPUP = "topup", _("Top-up")
    GRANT = "grant", _("Promotional credit")
    ORDER_PAYMENT = "order_payment", _("Order payment")
    ORDER_REFUND = "order_refund", _("Order refund")
    ORDER_SETTLEMENT = "order_settlement", _("Order settlement")
    DISPUTE_REFUND = "dispute_refund", _("Dispute refund")
    LATE_COMPENSATION = "late_compensation", _("Late-delivery compensation")
    WITHDRAWAL = "withdrawal", _("Withdrawal")


class LedgerTransaction(AppendOnlyModel):
    """One business event that moves money; its entries sum to zero."""

    kind = models.CharField(_("kind"), max_length=24, choices=TransactionKind.choices)
    # What this transaction is for ("order-payment:<order id>", "topup:<intent>"...): unique, so
    # the database itself refuses to move the same money twice.
    reference = models.CharField(_("reference"), max_length=80, unique=True)
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_transactions",
        verbose_name=_("order"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.reference})"


class Entry(AppendOnlyModel):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount_fen = models.BigIntegerField(_("amount (fen)"))

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        ordering = ["pk"]
        indexes = [models.Index(fields=["account", "-id"], name="entry_account_recent")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_fen=0), name="entry_amount_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.amount_fen:+d}"


class CampusMoneySettings(models.Model):
    """The money rules of one campus, edited by operators in admin."""

    campus = models.OneToOneField(
        "campus.Campus", on_delete=models.CASCADE, related_name="money_settings"
    )
    commission_rate_bp = models.PositiveIntegerField(
        _("platform commission (basis points)"),
        default=1000,
        validators=[MaxValueValidator(10000)],
        help_text=_("Share of a completed order's price kept by the platform; 1000 = 10%."),
    )
    rider_cancel_compensation_fen = models.PositiveIntegerField(
        _("rider compensation on cancellation (fen)"),
        default=100,
        help_text=_(
            "Paid to the rider from the refund when the customer cancels after acceptance."
        ),
    )
    late_grace_minutes = models.PositiveIntegerField(_("late-delivery grace (minutes)"), default=10)
    late_compensation_fen = models.PositiveIntegerField(
        _("late-delivery compensation (fen)"),
        default=300,
        help_text=_(
            "Credited to the customer when delivery is later than promised plus the grace."
        ),
    )
    open_timeout_minutes = models.PositiveIntegerField(
        _("open order timeout (minutes)"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("An order no rider accepts within this time expires with a full refund."),
    )

    class Meta:
        verbose_name = _("campus money settings")
        verbose_name_plural = _("campus money settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_rate_bp__lte=10000), name="commission_at_most_100_percent"
            ),
            models.CheckConstraint(
                condition=Q(open_timeout_minutes__gte=1), name="open_timeout_at_least_a_minute"
            ),
        ]

    def __str__(self) -> str:
        return str(self.campus)


class TopUpStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for payment")
    SUCCEEDED = "succeeded", _("Paid")
    FAILED = "failed", _("Failed")


class TopUp(models.Model):
    """A payment intent at a gateway; the wallet is credited when the gateway's callback arrives."""

    intent_id = models.CharField(_("intent"), max_length=40, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="topups"
    )
    gateway = models.CharField(_("gateway"), max_length=20)
    amount_fen = models.PositiveIntegerField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=12, choices=TopUpStatus.choices, default=TopUpStatus.PENDING
    )
    gateway_txn_id = models.CharField(
        _("gateway transaction"), max_length=64, null=True, blank=True, unique=True
    )
    transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="topup"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("top-up")
        verbose_name_plural = _("top-ups")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="topup_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status=TopUpStatus.SUCCEEDED)
                | Q(transaction__isnull=False, gateway_txn_id__isnull=False),
                name="topup_paid_has_transaction",
            ),
        ]

    def __str__(self) -> str:
        return self.intent_id


class CallbackOutcome(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted: wallet credited")
    PAYMENT_FAILED = "payment_failed", _("Accepted: the gateway reports a failed payment")
    BAD_SIGNATURE = "bad_signature", _("Refused: bad or missing signature")
    MALFORMED = "malformed", _("Refused: malformed payload")
    STALE = "stale", _("Refused: timestamp outside the allowed window (replay)")
    REPLAYED = "replayed", _("Refused: gateway transaction already processed (replay)")
    DUPLICATE = "duplicate", _("Refused: intent already paid by another transaction (duplicate)")
    UNKNOWN_INTENT = "unknown_intent", _("Refused: unknown payment intent")
    AMOUNT_MISMATCH = "amount_mismatch", _("Refused: amount differs from the intent")


class GatewayCallback(AppendOnlyModel):
    """Every callback a gateway (or anyone posing as one) sent us, and what we did with it."""

    gateway = models.CharField(_("gateway"), max_length=20)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=CallbackOutcome.choices)
    accepted = models.BooleanField(_("accepted"))
    intent_id = models.CharField(_("intent"), max_length=64, blank=True)
    gateway_txn_id = models.CharField(
        _("gateway transaction"), max_length=64, blank=True, db_index=True
    )
    signature = models.CharField(_("signature"), max_length=256, blank=True)
    body = models.TextField(_("body"), blank=True)
    remote_addr = models.GenericIPAddressField(_("from"), null=True, blank=True)
    topup = models.ForeignKey(
        TopUp, on_delete=models.PROTECT, null=True, blank=True, related_name="callbacks"
    )

    class Meta:
        verbose_name = _("gateway callback")
        verbose_name_plural = _("gateway callbacks")
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.gateway} {self.intent_id or '?'}: {self.outcome}"


class WithdrawalStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Paid out")
    REJECTED = "rejected", _("Rejected")


class Withdrawal(models.Model):
    """A rider asks to be paid their earnings; an operator approves (pays out) or rejects."""

    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals"
    )
    amount_fen = models.PositiveIntegerField(_("amount (fen)"))
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=WithdrawalStatus.choices,
        default=WithdrawalStatus.REQUESTED,
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decision_note = models.CharField(_("decision note"), max_length=255, blank=True)
    payout_reference = models.CharField(_("payout reference"), max_length=64, blank=True)
    transaction = models.OneToOneField(
        LedgerTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="withdrawal",
    )

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0), name="withdrawal_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(status=WithdrawalStatus.APPROVED) | Q(transaction__isnull=False),
                name="withdrawal_paid_has_transaction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rider} ¥{self.amount_fen / 100:.2f} ({self.get_status_display()})"


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class Dispute(models.Model):
    """After pickup an order can no longer be cancelled: the customer disputes it instead, and an
    operator decides how much of what was paid to refund."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="disputes")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="disputes"
    )
    reason = models.TextField(_("reason"), max_length=1000)
    status = models.CharField(
        _("status"), max_length=12, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    refund_fen = models.PositiveIntegerField(_("refund (fen)"), null=True, blank=True)
    resolution_note = models.CharField(_("resolution"), max_length=255, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="dispute"
    )

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status="open"),
                name="dispute_one_open_per_order",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(refund_fen__isnull=False),
                name="dispute_resolved_has_refund_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} ({self.get_status_display()})"


class IdempotencyKey(models.Model):
    """The first response to (user, Idempotency-Key), replayed for every retry of that request."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(_("key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True)
    response_body = models.JSONField(_("response body"), null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
