from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from orders.models import Order, OrderEvent


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
    )
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


admin.site.site_header = _("Campus Errand operations")
admin.site.site_title = _("Campus Errand")
