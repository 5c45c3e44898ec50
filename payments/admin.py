"""Operators' money desk. The ledger tables are read-only (corrections are new transactions,
made by services); withdrawals and disputes are decided through actions that call services."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from orders.errors import OrderError
from payments import selectors, services
from payments.models import (
    Account,
    CampusMoneySettings,
    Dispute,
    DisputeStatus,
    Entry,
    GatewayCallback,
    IdempotencyKey,
    LedgerTransaction,
    TopUp,
    Withdrawal,
    WithdrawalStatus,
)
from payments.services import yuan


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "owner", "order", "balance_display", "created_at")
    list_filter = ("kind",)
    search_fields = ("owner__username", "order__number")
    list_select_related = ("owner", "order")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("entries__amount_fen"))

    @admin.display(description=_("balance"), ordering="balance")
    def balance_display(self, account) -> str:
        return yuan(account.balance or 0)


class EntryInline(admin.TabularInline):
    model = Entry
    extra = 0
    can_delete = False
    fields = ("account", "amount_fen")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("pk", "kind", "reference", "order", "actor", "memo", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("reference", "order__number", "actor__username", "memo")
    list_select_related = ("order", "actor")
    date_hierarchy = "created_at"
    inlines = [EntryInline]

    def changelist_view(self, request, extra_context=None):
        # The whole ledger always sums to zero: shown so that operators see it does.
        totals = selectors.ledger_totals()
        extra_context = {
            **(extra_context or {}),
            "title": _("Ledger transactions (sum of all %(n)s accounts: %(total)s)")
            % {"n": len(totals), "total": yuan(sum(totals.values()))},
        }
        return super().changelist_view(request, extra_context)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "transaction", "account", "amount_fen")
    list_filter = ("account__kind", "transaction__kind")
    search_fields = ("account__owner__username", "transaction__reference")
    list_select_related = ("transaction", "account", "account__owner", "account__order")


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ("intent_id", "user", "gateway", "amount_fen", "status", "created_at", "paid_at")
    list_filter = ("status", "gateway", "created_at")
    search_fields = ("intent_id", "gateway_txn_id", "user__username")
    list_select_related = ("user",)


@admin.register(GatewayCallback)
class GatewayCallbackAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "gateway",
        "outcome",
        "accepted",
        "intent_id",
        "gateway_txn_id",
        "remote_addr",
    )
    list_filter = ("accepted", "outcome", "gateway", "received_at")
    search_fields = ("intent_id", "gateway_txn_id", "remote_addr")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "user", "response_status", "created_at")
    search_fields = ("key", "user__username")
    list_select_related = ("user",)


@admin.register(CampusMoneySettings)
class CampusMoneySettingsAdmin(admin.ModelAdmin):
    list_display = (
        "campus",
        "commission_rate_bp",
        "rider_cancel_compensation_fen",
        "late_grace_minutes",
        "late_compensation_fen",
        "open_timeout_minutes",
    )


def _decide(modeladmin, request, queryset, service, done_message):
    done = 0
    for obj in queryset:
        try:
            service(obj)
        except OrderError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, done_message % {"n": done}, messages.SUCCESS)


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "rider",
        "amount_display",
        "available_display",
        "status",
        "requested_at",
        "decided_by",
        "decided_at",
        "payout_reference",
    )
    list_filter = ("status", "requested_at")
    search_fields = ("rider__username", "payout_reference")
    list_select_related = ("rider", "decided_by")
    actions = ["approve", "reject"]
    fields = (
        "rider",
        "amount_fen",
        "status",
        "requested_at",
        "decision_note",
        "decided_by",
        "decided_at",
        "payout_reference",
        "transaction",
    )
    readonly_fields = (
        "rider",
        "amount_fen",
        "status",
        "requested_at",
        "decided_by",
        "decided_at",
        "payout_reference",
        "transaction",
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != WithdrawalStatus.REQUESTED:
            return (*self.readonly_fields, "decision_note")
        return self.readonly_fields

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount_display(self, w) -> str:
        return yuan(w.amount_fen)

    @admin.display(description=_("rider's earnings now"))
    def available_display(self, w) -> str:
        return yuan(selectors.earnings_balance(w.rider))

    @admin.action(description=_("Approve and pay out the selected withdrawals"))
    def approve(self, request, queryset):
        _decide(
            self,
            request,
            queryset,
            lambda w: services.withdrawal_approve(
                withdrawal=w, operator=request.user, note=w.decision_note
            ),
            _("%(n)d withdrawal(s) paid out."),
        )

    @admin.action(description=_("Reject the selected withdrawals (the note says why)"))
    def reject(self, request, queryset):
        _decide(
            self,
            request,
            queryset,
            lambda w: services.withdrawal_reject(
                withdrawal=w,
                operator=request.user,
                note=w.decision_note or str(_("Rejected by an operator")),
            ),
            _("%(n)d withdrawal(s) rejected."),
        )


class DisputeForm(forms.ModelForm):
    """Resolving is a decision, not an edit: the form collects it, the service carries it out."""

    refund_yuan = forms.DecimalField(
        label=_("Refund (¥)"),
        required=False,
        min_value=0,
        max_digits=9,
        decimal_places=2,
        help_text=_("Leave empty to keep the dispute open; 0 resolves it without a refund."),
    )

    class Meta:
        model = Dispute
        fields = ("resolution_note",)

    def clean(self):
        cleaned = super().clean()
        refund = cleaned.get("refund_yuan")
        if refund is not None and self.instance.pk:
            held = selectors.escrow_balance(self.instance.order)
            if int(refund * 100) > held:
                self.add_error(
                    "refund_yuan",
                    _("At most %(held)s: what the order still holds.") % {"held": yuan(held)},
                )
        return cleaned


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    form = DisputeForm
    list_display = (
        "pk",
        "order",
        "opened_by",
        "status",
        "paid_display",
        "held_display",
        "refund_fen",
        "created_at",
        "resolved_by",
    )
    list_filter = ("status", "created_at")
    search_fields = ("order__number", "opened_by__username", "reason")
    list_select_related = ("order", "opened_by", "resolved_by")
    actions = ["refund_everything_held", "resolve_without_refund"]
    readonly_fields = (
        "order",
        "opened_by",
        "reason",
        "status",
        "paid_display",
        "held_display",
        "created_at",
        "refund_fen",
        "resolved_by",
        "resolved_at",
        "transaction",
    )

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is None or obj.status == DisputeStatus.OPEN:
            fields += ["refund_yuan", "resolution_note"]
        else:
            fields += ["resolution_note"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != DisputeStatus.OPEN:
            return (*self.readonly_fields, "resolution_note")
        return self.readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("paid"))
    def paid_display(self, d) -> str:
        return yuan(selectors.order_paid_fen(d.order))

    @admin.display(description=_("still held"))
    def held_display(self, d) -> str:
        return yuan(selectors.escrow_balance(d.order))

    def save_model(self, request, obj, form, change):
        refund = form.cleaned_data.get("refund_yuan")
        if refund is None or obj.status != DisputeStatus.OPEN:
            if obj.status == DisputeStatus.OPEN:
                obj.save(update_fields=["resolution_note"])
            return
        try:
            services.dispute_resolve(
                dispute=obj,
                operator=request.user,
                refund_fen=int(refund * 100),
                note=form.cleaned_data.get("resolution_note", ""),
            )
        except OrderError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description=_("Resolve: refund everything the order still holds"))
    def refund_everything_held(self, request, queryset):
        _decide(
            self,
            request,
            queryset,
            lambda d: services.dispute_resolve(
                dispute=d,
                operator=request.user,
                refund_fen=selectors.escrow_balance(d.order),
                note=d.resolution_note or str(_("Full refund")),
            ),
            _("%(n)d dispute(s) resolved with a refund."),
        )

    @admin.action(description=_("Resolve without a refund"))
    def resolve_without_refund(self, request, queryset):
        _decide(
            self,
            request,
            queryset,
            lambda d: services.dispute_resolve(
                dispute=d,
                operator=request.user,
                refund_fen=0,
                note=d.resolution_note or str(_("No refund")),
            ),
            _("%(n)d dispute(s) resolved without a refund."),
        )
