"""Money errors: OrderError subclasses, so pages and the API turn them into clear 4xx answers."""

from django.utils.translation import gettext_lazy as _

from orders.errors import OrderError


class PaymentError(OrderError):
    http_status = 409
    code = "payment_refused"
    default_message = _("This payment cannot be carried out.")


class InsufficientFunds(PaymentError):
    http_status = 402
    code = "insufficient_funds"
    default_message = _("Your balance is too low. Top up your wallet first.")


class AlreadyPaid(PaymentError):
    code = "already_paid"
    default_message = _("This order has already been paid.")


class PaymentRequired(PaymentError):
    http_status = 402
    code = "payment_required"
    default_message = _("Pay for the order before it opens to riders.")


class DisputeOpen(PaymentError):
    code = "dispute_open"
    default_message = _("A dispute is open on this order; an operator will settle it first.")


class UnknownGateway(PaymentError):
    http_status = 400
    code = "unknown_gateway"
    default_message = _("This payment method is not available.")


class LedgerError(Exception):
    """A programming error: an unbalanced or empty transaction. Never shown to users."""


class InvalidAmount(PaymentError):
    http_status = 400
    code = "invalid_amount"
    default_message = _("This amount is not allowed.")
