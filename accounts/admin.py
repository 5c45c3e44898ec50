from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import Address, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "first_name", "gender", "masked_phone", "is_staff", "is_active")
    list_filter = ("gender", "is_staff", "is_active")
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = BaseUserAdmin.fieldsets + ((_("Campus"), {"fields": ("gender", "phone")}),)
    add_fieldsets = BaseUserAdmin.add_fieldsets + ((_("Campus"), {"fields": ("gender", "phone")}),)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: User) -> str:
        return obj.masked_phone


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ("user", "label", "building", "room", "created_at")
    search_fields = ("user__username", "label", "room")
    list_select_related = ("user", "building")
    raw_id_fields = ("user", "building")
