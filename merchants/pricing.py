"""Takeout prices: lines with options, packaging, 满减 tiers, coupons, the new-user discount, and
the group split. Pure functions on plain values: no database (services and selectors feed them).

Money and rounding, the one rule
--------------------------------
Every amount is integer fen. Nothing in one person's order divides: options add fixed price
changes, tiers and coupons take fixed amounts off. The only division is sharing an amount among
people (a group order's delivery fee, equally; its 满减, in proportion to each member's food):
each share is the floor of its exact part, and the fen left over go one each to the largest
remainders (ties: the earlier member, the opener first) — the largest-remainder method — so the
shares always add up to the whole, to the fen. (The platform's commission, at settlement, is
rounded half up to the fen: payments.)

Discounts, in this order, each capped by what is left of the food and packaging (the delivery
fee is never discounted):
1. 满减: the best tier whose threshold the food subtotal reaches (items with their options,
   packaging not counted);
2. one coupon: valid now, its minimum spend reached by the same food subtotal; a coupon that does
   not combine with 满减 replaces the tier (the cheaper combination is chosen for the customer);
3. the new-user discount: a student's first takeout order.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

LINE_LABELS = {
    "items": gettext_lazy("Food"),
    "packaging": gettext_lazy("Packaging"),
    "delivery": gettext_lazy("Delivery fee"),
    "tier": gettext_lazy("满减"),
    "coupon": gettext_lazy("Coupon"),
    "new_user": gettext_lazy("New-user discount"),
    "group_meal": gettext_lazy("Group meal price (delivery included)"),
}
DISCOUNT_CODES = ("tier", "coupon", "new_user")
PLATFORM, MERCHANT = "platform", "merchant"


class PriceError(Exception):
    """A line or choice that cannot be priced; the message says why, for the customer."""

    def __init__(self, message):
        self.message = message
        super().__init__(str(message))


@dataclass(frozen=True)
class OptionRule:
    id: int
    name: str
    delta_fen: int
    available: bool = True


@dataclass(frozen=True)
class GroupRule:
    name: str
    required: bool
    multiple: bool
    options: tuple[OptionRule, ...]
    max_choices: int | None = None


@dataclass(frozen=True)
class ChosenOption:
    group: str
    name: str
    delta_fen: int

    def stored(self) -> dict:
        return {"group": self.group, "name": self.name, "delta_fen": self.delta_fen}


def options_choose(groups: list[GroupRule], option_ids) -> tuple[ChosenOption, ...]:
    """Check a line's chosen options against the item's groups; the choices in menu order.
    Raises PriceError: a required group left empty, two choices in a single-choice group, too
    many choices, an option that is not (or no longer) on the item."""
    wanted = set(option_ids or ())
    chosen: list[ChosenOption] = []
    known: set[int] = set()
    for group in groups:
        picked = [o for o in group.options if o.id in wanted]
        known.update(o.id for o in group.options)
        if any(not o.available for o in picked):
            raise PriceError(_("“%(name)s” is not available now.") % {"name": picked[0].name})
        if group.required and not picked:
            raise PriceError(_("Choose a %(group)s.") % {"group": group.name})
        if not group.multiple and len(picked) > 1:
            raise PriceError(_("Choose only one %(group)s.") % {"group": group.name})
        if group.multiple and group.max_choices and len(picked) > group.max_choices:
            raise PriceError(
                _("Choose at most %(n)d of %(group)s.")
                % {"n": group.max_choices, "group": group.name}
            )
        chosen.extend(ChosenOption(group.name, o.name, o.delta_fen) for o in picked)
    if wanted - known:
        raise PriceError(_("One of the options you chose is no longer offered."))
    return tuple(chosen)


@dataclass(frozen=True)
class LineInput:
    """One cart line as priced: the item's price and packaging, quantity, the chosen options."""

    name: str
    price_fen: int
    packaging_fen: int
    quantity: int
    options: tuple[ChosenOption, ...] = ()
    item_id: int | None = None
    member: int | None = None  # group orders: whose line

    @property
    def unit_fen(self) -> int:
        # A negative option (a small size) can lower the price, never below zero.
        return max(self.price_fen + sum(o.delta_fen for o in self.options), 0)

    @property
    def items_fen(self) -> int:
        return self.unit_fen * self.quantity

    @property
    def line_packaging_fen(self) -> int:
        return self.packaging_fen * self.quantity


@dataclass(frozen=True)
class TierRule:
    threshold_fen: int
    discount_fen: int
    funded_by: str = MERCHANT


@dataclass(frozen=True)
class CouponRule:
    id: int
    title: str
    discount_fen: int
    min_spend_fen: int = 0
    stacks_with_tiers: bool = True
    funded_by: str = PLATFORM


@dataclass(frozen=True)
class PriceLine:
    code: str
    amount_fen: int
    detail: str = ""

    @property
    def label(self) -> str:
        base = str(LINE_LABELS[self.code])
        return f"{base} · {self.detail}" if self.detail else base

    def stored(self) -> dict:
        return {"code": self.code, "amount_fen": self.amount_fen, "detail": self.detail}

    def as_dict(self) -> dict:
        return {**self.stored(), "label": self.label}


@dataclass
class Breakdown:
    lines: list[PriceLine]
    items_fen: int
    packaging_fen: int
    delivery_fen: int
    tier_fen: int = 0
    coupon_fen: int = 0
    new_user_fen: int = 0
    merchant_funded_fen: int = 0
    platform_funded_fen: int = 0
    tier: TierRule | None = None
    coupon: CouponRule | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def discount_fen(self) -> int:
        return self.tier_fen + self.coupon_fen + self.new_user_fen

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.packaging_fen + self.delivery_fen - self.discount_fen

    @property
    def saving_lines(self) -> list[PriceLine]:
        return [line for line in self.lines if line.code in DISCOUNT_CODES]

    def as_dict(self) -> dict:
        return {
            "lines": [line.as_dict() for line in self.lines],
            "items_fen": self.items_fen,
            "packaging_fen": self.packaging_fen,
            "delivery_fen": self.delivery_fen,
            "discount_fen": self.discount_fen,
            "total_fen": self.total_fen,
            "coupon_id": self.coupon.id if self.coupon else None,
            "notes": [str(n) for n in self.notes],
        }


def best_tier(tiers, food_fen: int) -> TierRule | None:
    """The tier saving the most among those whose threshold the food reaches."""
    reached = [t for t in tiers if t.threshold_fen <= food_fen and t.discount_fen > 0]
    return max(reached, key=lambda t: (t.discount_fen, -t.threshold_fen), default=None)


def _yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen / 100:.2f}".rstrip("0")


def tier_label(tier: TierRule) -> str:
    return _("spend ¥%(t)s save ¥%(d)s") % {
        "t": _yuan(tier.threshold_fen),
        "d": _yuan(tier.discount_fen),
    }


def price_order(
    *,
    lines: list[LineInput],
    delivery_fen: int,
    tiers=(),
    coupon: CouponRule | None = None,
    new_user_fen: int = 0,
) -> Breakdown:
    """One order's breakdown, every saving on its own line (the rules: module docstring)."""
    items = sum(line.items_fen for line in lines)
    packaging = sum(line.line_packaging_fen for line in lines)
    out = Breakdown(lines=[], items_fen=items, packaging_fen=packaging, delivery_fen=delivery_fen)
    out.lines.append(PriceLine("items", items))
    if packaging:
        out.lines.append(PriceLine("packaging", packaging))
    out.lines.append(PriceLine("delivery", delivery_fen))
    left = items + packaging
    funded = {MERCHANT: 0, PLATFORM: 0}

    usable = coupon if coupon and items >= coupon.min_spend_fen else None
    if coupon and usable is None:
        out.notes.append(
            _("“%(c)s” needs ¥%(m)s of food.")
            % {"c": coupon.title, "m": _yuan(coupon.min_spend_fen)}
        )
    tier = best_tier(tiers, items)
    if tier and usable and not usable.stacks_with_tiers:
        out.notes.append(_("“%(c)s” does not combine with 满减.") % {"c": usable.title})
        tier = None
    if tier:
        out.tier, out.tier_fen = tier, min(tier.discount_fen, left)
        left -= out.tier_fen
        funded[tier.funded_by] += out.tier_fen
        out.lines.append(PriceLine("tier", -out.tier_fen, tier_label(tier)))
    if usable and left > 0:
        out.coupon, out.coupon_fen = usable, min(usable.discount_fen, left)
        left -= out.coupon_fen
        funded[usable.funded_by] += out.coupon_fen
        out.lines.append(PriceLine("coupon", -out.coupon_fen, usable.title))
    if new_user_fen and left > 0:
        out.new_user_fen = min(new_user_fen, left)
        left -= out.new_user_fen
        funded[PLATFORM] += out.new_user_fen
        out.lines.append(PriceLine("new_user", -out.new_user_fen))
    out.merchant_funded_fen, out.platform_funded_fen = funded[MERCHANT], funded[PLATFORM]
    return out


def price_best(
    *, lines, delivery_fen: int, tiers=(), coupons=(), new_user_fen: int = 0
) -> Breakdown:
    """The breakdown with the coupon (or none) that makes the order cheapest for the customer;
    among equal totals, the coupon listed first (callers list the soonest to expire first)."""
    best = price_order(
        lines=lines, delivery_fen=delivery_fen, tiers=tiers, new_user_fen=new_user_fen
    )
    for coupon in coupons:
        if lines and sum(line.items_fen for line in lines) < coupon.min_spend_fen:
            continue
        candidate = price_order(
            lines=lines,
            delivery_fen=delivery_fen,
            tiers=tiers,
            coupon=coupon,
            new_user_fen=new_user_fen,
        )
        if candidate.total_fen < best.total_fen:
            best = candidate
    return best


# --- sharing among people ---------------------------------------------------------------------


def split_by_weights(total: int, weights: list[int]) -> list[int]:
    """`total` fen shared in proportion to `weights`, by the largest-remainder method: the shares
    add up to `total` exactly. Ties go to the earlier weight. All-zero weights share equally."""
    n = len(weights)
    if n == 0:
        return []
    if total < 0:
        return [-s for s in split_by_weights(-total, weights)]
    if sum(weights) <= 0:
        weights = [1] * n
    whole = sum(weights)
    floors = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(floors)
    order = sorted(range(n), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def split_evenly(total: int, n: int) -> list[int]:
    return split_by_weights(total, [1] * n)


@dataclass
class Share:
    member: int
    items_fen: int
    packaging_fen: int
    delivery_fen: int
    discount_fen: int

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.packaging_fen + self.delivery_fen - self.discount_fen

    def stored(self, name: str = "") -> dict:
        return {
            "user": self.member,
            "name": name,
            "items_fen": self.items_fen,
            "packaging_fen": self.packaging_fen,
            "delivery_fen": self.delivery_fen,
            "discount_fen": self.discount_fen,
            "total_fen": self.total_fen,
        }


def price_group(
    *, members: list[int], lines: list[LineInput], delivery_fen: int, tiers=()
) -> tuple[Breakdown, list[Share]]:
    """拼单: the group's breakdown (满减 on the combined food: reaching it together is the point)
    and each member's share, in `members` order (the opener first). The delivery fee is shared
    equally; the 满减 in proportion to each member's food. Coupons and the new-user discount
    belong to one person's order and do not apply. Shares add up to the total, to the fen."""
    breakdown = price_order(lines=lines, delivery_fen=delivery_fen, tiers=tiers)
    food = {m: 0 for m in members}
    packaging = {m: 0 for m in members}
    for line in lines:
        food[line.member] += line.items_fen
        packaging[line.member] += line.line_packaging_fen
    fees = split_evenly(delivery_fen, len(members))
    discounts = split_by_weights(breakdown.discount_fen, [food[m] for m in members])
    shares = [
        Share(m, food[m], packaging[m], fee, discount)
        for m, fee, discount in zip(members, fees, discounts, strict=True)
    ]
    return breakdown, shares
