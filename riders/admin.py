from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from orders.errors import OrderError
from riders import services
from riders.forms import ReasonForm
from riders.models import Complaint, ComplaintStatus, RiderProfile, RiderState, Shift


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return RiderState.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == RiderState.SUSPENDED:
            return queryset.filter(suspended_at__isnull=False)
        if value == RiderState.APPROVED:
            return queryset.filter(verified=True)
        if value == RiderState.REJECTED:
            return queryset.filter(rejected_at__isnull=False, suspended_at__isnull=True)
        if value == RiderState.PENDING:
            return queryset.filter(
                Q(verified=False) & Q(rejected_at__isnull=True) & Q(suspended_at__isnull=True)
            )
        return queryset


@admin.register(RiderProfile)
class RiderProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "real_name",
        "pool",
        "campus",
        "state",
        "online",
        "credit_score",
        "applied_at",
    )
    list_filter = (StateFilter, "online", "campus", "user__gender")
    search_fields = ("user__username", "user__first_name")
    list_select_related = ("user", "campus")
    raw_id_fields = ("user",)
    ordering = ("-applied_at", "-created_at")
    actions = ["approve", "reject", "suspend", "reinstate", "recompute_credit"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user",
                    "campus",
                    "state",
                    "verified",
                    "online",
                    "online_since",
                    "capacity",
                )
            },
        ),
        (
            _("Application"),
            {"fields": ("real_name", "student_number", "student_card_link", "applied_at")},
        ),
        (
            _("Decisions"),
            {
                "fields": (
                    "approved_at",
                    ("rejected_at", "rejection_reason"),
                    ("suspended_at", "suspension_reason"),
                    "decided_by",
                )
            },
        ),
        (_("Credit"), {"fields": ("credit_score", "credit_updated_at")}),
    )
    # Decisions go through the actions (services), so that every change is recorded the same way.
    readonly_fields = (
        "state",
        "verified",
        "online",
        "online_since",
        "student_card_link",
        "applied_at",
        "approved_at",
        "rejected_at",
        "rejection_reason",
        "suspended_at",
        "suspension_reason",
        "decided_by",
        "credit_score",
        "credit_updated_at",
    )

    @admin.display(description=_("pool"))
    def pool(self, obj: RiderProfile) -> str:
        return obj.user.get_gender_display()

    @admin.display(description=_("state"))
    def state(self, obj: RiderProfile) -> str:
        return obj.get_state_display()

    @admin.display(description=_("student card photo"))
    def student_card_link(self, obj: RiderProfile):
        if not obj.student_card:
            return "—"
        url = reverse("riders:student_card", args=[obj.pk])
        return format_html(
            '<a href="{}" target="_blank"><img src="{}" style="max-width:320px" alt=""></a>',
            url,
            url,
        )

    def _each(self, request, queryset, action, done_message, **kwargs) -> None:
        done = 0
        for profile in queryset.select_related("user"):
            try:
                action(profile=profile, operator=request.user, **kwargs)
            except OrderError as exc:
                self.message_user(request, f"{profile}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    def _with_reason(self, request, queryset, action, title, done_message):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._each(request, queryset, action, done_message, reason=form.cleaned_data["reason"])
            return None
        return TemplateResponse(
            request,
            "riders/admin_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "queryset": queryset,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description=_("Approve selected applications"))
    def approve(self, request, queryset):
        self._each(request, queryset, services.rider_approve, _("%(n)d riders approved."))

    @admin.action(description=_("Reject selected applications (with a reason)"))
    def reject(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            services.rider_reject,
            _("Reject applications"),
            _("%(n)d applications rejected."),
        )

    @admin.action(description=_("Suspend selected riders (with a reason)"))
    def suspend(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            services.rider_suspend,
            _("Suspend riders"),
            _("%(n)d riders suspended and taken offline."),
        )

    @admin.action(description=_("Reinstate selected suspended riders"))
    def reinstate(self, request, queryset):
        self._each(request, queryset, services.rider_reinstate, _("%(n)d riders reinstated."))

    @admin.action(description=_("Recompute credit scores"))
    def recompute_credit(self, request, queryset):
        for profile in queryset.select_related("user"):
            services.rider_credit_recompute(user=profile.user)
        self.message_user(request, _("Credit scores recomputed."), messages.SUCCESS)


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ("rider", "started_at", "ended_at", "end_reason")
    list_filter = ("end_reason", "started_at")
    search_fields = ("rider__username",)
    list_select_related = ("rider",)
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ComplaintForm(forms.ModelForm):
    operator = None  # set by ComplaintAdmin.get_form: who files it when "filed by" is empty

    class Meta:
        model = Complaint
        fields = ("rider", "order", "filed_by", "category", "reason")

    def clean(self):
        data = super().clean()
        rider, order = data.get("rider"), data.get("order")
        if rider and not hasattr(rider, "rider_profile"):
            self.add_error("rider", _("Complaints are about riders."))
        if rider and order and order.rider_id != rider.pk:
            self.add_error("order", _("This rider did not carry that order."))
        filer = data.get("filed_by") or self.operator
        if order and filer and self.instance.pk is None:
            if Complaint.objects.filter(
                order=order, filed_by=filer, status=ComplaintStatus.OPEN
            ).exists():
                self.add_error("order", services.AlreadyComplained.default_message)
        return data


@admin.register(Complaint)
class ComplaintAdmin(admin.ModelAdmin):
    form = ComplaintForm
    list_display = ("rider", "order", "category", "status", "created_at", "decided_by")
    list_filter = ("status", "category")
    search_fields = ("rider__username", "reason")
    list_select_related = ("rider", "order", "decided_by")
    raw_id_fields = ("rider", "order", "filed_by")
    readonly_fields = ("status", "decided_at", "decided_by")
    actions = ["uphold", "dismiss"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.operator = request.user
        return form

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        complaint = services.complaint_file(
            rider=obj.rider,
            order=obj.order,
            reason=obj.reason,
            category=obj.category,
            filed_by=obj.filed_by or request.user,
        )
        obj.pk = complaint.pk

    def _decide(self, request, queryset, upheld: bool):
        # Each decision recomputes the rider's credit score once it is committed.
        for complaint in queryset.filter(status=ComplaintStatus.OPEN):
            services.complaint_decide(complaint=complaint, operator=request.user, upheld=upheld)
        self.message_user(request, _("Done."), messages.SUCCESS)

    @admin.action(description=_("Uphold (lowers the rider's credit score)"))
    def uphold(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description=_("Dismiss"))
    def dismiss(self, request, queryset):
        self._decide(request, queryset, False)
