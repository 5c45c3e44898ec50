"""Domain errors that pages and APIs turn into clear 4xx answers in the user's language."""

from django.utils.translation import gettext_lazy as _


class OrderError(Exception):
    http_status = 400
    code = "invalid"

    def __init__(self, message=None):
        self.message = message or self.default_message
        super().__init__(str(self.message))

    default_message = _("This request cannot be carried out.")


class InvalidTransition(OrderError):
    http_status = 409
    code = "invalid_transition"

    def __init__(self, current: str, to: str, message=None):
        from orders.status import Status

        self.current, self.to = current, to
        super().__init__(
            message
            or _("An order that is “%(current)s” cannot become “%(to)s”.")
            % {"current": Status(current).label, "to": Status(to).label}
        )


class OrderTaken(OrderError):
    http_status = 409
    code = "taken"
    default_message = _("Another rider has already taken this order.")


class NotAllowed(OrderError):
    http_status = 403
    code = "forbidden"
    default_message = _("You are not allowed to do this.")


class StepNotReady(OrderError):
    """The kind's own condition for this step is not met yet (orders.rules.check_kind_step)."""

    http_status = 409
    code = "not_ready"


class DeliveryCodeRefused(OrderError):
    http_status = 400
    code = "delivery_code"
    default_message = _("Enter the customer's 4-digit delivery code.")


class AlreadyRated(OrderError):
    http_status = 409
    code = "already_rated"
    default_message = _("You have already rated this order.")
