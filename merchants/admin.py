"""Operators create merchants here, place them on the map, attach their staff, and run the
platform's promotions (coupons, group meals, platform-funded tiers)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletGeoAdminMixin

from merchants import services
from merchants.models import (
    Closure,
    Coupon,
    GroupCart,
    GroupMeal,
    GroupMealRound,
    MenuCategory,
    MenuItem,
    Merchant,
    Notice,
    OpeningHours,
    Option,
    OptionGroup,
    TakeoutLine,
    TakeoutOrder,
    TakeoutSettings,
    TierDiscount,
)


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


class ClosureInline(admin.TabularInline):
    model = Closure
    extra = 0


class TierInline(admin.TabularInline):
    model = TierDiscount
    extra = 0


@admin.register(Merchant)
class MerchantAdmin(LeafletGeoAdminMixin, admin.ModelAdmin):
    list_display = ("name", "kind", "building", "counter", "active", "paused", "busy", "campus")
    list_filter = ("campus", "kind", "active", "paused")
    search_fields = ("name", "name_en", "slug")
    prepopulated_fields = {"slug": ("name_en",)}
    filter_horizontal = ("staff",)
    raw_id_fields = ("building",)
    inlines = [OpeningHoursInline, ClosureInline, TierInline]
    readonly_fields = ("payee",)

    def save_model(self, request, obj, form, change):
        if not change:
            # Each merchant's payables are held for its own ledger holder (merchants.models).
            obj.payee = services.merchant_payee_create(slug=obj.slug)
        super().save_model(request, obj, form, change)


class OptionInline(admin.TabularInline):
    model = Option
    extra = 0


@admin.register(OptionGroup)
class OptionGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "item", "required", "multiple")
    inlines = [OptionInline]
    raw_id_fields = ("item",)


class OptionGroupInline(admin.TabularInline):
    model = OptionGroup
    extra = 0
    show_change_link = True


@admin.register(MenuItem)
class MenuItemAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "category", "price_fen", "stock", "sold_out", "active")
    list_filter = ("merchant", "sold_out", "active")
    search_fields = ("name",)
    list_select_related = ("merchant", "category")
    inlines = [OptionGroupInline]
    exclude = ("photo_thumb",)


@admin.register(MenuCategory)
class MenuCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "position")
    list_filter = ("merchant",)


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "code",
        "merchant",
        "discount_fen",
        "min_spend_fen",
        "valid_from",
        "valid_until",
        "funded_by",
        "stacks_with_tiers",
        "new_users_only",
        "active",
    )
    list_filter = ("campus", "funded_by", "active", "new_users_only")
    search_fields = ("title", "code")


class GroupMealForm(forms.ModelForm):
    class Meta:
        model = GroupMeal
        fields = (
            "merchant",
            "title",
            "contents",
            "regular_price_fen",
            "group_price_fen",
            "group_size",
            "cutoff",
            "delivery_time",
            "starts_on",
            "ends_on",
            "active",
        )

    def clean(self):
        data = super().clean()
        cutoff, delivery = data.get("cutoff"), data.get("delivery_time")
        if (
            cutoff
            and delivery
            and (delivery.hour * 60 + delivery.minute) - (cutoff.hour * 60 + cutoff.minute) < 40
        ):
            raise forms.ValidationError(
                _("Deliver at least 40 minutes after the cutoff: the kitchen and a rider need it.")
            )
        if data.get("group_price_fen") and data.get("regular_price_fen"):
            if data["group_price_fen"] > data["regular_price_fen"]:
                raise forms.ValidationError(_("The group price should not be above the regular."))
        return data


@admin.register(GroupMeal)
class GroupMealAdmin(admin.ModelAdmin):
    form = GroupMealForm
    list_display = (
        "title",
        "merchant",
        "group_price_fen",
        "group_size",
        "cutoff",
        "delivery_time",
        "starts_on",
        "ends_on",
        "active",
    )
    list_filter = ("active", "merchant")


@admin.register(GroupMealRound)
class GroupMealRoundAdmin(admin.ModelAdmin):
    list_display = ("meal", "building", "day", "status", "cutoff_at", "deliver_at")
    list_filter = ("status", "day")
    readonly_fields = ("meal", "building", "day", "cutoff_at", "deliver_at", "status", "takeout")

    def has_add_permission(self, request):
        return False


@admin.register(TakeoutSettings)
class TakeoutSettingsAdmin(admin.ModelAdmin):
    list_display = ("campus", "new_user_discount_fen", "accept_within_minutes", "slot_minutes")


class TakeoutLineInline(admin.TabularInline):
    model = TakeoutLine
    extra = 0
    can_delete = False
    readonly_fields = (
        "item",
        "member",
        "name",
        "options",
        "unit_fen",
        "packaging_fen",
        "quantity",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TakeoutOrder)
class TakeoutOrderAdmin(admin.ModelAdmin):
    """Read-only: tickets change through the portal and the order's own transitions."""

    list_display = ("__str__", "order", "day", "merchant_status", "source", "due_fen")
    list_filter = ("merchant_status", "source", "merchant", "day")
    search_fields = ("order__number",)
    list_select_related = ("order", "merchant")
    inlines = [TakeoutLineInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GroupCart)
class GroupCartAdmin(admin.ModelAdmin):
    list_display = ("merchant", "opener", "status", "deadline", "created_at")
    list_filter = ("status",)
    readonly_fields = ("token", "merchant", "opener", "status", "outcome", "deadline")


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ("user", "message", "created_at", "read_at")
    search_fields = ("user__username", "message")
