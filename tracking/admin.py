from django.contrib import admin
from leaflet.admin import LeafletGeoAdmin

from tracking.models import TrackPoint


@admin.register(TrackPoint)
class TrackPointAdmin(LeafletGeoAdmin):
    list_display = ("rider", "recorded_at", "received_at", "accuracy_m")
    list_filter = ("recorded_at",)
    search_fields = ("rider__username",)
    list_select_related = ("rider",)
    date_hierarchy = "recorded_at"

    def has_change_permission(self, request, obj=None):
        return False
