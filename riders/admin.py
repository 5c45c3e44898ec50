from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from riders.models import RiderProfile


@admin.register(RiderProfile)
class RiderProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "pool", "campus", "verified", "online", "online_since")
    list_filter = ("verified", "online", "campus", "user__gender")
    search_fields = ("user__username", "user__first_name")
    list_select_related = ("user", "campus")
    raw_id_fields = ("user",)
    actions = ["approve"]

    @admin.display(description=_("pool"))
    def pool(self, obj: RiderProfile) -> str:
        return obj.user.get_gender_display()

    @admin.action(description=_("Approve selected riders"))
    def approve(self, request, queryset):
        updated = queryset.update(verified=True)
        self.message_user(request, _("%(n)d riders approved.") % {"n": updated})
