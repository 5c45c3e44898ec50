"""Reads shared by the takeout pages, the merchant portal, the API and the services, with their
related rows fetched once (the list and menu pages run a fixed number of queries)."""

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants import pricing
from merchants.hours import OpenState, open_state
from merchants.models import (
    Cart,
    CartLine,
    Closure,
    Coupon,
    CouponClaim,
    GroupCart,
    GroupMeal,
    GroupMealRound,
    MealPeriod,
    MemberState,
    MenuCategory,
    MenuItem,
    Merchant,
    MerchantStatus,
    Notice,
    OpeningHours,
    OptionGroup,
    RoundStatus,
    TakeoutLine,
    TakeoutOrder,
    TakeoutSettings,
    meal_period_at,
)
from orders.models import TAKEOUT, Order
from orders.status import Status

DEAD = (Status.CANCELLED, Status.EXPIRED)


def takeout_settings_for(campus) -> TakeoutSettings:
    found = TakeoutSettings.objects.filter(campus=campus).first() if campus else None
    return found or TakeoutSettings(campus=campus)


# --- browsing ---------------------------------------------------------------------------------


def merchant_qs() -> QuerySet[Merchant]:
    return Merchant.objects.select_related("building", "campus").prefetch_related(
        "hours", "closures", Prefetch("tiers", queryset=_active_tiers())
    )


def _active_tiers():
    from merchants.models import TierDiscount

    return TierDiscount.objects.filter(active=True).order_by("threshold_fen")


@dataclass
class MerchantCard:
    merchant: Merchant
    state: OpenState
    closing_soon: bool = False
    minutes_left: int | None = None
    matches: list[str] = field(default_factory=list)  # dishes matching the search


def merchant_browse(
    *, campus, now=None, q: str = "", kind: str = "", building: int | None = None
) -> list[MerchantCard]:
    """Listed merchants on the campus, open ones first; `q` searches names and dishes."""
    now = now or timezone.now()
    merchants = merchant_qs().filter(campus=campus, active=True)
    if kind:
        merchants = merchants.filter(kind=kind)
    if building:
        merchants = merchants.filter(building_id=building)
    matches: dict[int, list[str]] = defaultdict(list)
    q = (q or "").strip()
    if q:
        dishes = MenuItem.objects.filter(
            merchant__campus=campus, active=True, name__icontains=q
        ).values_list("merchant_id", "name")
        for merchant_id, name in dishes[:200]:
            matches[merchant_id].append(name)
        merchants = merchants.filter(
            Q(name__icontains=q) | Q(name_en__icontains=q) | Q(pk__in=list(matches))
        )
    cards = []
    for merchant in merchants:
        state = open_state(merchant, now)
        cards.append(
            MerchantCard(
                merchant,
                state,
                closing_soon=state.closing_soon(now),
                minutes_left=state.minutes_left(now),
                matches=matches.get(merchant.pk, [])[:3],
            )
        )
    cards.sort(key=lambda c: (not c.state.is_open, c.merchant.building.code, c.merchant.name))
    return cards


def merchants_open_now(*, campus, now=None, limit: int = 6) -> list[Merchant]:
    """The home page's "open now": one query, the hours checked by the database (an interval
    closing at or before it opens runs past midnight, see merchants/hours.py)."""
    if campus is None:
        return []
    if campus == "default":  # campus.selectors.campus_default, as a subquery: still one query
        from campus.models import Campus

        campus = Campus.objects.order_by("pk").values("pk")[:1]
    now = timezone.localtime(now or timezone.now())
    today, t = now.date(), now.time()
    yesterday = (now - dt.timedelta(days=1)).weekday()
    wraps = Q(closes__lte=F("opens"))
    open_now = OpeningHours.objects.filter(merchant=OuterRef("pk")).filter(
        (Q(weekday=now.weekday(), opens__lte=t) & (Q(closes__gt=t) | wraps))
        | (Q(weekday=yesterday, closes__gt=t) & wraps)
    )
    return list(
        Merchant.objects.filter(campus__in=campus if hasattr(campus, "query") else [campus])
        .filter(active=True, paused=False)
        .filter(Exists(open_now))
        .exclude(
            Exists(
                Closure.objects.filter(
                    merchant=OuterRef("pk"), starts_on__lte=today, ends_on__gte=today
                )
            )
        )
        .select_related("building")
        .order_by("building__code", "name")[:limit]
    )


def menu_for(merchant: Merchant, *, now=None, period: str | None = None) -> list[dict]:
    """[{category, items}] with each item's option groups and options: three queries whatever the
    menu's size. Items are marked `available_now` (sold in the current meal period)."""
    now = now or timezone.now()
    period = period or meal_period_at(timezone.localtime(now).time())
    items = list(
        MenuItem.objects.filter(merchant=merchant, active=True)
        .select_related("category")
        .prefetch_related(
            Prefetch(
                "option_groups",
                queryset=OptionGroup.objects.prefetch_related("options").order_by("position", "pk"),
            )
        )
        .order_by("category__position", "category_id", "position", "pk")
    )
    sections: dict[int | None, dict] = {}
    for item in items:
        item.available_now = item.sold_in(period) and not item.unavailable
        key = item.category_id
        if key not in sections:
            sections[key] = {"category": item.category, "items": []}
        sections[key]["items"].append(item)
    return list(sections.values())


def current_period(now=None) -> str:
    return meal_period_at(timezone.localtime(now or timezone.now()).time())


def period_label(period: str) -> str:
    return str(MealPeriod(period).label)


def categories_for(merchant: Merchant) -> QuerySet[MenuCategory]:
    return MenuCategory.objects.filter(merchant=merchant).annotate(n=Count("items"))


def portal_items(merchant: Merchant) -> QuerySet[MenuItem]:
    return (
        MenuItem.objects.filter(merchant=merchant)
        .select_related("category")
        .annotate(n_groups=Count("option_groups"))
        .order_by("category__position", "category_id", "position", "pk")
    )


# --- carts and pricing ------------------------------------------------------------------------


def _cart_lines_qs():
    return CartLine.objects.select_related("item").prefetch_related(
        Prefetch("item__option_groups", queryset=OptionGroup.objects.prefetch_related("options"))
    )


def cart_for(user, merchant: Merchant) -> Cart | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Cart.objects.filter(user=user, merchant=merchant, group__isnull=True)
        .prefetch_related(Prefetch("lines", queryset=_cart_lines_qs()))
        .first()
    )


def group_rules(item: MenuItem) -> list[pricing.GroupRule]:
    return [
        pricing.GroupRule(
            name=g.name,
            required=g.required,
            multiple=g.multiple,
            max_choices=g.max_choices,
            options=tuple(
                pricing.OptionRule(o.id, o.name, o.price_delta_fen, o.available)
                for o in g.options.all()
            ),
        )
        for g in item.option_groups.all()
    ]


def line_input(line: CartLine, *, member: int | None = None) -> pricing.LineInput:
    """A cart line as priced now (the item's current price and options). PriceError if its
    choices no longer fit the menu."""
    item = line.item
    return pricing.LineInput(
        name=item.name,
        price_fen=item.price_fen,
        packaging_fen=item.packaging_fen,
        quantity=line.quantity,
        options=pricing.options_choose(group_rules(item), line.option_ids),
        item_id=item.pk,
        member=member,
    )


@dataclass
class CartView:
    """A cart as the page shows it: each line priced, or with the reason it cannot be ordered."""

    cart: Cart | None
    rows: list[dict]
    inputs: list[pricing.LineInput]
    problems: list[str]

    @property
    def count(self) -> int:
        return sum(r["line"].quantity for r in self.rows)

    @property
    def items_fen(self) -> int:
        return sum(i.items_fen for i in self.inputs)


def cart_view(cart: Cart | None, *, period: str | None = None) -> CartView:
    rows, inputs, problems = [], [], []
    if cart is None:
        return CartView(None, [], [], [])
    period = period or current_period()
    for line in cart.lines.all():
        row = {"line": line, "item": line.item, "input": None, "problem": "", "stock": False}
        try:
            row["input"] = line_input(line, member=cart.user_id)
        except pricing.PriceError as exc:
            row["problem"] = str(exc.message)
        item = line.item
        if not row["problem"]:
            if not item.active:
                row["problem"] = _("no longer on the menu")
            elif item.unavailable:
                row["problem"], row["stock"] = _("sold out"), True
            elif item.stock is not None and item.stock < line.quantity:
                row["problem"], row["stock"] = _("only %(n)d left") % {"n": item.stock}, True
            elif not item.sold_in(period):
                row["problem"] = _("not sold at this time of day")
        if row["problem"]:
            problems.append(f"{item.name}: {row['problem']}")
        else:
            inputs.append(row["input"])
        rows.append(row)
    return CartView(cart, rows, inputs, problems)


def tier_rules(merchant: Merchant) -> list[pricing.TierRule]:
    tiers = merchant.tiers.all()  # prefetched active tiers on merchant_qs()
    return [
        pricing.TierRule(t.threshold_fen, t.discount_fen, t.funded_by) for t in tiers if t.active
    ]


def is_new_customer(user) -> bool:
    """No takeout order yet (cancelled and expired ones do not count)."""
    return not Order.objects.filter(customer=user, kind=TAKEOUT).exclude(status__in=DEAD).exists()


def coupon_claims_usable(user, merchant: Merchant, *, now=None, new_user: bool | None = None):
    """The user's claimed coupons that would work at this merchant now, soonest to expire
    first. A claim used by an order that was then cancelled or expired is usable again."""
    now = now or timezone.now()
    if new_user is None:
        new_user = is_new_customer(user)
    claims = (
        CouponClaim.objects.filter(user=user, coupon__active=True)
        .filter(coupon__valid_from__lte=now, coupon__valid_until__gt=now)
        .filter(Q(coupon__merchant__isnull=True) | Q(coupon__merchant=merchant))
        .filter(coupon__campus_id=merchant.campus_id)
        .filter(Q(used_by__isnull=True) | Q(used_by__order__status__in=DEAD))
        .select_related("coupon")
        .order_by("coupon__valid_until", "pk")
    )
    if not new_user:
        claims = claims.filter(coupon__new_users_only=False)
    return list(claims)


def coupon_rule(claim: CouponClaim) -> pricing.CouponRule:
    c = claim.coupon
    return pricing.CouponRule(
        id=claim.pk,
        title=c.title,
        discount_fen=c.discount_fen,
        min_spend_fen=c.min_spend_fen,
        stacks_with_tiers=c.stacks_with_tiers,
        funded_by=c.funded_by,
    )


def coupons_claimable(user, campus, *, now=None) -> list[Coupon]:
    """Campaigns running now that this user may still claim."""
    now = now or timezone.now()
    coupons = (
        Coupon.objects.filter(campus=campus, active=True, valid_from__lte=now, valid_until__gt=now)
        .select_related("merchant")
        .annotate(
            mine=Count("claims", filter=Q(claims__user=user)),
            taken=Count("claims"),
        )
        .order_by("valid_until")
    )
    new_user = is_new_customer(user)
    return [
        c
        for c in coupons
        if c.mine < c.per_user_limit
        and (c.total_limit is None or c.taken < c.total_limit)
        and (new_user or not c.new_users_only)
    ]


def coupon_claims_for(user) -> QuerySet[CouponClaim]:
    return (
        CouponClaim.objects.filter(user=user)
        .select_related("coupon", "coupon__merchant", "used_by__order")
        .order_by("coupon__valid_until")
    )


# --- tickets (the merchant's side) --------------------------------------------------------------


def ticket_qs() -> QuerySet[TakeoutOrder]:
    return TakeoutOrder.objects.select_related(
        "order",
        "order__dropoff_building",
        "order__rider",
        "order__customer",
        "merchant",
        "merchant__building",
    ).prefetch_related(Prefetch("lines", queryset=TakeoutLine.objects.select_related("member")))


def visible_to_merchant() -> Q:
    """Group meals reach the merchant once they fill."""
    return ~Q(source="group_meal") | Q(meal_round__status=RoundStatus.FILLED)


def inbox_tickets(merchant: Merchant, *, now=None) -> dict[str, list[TakeoutOrder]]:
    """The inbox's columns: new, in the kitchen (accepted, preparing), ready (waiting for the
    rider), and today's finished ones (picked up, cancelled)."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=18)
    tickets = list(
        ticket_qs()
        .filter(merchant=merchant)
        .filter(visible_to_merchant())
        .filter(Q(created_at__gte=since) | ~Q(order__status__in=[*DEAD, Status.COMPLETED]))
        .exclude(order__status=Status.PENDING)
        .order_by("created_at")
    )
    columns: dict[str, list] = {"new": [], "kitchen": [], "ready": [], "done": []}
    for t in tickets:
        if t.order.status in DEAD or t.merchant_status == MerchantStatus.REJECTED:
            columns["done"].append(t)
        elif t.order.status not in (Status.OPEN, Status.ACCEPTED):
            columns["done"].append(t)  # picked up and on its way, or delivered
        elif t.merchant_status == MerchantStatus.NEW:
            columns["new"].append(t)
        elif t.merchant_status == MerchantStatus.READY:
            columns["ready"].append(t)
        else:
            columns["kitchen"].append(t)
    columns["done"].reverse()
    columns["done"] = columns["done"][:30]
    return columns


def ticket_for_merchant(merchant: Merchant, number: str) -> TakeoutOrder | None:
    return ticket_qs().filter(merchant=merchant, order__number=number).first()


def ticket_for_order(order) -> TakeoutOrder | None:
    return (
        TakeoutOrder.objects.select_related("merchant", "merchant__building")
        .prefetch_related("lines")
        .filter(order=order)
        .first()
    )


# --- sales and settlement -----------------------------------------------------------------------


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, start + dt.timedelta(days=1)


def sold_tickets(merchant: Merchant, start: dt.date, end: dt.date) -> QuerySet[TakeoutOrder]:
    """Tickets of the days [start, end] that were not cancelled, rejected or left unfilled."""
    return (
        TakeoutOrder.objects.filter(merchant=merchant, day__gte=start, day__lte=end)
        .exclude(order__status__in=[*DEAD, Status.PENDING])
        .exclude(merchant_status=MerchantStatus.REJECTED)
        .filter(visible_to_merchant())
    )


@dataclass
class SalesDay:
    day: dt.date
    orders: int = 0
    revenue_fen: int = 0  # food and packaging less the merchant's own discounts
    items: int = 0
    avg_prep_seconds: int | None = None
    cancelled: int = 0
    best_sellers: list[tuple[str, int]] = field(default_factory=list)
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)


def sales_day(merchant: Merchant, day: dt.date) -> SalesDay:
    tickets = list(
        sold_tickets(merchant, day, day).select_related("order").prefetch_related("lines")
    )
    out = SalesDay(day=day, orders=len(tickets))
    seller: Counter = Counter()
    preps = []
    for t in tickets:
        out.revenue_fen += merchant_revenue_fen(t)
        local = timezone.localtime(t.created_at)
        out.by_hour[local.hour] += 1
        for line in t.lines.all():
            seller[line.name] += line.quantity
            out.items += line.quantity
        if t.prep_seconds is not None:
            preps.append(t.prep_seconds)
    out.best_sellers = seller.most_common(5)
    out.avg_prep_seconds = sum(preps) // len(preps) if preps else None
    out.cancelled = (
        TakeoutOrder.objects.filter(merchant=merchant, day=day)
        .filter(Q(order__status__in=DEAD) | Q(merchant_status=MerchantStatus.REJECTED))
        .filter(visible_to_merchant())
        .count()
    )
    return out


def merchant_revenue_fen(ticket: TakeoutOrder) -> int:
    """What the merchant sells for: customers' food and packaging less the merchant's own
    discounts (the platform's discounts are paid to it by the platform)."""
    return max(ticket.due_fen - ticket.order.price_fen - ticket.order.tip_fen, 0) + (
        ticket.platform_funded_fen
    )


def sales_week(merchant: Merchant, last: dt.date, days: int = 7) -> list[dict]:
    """Per day: orders and revenue, the days ending with `last`, for the chart."""
    first = last - dt.timedelta(days=days - 1)
    rows = {
        r["day"]: r
        for r in sold_tickets(merchant, first, last)
        .values("day")
        .annotate(
            orders=Count("pk"),
            due=Sum("due_fen"),
            fees=Sum("order__price_fen"),
            platform=Sum("platform_funded_fen"),
            tips=Sum("order__tip_fen"),
        )
    }
    out = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        r = rows.get(day)
        revenue = (r["due"] - r["fees"] - r["tips"] + r["platform"]) if r else 0
        out.append({"day": day, "orders": r["orders"] if r else 0, "revenue_fen": revenue})
    return out


def sales_rows(merchant: Merchant, start: dt.date, end: dt.date):
    """One row per sold ticket, with its lines, for the CSV export."""
    return (
        sold_tickets(merchant, start, end)
        .select_related("order", "order__dropoff_building")
        .prefetch_related("lines")
        .order_by("created_at")
    )


@dataclass
class SettlementDay:
    day: dt.date
    merchant: Merchant
    orders: int = 0
    gross_fen: int = 0  # food and packaging before any discount
    merchant_discounts_fen: int = 0
    platform_discounts_fen: int = 0
    commission_fen: int = 0
    payable_fen: int = 0  # what the ledger credited the merchant
    settled_orders: int = 0
    awaiting_fen: int = 0  # sold but not settled yet (not completed)


def settlement_day(merchant: Merchant, day: dt.date) -> SettlementDay:
    """A merchant's day as the ledger settled it: orders completed that day (settlement
    transactions dated that day), what was credited to its payable account, the commission
    taken and the discounts each side funded."""
    from payments.models import AccountKind, Entry, TransactionKind

    start, end = _day_bounds(day)
    out = SettlementDay(day=day, merchant=merchant)
    entries = Entry.objects.filter(
        account__kind=AccountKind.MERCHANT_PAYABLE,
        account__owner_id=merchant.payee_id,
        transaction__kind=TransactionKind.ORDER_SETTLEMENT,
        transaction__created_at__gte=start,
        transaction__created_at__lt=end,
    ).values_list("transaction__order_id", "amount_fen")
    credited = dict(entries)
    out.payable_fen = sum(credited.values())
    out.settled_orders = len(credited)
    settled = TakeoutOrder.objects.filter(order_id__in=list(credited)).select_related("order")
    for t in settled:
        out.gross_fen += t.items_fen + t.packaging_fen
        out.merchant_discounts_fen += t.merchant_funded_fen
        out.platform_discounts_fen += t.platform_funded_fen
        out.commission_fen += merchant_revenue_fen(t) - credited.get(t.order_id, 0)
    open_sold = sold_tickets(merchant, day, day).exclude(order__status=Status.COMPLETED)
    out.orders = sold_tickets(merchant, day, day).count()
    out.awaiting_fen = sum(merchant_revenue_fen(t) for t in open_sold.select_related("order"))
    return out


def settlement_all(day: dt.date, campus=None) -> list[SettlementDay]:
    merchants = Merchant.objects.select_related("building").order_by("name")
    if campus is not None:
        merchants = merchants.filter(campus=campus)
    return [settlement_day(m, day) for m in merchants]


def payable_balance(merchant: Merchant) -> int:
    from payments.models import AccountKind, Entry

    return (
        Entry.objects.filter(
            account__kind=AccountKind.MERCHANT_PAYABLE, account__owner_id=merchant.payee_id
        ).aggregate(s=Sum("amount_fen"))["s"]
        or 0
    )


# --- groups -------------------------------------------------------------------------------------


def group_get(token: str) -> GroupCart | None:
    return (
        GroupCart.objects.select_related(
            "merchant", "merchant__building", "opener", "dropoff_building"
        )
        .filter(token=token)
        .first()
    )


def group_carts(group: GroupCart) -> list[Cart]:
    return list(
        Cart.objects.filter(group=group)
        .select_related("user")
        .prefetch_related(Prefetch("lines", queryset=_cart_lines_qs()))
        .order_by("created_at", "pk")
    )


def group_active_carts(group: GroupCart) -> list[Cart]:
    return [c for c in group_carts(group) if c.member_state == MemberState.ACTIVE]


def groups_for(user) -> QuerySet[GroupCart]:
    return (
        GroupCart.objects.filter(members__user=user, members__member_state=MemberState.ACTIVE)
        .select_related("merchant")
        .order_by("-created_at")
        .distinct()
    )


def meals_on(campus, day: dt.date) -> QuerySet[GroupMeal]:
    return (
        GroupMeal.objects.filter(
            merchant__campus=campus, active=True, starts_on__lte=day, ends_on__gte=day
        )
        .select_related("merchant", "merchant__building")
        .order_by("cutoff", "pk")
    )


def rounds_on(meals, day: dt.date) -> QuerySet[GroupMealRound]:
    return (
        GroupMealRound.objects.filter(meal__in=meals, day=day)
        .select_related("building", "meal")
        .annotate(n=Count("joins", filter=Q(joins__left_at__isnull=True)))
        .order_by("building__code")
    )


def meal_joins_for(user, day: dt.date):
    from merchants.models import GroupMealJoin

    return GroupMealJoin.objects.filter(
        user=user, round__day=day, left_at__isnull=True
    ).select_related("round", "round__meal", "round__building", "round__takeout__order")


def notices_unread(user) -> list[Notice]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Notice.objects.filter(user=user, read_at__isnull=True)[:10])
