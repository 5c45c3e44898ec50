from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.status import STYLE, TRANSITIONS, Status  # noqa: F401  (re-exported for callers)


class Kind(models.TextChoices):
    PARCEL = "parcel", _("Parcel pickup")
    BUY = "buy", _("Buy for me")
    DOCUMENT = "document", _("Document delivery")
    QUEUE = "queue", _("Queue / hold a seat")
    CUSTOM = "custom", _("Custom errand")


class RequiredGender(models.TextChoices):
    ANY = "any", _("Any rider")
    MALE = "male", _("Male rider")
    FEMALE = "female", _("Female rider")


class Order(models.Model):
    number = models.CharField(_("order number"), max_length=20, unique=True, editable=False)
    campus = models.ForeignKey("campus.Campus", on_delete=models.PROTECT, related_name="orders")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="rider_orders",
        null=True,
        blank=True,
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    pickup_building = models.ForeignKey(
        "campus.Building", on_delete=models.PROTECT, related_name="+", verbose_name=_("pickup")
    )
    pickup_detail = models.CharField(_("pickup detail"), max_length=120, blank=True)
    dropoff_building = models.ForeignKey(
        "campus.Building", on_delete=models.PROTECT, related_name="+", verbose_name=_("drop-off")
    )
    dropoff_detail = models.CharField(_("drop-off detail"), max_length=120, blank=True)
    description = models.TextField(_("description"), max_length=1000)
    photo = models.ImageField(_("item photo"), upload_to="orders/photos/", blank=True)
    required_gender = models.CharField(
        _("rider gender"), max_length=8, choices=RequiredGender.choices, default=RequiredGender.ANY
    )
    price_fen = models.PositiveIntegerField(_("price (fen)"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["rider", "status"]),
            models.Index(fields=["customer", "-created_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price_fen__gte=0), name="order_price_not_negative"),
            models.CheckConstraint(
                condition=Q(rider__isnull=True)
                | ~Q(status__in=[Status.PENDING, Status.OPEN, Status.EXPIRED]),
                name="order_open_has_no_rider",
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        """Grouped for reading aloud: 261130 4729 1856."""
        n = self.number
        return f"{n[:6]} {n[6:10]} {n[10:]}" if len(n) == 14 else n

    @property
    def price_yuan(self) -> str:
        return f"{self.price_fen / 100:.2f}"

    @property
    def style(self):
        return STYLE[self.status]


class OrderEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("OrderEvent is append-only")

    def delete(self):
        raise TypeError("OrderEvent is append-only")


class OrderEvent(models.Model):
    """Append-only log of every status change (and other notable order events)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    old_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    new_status = models.CharField(max_length=16, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrderEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.old_status or '∅'} → {self.new_status}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("OrderEvent is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("OrderEvent is append-only")
