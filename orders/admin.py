from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from orders import pricing
from orders.models import ErrandKindSetting, Order, OrderEvent, PricingRule, Rating, yuan


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ("old_status", "new_status", "actor", "note", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "kind", "status", "customer", "rider", "price_fen", "created_at")
    list_filter = ("status", "kind", "required_gender", "campus", "created_at")
    search_fields = ("number", "customer__username", "rider__username", "description")
    list_select_related = ("customer", "rider")
    date_hierarchy = "created_at"
    # Status changes go through order_transition only: never edited here.
    readonly_fields = (
        "number",
        "status",
        "rider",
        "customer",
        "campus",
        "created_at",
        "updated_at",
        "accepted_at",
        "picked_up_at",
        "delivered_at",
        # Money and the promise come from the quote and the ledger.
        "price_fen",
        "price_lines",
        "tip_fen",
        "budget_cap_fen",
        "actual_cost_fen",
        "cost_recorded_at",
        "promised_at",
        "checked_in_at",
        "check_in_lat",
        "check_in_lng",
        "check_in_distance_m",
    )
    # The pickup and delivery codes are for the customer and the carrying rider only.
    exclude = ("photo_thumb", "receipt_thumb", "pickup_code", "delivery_code")
    inlines = [OrderEventInline]
    raw_id_fields = ("pickup_building", "dropoff_building")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ("order", "old_status", "new_status", "actor", "note", "created_at")
    list_filter = ("new_status", "created_at")
    search_fields = ("order__number", "actor__username", "note")
    list_select_related = ("order", "actor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PricingRule)
class PricingRuleAdmin(admin.ModelAdmin):
    list_display = ("campus", "band", "weather_on", "updated_at")
    list_editable = ("weather_on",)
    readonly_fields = ("preview",)
    fieldsets = (
        (None, {"fields": ("campus", "weather_on", "weather_fee_fen")}),
        (_("Band"), {"fields": ("band_min_fen", "band_max_fen")}),
        (
            _("Distance and size"),
            {
                "fields": (
                    "free_distance_m",
                    "distance_step_m",
                    "distance_step_fen",
                    "size_medium_fen",
                    "size_large_fen",
                    "size_heavy_fen",
                )
            },
        ),
        (
            _("Time"),
            {
                "fields": (
                    "urgent_fee_fen",
                    "night_fee_fen",
                    "night_starts",
                    "night_ends",
                    "queue_block_minutes",
                    "queue_block_fen",
                )
            },
        ),
        (_("Busy times"), {"fields": ("peak_ratio_permille", "peak_percent", "peak_max_steps")}),
        (
            _("Promise, scheduling, limits"),
            {
                "fields": (
                    "walk_m_per_min",
                    "approach_minutes",
                    "schedule_buffer_minutes",
                    "quote_valid_seconds",
                    "tip_max_fen",
                    "budget_cap_max_fen",
                )
            },
        ),
        (_("Preview (saved values, no busy-time surcharge)"), {"fields": ("preview",)}),
    )

    @admin.display(description=_("band"))
    def band(self, rule: PricingRule) -> str:
        return f"¥{yuan(rule.band_min_fen)}–{yuan(rule.band_max_fen)}"

    @admin.display(description=_("sample quotes"))
    def preview(self, rule: PricingRule) -> str:
        if not rule.pk:
            return _("Save to see sample quotes.")
        samples = pricing.quote_preview(rule)
        if not samples:
            return _("The campus needs at least two buildings.")
        blocks = []
        for sample in samples:
            rows = format_html_join(
                "",
                "<tr><td>{}</td><td style='text-align:right'>¥{}</td></tr>",
                ((line["label"], yuan(line["amount_fen"])) for line in sample["lines"]),
            )
            blocks.append(
                format_html(
                    "<table class='quote-preview'><caption style='text-align:left'><b>{}</b>"
                    "</caption>{}<tr><td><b>{}</b></td><td style='text-align:right'><b>¥{}</b>"
                    "</td></tr></table>",
                    sample["title"],
                    rows,
                    _("Total"),
                    yuan(sample["total_fen"]),
                )
            )
        return format_html_join("", "{}", ((b,) for b in blocks))


@admin.register(ErrandKindSetting)
class ErrandKindSettingAdmin(admin.ModelAdmin):
    list_display = (
        "campus",
        "kind",
        "enabled",
        "photo_required",
        "base_fee_fen",
        "handling_minutes",
    )
    list_editable = ("enabled", "photo_required", "base_fee_fen", "handling_minutes")
    list_filter = ("campus", "kind")


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ("order", "rider", "stars", "tag_list", "comment", "created_at")
    list_filter = ("stars", "created_at")
    search_fields = ("order__number", "rider__username", "comment")
    list_select_related = ("order", "rider")
    readonly_fields = ("order", "customer", "rider", "stars", "tags", "comment", "created_at")

    @admin.display(description=_("tags"))
    def tag_list(self, rating: Rating) -> str:
        return ", ".join(rating.tags)

    def has_add_permission(self, request):
        return False


admin.site.site_header = _("Campus Errand operations")
admin.site.site_title = _("Campus Errand")
