from django.conf import settings
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _

from campus_errand.append_only import AppendOnlyModel


class TrackPoint(models.Model):
    """A rider's accepted GPS fix, kept for dispute replays until the retention period ends."""

    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="track_points"
    )
    # No spatial index: tracks are read by rider and time, never by place, and an R-tree (GiST
    # on PostGIS) updated for every fix was most of the cost of writing the history.
    point = models.PointField(srid=4326, spatial_index=False)
    accuracy_m = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField(help_text=_("The phone's own timestamp."))
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("track point")
        verbose_name_plural = _("track points")
        indexes = [models.Index(fields=["rider", "recorded_at"])]
        ordering = ["rider", "recorded_at"]

    def __str__(self) -> str:
        return f"{self.rider_id}@{self.recorded_at:%H:%M:%S}"


# --- proof of pickup and delivery --------------------------------------------------------------


class ProofMethod(models.TextChoices):
    """What a campus asks of the rider at a step of one kind of errand (ProofSettings)."""

    NONE = "none", _("Nothing")
    CODE = "code", _("Code")
    PHOTO = "photo", _("Photo")
    CODE_OR_PHOTO = "code_or_photo", _("Code or photo")
    MERCHANT = "merchant", _("Merchant's confirmation")


class ProofSettings(models.Model):
    """Per campus and errand kind: what confirms the pickup and the delivery.

    Pickup: the parcel's pickup code (取件码, typed from the parcel's label), a photo, or the
    merchant's confirmation (takeout). Delivery: the customer's 4-digit delivery code, a photo of
    the hand-over, or either. A kind without a row uses tracking.proof.DEFAULTS. A confidential
    document always needs the customer's code, whatever is set here.
    """

    campus = models.ForeignKey(
        "campus.Campus", on_delete=models.CASCADE, related_name="proof_settings"
    )
    kind = models.CharField(_("errand kind"), max_length=12)
    pickup = models.CharField(
        _("pickup confirmed by"),
        max_length=16,
        choices=ProofMethod.choices,
        default=ProofMethod.NONE,
    )
    delivery = models.CharField(
        _("delivery confirmed by"),
        max_length=16,
        choices=[c for c in ProofMethod.choices if c[0] != ProofMethod.MERCHANT],
        default=ProofMethod.NONE,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("proof settings")
        verbose_name_plural = _("proof settings")
        ordering = ["campus", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "kind"], name="proof_settings_unique"),
            models.CheckConstraint(
                condition=~models.Q(delivery="merchant"), name="proof_delivery_not_merchant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campus} · {self.kind}"


class ProofStage(models.TextChoices):
    PICKUP = "pickup", _("Pickup")
    DELIVERY = "delivery", _("Delivery")


class OrderProof(models.Model):
    """How one pickup or delivery was confirmed, kept for disputes. Append-only.

    A photo row is stored when the rider uploads it (it then counts for the step); the other rows
    are written in the same transaction as the status change they confirm."""

    class Method(models.TextChoices):
        CODE = "code", _("Code")
        PHOTO = "photo", _("Photo")
        MERCHANT = "merchant", _("Merchant's confirmation")
        OVERRIDE = "override", _("Operator or system")

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="proofs")
    stage = models.CharField(_("stage"), max_length=10, choices=ProofStage.choices)
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    photo = models.ImageField(_("photo"), upload_to="proofs/%Y/%m/", blank=True)
    photo_thumb = models.ImageField(_("thumbnail"), upload_to="proofs/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("order proof")
        verbose_name_plural = _("order proofs")
        ordering = ["order", "created_at", "pk"]
        indexes = [models.Index(fields=["order", "stage"])]

    def __str__(self) -> str:
        return f"{self.order_id} {self.stage} {self.method}"


# --- order chat --------------------------------------------------------------------------------


class ChatMessage(models.Model):
    """One line of the chat between an order's customer and its rider (tracking.chat)."""

    class Role(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        RIDER = "rider", _("Rider")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="chat_messages"
    )
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    # A quick reply is stored as its code, shown in each reader's language; else `body`.
    quick = models.CharField(_("quick reply"), max_length=24, blank=True)
    body = models.CharField(_("message"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["order", "created_at", "pk"]
        indexes = [models.Index(fields=["order", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(quick="", body=""), name="chat_message_not_empty"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.role}: {self.quick or self.body[:30]}"


# --- track retention and dispute replays -------------------------------------------------------


class ArchivedTrackPoint(models.Model):
    """The downsampled track of one order kept for disputes after the raw fixes are purged
    (tracking.retention): one point per 30 s or 20 m while the rider carried the order."""

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="archived_track"
    )
    rider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    point = models.PointField(srid=4326, spatial_index=False)  # read by order, never by place
    accuracy_m = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("archived track point")
        verbose_name_plural = _("archived track points")
        ordering = ["order", "recorded_at"]
        indexes = [models.Index(fields=["order", "recorded_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "rider", "recorded_at"], name="archived_track_point_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.rider_id}@{self.recorded_at:%H:%M:%S}"


class TrackAccessLog(AppendOnlyModel):
    """Who looked at a rider's recorded track, when and why. Append-only: never edited, never
    deleted (not even by the retention purge)."""

    class Reason(models.TextChoices):
        DISPUTE = "dispute", _("Delivery dispute")
        COMPLAINT = "complaint", _("Complaint about the rider")
        SAFETY = "safety", _("Safety incident")
        LEGAL = "legal", _("Request from the authorities")
        OTHER = "other", _("Other")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    note = models.CharField(_("details"), max_length=300)
    points = models.PositiveIntegerField(_("points shown"), default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("track access")
        verbose_name_plural = _("track access log")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} → {self.order_id} ({self.reason})"
