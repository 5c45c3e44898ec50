from django import template

from orders.status import RIDER_NEXT
from tracking import proof
from tracking.models import OrderProof

register = template.Library()


@register.simple_tag
def proof_step(order, to=None):
    """What the rider's step to `to` (default: the order's next rider step) needs as proof."""
    return proof.step_proof(order, to or RIDER_NEXT.get(order.status))


@register.simple_tag
def order_proofs(order):
    """The order's proof photos and confirmations, for its page (customer, rider, operators)."""
    return list(OrderProof.objects.filter(order=order).order_by("created_at", "pk"))


@register.filter
def iso_time(value: str | None, fmt: str = "H:i") -> str:
    """An ISO 8601 time (as pushed payloads carry it) in the page's time zone: "14:05"."""
    from datetime import datetime

    from django.utils import timezone
    from django.utils.dateformat import format as date_format

    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    return date_format(timezone.localtime(moment), fmt)


@register.simple_tag
def live_strings() -> dict:
    """The order page script's words, in the page's language."""
    from django.utils.translation import gettext as _

    from tracking.chat import QUICK_REPLIES

    return {
        "arrives": _("Arrives around"),
        "between": _("between %(a)s and %(b)s"),
        "stopsBefore": _("%(n)s stop(s) before yours"),
        "remaining": _("%(m)s m to go"),
        "promised": _("Promised by %(t)s"),
        "risk": {"on_time": _("On time"), "at_risk": _("May be late"), "late": _("Running late")},
        "waitingMerchant": _("The merchant is preparing your order."),
        "nearby": _("Your rider is almost there"),
        "nearbyBody": _("Get ready to meet your rider."),
        "chatFrom": {
            "rider": _("Message from your rider"),
            "customer": _("Message from the customer"),
        },
        "roles": {"rider": _("Rider"), "customer": _("Customer")},
        "polling": _("Live connection blocked: updating every few seconds."),
        "notifyOn": _("Notifications on"),
        "quick": {code: str(label) for code, label in QUICK_REPLIES.items()},
    }


@register.simple_tag
def privacy_periods() -> dict:
    """The retention periods the privacy notice states, from the settings that enforce them."""
    from tracking import chat, retention

    hours = chat.close_hours()
    return {
        "retention_days": retention.retention_days(),
        "archive_days": retention.archive_days(),
        "chat_hours": int(hours) if hours == int(hours) else hours,
    }
