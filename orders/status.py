"""Order statuses, their transition table, and the one icon and colour of each.

Everything that shows a status (pages, the map, pushed payloads, admin) reads it from here.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    PENDING = "pending", _("Awaiting payment")
    OPEN = "open", _("Waiting for a rider")
    ACCEPTED = "accepted", _("Accepted")
    PICKED_UP = "picked_up", _("Picked up")
    AT_STATION = "at_station", _("At transfer station")
    RELAY_ACCEPTED = "relay_accepted", _("Relay rider took over")
    DELIVERING = "delivering", _("On the way")
    DELIVERED = "delivered", _("Delivered")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.OPEN, Status.CANCELLED},
    Status.OPEN: {Status.ACCEPTED, Status.CANCELLED, Status.EXPIRED},
    # ACCEPTED -> OPEN: the rider releases the order (or an operator reassigns it).
    Status.ACCEPTED: {Status.PICKED_UP, Status.CANCELLED, Status.OPEN},
    Status.PICKED_UP: {Status.DELIVERING, Status.AT_STATION},
    Status.AT_STATION: {Status.RELAY_ACCEPTED},
    Status.RELAY_ACCEPTED: {Status.DELIVERING},
    Status.DELIVERING: {Status.DELIVERED},
    Status.DELIVERED: {Status.COMPLETED},
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
    Status.EXPIRED: set(),
}

ACTIVE = {
    Status.PENDING,
    Status.OPEN,
    Status.ACCEPTED,
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.RELAY_ACCEPTED,
    Status.DELIVERING,
}
# Statuses in which a rider is carrying (or heading for) the order.
WITH_RIDER = {
    Status.ACCEPTED,
    Status.PICKED_UP,
    Status.AT_STATION,
    Status.RELAY_ACCEPTED,
    Status.DELIVERING,
}
FINAL = {Status.DELIVERED, Status.COMPLETED, Status.CANCELLED, Status.EXPIRED}

# The rider's next step, for the one big button on the rider page.
RIDER_NEXT = {
    Status.ACCEPTED: Status.PICKED_UP,
    Status.PICKED_UP: Status.DELIVERING,
    Status.RELAY_ACCEPTED: Status.DELIVERING,
    Status.DELIVERING: Status.DELIVERED,
}


@dataclass(frozen=True)
class StatusStyle:
    icon: str
    color: str
    next_hint: str


STYLE: dict[str, StatusStyle] = {
    Status.PENDING: StatusStyle("💳", "#8d6e63", _("Pay to send the order to riders.")),
    Status.OPEN: StatusStyle("📣", "#f9a825", _("Riders nearby can see your order now.")),
    Status.ACCEPTED: StatusStyle("🤝", "#1e88e5", _("Your rider is heading to the pickup.")),
    Status.PICKED_UP: StatusStyle("📦", "#5e35b1", _("Your rider has the item.")),
    Status.AT_STATION: StatusStyle("🔁", "#00897b", _("Handing over at the transfer station.")),
    Status.RELAY_ACCEPTED: StatusStyle("🏃", "#00acc1", _("A second rider carries it on.")),
    Status.DELIVERING: StatusStyle("🛵", "#fb8c00", _("On the way to you.")),
    Status.DELIVERED: StatusStyle("✅", "#43a047", _("Delivered. Enjoy!")),
    Status.COMPLETED: StatusStyle("🏁", "#2e7d32", _("Completed. Thank you!")),
    Status.CANCELLED: StatusStyle("✖️", "#e53935", _("This order was cancelled.")),
    Status.EXPIRED: StatusStyle("⌛", "#757575", _("No rider took this order in time.")),
}


def status_meta(status: str) -> dict:
    style = STYLE[status]
    return {
        "status": str(status),
        "label": str(Status(status).label),
        "icon": style.icon,
        "color": style.color,
        "hint": str(style.next_hint),
    }


def all_status_meta() -> dict[str, dict]:
    """For the JSON script tag that page scripts and maps read."""
    return {s.value: status_meta(s) for s in Status}
