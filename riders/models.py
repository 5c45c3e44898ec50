from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedTextField

# A new rider's score: what riders.credit computes for someone with no history yet.
NEW_RIDER_CREDIT = 92


class RiderState(models.TextChoices):
    """Where a rider stands with the operators (derived, see RiderProfile.state)."""

    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SUSPENDED = "suspended", _("Suspended")


class RiderProfile(models.Model):
    """A student courier. Their pool is their gender (User.gender).

    `verified` means "approved and not suspended": the one flag that lets a rider go online, share
    their location and accept orders (orders.rules and tracking read it). The onboarding history
    (applied, approved, rejected with a reason, suspended with a reason) lives beside it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rider_profile"
    )
    campus = models.ForeignKey("campus.Campus", on_delete=models.PROTECT, related_name="riders")
    verified = models.BooleanField(
        _("may ride"),
        default=False,
        help_text=_("Approved by an operator and not suspended. Changed by the admin actions."),
    )
    online = models.BooleanField(_("online"), default=False)
    capacity = models.PositiveSmallIntegerField(
        _("orders at once"),
        null=True,
        blank=True,
        help_text=_("How many orders this rider may carry at once; empty: the campus default."),
    )
    online_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # The application. Real name and student number are personal data: encrypted at rest and shown
    # to operators only.
    real_name = EncryptedTextField(_("real name"), blank=True, default="")
    student_number = EncryptedTextField(_("student number"), blank=True, default="")
    student_card = models.ImageField(_("student card photo"), upload_to="riders/cards/", blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    # The operators' decisions.
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    rejected_at = models.DateTimeField(_("rejected at"), null=True, blank=True)
    rejection_reason = models.CharField(_("reason for rejection"), max_length=255, blank=True)
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    suspension_reason = models.CharField(_("reason for suspension"), max_length=255, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last decided by"),
    )

    # 信用分, recomputed by riders.services.rider_credit_recompute (see riders.credit).
    credit_score = models.PositiveSmallIntegerField(_("credit score"), default=NEW_RIDER_CREDIT)
    credit_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("rider")
        verbose_name_plural = _("riders")
        constraints = [
            models.CheckConstraint(
                condition=Q(online=False) | Q(verified=True),
                name="rider_online_only_if_verified",
            ),
            models.CheckConstraint(
                condition=Q(verified=False)
                | (Q(suspended_at__isnull=True) & Q(rejected_at__isnull=True)),
                name="rider_verified_not_suspended_or_rejected",
            ),
            models.CheckConstraint(
                condition=Q(credit_score__lte=100), name="rider_credit_score_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.user.username

    @property
    def pool(self) -> str:
        return self.user.gender

    @property
    def state(self) -> str:
        if self.suspended_at:
            return RiderState.SUSPENDED
        if self.verified:
            return RiderState.APPROVED
        if self.rejected_at:
            return RiderState.REJECTED
        return RiderState.PENDING

    def get_state_display(self) -> str:
        return str(RiderState(self.state).label)


class ShiftEnd(models.TextChoices):
    """Why a shift ended (the shift log shows it)."""

    RIDER = "rider", _("Went offline")
    IDLE = "idle", _("Switched offline automatically: no position for too long")
    OPERATOR = "operator", _("Taken offline by an operator")
    REOPENED = "reopened", _("Left open; closed when the next shift started")


class Shift(models.Model):
    """One stretch online: opened by going online, closed by going offline (or a suspension)."""

    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rider_shifts"
    )
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(
        _("why it ended"), max_length=10, choices=ShiftEnd.choices, blank=True
    )

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["rider", "-started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["rider"],
                condition=Q(ended_at__isnull=True),
                name="one_open_shift_per_rider",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="shift_ends_after_it_starts",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rider_id} {self.started_at:%Y-%m-%d %H:%M}"


class ComplaintStatus(models.TextChoices):
    OPEN = "open", _("Open")
    UPHELD = "upheld", _("Upheld")
    DISMISSED = "dismissed", _("Dismissed")


class ComplaintCategory(models.TextChoices):
    LATE = "late", _("Late")
    RUDE = "rude", _("Rude or unfriendly")
    DAMAGED = "damaged", _("Item damaged")
    WRONG_ITEM = "wrong_item", _("Wrong or missing item")
    OTHER = "other", _("Something else")


class Complaint(models.Model):
    """A complaint about a rider. Only complaints an operator upheld lower the credit score.

    Customers file them from their order page or the API (riders.services.order_complaint_file),
    operators from the admin, where they uphold or dismiss them.
    """

    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="complaints_received",
        verbose_name=_("rider"),
    )
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rider_complaints",
        verbose_name=_("order"),
    )
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("filed by"),
    )
    category = models.CharField(
        _("problem"),
        max_length=12,
        choices=ComplaintCategory.choices,
        default=ComplaintCategory.OTHER,
    )
    reason = models.TextField(_("what happened"), max_length=1000, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ComplaintStatus.choices, default=ComplaintStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["rider", "status", "created_at"])]
        constraints = [
            # A customer's second report about the same order waits for the first to be decided.
            models.UniqueConstraint(
                fields=["order", "filed_by"],
                condition=Q(status=ComplaintStatus.OPEN),
                name="one_open_complaint_per_order_and_filer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rider_id}: {self.get_category_display()} {self.reason[:40]}"
