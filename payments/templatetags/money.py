from django import template

from orders.status import Status
from payments import selectors
from payments.services import DISPUTABLE
from payments.services import yuan as _yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """Integer fen as ¥ with two decimals, exactly: 1250 -> ¥12.50, -300 -> -¥3.00."""
    try:
        return _yuan(int(fen))
    except (TypeError, ValueError):
        return ""


@register.filter
def signed_yuan(fen) -> str:
    fen = int(fen)
    return f"+{_yuan(fen)}" if fen > 0 else _yuan(fen).replace("-", "−")


@register.inclusion_tag("payments/_order_money.html", takes_context=True)
def order_money(context, order):
    """The order page's money block: what was paid and refunded, and the money actions the
    viewer may take now (pay or top up, cancel with its refund, confirm receipt, dispute).
    One query for an open order; a few more only where the status needs them."""
    user = context["request"].user
    is_customer = user.pk == order.customer_id
    money = selectors.order_money(order)
    pending = is_customer and order.status == Status.PENDING
    balance = selectors.wallet_balance(user) if pending else 0
    return {
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
        "order": order,
        "money": money,
        "is_customer": is_customer,
        "balance": balance,
        "short": max(money.due - balance, 0) if pending else 0,
        "refund_preview": selectors.refund_preview(order, held=money.held) if is_customer else None,
        "can_dispute": is_customer and order.status in DISPUTABLE and not money.open_dispute,
    }
