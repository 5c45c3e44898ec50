"""Takeout errors: OrderError subclasses, so pages and the API answer them like every order error
(a clear message, a 4xx status)."""

from django.utils.translation import gettext_lazy as _

from orders.errors import OrderError


class TakeoutError(OrderError):
    code = "takeout"
    default_message = _("This cannot be done with this takeout order.")


class MerchantClosed(TakeoutError):
    http_status = 409
    code = "merchant_closed"
    default_message = _("This merchant is not taking orders right now.")


class OutOfStock(TakeoutError):
    http_status = 409
    code = "out_of_stock"
    default_message = _("Sorry, that has just sold out.")


class CartError(TakeoutError):
    code = "cart"
    default_message = _("Your cart cannot be ordered as it is.")


class TicketStepRefused(TakeoutError):
    http_status = 409
    code = "ticket_step"
    default_message = _("This order cannot take that step now.")


class GroupClosed(TakeoutError):
    http_status = 409
    code = "group_closed"
    default_message = _("This group has already ordered or was cancelled.")
