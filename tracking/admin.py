from django import forms
from django.contrib import admin
from leaflet.admin import LeafletGeoAdmin

from orders.models import Kind
from tracking.models import (
    ArchivedTrackPoint,
    ChatMessage,
    OrderProof,
    ProofSettings,
    TrackAccessLog,
    TrackPoint,
)


class SuperuserOnlyTrack:
    """Recorded positions are personal data: operators open a track through the logged replay
    (/ops/orders/<number>/replay/, TrackAccessLog); only superusers browse the raw rows here."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrackPoint)
class TrackPointAdmin(SuperuserOnlyTrack, LeafletGeoAdmin):
    list_display = ("rider", "recorded_at", "received_at", "accuracy_m")
    list_filter = ("recorded_at",)
    search_fields = ("rider__username",)
    list_select_related = ("rider",)
    date_hierarchy = "recorded_at"


@admin.register(ArchivedTrackPoint)
class ArchivedTrackPointAdmin(SuperuserOnlyTrack, LeafletGeoAdmin):
    list_display = ("order", "rider", "recorded_at", "accuracy_m")
    search_fields = ("order__number", "rider__username")
    list_select_related = ("order", "rider")
    date_hierarchy = "recorded_at"


class ProofSettingsForm(forms.ModelForm):
    # Kinds are orders' (and merchants' takeout): a choice list here, free text in the table, so
    # that a new kind needs no tracking migration.
    kind = forms.ChoiceField(choices=[*Kind.choices, ("takeout", "Takeout")])

    class Meta:
        model = ProofSettings
        fields = ("campus", "kind", "pickup", "delivery")


@admin.register(ProofSettings)
class ProofSettingsAdmin(admin.ModelAdmin):
    form = ProofSettingsForm
    list_display = ("campus", "kind", "pickup", "delivery", "updated_at")
    list_filter = ("campus", "kind")


class ReadOnly:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderProof)
class OrderProofAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("order", "stage", "method", "actor", "created_at")
    list_filter = ("stage", "method")
    search_fields = ("order__number",)
    list_select_related = ("order", "actor")


@admin.register(ChatMessage)
class ChatMessageAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("order", "role", "sender", "quick", "body", "created_at")
    list_filter = ("role",)
    search_fields = ("order__number",)
    list_select_related = ("order", "sender")


@admin.register(TrackAccessLog)
class TrackAccessLogAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "user", "order", "reason", "note", "points")
    list_filter = ("reason",)
    search_fields = ("order__number", "user__username", "note")
    list_select_related = ("order", "user")
    date_hierarchy = "created_at"
