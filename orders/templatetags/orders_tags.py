"""{% load orders_tags %} {{ amount_fen|yuan }} -> 12.50: integer fen as yuan, exactly."""

from django import template

from orders.models import yuan as fen_to_yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    if fen in (None, ""):
        return ""
    return fen_to_yuan(int(fen))
