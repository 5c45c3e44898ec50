"""Takeout pieces that other apps' pages include: "open now" on the home page, the merchant track
on the order page, and money in yuan."""

from django import template
from django.utils import timezone

from merchants import selectors
from merchants.models import MERCHANT_STYLE, MerchantKind, MerchantStatus
from merchants.pricing import PriceLine
from orders.models import TAKEOUT

register = template.Library()

KIND_ICONS = {
    MerchantKind.CANTEEN_WINDOW: "🍜",
    MerchantKind.RESTAURANT: "🍽️",
    MerchantKind.CONVENIENCE: "🏪",
    MerchantKind.MILK_TEA: "🧋",
    MerchantKind.BAKERY: "🥐",
    MerchantKind.FRUIT: "🍉",
    MerchantKind.OTHER: "🛍️",
}
TRACK = [
    MerchantStatus.NEW,
    MerchantStatus.ACCEPTED,
    MerchantStatus.PREPARING,
    MerchantStatus.READY,
]


@register.filter
def fen(value) -> str:
    """Integer fen as ¥ with two decimals, exactly: 1250 -> ¥12.50, -300 -> -¥3.00."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return ""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}¥{value // 100}.{value % 100:02d}"


@register.filter
def kind_icon(kind: str) -> str:
    return KIND_ICONS.get(kind, "🛍️")


@register.inclusion_tag("merchants/_open_now.html", takes_context=True)
def open_now(context):
    """The home page's "open now" strip: one query (the database checks the hours)."""
    user = context.get("user")
    staff_of = None
    if getattr(user, "is_authenticated", False) and not user.is_staff:
        # Merchant staff land here after logging in: the way to their portal.
        staff_of = user.merchants.values_list("slug", flat=True).first()
    return {
        "merchants": selectors.merchants_open_now(campus="default"),
        "user": user,
        "portal_slug": staff_of,
    }


def track_steps(ticket) -> list[dict]:
    reached = TRACK.index(ticket.merchant_status) if ticket.merchant_status in TRACK else -1
    return [
        {
            "status": s,
            "label": MerchantStatus(s).label,
            "icon": MERCHANT_STYLE[s][0],
            "color": MERCHANT_STYLE[s][1],
            "done": i <= reached,
        }
        for i, s in enumerate(TRACK)
    ]


@register.inclusion_tag("merchants/_track_block.html", takes_context=True)
def takeout_track(context, order):
    """The merchant track beside the delivery track on the order page (takeout orders only)."""
    if order.kind != TAKEOUT:
        return {"ticket": None}
    ticket = selectors.ticket_for_order(order)
    return {"ticket": ticket, "order": order, "request": context.get("request")}


@register.simple_tag
def track_of(ticket):
    return track_steps(ticket)


@register.filter
def price_label(line: dict) -> str:
    """A stored price line ({"code", "amount_fen", "detail"}) as the customer reads it."""
    return PriceLine(line["code"], line["amount_fen"], line.get("detail", "")).label


@register.filter
def local_hm(value) -> str:
    return timezone.localtime(value).strftime("%H:%M") if value else ""
