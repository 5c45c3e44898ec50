"""Operators: switch a campus's dispatch mode, read every decision (on the order page too),
watch orders at risk and the dispatcher lease, and move a rider's orders with one click."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from dispatch import services
from dispatch.models import (
    CampusDispatchSettings,
    DispatchDecision,
    DispatcherLease,
    Offer,
    OrderRisk,
    RiderOnDuty,
)
from orders import rules
from orders.models import Order
from orders.status import WITH_RIDER
from tracking import live

TERM_LABELS = (
    ("cost", _("total cost")),
    ("pickup_distance_m", _("to pickup (m)")),
    ("to_pickup_s", _("at pickup in (s)")),
    ("delivery_s", _("at the door in (s)")),
    ("extra_travel_s", _("extra riding (s)")),
    ("late_s", _("late (s)")),
    ("others_late_s", _("other orders later (s)")),
    ("load", _("orders already carried")),
    ("credit", _("credit")),
)


def terms_table(terms: dict) -> str:
    """The cost terms of a decision as a small table, runners-up included: why this rider."""
    if not terms:
        return "—"
    rows = [(label, terms[key]) for key, label in TERM_LABELS if key in terms]
    rows += [(key, value) for key, value in terms.items() if key in ("by", "late_by_s")]
    html = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    alternatives = terms.get("alternatives") or []
    if alternatives:
        others = ", ".join(f"#{a['rider']}: {a['cost']}" for a in alternatives)
        html += format_html("<tr><th>{}</th><td>{}</td></tr>", _("runners-up (cost)"), others)
    return format_html('<table class="dispatch-terms">{}</table>', html)


@admin.register(CampusDispatchSettings)
class CampusDispatchSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "campus",
        "mode",
        "cycle_seconds",
        "offer_timeout_seconds",
        "hybrid_fallback_offers",
        "rider_capacity",
        "reach_m",
        "auto_reassign",
    )
    list_editable = ("mode",)
    list_filter = ("mode",)
    fieldsets = (
        (None, {"fields": ("campus", "mode")}),
        (
            _("Auto dispatch"),
            {
                "fields": (
                    "cycle_seconds",
                    "offer_timeout_seconds",
                    "hybrid_fallback_offers",
                    "promise_minutes",
                    "at_risk_margin_minutes",
                )
            },
        ),
        (
            _("Riders"),
            {
                "fields": (
                    "rider_capacity",
                    "reach_m",
                    "default_travel_mode",
                    "walking_speed_mps",
                    "cycling_speed_mps",
                )
            },
        ),
        (
            _("Reassignment"),
            {"fields": ("auto_reassign", "stale_fix_minutes", "behind_minutes")},
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DispatchDecision)
class DispatchDecisionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "order", "action", "rider", "mode", "cost", "note")
    list_filter = ("action", "mode", "campus")
    search_fields = ("order__number", "rider__username", "note")
    list_select_related = ("order", "rider")
    raw_id_fields = ("order", "rider", "offer")
    readonly_fields = ("why",)

    @admin.display(description=_("why this rider"))
    def why(self, obj):
        return terms_table(obj.terms)


class DispatchDecisionInline(admin.TabularInline):
    """On the order's admin page: every dispatch decision about it, with its cost terms."""

    model = DispatchDecision
    extra = 0
    can_delete = False
    fields = ("created_at", "action", "rider", "mode", "why", "note")
    readonly_fields = fields
    verbose_name_plural = _("dispatch decisions (why this rider)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("cost terms"))
    def why(self, obj):
        return terms_table(obj.terms)


# Shown on the order page without orders importing dispatch (dispatch depends on orders).
_order_admin = admin.site.get_model_admin(Order) if admin.site.is_registered(Order) else None
if _order_admin is not None and DispatchDecisionInline not in _order_admin.inlines:
    _order_admin.inlines = [*_order_admin.inlines, DispatchDecisionInline]


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "order", "rider", "status", "expires_at", "responded_at", "cost")
    list_filter = ("status", "campus")
    search_fields = ("order__number", "rider__username")
    list_select_related = ("order", "rider")
    readonly_fields = ("why",)

    @admin.display(description=_("why this rider"))
    def why(self, obj):
        return terms_table(obj.terms)


@admin.register(OrderRisk)
class OrderRiskAdmin(admin.ModelAdmin):
    list_display = ("created_at", "order", "reason", "promised_at", "predicted_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "campus")
    search_fields = ("order__number", "reason")
    list_select_related = ("order",)
    readonly_fields = (
        "campus",
        "order",
        "reason",
        "promised_at",
        "predicted_at",
        "created_at",
        "resolved_at",
        "resolution",
    )
    actions = ["resolve"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Mark as handled"))
    def resolve(self, request, queryset):
        for risk in queryset.filter(resolved_at__isnull=True):
            services.risk_resolve(risk=risk, operator=request.user)
        self.message_user(request, _("Marked as handled."))


@admin.register(DispatcherLease)
class DispatcherLeaseAdmin(ReadOnlyAdmin):
    list_display = ("campus", "owner", "active", "acquired_at", "expires_at", "cycles")
    readonly_fields = ("last_report",)

    @admin.display(boolean=True, description=_("active"))
    def active(self, obj):
        return obj.expires_at > timezone.now()


@admin.register(RiderOnDuty)
class RiderOnDutyAdmin(admin.ModelAdmin):
    """Riders with what they carry and when they last sent a position. The action takes their
    orders away (not the ones already picked up) so that dispatch gives them to others."""

    list_display = ("user", "pool", "campus", "online", "load", "last_fix", "credit")
    list_filter = ("online", "campus", "user__gender")
    search_fields = ("user__username", "user__first_name")
    list_select_related = ("user", "campus")
    actions = ["move_orders"]
    fields = ("user", "campus", "online", "verified")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(verified=True)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("pool"))
    def pool(self, obj):
        return obj.user.get_gender_display()

    @admin.display(description=_("orders"))
    def load(self, obj):
        carried = Order.objects.filter(rider_id=obj.user_id, status__in=WITH_RIDER).count()
        return f"{carried}/{rules.rider_capacity(obj)}"

    @admin.display(description=_("last position"))
    def last_fix(self, obj):
        position = live.position_get(obj.user_id)
        return position["recorded_at"] if position else "—"

    @admin.display(description=_("credit"))
    def credit(self, obj):
        return getattr(obj, "credit_score", "—")

    @admin.action(description=_("Move their orders to other riders"))
    def move_orders(self, request, queryset):
        moved = kept = 0
        for profile in queryset.select_related("user"):
            result = services.rider_orders_release(
                rider=profile.user,
                reason=str(_("moved by an operator")),
                actor=request.user,
            )
            moved += len(result.released)
            kept += len(result.kept)
        self.message_user(
            request,
            _("%(moved)d orders back in dispatch; %(kept)d already picked up stay (flagged).")
            % {"moved": moved, "kept": kept},
            messages.SUCCESS if not kept else messages.WARNING,
        )
