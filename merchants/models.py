"""Merchants and takeout: who sells (canteen windows, shops), what they sell (menus with options,
stock and meal periods), when (opening hours, closures, busy and pause), the promotions (满减
tiers, coupons), carts, group orders (拼单), group meals (拼好饭) and the merchant's ticket of each
takeout order.

A takeout order is an orders.Order of kind "takeout" (the delivery: rider, status, tracking, money)
plus one TakeoutOrder here (the food: lines, prices, discounts, the merchant's track
new -> accepted -> preparing -> ready). All money is integer fen (merchants/pricing.py states the
one rounding rule).
"""

import datetime as dt
import secrets

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

# --- merchants --------------------------------------------------------------------------------


class MerchantKind(models.TextChoices):
    CANTEEN_WINDOW = "canteen_window", _("Canteen window")
    RESTAURANT = "restaurant", _("Restaurant")
    CONVENIENCE = "convenience", _("Convenience store")
    MILK_TEA = "milk_tea", _("Milk tea & drinks")
    BAKERY = "bakery", _("Bakery & snacks")
    FRUIT = "fruit", _("Fruit")
    OTHER = "other", _("Other")


class Merchant(models.Model):
    """A seller on one campus. Operators create merchants in admin, place them on the map and
    attach their staff; staff see and change only their own merchant in the portal."""

    campus = models.ForeignKey("campus.Campus", on_delete=models.PROTECT, related_name="merchants")
    building = models.ForeignKey(
        "campus.Building",
        on_delete=models.PROTECT,
        related_name="merchants",
        verbose_name=_("building"),
        help_text=_("Where riders pick orders up (a canteen, a shop)."),
    )
    counter = models.CharField(
        _("counter"), max_length=40, blank=True, help_text=_("For example: window 3, 1st floor")
    )
    location = gis.PointField(
        _("location on the map"),
        srid=4326,
        null=True,
        blank=True,
        help_text=_("Empty: the building's entrance."),
    )
    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=MerchantKind.choices)
    description = models.CharField(_("description"), max_length=200, blank=True)
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="merchants",
        blank=True,
        verbose_name=_("staff"),
        help_text=_("People who run this merchant's portal: menu, orders, sales."),
    )
    # The ledger keeps payables per holder (payments.Account.owner): each merchant gets its own
    # holder, an inactive account nobody logs in with, so that its payables never mix with
    # anyone's wallet or another merchant's.
    payee = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payee_of",
        editable=False,
        verbose_name=_("ledger holder"),
    )
    commission_rate_bp = models.PositiveIntegerField(
        _("platform commission (basis points)"),
        default=800,
        validators=[MaxValueValidator(10000)],
        help_text=_("Share of the merchant's food sales kept by the platform; 800 = 8%."),
    )
    prep_minutes = models.PositiveSmallIntegerField(
        _("preparation time (min)"), default=15, validators=[MinValueValidator(1)]
    )
    busy = models.BooleanField(
        _("busy mode"), default=False, help_text=_("Adds the busy extra to the promised time.")
    )
    busy_extra_minutes = models.PositiveSmallIntegerField(_("busy extra (min)"), default=15)
    paused = models.BooleanField(
        _("paused"), default=False, help_text=_("Takes no new orders until switched back.")
    )
    paused_note = models.CharField(_("pause note"), max_length=100, blank=True)
    min_order_fen = models.PositiveIntegerField(_("minimum order (fen)"), default=0)
    active = models.BooleanField(
        _("listed"),
        default=True,
        help_text=_("Operators' switch: unlisted merchants sell nothing."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["building__code", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_rate_bp__lte=10000), name="merchant_commission_at_most_100"
            ),
            models.CheckConstraint(
                condition=Q(prep_minutes__gte=1), name="merchant_prep_at_least_a_minute"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return _localized(self.name, self.name_en)

    @property
    def current_prep_minutes(self) -> int:
        """What a new order is promised: the usual time, plus the busy extra in busy mode."""
        return self.prep_minutes + (self.busy_extra_minutes if self.busy else 0)

    @property
    def lat(self) -> float:
        return self.location.y if self.location else self.building.lat

    @property
    def lng(self) -> float:
        return self.location.x if self.location else self.building.lng


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OpeningHours(models.Model):
    """One opening interval on a weekday (a window may open for lunch and again for dinner). A
    closing time at or before the opening time runs past midnight (21:00–01:00)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday_0_to_6"),
            models.CheckConstraint(condition=~Q(opens=F("closes")), name="hours_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class Closure(models.Model):
    """Closed on these days (holidays, exams, repairs), whatever the opening hours say."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="closures")
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until (inclusive)"))
    reason = models.CharField(_("reason"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="closure_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.starts_on}–{self.ends_on} {self.reason}".strip()


# --- menu -----------------------------------------------------------------------------------


class MealPeriod(models.TextChoices):
    BREAKFAST = "breakfast", _("Breakfast")
    LUNCH = "lunch", _("Lunch")
    AFTERNOON = "afternoon", _("Afternoon tea")
    DINNER = "dinner", _("Dinner")
    LATE = "late", _("Late night")


# Local time windows [start, end); LATE wraps past midnight.
MEAL_PERIOD_WINDOWS = {
    MealPeriod.BREAKFAST: (dt.time(5, 0), dt.time(10, 30)),
    MealPeriod.LUNCH: (dt.time(10, 30), dt.time(14, 0)),
    MealPeriod.AFTERNOON: (dt.time(14, 0), dt.time(17, 0)),
    MealPeriod.DINNER: (dt.time(17, 0), dt.time(21, 0)),
    MealPeriod.LATE: (dt.time(21, 0), dt.time(5, 0)),
}


def meal_period_at(local: dt.time) -> str:
    for period, (start, end) in MEAL_PERIOD_WINDOWS.items():
        if (start <= local < end) if start < end else (local >= start or local < end):
            return period
    return MealPeriod.LATE  # unreachable: the windows cover the day


class MenuCategory(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(_("name"), max_length=40)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("menu category")
        verbose_name_plural = _("menu categories")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class MenuItem(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="items")
    category = models.ForeignKey(
        MenuCategory,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="items",
        verbose_name=_("category"),
    )
    name = models.CharField(_("name"), max_length=60)
    description = models.CharField(_("description"), max_length=200, blank=True)
    photo = models.ImageField(_("photo"), upload_to="menu/%Y/%m/", blank=True)
    photo_thumb = models.ImageField(_("photo thumbnail"), upload_to="menu/%Y/%m/", blank=True)
    price_fen = models.PositiveIntegerField(_("price (fen)"))
    packaging_fen = models.PositiveIntegerField(_("packaging fee (fen)"), default=0)
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Portions left; empty: no limit.")
    )
    sold_out = models.BooleanField(_("sold out"), default=False)
    # Meal periods in which the item is sold; empty: all day.
    periods = models.JSONField(_("meal periods"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("on the menu"), default=True)

    class Meta:
        verbose_name = _("menu item")
        verbose_name_plural = _("menu items")
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["merchant", "active"])]

    def __str__(self) -> str:
        return self.name

    @property
    def unavailable(self) -> bool:
        """Greyed out on the menu: switched sold out, or no portions left."""
        return self.sold_out or self.stock == 0

    def sold_in(self, period: str) -> bool:
        return not self.periods or period in self.periods

    def period_labels(self) -> list[str]:
        return [str(MealPeriod(p).label) for p in self.periods if p in MealPeriod.values]


class OptionGroup(models.Model):
    """Size, spice level, toppings...: required or optional, one choice or several."""

    item = models.ForeignKey(MenuItem, on_delete=models.CASCADE, related_name="option_groups")
    name = models.CharField(_("name"), max_length=40)
    required = models.BooleanField(_("required"), default=False)
    multiple = models.BooleanField(_("several choices"), default=False)
    max_choices = models.PositiveSmallIntegerField(
        _("at most"), null=True, blank=True, help_text=_("Several choices: how many at most.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("option group")
        verbose_name_plural = _("option groups")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class Option(models.Model):
    group = models.ForeignKey(OptionGroup, on_delete=models.CASCADE, related_name="options")
    name = models.CharField(_("name"), max_length=40)
    # May be negative (a small size); a line never costs less than zero (merchants/pricing.py).
    price_delta_fen = models.IntegerField(_("price change (fen)"), default=0)
    available = models.BooleanField(_("available"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("option")
        verbose_name_plural = _("options")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


# --- promotions -----------------------------------------------------------------------------


class FundedBy(models.TextChoices):
    MERCHANT = "merchant", _("The merchant")
    PLATFORM = "platform", _("The platform")


class TierDiscount(models.Model):
    """满减: spend at least `threshold` on food, save `discount`. The best tier applies."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="tiers")
    threshold_fen = models.PositiveIntegerField(_("spend at least (fen)"))
    discount_fen = models.PositiveIntegerField(_("save (fen)"))
    funded_by = models.CharField(
        _("paid for by"), max_length=10, choices=FundedBy.choices, default=FundedBy.MERCHANT
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("spend-and-save tier (满减)")
        verbose_name_plural = _("spend-and-save tiers (满减)")
        ordering = ["threshold_fen"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_fen__gt=0) & Q(discount_fen__lt=F("threshold_fen")),
                name="tier_saves_less_than_threshold",
            )
        ]

    def __str__(self) -> str:
        return f"满{self.threshold_fen // 100}减{self.discount_fen / 100:g}"


class Coupon(models.Model):
    """A coupon campaign (红包). Students claim it; one claim pays off one order."""

    campus = models.ForeignKey("campus.Campus", on_delete=models.CASCADE, related_name="coupons")
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="coupons",
        help_text=_("Empty: good at every merchant on the campus."),
    )
    code = models.SlugField(_("code"), unique=True)
    title = models.CharField(_("title"), max_length=60)
    discount_fen = models.PositiveIntegerField(_("save (fen)"), validators=[MinValueValidator(1)])
    min_spend_fen = models.PositiveIntegerField(_("minimum spend on food (fen)"), default=0)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    funded_by = models.CharField(
        _("paid for by"), max_length=10, choices=FundedBy.choices, default=FundedBy.PLATFORM
    )
    stacks_with_tiers = models.BooleanField(
        _("combines with 满减"),
        default=True,
        help_text=_("Off: an order using this coupon gets no 满减 tier."),
    )
    new_users_only = models.BooleanField(_("new users only"), default=False)
    per_user_limit = models.PositiveSmallIntegerField(_("claims per person"), default=1)
    total_limit = models.PositiveIntegerField(_("claims in all"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["valid_until"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")), name="coupon_valid_window"
            ),
            models.CheckConstraint(
                condition=Q(discount_fen__gt=0), name="coupon_discount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def valid_at(self, when) -> bool:
        return self.active and self.valid_from <= when < self.valid_until


class CouponClaim(models.Model):
    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="claims")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coupon_claims"
    )
    claimed_at = models.DateTimeField(auto_now_add=True)
    # The order it paid off. A cancelled or expired order gives the coupon back (selectors).
    used_by = models.ForeignKey(
        "TakeoutOrder",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="coupon_claims",
    )

    class Meta:
        verbose_name = _("claimed coupon")
        verbose_name_plural = _("claimed coupons")
        ordering = ["-claimed_at"]

    def __str__(self) -> str:
        return f"{self.coupon} · {self.user}"


class TakeoutSettings(models.Model):
    """A campus's takeout rules, edited by operators in admin."""

    campus = models.OneToOneField(
        "campus.Campus", on_delete=models.CASCADE, related_name="takeout_settings"
    )
    new_user_discount_fen = models.PositiveIntegerField(
        _("new-user discount (fen)"),
        default=300,
        help_text=_("Off a student's first takeout order; paid by the platform. 0: none."),
    )
    accept_within_minutes = models.PositiveSmallIntegerField(
        _("merchants accept within (min)"),
        default=10,
        validators=[MinValueValidator(1)],
        help_text=_("A new order nobody at the merchant accepts in time is refunded."),
    )
    slot_minutes = models.PositiveSmallIntegerField(
        _("delivery slot length (min)"), default=15, validators=[MinValueValidator(5)]
    )
    group_deadline_minutes = models.PositiveSmallIntegerField(
        _("group orders close after (min)"), default=30, validators=[MinValueValidator(5)]
    )

    class Meta:
        verbose_name = _("takeout settings")
        verbose_name_plural = _("takeout settings")

    def __str__(self) -> str:
        return str(self.campus)


# --- carts and group orders (拼单) ----------------------------------------------------------


def _group_token() -> str:
    return secrets.token_urlsafe(9)


class GroupStatus(models.TextChoices):
    OPEN = "open", _("Open: add your items")
    SUBMITTED = "submitted", _("Ordered")
    CANCELLED = "cancelled", _("Cancelled")


class GroupCart(models.Model):
    """拼单: one student opens it and shares the link; roommates add their own items; it is ordered
    (each member paying their own share) when the opener locks it or at the deadline."""

    token = models.CharField(max_length=16, unique=True, default=_group_token, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="group_carts")
    opener = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="groups_opened"
    )
    dropoff_building = models.ForeignKey(
        "campus.Building", on_delete=models.PROTECT, related_name="+", verbose_name=_("deliver to")
    )
    dropoff_detail = models.CharField(_("room / note"), max_length=120, blank=True)
    deadline = models.DateTimeField(_("orders at"))
    status = models.CharField(
        _("status"), max_length=10, choices=GroupStatus.choices, default=GroupStatus.OPEN
    )
    outcome = models.CharField(_("outcome"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("group order (拼单)")
        verbose_name_plural = _("group orders (拼单)")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return f"{self.merchant} · {self.opener}"


class MemberState(models.TextChoices):
    ACTIVE = "active", _("In the group")
    LEFT = "left", _("Left")
    DROPPED = "dropped", _("Dropped: payment failed")


class Cart(models.Model):
    """A student's cart at one merchant, or their part of a group order."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="carts"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="carts")
    group = models.ForeignKey(
        GroupCart, on_delete=models.CASCADE, null=True, blank=True, related_name="members"
    )
    member_state = models.CharField(
        _("member"), max_length=10, choices=MemberState.choices, default=MemberState.ACTIVE
    )
    note = models.CharField(_("note to the merchant"), max_length=140, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("cart")
        verbose_name_plural = _("carts")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "merchant"],
                condition=Q(group__isnull=True),
                name="cart_one_per_user_and_merchant",
            ),
            models.UniqueConstraint(
                fields=["user", "group"],
                condition=Q(group__isnull=False),
                name="cart_one_per_user_and_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(MenuItem, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveSmallIntegerField(
        _("quantity"), default=1, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    # Chosen Option ids, sorted; checked again at checkout (the menu may have changed).
    option_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cart line")
        verbose_name_plural = _("cart lines")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=99), name="cart_line_quantity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.item_id}"


# --- group meals (拼好饭) -------------------------------------------------------------------


class GroupMeal(models.Model):
    """拼好饭: an operator's set meal at a group price. It ships to a building only if enough
    people there join before the cutoff; otherwise everyone is refunded automatically."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="group_meals")
    title = models.CharField(_("title"), max_length=60)
    contents = models.CharField(_("what is in it"), max_length=200)
    regular_price_fen = models.PositiveIntegerField(_("regular price (fen)"))
    group_price_fen = models.PositiveIntegerField(
        _("group price (fen)"), help_text=_("Each person pays this; delivery included.")
    )
    group_size = models.PositiveSmallIntegerField(
        _("people needed"), default=3, validators=[MinValueValidator(2), MaxValueValidator(20)]
    )
    cutoff = models.TimeField(_("join before"), help_text=_("Local time, every day it runs."))
    delivery_time = models.TimeField(_("delivered at"))
    starts_on = models.DateField(_("runs from"))
    ends_on = models.DateField(_("runs until (inclusive)"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("group meal (拼好饭)")
        verbose_name_plural = _("group meals (拼好饭)")
        ordering = ["cutoff", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(group_price_fen__gt=0), name="group_meal_price_positive"
            ),
            models.CheckConstraint(condition=Q(group_size__gte=2), name="group_meal_two_or_more"),
            models.CheckConstraint(
                condition=Q(delivery_time__gt=F("cutoff")), name="group_meal_delivered_after_cutoff"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class RoundStatus(models.TextChoices):
    OPEN = "open", _("Waiting for people")
    FILLED = "filled", _("Filled: on its way")
    FAILED = "failed", _("Did not fill: refunded")


class GroupMealRound(models.Model):
    """One group forming for a meal, a building and a day."""

    meal = models.ForeignKey(GroupMeal, on_delete=models.PROTECT, related_name="rounds")
    building = models.ForeignKey("campus.Building", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    cutoff_at = models.DateTimeField()
    deliver_at = models.DateTimeField()
    status = models.CharField(
        _("status"), max_length=8, choices=RoundStatus.choices, default=RoundStatus.OPEN
    )
    takeout = models.OneToOneField(
        "TakeoutOrder", on_delete=models.PROTECT, null=True, blank=True, related_name="meal_round"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("group meal round")
        verbose_name_plural = _("group meal rounds")
        ordering = ["-day", "pk"]
        indexes = [models.Index(fields=["status", "cutoff_at"])]

    def __str__(self) -> str:
        return f"{self.meal} · {self.building} · {self.day}"


class GroupMealJoin(models.Model):
    round = models.ForeignKey(GroupMealRound, on_delete=models.CASCADE, related_name="joins")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="meal_joins"
    )
    dropoff_detail = models.CharField(_("room"), max_length=120, blank=True)
    paid_fen = models.PositiveIntegerField(_("paid (fen)"))
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("group meal join")
        verbose_name_plural = _("group meal joins")
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["round", "user"],
                condition=Q(left_at__isnull=True),
                name="meal_join_once_per_round",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.round_id}"


# --- the merchant's ticket of a takeout order -----------------------------------------------


class MerchantStatus(models.TextChoices):
    NEW = "new", _("New order")
    ACCEPTED = "accepted", _("Accepted by the merchant")
    PREPARING = "preparing", _("Being prepared")
    READY = "ready", _("Ready for pickup (出餐)")
    REJECTED = "rejected", _("Rejected by the merchant")


# The merchant track beside the delivery track (orders.status.TRANSITIONS).
MERCHANT_TRANSITIONS: dict[str, set[str]] = {
    MerchantStatus.NEW: {MerchantStatus.ACCEPTED, MerchantStatus.REJECTED},
    MerchantStatus.ACCEPTED: {MerchantStatus.PREPARING, MerchantStatus.READY},
    MerchantStatus.PREPARING: {MerchantStatus.READY},
    MerchantStatus.READY: set(),
    MerchantStatus.REJECTED: set(),
}
MERCHANT_STYLE = {
    MerchantStatus.NEW: ("🧾", "#f9a825"),
    MerchantStatus.ACCEPTED: ("👍", "#1e88e5"),
    MerchantStatus.PREPARING: ("🍳", "#fb8c00"),
    MerchantStatus.READY: ("🥡", "#43a047"),
    MerchantStatus.REJECTED: ("✖️", "#e53935"),
}


class Source(models.TextChoices):
    SINGLE = "single", _("Order")
    GROUP = "group", _("Group order (拼单)")
    GROUP_MEAL = "group_meal", _("Group meal (拼好饭)")


class TakeoutOrder(models.Model):
    """The food side of a takeout order: the merchant's ticket."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="takeout")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="tickets")
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.SINGLE)
    group = models.OneToOneField(
        GroupCart, on_delete=models.PROTECT, null=True, blank=True, related_name="takeout"
    )
    day = models.DateField(_("day"))
    ticket_no = models.PositiveIntegerField(_("ticket number"))
    merchant_status = models.CharField(
        _("merchant status"),
        max_length=10,
        choices=MerchantStatus.choices,
        default=MerchantStatus.NEW,
    )
    note = models.CharField(_("note to the merchant"), max_length=280, blank=True)

    # Money, integer fen (merchants/pricing.py): what customers pay is
    # items + packaging + delivery - tier - coupon - new_user = due.
    items_fen = models.PositiveIntegerField(_("food (fen)"), default=0)
    packaging_fen = models.PositiveIntegerField(_("packaging (fen)"), default=0)
    delivery_fen = models.PositiveIntegerField(_("delivery fee (fen)"), default=0)
    tier_discount_fen = models.PositiveIntegerField(_("满减 (fen)"), default=0)
    coupon_discount_fen = models.PositiveIntegerField(_("coupon (fen)"), default=0)
    new_user_discount_fen = models.PositiveIntegerField(_("new-user discount (fen)"), default=0)
    merchant_funded_fen = models.PositiveIntegerField(_("discounts the merchant funds"), default=0)
    platform_funded_fen = models.PositiveIntegerField(_("discounts the platform funds"), default=0)
    due_fen = models.PositiveIntegerField(_("customers pay (fen)"), default=0)
    price_lines = models.JSONField(_("price breakdown"), default=list, blank=True)
    # Group orders: each member's share [{"user", "name", "items_fen", ..., "total_fen"}].
    shares = models.JSONField(_("shares"), default=list, blank=True)
    commission_rate_bp = models.PositiveIntegerField(_("commission (basis points)"))

    prep_minutes = models.PositiveSmallIntegerField(_("preparation time (min)"))
    # When the merchant got it: paid, or a group meal filled. Its accept limit counts from here.
    sent_at = models.DateTimeField(_("sent to the merchant at"), null=True, blank=True)
    expected_ready_at = models.DateTimeField(_("expected ready at"))
    accepted_at = models.DateTimeField(null=True, blank=True)
    preparing_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(_("reason"), max_length=200, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("takeout ticket")
        verbose_name_plural = _("takeout tickets")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "day"])]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "day", "ticket_no"], name="ticket_number_per_merchant_day"
            ),
            models.CheckConstraint(
                condition=Q(
                    due_fen=F("items_fen")
                    + F("packaging_fen")
                    + F("delivery_fen")
                    - F("tier_discount_fen")
                    - F("coupon_discount_fen")
                    - F("new_user_discount_fen")
                ),
                name="ticket_due_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(
                    merchant_funded_fen=F("tier_discount_fen")
                    + F("coupon_discount_fen")
                    + F("new_user_discount_fen")
                    - F("platform_funded_fen")
                ),
                name="ticket_discounts_funded_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.ticket_no} {self.merchant}"

    @property
    def is_ready(self) -> bool:
        return self.merchant_status == MerchantStatus.READY

    @property
    def awaiting_group(self) -> bool:
        """A group meal that has not filled yet: the merchant and riders do not see it."""
        if self.source != Source.GROUP_MEAL:
            return False
        round_ = getattr(self, "meal_round", None)
        return round_ is None or round_.status != RoundStatus.FILLED

    @property
    def discount_fen(self) -> int:
        return self.tier_discount_fen + self.coupon_discount_fen + self.new_user_discount_fen

    @property
    def style(self) -> tuple[str, str]:
        return MERCHANT_STYLE[self.merchant_status]

    @property
    def prep_seconds(self) -> int | None:
        if self.ready_at and self.accepted_at:
            return int((self.ready_at - self.accepted_at).total_seconds())
        return None

    def settlement_terms(self) -> dict:
        """What payments needs to settle the order (payments.services.takeout_settlement_split),
        as plain values: payments reads it without importing merchants."""
        order = self.order
        # Customers paid due = the rider's fee (+ tip) + the food less all discounts; the
        # merchant is owed the food less only the discounts it funds. A group meal's price
        # includes delivery (its ticket has no delivery line): the fee comes out of it.
        gross = self.due_fen - order.price_fen - order.tip_fen + self.platform_funded_fen
        return {
            "payee": self.merchant.payee,
            "merchant_gross_fen": max(gross, 0),
            "platform_funded_fen": self.platform_funded_fen,
            "commission_rate_bp": self.commission_rate_bp,
            "merchant": self.merchant.display_name,
        }


class TakeoutLine(models.Model):
    takeout = models.ForeignKey(TakeoutOrder, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(
        MenuItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Group orders: whose line this is."),
    )
    # Snapshots: the ticket says what was ordered even after the menu changes.
    name = models.CharField(_("name"), max_length=60)
    options = models.JSONField(
        _("options"), default=list, blank=True
    )  # [{"group","name","delta_fen"}]
    unit_fen = models.PositiveIntegerField(_("unit price with options (fen)"))
    packaging_fen = models.PositiveIntegerField(_("packaging per unit (fen)"), default=0)
    quantity = models.PositiveSmallIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("ticket line")
        verbose_name_plural = _("ticket lines")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def total_fen(self) -> int:
        return self.unit_fen * self.quantity

    @property
    def options_text(self) -> str:
        return ", ".join(o["name"] for o in self.options)


# --- notices --------------------------------------------------------------------------------


class Notice(models.Model):
    """Something a student must be told: dropped from a group, a group meal that did not fill,
    an order the merchant rejected. Shown on the takeout pages until read."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="takeout_notices"
    )
    message = models.CharField(max_length=300)
    link = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.message


def local_today() -> dt.date:
    return timezone.localdate()


def _localized(zh: str, en: str) -> str:
    lang = get_language() or "zh-hans"
    return en if lang.startswith("en") and en else zh
