from django.contrib import admin
from leaflet.admin import LeafletGeoAdmin

from campus.models import Building, Campus, PathEdge, TransferStation
from campus.services import path_edge_save


@admin.register(Campus)
class CampusAdmin(LeafletGeoAdmin):
    list_display = ("name", "slug", "tracking_visible_from")
    search_fields = ("name", "name_en", "slug")


@admin.register(Building)
class BuildingAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "name_en", "kind", "gender_rule", "campus")
    list_filter = ("campus", "kind", "gender_rule")
    search_fields = ("code", "name", "name_en")


@admin.register(TransferStation)
class TransferStationAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "campus")
    list_filter = ("campus",)
    search_fields = ("code", "name", "name_en")
    filter_horizontal = ("serves",)


@admin.register(PathEdge)
class PathEdgeAdmin(LeafletGeoAdmin):
    list_display = ("__str__", "kind", "length_m", "campus")
    list_filter = ("campus", "kind")
    search_fields = ("name",)
    readonly_fields = ("length_m",)

    def save_model(self, request, obj, form, change):
        path_edge_save(edge=obj)
