import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedTextField
from campus_errand.append_only import AppendOnlyModel
from orders.status import STYLE, TRANSITIONS, Status  # noqa: F401  (re-exported for callers)


class Kind(models.TextChoices):
    PARCEL = "parcel", _("Parcel pickup")
    BUY = "buy", _("Buy for me")
    DOCUMENT = "document", _("Document delivery")
    QUEUE = "queue", _("Queue / hold a seat")
    CUSTOM = "custom", _("Custom errand")


# Takeout (外卖) is ordered from a merchant's menu (merchants/), not through an errand form: an
# order kind but not an errand Kind, so the errand forms and APIs (Kind.choices) never offer it.
TAKEOUT = "takeout"
ORDER_KINDS = [*Kind.choices, (TAKEOUT, _("Takeout"))]


class SizeClass(models.TextChoices):
    SMALL = "small", _("Small (fits in a hand)")
    MEDIUM = "medium", _("Medium (shoebox)")
    LARGE = "large", _("Large (needs both arms)")
    HEAVY = "heavy", _("Heavy (over 10 kg)")


class Courier(models.TextChoices):
    SF = "sf", _("SF Express")
    JD = "jd", _("JD Logistics")
    ZTO = "zto", _("ZTO Express")
    YTO = "yto", _("YTO Express")
    STO = "sto", _("STO Express")
    YUNDA = "yunda", _("Yunda Express")
    EMS = "ems", _("China Post / EMS")
    CAINIAO = "cainiao", _("Cainiao Station")
    OTHER = "other", _("Other")


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
    kind = models.CharField(_("kind"), max_length=12, choices=ORDER_KINDS)
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
    # Parcel: notes for the rider; buy-for-me: the shopping list; others: what to do.
    description = models.TextField(_("description"), max_length=1000, blank=True)
    photo = models.ImageField(_("item photo"), upload_to="orders/photos/%Y/%m/", blank=True)
    photo_thumb = models.ImageField(
        _("item photo thumbnail"), upload_to="orders/photos/%Y/%m/", blank=True
    )
    required_gender = models.CharField(
        _("rider gender"), max_length=8, choices=RequiredGender.choices, default=RequiredGender.ANY
    )
    price_fen = models.PositiveIntegerField(
        _("fee (fen)"), help_text=_("The errand fee from the quote, inside the campus band.")
    )
    # The quote's lines [{"code", "amount_fen", "args"}]; labels are made when shown (i18n).
    price_lines = models.JSONField(_("price breakdown"), default=list, blank=True)
    tip_fen = models.PositiveIntegerField(_("tip (fen)"), default=0)
    distance_m = models.PositiveIntegerField(_("walking distance (m)"), null=True, blank=True)
    urgent = models.BooleanField(_("urgent"), default=False)
    size_class = models.CharField(
        _("size"), max_length=8, choices=SizeClass.choices, default=SizeClass.SMALL
    )

    # --- kind details: typed columns, each kind's own form says which it uses (orders/kinds.py)
    # Parcel pickup.
    courier = models.CharField(_("courier"), max_length=12, choices=Courier.choices, blank=True)
    # Encrypted at rest; shown only to the customer and to the rider carrying it (rules.py).
    pickup_code = EncryptedTextField(_("pickup code"), blank=True, default="")
    # Buy for me: the customer pre-authorises the cap; the rider records the actual cost.
    budget_cap_fen = models.PositiveIntegerField(_("budget cap (fen)"), null=True, blank=True)
    actual_cost_fen = models.PositiveIntegerField(_("actual cost (fen)"), null=True, blank=True)
    receipt_photo = models.ImageField(
        _("receipt photo"), upload_to="orders/receipts/%Y/%m/", blank=True
    )
    receipt_thumb = models.ImageField(
        _("receipt thumbnail"), upload_to="orders/receipts/%Y/%m/", blank=True
    )
    cost_recorded_at = models.DateTimeField(_("cost recorded at"), null=True, blank=True)
    # Document: sealed, hand to hand; the rider needs the customer's delivery code.
    confidential = models.BooleanField(_("confidential"), default=False)
    delivery_code = models.CharField(_("delivery code"), max_length=4, blank=True)
    # Queue / seat holding: the place is the pickup building (+ detail).
    start_at = models.DateTimeField(_("start at"), null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(_("duration (min)"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("rider checked in at"), null=True, blank=True)
    check_in_lat = models.FloatField(null=True, blank=True)
    check_in_lng = models.FloatField(null=True, blank=True)
    check_in_distance_m = models.PositiveIntegerField(null=True, blank=True)

    # --- time: scheduled orders (预约) and the promise
    deliver_by = models.DateTimeField(_("deliver by"), null=True, blank=True)
    opens_at = models.DateTimeField(
        _("opens to riders at"),
        null=True,
        blank=True,
        help_text=_("Scheduled orders are hidden from riders until then; empty: at once."),
    )
    promised_at = models.DateTimeField(_("promised delivery time"), null=True, blank=True)

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
            models.CheckConstraint(
                condition=Q(kind="buy", budget_cap_fen__gt=0)
                | (
                    ~Q(kind="buy")
                    & Q(budget_cap_fen__isnull=True)
                    & Q(actual_cost_fen__isnull=True)
                ),
                name="order_budget_only_and_always_for_buy",
            ),
            models.CheckConstraint(
                condition=Q(actual_cost_fen__isnull=True)
                | Q(actual_cost_fen__lte=F("budget_cap_fen")),
                name="order_actual_cost_within_cap",
            ),
            models.CheckConstraint(
                condition=~Q(kind="queue") | Q(start_at__isnull=False, duration_minutes__gt=0),
                name="order_queue_has_start_and_duration",
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
        return yuan(self.price_fen)

    @property
    def items_fen(self) -> int:
        """Buy for me: the actual cost once recorded, until then the pre-authorised cap."""
        if self.actual_cost_fen is not None:
            return self.actual_cost_fen
        return self.budget_cap_fen or 0

    @property
    def total_fen(self) -> int:
        """What the customer pays: fee + tip (+ items). At checkout the items count at the cap;
        after the rider records the cost, at the actual cost (the difference goes back).
        Takeout: the merchant's ticket says (food, packaging and delivery, less discounts)."""
        if self.kind == TAKEOUT and (takeout := getattr(self, "takeout", None)) is not None:
            return takeout.due_fen
        return self.price_fen + self.tip_fen + self.items_fen

    @property
    def total_yuan(self) -> str:
        return yuan(self.total_fen)

    @property
    def is_scheduled(self) -> bool:
        return self.opens_at is not None

    @property
    def style(self):
        return STYLE[self.status]


class OrderEvent(AppendOnlyModel):
    """Append-only log of every status change (and other notable order events)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    old_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    new_status = models.CharField(max_length=16, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.old_status or '∅'} → {self.new_status}"


def yuan(fen: int) -> str:
    """Integer fen as a yuan string, exactly (no float): 1250 -> "12.50"."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class PricingRule(models.Model):
    """A campus's pricing knobs, edited by operators in admin (see orders/pricing.py).

    All money is integer fen. Defaults give errands of ¥5–20."""

    campus = models.OneToOneField(
        "campus.Campus", on_delete=models.CASCADE, related_name="pricing_rule"
    )
    band_min_fen = models.PositiveIntegerField(_("lowest fee (fen)"), default=500)
    band_max_fen = models.PositiveIntegerField(_("highest fee (fen)"), default=2000)
    free_distance_m = models.PositiveIntegerField(_("distance included (m)"), default=300)
    distance_step_m = models.PositiveIntegerField(
        _("distance step (m)"), default=100, validators=[MinValueValidator(1)]
    )
    distance_step_fen = models.PositiveIntegerField(_("fee per started step (fen)"), default=50)
    size_medium_fen = models.PositiveIntegerField(_("medium item (fen)"), default=100)
    size_large_fen = models.PositiveIntegerField(_("large item (fen)"), default=300)
    size_heavy_fen = models.PositiveIntegerField(_("heavy item (fen)"), default=600)
    urgent_fee_fen = models.PositiveIntegerField(_("urgent (fen)"), default=300)
    night_fee_fen = models.PositiveIntegerField(_("night fee (fen)"), default=200)
    night_starts = models.TimeField(_("night starts"), default=dt.time(22, 0))
    night_ends = models.TimeField(_("night ends"), default=dt.time(7, 0))
    peak_ratio_permille = models.PositiveIntegerField(
        _("peak threshold (open orders per online rider × 1000)"),
        default=2000,
        validators=[MinValueValidator(1)],
    )
    peak_percent = models.PositiveSmallIntegerField(
        _("peak surcharge per step (%)"), default=20, validators=[MaxValueValidator(100)]
    )
    peak_max_steps = models.PositiveSmallIntegerField(_("peak steps at most"), default=2)
    weather_on = models.BooleanField(
        _("bad weather surcharge on"),
        default=False,
        help_text=_("Switch on in rain, snow or heat; it applies to new quotes at once."),
    )
    weather_fee_fen = models.PositiveIntegerField(_("bad weather fee (fen)"), default=300)
    queue_block_minutes = models.PositiveSmallIntegerField(
        _("queue block (min)"), default=30, validators=[MinValueValidator(1)]
    )
    queue_block_fen = models.PositiveIntegerField(
        _("fee per started queue block (fen)"), default=300
    )
    walk_m_per_min = models.PositiveSmallIntegerField(
        _("walking speed (m/min)"), default=75, validators=[MinValueValidator(1)]
    )
    approach_minutes = models.PositiveSmallIntegerField(
        _("minutes for a rider to reach the pickup"), default=10
    )
    schedule_buffer_minutes = models.PositiveSmallIntegerField(
        _("scheduled orders open this much earlier (min)"), default=20
    )
    quote_valid_seconds = models.PositiveIntegerField(
        _("a quote is honoured for (s)"), default=300, validators=[MinValueValidator(30)]
    )
    tip_max_fen = models.PositiveIntegerField(_("highest tip (fen)"), default=5000)
    budget_cap_max_fen = models.PositiveIntegerField(
        _("highest shopping budget (fen)"), default=50000
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("pricing rule")
        verbose_name_plural = _("pricing rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(band_min_fen__lte=F("band_max_fen")), name="pricing_band_ordered"
            )
        ]

    def __str__(self) -> str:
        return str(_("Pricing for %(campus)s") % {"campus": self.campus})


KIND_DEFAULTS: dict[str, dict] = {
    Kind.PARCEL: {"photo_required": True, "base_fee_fen": 300, "handling_minutes": 5},
    Kind.BUY: {"photo_required": False, "base_fee_fen": 400, "handling_minutes": 15},
    Kind.DOCUMENT: {"photo_required": False, "base_fee_fen": 300, "handling_minutes": 3},
    Kind.QUEUE: {"photo_required": False, "base_fee_fen": 300, "handling_minutes": 0},
    Kind.CUSTOM: {"photo_required": True, "base_fee_fen": 0, "handling_minutes": 10},
    # The delivery fee of a takeout order (merchants/); handling: collecting the bag at the counter.
    TAKEOUT: {"photo_required": False, "base_fee_fen": 200, "handling_minutes": 3},
}


class ErrandKindSetting(models.Model):
    """Per campus and kind: offered or not, item photo required, base fee, handling time.

    A kind without a row uses KIND_DEFAULTS."""

    campus = models.ForeignKey(
        "campus.Campus", on_delete=models.CASCADE, related_name="errand_kind_settings"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    enabled = models.BooleanField(_("offered"), default=True)
    photo_required = models.BooleanField(_("item photo required"), default=False)
    base_fee_fen = models.PositiveIntegerField(_("base fee (fen)"), default=300)
    handling_minutes = models.PositiveSmallIntegerField(
        _("handling time (min)"),
        default=5,
        help_text=_("Time at the pickup (queueing at the counter, shopping)."),
    )

    class Meta:
        verbose_name = _("errand kind setting")
        verbose_name_plural = _("errand kind settings")
        ordering = ["campus", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "kind"], name="errand_kind_setting_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campus} · {self.get_kind_display()}"

    @classmethod
    def default_for(cls, campus, kind: str) -> "ErrandKindSetting":
        return cls(campus=campus, kind=kind, **KIND_DEFAULTS[kind])


class RatingTag(models.TextChoices):
    ON_TIME = "on_time", _("On time")
    FRIENDLY = "friendly", _("Friendly")
    CAREFUL = "careful", _("Careful with my item")
    GOOD_CONTACT = "good_contact", _("Kept me posted")
    LATE = "late", _("Late")
    DAMAGED = "damaged", _("Item damaged")
    RUDE = "rude", _("Rude")


class StarRating(models.Model):
    """Stars (1-5), tags from the kind's own list and a comment, given once per order after
    delivery: the customer's of the rider (Rating), the rider's of the customer (CustomerRating)."""

    stars = models.PositiveSmallIntegerField(
        _("stars"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    tags = models.JSONField(_("tags"), default=list, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order} ★{self.stars}"


class Rating(StarRating):
    """The customer rates the rider after delivery, once per order (feeds the credit score)."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="rating")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings_given"
    )
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings_received"
    )

    class Meta(StarRating.Meta):
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        indexes = [models.Index(fields=["rider", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(stars__gte=1) & Q(stars__lte=5), name="rating_stars_1_to_5"
            )
        ]


class CustomerRatingTag(models.TextChoices):
    READY = "ready", _("Ready on time")
    POLITE = "polite", _("Polite")
    CLEAR_DIRECTIONS = "clear_directions", _("Clear directions")
    HARD_TO_REACH = "hard_to_reach", _("Hard to reach")
    WRONG_ADDRESS = "wrong_address", _("Wrong address")
    RUDE = "rude", _("Rude")


class CustomerRating(StarRating):
    """The rider rates the customer after delivery, once per order (shown to riders as stars)."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="customer_rating")
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customer_ratings_given"
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="customer_ratings_received",
    )

    class Meta(StarRating.Meta):
        verbose_name = _("customer rating")
        verbose_name_plural = _("customer ratings")
        indexes = [models.Index(fields=["customer", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(stars__gte=1) & Q(stars__lte=5), name="customer_rating_stars_1_to_5"
            )
        ]
