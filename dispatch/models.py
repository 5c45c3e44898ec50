"""Dispatch state lives in the database, so a dispatcher restart loses nothing: settings per
campus, offers with their deadlines, the append-only decision log, at-risk flags and the lease
that keeps one dispatcher active per campus."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campus_errand.append_only import AppendOnlyModel
from orders.rules import DEFAULT_REACH_M, DEFAULT_RIDER_CAPACITY
from riders.models import RiderProfile


class Mode(models.TextChoices):
    GRAB = "grab", _("Grab (riders pick from the board)")
    AUTO = "auto", _("Auto (the dispatcher offers each order to one rider)")
    HYBRID = "hybrid", _("Hybrid (auto, then the board after unanswered offers)")


class TravelMode(models.TextChoices):
    WALKING = "walking", _("Walking")
    CYCLING = "cycling", _("Cycling")


class CampusDispatchSettings(models.Model):
    """How a campus is dispatched; operators switch the mode here (admin)."""

    campus = models.OneToOneField(
        "campus.Campus", on_delete=models.CASCADE, related_name="dispatch_settings"
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.GRAB)
    cycle_seconds = models.PositiveSmallIntegerField(
        _("cycle (seconds)"), default=10, help_text=_("How often the dispatcher runs.")
    )
    offer_timeout_seconds = models.PositiveSmallIntegerField(
        _("offer timeout (seconds)"),
        default=30,
        help_text=_("How long a rider has to answer an offer before it goes to someone else."),
    )
    hybrid_fallback_offers = models.PositiveSmallIntegerField(
        _("hybrid: board after N unanswered offers"),
        default=3,
        help_text=_(
            "In hybrid mode, an order declined or ignored this many times goes to the "
            "board, where any eligible rider may grab it."
        ),
    )
    rider_capacity = models.PositiveSmallIntegerField(
        _("orders per rider"),
        default=DEFAULT_RIDER_CAPACITY,
        help_text=_("Default limit of orders a rider carries at once."),
    )
    reach_m = models.PositiveIntegerField(
        _("reach (m)"),
        default=DEFAULT_REACH_M,
        help_text=_("Riders see and get orders whose pickup is at most this far along the paths."),
    )
    walking_speed_mps = models.FloatField(_("walking speed (m/s)"), default=1.3)
    cycling_speed_mps = models.FloatField(_("cycling speed (m/s)"), default=4.0)
    default_travel_mode = models.CharField(
        _("riders travel by"), max_length=8, choices=TravelMode.choices, default=TravelMode.CYCLING
    )
    promise_minutes = models.PositiveSmallIntegerField(
        _("promise (minutes)"),
        default=30,
        help_text=_("Used for orders that carry no promised time of their own."),
    )
    at_risk_margin_minutes = models.PositiveSmallIntegerField(
        _("flag orders at risk this early (minutes)"), default=5
    )
    auto_reassign = models.BooleanField(
        _("reassign automatically"),
        default=True,
        help_text=_(
            "Give orders back to the pool when their rider goes offline, stops moving "
            "or falls behind (only orders not picked up yet)."
        ),
    )
    stale_fix_minutes = models.PositiveSmallIntegerField(
        _("stopped moving after (minutes without a fix)"), default=5
    )
    behind_minutes = models.PositiveSmallIntegerField(
        _("falling behind (minutes late, planned)"), default=10
    )

    class Meta:
        verbose_name = _("campus dispatch settings")
        verbose_name_plural = _("campus dispatch settings")
        constraints = [
            models.CheckConstraint(condition=Q(cycle_seconds__gte=1), name="dispatch_cycle_min_1s"),
            models.CheckConstraint(
                condition=Q(offer_timeout_seconds__gte=5), name="dispatch_offer_timeout_min_5s"
            ),
            models.CheckConstraint(
                condition=Q(rider_capacity__gte=1), name="dispatch_capacity_min_1"
            ),
            models.CheckConstraint(
                condition=Q(walking_speed_mps__gt=0) & Q(cycling_speed_mps__gt=0),
                name="dispatch_speeds_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campus}: {self.get_mode_display()}"


class OfferQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=OfferStatus.PENDING)


class OfferStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the rider")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("No answer in time")
    WITHDRAWN = "withdrawn", _("Withdrawn")


UNANSWERED = (OfferStatus.DECLINED, OfferStatus.EXPIRED)


class Offer(models.Model):
    """One order offered to one rider until ``expires_at``. A pending offer reserves the order
    (orders.rules reads ``order.dispatch_offers.pending()``)."""

    campus = models.ForeignKey("campus.Campus", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="dispatch_offers"
    )
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dispatch_offers"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=OfferStatus.choices, default=OfferStatus.PENDING
    )
    created_at = models.DateTimeField(_("offered at"))
    expires_at = models.DateTimeField(_("expires at"))
    responded_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    cost = models.FloatField(_("cost"), default=0)
    terms = models.JSONField(_("cost terms"), default=dict, blank=True)

    objects = OfferQuerySet.as_manager()

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["rider", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status="pending"),
                name="one_pending_offer_per_order",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="offer_expires_after_made"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} → {self.rider} ({self.status})"


class Action(models.TextChoices):
    OFFERED = "offered", _("Offered (chosen)")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Offer expired")
    WITHDRAWN = "withdrawn", _("Offer withdrawn")
    REASSIGNED = "reassigned", _("Taken from the rider")
    FALLBACK = "fallback", _("Sent to the board")
    AT_RISK = "at_risk", _("Flagged at risk")


class DispatchDecision(AppendOnlyModel):
    """Append-only log of every dispatch decision, with the cost terms that explain it."""

    campus = models.ForeignKey("campus.Campus", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="dispatch_decisions"
    )
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    offer = models.ForeignKey(
        Offer, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices)
    cost = models.FloatField(_("cost"), null=True, blank=True)
    terms = models.JSONField(_("cost terms"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("dispatch decision")
        verbose_name_plural = _("dispatch decisions")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["order", "created_at"])]

    def __str__(self) -> str:
        return f"{self.order}: {self.action}"


class OrderRisk(models.Model):
    """An order that will probably miss its promised time: shown to operators until resolved."""

    campus = models.ForeignKey("campus.Campus", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="dispatch_risks"
    )
    reason = models.CharField(_("reason"), max_length=255)
    promised_at = models.DateTimeField(_("promised at"))
    predicted_at = models.DateTimeField(_("best predicted delivery"), null=True, blank=True)
    created_at = models.DateTimeField(_("flagged at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolution = models.CharField(_("resolution"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("order at risk")
        verbose_name_plural = _("orders at risk")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_risk_per_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.order}: {self.reason}"


class DispatcherLease(models.Model):
    """Who runs the dispatcher of a campus, until when. Claimed and renewed by conditional
    UPDATE (owner is me, or the lease has expired), so two processes never both hold it."""

    campus = models.OneToOneField(
        "campus.Campus", on_delete=models.CASCADE, related_name="dispatcher_lease"
    )
    owner = models.CharField(_("owner"), max_length=120)
    acquired_at = models.DateTimeField(_("acquired at"))
    expires_at = models.DateTimeField(_("expires at"))
    cycles = models.PositiveIntegerField(_("cycles run by this owner"), default=0)
    last_cycle_at = models.DateTimeField(_("last cycle"), null=True, blank=True)
    last_report = models.JSONField(_("last cycle's figures"), default=dict, blank=True)

    class Meta:
        verbose_name = _("dispatcher lease")
        verbose_name_plural = _("dispatcher leases")

    def __str__(self) -> str:
        return f"{self.campus}: {self.owner}"


class RiderOnDuty(RiderProfile):
    """Riders as dispatch sees them (load, last fix, credit): operators move orders from here."""

    class Meta:
        proxy = True
        verbose_name = _("rider on duty")
        verbose_name_plural = _("riders on duty")


class RelayLeg(models.Model):
    """One leg of a relayed order (中转): leg 1 from the pickup to the transfer station serving
    the drop-off building, leg 2 from the station to the door by a rider of the gender the
    building admits. Each leg's rider shows their hand-over code; the other rider enters it
    (dispatch/relay.py)."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="relay_legs")
    number = models.PositiveSmallIntegerField(_("leg"))  # 1 or 2
    station = models.ForeignKey(
        "campus.TransferStation", on_delete=models.PROTECT, related_name="relay_legs"
    )
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="relay_legs",
    )
    distance_m = models.FloatField(_("planned distance (m)"), default=0)
    # Leg 2's hand-over slot: from leg 1's planned arrival at the station, for the window.
    window_start = models.DateTimeField(_("hand-over from"), null=True, blank=True)
    window_end = models.DateTimeField(_("hand-over until"), null=True, blank=True)
    handoff_code = models.CharField(_("hand-over code"), max_length=8)
    code_confirmed_at = models.DateTimeField(
        _("code confirmed by the other rider"), null=True, blank=True
    )
    arrived_at = models.DateTimeField(_("at the station"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated to operators"), null=True, blank=True)
    created_at = models.DateTimeField(_("planned at"))

    class Meta:
        verbose_name = _("relay leg")
        verbose_name_plural = _("relay legs")
        ordering = ["order", "number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "number"], name="one_relay_leg_per_number")
        ]

    def __str__(self) -> str:
        return f"{self.order} leg {self.number}"
