"""Errand quotes: the fee line by line, in integer fen, and the promise that goes with it.

The formula (one campus's PricingRule and the kind's ErrandKindSetting; every knob in admin):

    base        the kind's base fee
    distance    per started `distance_step_m` of walking distance beyond `free_distance_m`, on the
                campus path graph from the pickup entrance to the drop-off entrance
    size        medium / large / heavy item surcharge (small: none); parcel and buy-for-me
    queue_time  queue / seat holding: per started `queue_block_minutes` of the duration
    urgent      an urgent order (ordered now; not queue)
    night       the errand happens inside [night_starts, night_ends) (the window may wrap midnight)
    weather     the operator's bad-weather switch
    peak        orders that open to riders now only: steps = open orders ÷ online riders ÷ the
                threshold, rounded down, at most `peak_max_steps` (no rider online while orders
                wait: the most steps); amount = the subtotal above × peak_percent × steps / 100
    band        the adjustment that clamps the fee into [band_min_fen, band_max_fen]
    ---------- = fee (Order.price_fen)
    tip         the customer's tip, all of it to the rider
    budget_cap  buy for me: the shopping budget the customer pre-authorises (the actual cost is
                what is finally paid, never more than this)
    ---------- = total

A custom errand's fee is the customer's own offer, which must lie inside the band.

Rounding, the one rule: every amount is integer fen. The walking distance is rounded to whole
metres (half up) before use; quantities are charged per started unit (ceil); the one percentage,
the peak surcharge, is rounded half up to the fen: (x * p + 50) // 100. Nothing else divides.

A quote is signed (django.core.signing) rather than stored, so live quoting while a customer
types writes nothing; it carries its lines, the customer, a fingerprint of the inputs, and an
expiry (`quote_valid_seconds`, default 5 minutes). At checkout a quote within its lifetime and
for the same inputs is honoured as it was; an expired one is refused (QuoteExpired) and the
customer confirms a fresh price.
"""

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.graph import campus_graph
from campus.models import Building, Campus
from campus_errand.memo import remembered
from orders.errors import OrderError
from orders.models import ErrandKindSetting, Kind, Order, PricingRule, SizeClass, yuan
from orders.status import Status

SALT = "orders.quote.v1"
SCHEDULE_MAX_DAYS = 7

# Line codes in the order they appear; labels are made when shown (so they follow the language).
LINE_LABELS = {
    "base": gettext_lazy("Base fee"),
    "distance": gettext_lazy("Distance"),
    "size": gettext_lazy("Size"),
    "queue_time": gettext_lazy("Queueing time"),
    "urgent": gettext_lazy("Urgent"),
    "night": gettext_lazy("Night"),
    "weather": gettext_lazy("Bad weather"),
    "peak": gettext_lazy("Busy now"),
    "band": gettext_lazy("Campus price band"),
    "offer": gettext_lazy("Your offer"),
    "tip": gettext_lazy("Tip for the rider"),
    "budget_cap": gettext_lazy("Shopping budget (you pay the actual cost)"),
    "actual_cost": gettext_lazy("Shopping (actual cost)"),
}
FEE_CODES = set(LINE_LABELS) - {"tip", "budget_cap", "actual_cost"}
SIZE_FIELD = {
    SizeClass.MEDIUM: "size_medium_fen",
    SizeClass.LARGE: "size_large_fen",
    SizeClass.HEAVY: "size_heavy_fen",
}
SIZED_KINDS = {Kind.PARCEL, Kind.BUY}
URGENT_KINDS = {Kind.PARCEL, Kind.BUY, Kind.DOCUMENT}


class QuoteExpired(OrderError):
    http_status = 409
    code = "quote_expired"
    default_message = gettext_lazy(
        "This price was quoted a while ago and has expired. Check the new price and confirm again."
    )


@dataclass(frozen=True)
class Line:
    code: str
    amount_fen: int
    args: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        base = str(LINE_LABELS[self.code])
        if self.code == "distance":
            return _("%(label)s (%(m)s m)") % {"label": base, "m": self.args["m"]}
        if self.code == "size":
            size = SizeClass(self.args["size"]).label
            return _("%(label)s: %(size)s") % {"label": base, "size": size}
        if self.code == "queue_time":
            minutes = self.args["minutes"]
            return _("%(label)s (%(minutes)s min)") % {"label": base, "minutes": minutes}
        if self.code == "peak":
            return f"{base} (+{self.args['percent']}%)"
        return base

    def as_dict(self) -> dict:
        return {"code": self.code, "label": self.label, "amount_fen": self.amount_fen}

    def stored(self) -> dict:
        return {"code": self.code, "amount_fen": self.amount_fen, "args": self.args}


def lines_from_stored(rows: list[dict]) -> list[Line]:
    return [Line(r["code"], r["amount_fen"], r.get("args") or {}) for r in rows]


def round_half_up_percent(amount_fen: int, percent: int) -> int:
    return (amount_fen * percent + 50) // 100


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def in_night(rule: PricingRule, local: dt.time) -> bool:
    start, end = rule.night_starts, rule.night_ends
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def peak_steps(rule: PricingRule, *, open_orders: int, online_riders: int) -> int:
    """floor(open / online / threshold), in integers: open * 1000 // (online * permille)."""
    if open_orders <= 0:
        return 0
    if online_riders <= 0:
        return rule.peak_max_steps
    steps = (open_orders * 1000) // (online_riders * rule.peak_ratio_permille)
    return min(rule.peak_max_steps, steps)


def fee_lines(
    *,
    rule: PricingRule,
    setting: ErrandKindSetting,
    kind: str,
    distance_m: int,
    size_class: str = SizeClass.SMALL,
    urgent: bool = False,
    local_time: dt.time,
    opens_now: bool = True,
    open_orders: int = 0,
    online_riders: int = 0,
    duration_minutes: int | None = None,
    offered_price_fen: int | None = None,
) -> list[Line]:
    """The fee's lines, ending with the band adjustment if one is needed. Pure: no database."""
    if kind == Kind.CUSTOM:
        return [Line("offer", offered_price_fen or 0)]
    lines = [Line("base", setting.base_fee_fen)]
    if kind != Kind.QUEUE:
        extra = max(0, distance_m - rule.free_distance_m)
        if extra:
            steps = ceil_div(extra, rule.distance_step_m)
            lines.append(Line("distance", steps * rule.distance_step_fen, {"m": distance_m}))
    if kind in SIZED_KINDS and size_class in SIZE_FIELD:
        amount = getattr(rule, SIZE_FIELD[size_class])
        if amount:
            lines.append(Line("size", amount, {"size": size_class}))
    if kind == Kind.QUEUE and duration_minutes:
        blocks = ceil_div(duration_minutes, rule.queue_block_minutes)
        lines.append(
            Line("queue_time", blocks * rule.queue_block_fen, {"minutes": duration_minutes})
        )
    if urgent and kind in URGENT_KINDS and rule.urgent_fee_fen:
        lines.append(Line("urgent", rule.urgent_fee_fen))
    if rule.night_fee_fen and in_night(rule, local_time):
        lines.append(Line("night", rule.night_fee_fen))
    if rule.weather_on and rule.weather_fee_fen:
        lines.append(Line("weather", rule.weather_fee_fen))
    if opens_now:
        steps = peak_steps(rule, open_orders=open_orders, online_riders=online_riders)
        percent = steps * rule.peak_percent
        amount = round_half_up_percent(sum(line.amount_fen for line in lines), percent)
        if amount:
            lines.append(Line("peak", amount, {"percent": percent}))
    subtotal = sum(line.amount_fen for line in lines)
    clamped = min(max(subtotal, rule.band_min_fen), rule.band_max_fen)
    if clamped != subtotal:
        lines.append(Line("band", clamped - subtotal))
    return lines


# --- inputs, timing, the live load ---------------------------------------------------------------


@dataclass(frozen=True)
class QuoteRequest:
    """Everything the price and the promise depend on (and nothing else)."""

    campus: Campus
    kind: str
    pickup: Building
    dropoff: Building
    size_class: str = SizeClass.SMALL
    urgent: bool = False
    deliver_by: dt.datetime | None = None
    start_at: dt.datetime | None = None
    duration_minutes: int | None = None
    offered_price_fen: int | None = None
    budget_cap_fen: int | None = None
    tip_fen: int = 0

    @classmethod
    def of(
        cls,
        *,
        kind: str,
        pickup: Building,
        dropoff: Building,
        details: dict,
        urgent: bool = False,
        deliver_by: dt.datetime | None = None,
        tip_fen: int = 0,
    ) -> "QuoteRequest":
        """From an order's inputs (`details`: the kind's cleaned fields, orders/kinds.py)."""
        return cls(
            campus=pickup.campus,
            kind=kind,
            pickup=pickup,
            dropoff=dropoff,
            size_class=details.get("size_class") or SizeClass.SMALL,
            urgent=bool(urgent),
            deliver_by=None if kind == Kind.QUEUE else deliver_by,
            start_at=details.get("start_at"),
            duration_minutes=details.get("duration_minutes"),
            offered_price_fen=details.get("offered_price_fen"),
            budget_cap_fen=details.get("budget_cap_fen"),
            tip_fen=tip_fen or 0,
        )

    def fingerprint(self) -> str:
        def when(value):
            return int(value.timestamp()) if value else None

        data = [
            self.campus.pk,
            str(self.kind),
            self.pickup.pk,
            self.dropoff.pk,
            str(self.size_class) if self.kind in SIZED_KINDS else "",
            bool(self.urgent) and self.kind in URGENT_KINDS,
            when(self.deliver_by),
            when(self.start_at),
            self.duration_minutes,
            self.offered_price_fen,
            self.budget_cap_fen,
            self.tip_fen,
        ]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:24]


@dataclass
class Quote:
    lines: list[Line]
    fee_fen: int
    total_fen: int
    distance_m: int
    estimated_minutes: int
    promised_at: dt.datetime
    opens_at: dt.datetime | None
    expires_at: dt.datetime
    token: str = ""

    def as_dict(self) -> dict:
        return {
            "lines": [line.as_dict() for line in self.lines],
            "fee_fen": self.fee_fen,
            "total_fen": self.total_fen,
            "quote_id": self.token,
            "expires_at": self.expires_at,
            "distance_m": self.distance_m,
            "estimated_minutes": self.estimated_minutes,
            "promised_at": self.promised_at,
            "opens_at": self.opens_at,
        }


def pricing_rule_for(campus: Campus) -> PricingRule:
    return remembered(
        f"pricing-rule:{campus.pk}",
        lambda: PricingRule.objects.filter(campus=campus).first() or PricingRule(campus=campus),
    )


def kind_setting_for(campus: Campus, kind: str) -> ErrandKindSetting:
    return remembered(
        f"kind-setting:{campus.pk}:{kind}",
        lambda: (
            ErrandKindSetting.objects.filter(campus=campus, kind=kind).first()
            or ErrandKindSetting.default_for(campus, kind)
        ),
    )


def walking_distance_m(campus: Campus, a: Building, b: Building) -> int:
    if a.pk == b.pk:
        return 0
    graph = campus_graph(campus)
    if len(graph.nodes) == 0:
        from campus.geo import haversine_m

        metres = haversine_m(a.lng, a.lat, b.lng, b.lat)
    else:
        metres = graph.route((a.lng, a.lat), (b.lng, b.lat)).distance_m
    return int(math.floor(metres + 0.5))


def live_load(campus: Campus, now: dt.datetime) -> tuple[int, int]:
    """(open orders riders can see now, riders online) on this campus."""
    open_orders = (
        Order.objects.filter(campus=campus, status=Status.OPEN)
        .filter(Q(opens_at__isnull=True) | Q(opens_at__lte=now))
        .count()
    )
    online = (
        get_user_model()
        .objects.filter(rider_profile__campus=campus, rider_profile__online=True)
        .count()
    )
    return open_orders, online


def estimated_minutes(
    rule: PricingRule, setting: ErrandKindSetting, distance_m: int, urgent: bool
) -> int:
    approach = rule.approach_minutes // 2 if urgent else rule.approach_minutes
    return approach + setting.handling_minutes + ceil_div(distance_m, rule.walk_m_per_min)


def _timing(
    req: QuoteRequest, rule: PricingRule, minutes: int, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None, dt.datetime]:
    """(promised_at, opens_at or None for at once, when the errand happens): validates times."""
    latest = now + dt.timedelta(days=SCHEDULE_MAX_DAYS)
    buffer = dt.timedelta(minutes=rule.schedule_buffer_minutes)
    if req.kind == Kind.QUEUE:
        start = req.start_at
        if start is None:
            raise ValidationError({"start_at": _("Say when the queueing should start.")})
        earliest = now + dt.timedelta(minutes=rule.approach_minutes)
        if start < earliest:
            raise ValidationError(
                {
                    "start_at": _("A rider needs time to get there: start at %(t)s or later.")
                    % {"t": _local_hm(earliest)}
                }
            )
        if start > latest:
            raise ValidationError(
                {"start_at": _("Book at most %(d)d days ahead.") % {"d": SCHEDULE_MAX_DAYS}}
            )
        opens = start - dt.timedelta(minutes=rule.approach_minutes) - buffer
        promised = start + dt.timedelta(minutes=req.duration_minutes or 0)
        return promised, (opens if opens > now else None), start
    if req.deliver_by is None:
        return now + dt.timedelta(minutes=minutes), None, now
    earliest = now + dt.timedelta(minutes=minutes)
    if req.deliver_by < earliest:
        raise ValidationError(
            {
                "deliver_by": _("That is too soon: the earliest is %(t)s.")
                % {"t": _local_hm(earliest)}
            }
        )
    if req.deliver_by > latest:
        raise ValidationError(
            {"deliver_by": _("Book at most %(d)d days ahead.") % {"d": SCHEDULE_MAX_DAYS}}
        )
    opens = req.deliver_by - dt.timedelta(minutes=minutes) - buffer
    return req.deliver_by, (opens if opens > now else None), req.deliver_by


def _local_hm(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%m-%d %H:%M")


def _check_amounts(req: QuoteRequest, rule: PricingRule) -> None:
    errors = {}
    if req.tip_fen < 0 or req.tip_fen > rule.tip_max_fen:
        errors["tip_fen"] = _("A tip is between ¥0 and ¥%(max)s.") % {"max": yuan(rule.tip_max_fen)}
    if req.kind == Kind.BUY:
        cap = req.budget_cap_fen or 0
        if cap <= 0:
            errors["budget_cap_fen"] = _("Set the most the rider may spend.")
        elif cap > rule.budget_cap_max_fen:
            errors["budget_cap_fen"] = _("The shopping budget is at most ¥%(max)s.") % {
                "max": yuan(rule.budget_cap_max_fen)
            }
    if req.kind == Kind.CUSTOM:
        offer = req.offered_price_fen
        if offer is None or not rule.band_min_fen <= offer <= rule.band_max_fen:
            errors["offered_price_fen"] = _("Offer between ¥%(min)s and ¥%(max)s.") % {
                "min": yuan(rule.band_min_fen),
                "max": yuan(rule.band_max_fen),
            }
    if errors:
        raise ValidationError(errors)


def _price(req: QuoteRequest, now: dt.datetime, *, with_load: bool) -> Quote:
    rule = pricing_rule_for(req.campus)
    setting = kind_setting_for(req.campus, req.kind)
    _check_amounts(req, rule)
    distance = walking_distance_m(req.campus, req.pickup, req.dropoff)
    urgent = req.urgent and req.kind in URGENT_KINDS
    minutes = estimated_minutes(rule, setting, distance, urgent)
    promised, opens, happens = _timing(req, rule, minutes, now)
    opens_now = opens is None
    if with_load and opens_now:
        # At most MEMO_SECONDS old: the surcharge follows the lunch rush, not each single order.
        open_orders, online = remembered(
            f"live-load:{req.campus.pk}", lambda: live_load(req.campus, now)
        )
    else:
        open_orders, online = 0, 0
    lines = fee_lines(
        rule=rule,
        setting=setting,
        kind=req.kind,
        distance_m=distance,
        size_class=req.size_class,
        urgent=urgent,
        local_time=timezone.localtime(happens).time(),
        opens_now=opens_now,
        open_orders=open_orders,
        online_riders=online,
        duration_minutes=req.duration_minutes,
        offered_price_fen=req.offered_price_fen,
    )
    fee = sum(line.amount_fen for line in lines)
    if req.tip_fen:
        lines.append(Line("tip", req.tip_fen))
    if req.kind == Kind.BUY and req.budget_cap_fen:
        lines.append(Line("budget_cap", req.budget_cap_fen))
    return Quote(
        lines=lines,
        fee_fen=fee,
        total_fen=sum(line.amount_fen for line in lines),
        distance_m=distance,
        estimated_minutes=minutes,
        promised_at=promised,
        opens_at=opens,
        expires_at=now + dt.timedelta(seconds=rule.quote_valid_seconds),
    )


def quote_price(*, request: QuoteRequest, now: dt.datetime | None = None) -> Quote:
    """Price `request` now, unsigned (an order placed without a quote in hand)."""
    return _price(request, now or timezone.now(), with_load=True)


def quote_make(*, request: QuoteRequest, customer, now: dt.datetime | None = None) -> Quote:
    """Price `request` now and sign the result. Raises ValidationError with field messages."""
    now = now or timezone.now()
    quote = _price(request, now, with_load=True)
    quote.token = signing.dumps(
        {
            "u": customer.pk,
            "f": request.fingerprint(),
            "l": [line.stored() for line in quote.lines],
            "d": quote.distance_m,
            "m": quote.estimated_minutes,
            "e": int(quote.expires_at.timestamp()),
        },
        salt=SALT,
        compress=True,
    )
    return quote


def quote_check(
    *, token: str, request: QuoteRequest, customer, now: dt.datetime | None = None
) -> Quote:
    """The quote behind `token`, honoured as quoted if it is this customer's, for these inputs and
    within its lifetime. Refused otherwise: ValidationError (not ours / other inputs) or
    QuoteExpired."""
    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        data = None
    if not isinstance(data, dict) or data.get("u") != customer.pk:
        raise ValidationError({"quote_id": _("This price quote is not valid: ask for a new one.")})
    if now.timestamp() > data["e"]:
        raise QuoteExpired()
    if data["f"] != request.fingerprint():
        raise ValidationError(
            {"quote_id": _("The order changed after it was priced: check the new price.")}
        )
    lines = lines_from_stored(data["l"])
    rule = pricing_rule_for(request.campus)
    promised, opens, _happens = _timing(request, rule, data["m"], now)
    fee = sum(line.amount_fen for line in lines if line.code in FEE_CODES)
    return Quote(
        lines=lines,
        fee_fen=fee,
        total_fen=sum(line.amount_fen for line in lines),
        distance_m=data["d"],
        estimated_minutes=data["m"],
        promised_at=promised,
        opens_at=opens,
        expires_at=dt.datetime.fromtimestamp(data["e"], tz=dt.UTC),
        token=token,
    )


def quote_preview(rule: PricingRule, *, now: dt.datetime | None = None) -> list[dict]:
    """Sample quotes under this rule for the admin page (no live load, nothing signed)."""
    now = now or timezone.now()
    campus = rule.campus
    buildings = list(Building.objects.filter(campus=campus).order_by("code"))
    if len(buildings) < 2:
        return []
    station = next((b for b in buildings if b.kind == "parcel_station"), buildings[0])
    far = max(buildings, key=lambda b: walking_distance_m(campus, station, b))
    samples = [
        (_("Small parcel, now"), Kind.PARCEL, {}),
        (_("Large parcel, urgent"), Kind.PARCEL, {"size_class": SizeClass.LARGE, "urgent": True}),
        (_("Buy for me, ¥30 budget"), Kind.BUY, {"budget_cap_fen": 3000}),
        (_("Document"), Kind.DOCUMENT, {}),
        (
            _("Queue for 90 minutes"),
            Kind.QUEUE,
            {"start_at": now + dt.timedelta(minutes=30), "duration_minutes": 90},
        ),
    ]
    out = []
    for title, kind, extra in samples:
        dropoff = station if kind == Kind.QUEUE else far
        req = QuoteRequest(campus=campus, kind=kind, pickup=station, dropoff=dropoff, **extra)
        setting = kind_setting_for(campus, kind)
        distance = walking_distance_m(campus, station, dropoff)
        lines = fee_lines(
            rule=rule,
            setting=setting,
            kind=kind,
            distance_m=distance,
            size_class=req.size_class,
            urgent=req.urgent,
            local_time=timezone.localtime(now).time(),
            opens_now=False,
            duration_minutes=req.duration_minutes,
        )
        if req.budget_cap_fen:
            lines.append(Line("budget_cap", req.budget_cap_fen))
        out.append(
            {
                "title": f"{title}: {station} → {dropoff}",
                "lines": [line.as_dict() for line in lines],
                "total_fen": sum(line.amount_fen for line in lines),
            }
        )
    return out
