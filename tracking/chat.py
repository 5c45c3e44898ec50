"""Order chat: the customer and the rider of one order talk on the order page.

Rules, in one place:

* who: the order's customer and its current rider may read and write; operators may read (for
  disputes); nobody else learns that the chat exists (the order is 404 to them);
* when: a chat opens when a rider accepts the order and closes CHAT_CLOSE_HOURS (default 2) after
  delivery; a cancelled or expired order's chat is closed. A closed chat can still be read;
* what is shown: masked identities only (User.public_name, "张**") with the side ("Rider"), never
  a phone number: mainland mobile numbers typed into a message are masked (138****1234) before
  the message is stored;
* quick replies are stored as their code and shown in each reader's language.

Messages are pushed live to the order's socket group (tracking.broadcast) on commit.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import mask_phone
from orders.errors import NotAllowed, OrderError
from orders.status import WITH_RIDER, Status
from tracking import broadcast
from tracking.models import ChatMessage

MAX_LENGTH = 500
HISTORY = 100  # messages shown on the page and in the snapshot
PER_MINUTE = 12  # messages one person may send to one order per minute
Role = ChatMessage.Role

# code -> label. Riders and customers get their own short lists (QUICK_FOR).
QUICK_REPLIES = {
    "downstairs": gettext_lazy("I'm downstairs"),
    "at_door": gettext_lazy("I'm at the door"),
    "wait": gettext_lazy("One moment, please"),
    "almost": gettext_lazy("Almost there"),
    "have_it": gettext_lazy("I have your order"),
    "coming_down": gettext_lazy("Coming down now"),
    "leave_at_door": gettext_lazy("Please leave it at the door"),
    "thanks": gettext_lazy("Thank you!"),
}
QUICK_FOR = {
    Role.RIDER: ("downstairs", "at_door", "wait", "almost", "have_it"),
    Role.CUSTOMER: ("coming_down", "wait", "leave_at_door", "thanks"),
}
# Mainland mobile numbers (11 digits from 13x-19x), also written with spaces or dashes.
_PHONE = re.compile(r"(?<!\d)1[3-9]\d(?:[\s-]?\d){8}(?!\d)")


class ChatClosed(OrderError):
    http_status = 409
    code = "chat_closed"


class ChatTooFast(OrderError):
    http_status = 429
    code = "chat_too_fast"
    default_message = gettext_lazy("You are sending messages too fast: wait a moment.")


def close_hours() -> float:
    return float(getattr(settings, "TRACKING_CHAT_CLOSE_HOURS", 2))


def role_of(order, user) -> str | None:
    """The side `user` writes on in this order's chat, or None if they may not write."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.pk == order.customer_id:
        return Role.CUSTOMER
    if order.rider_id is not None and user.pk == order.rider_id:
        return Role.RIDER
    return None


def can_read(order, user) -> bool:
    return role_of(order, user) is not None or bool(getattr(user, "is_staff", False))


def closes_at(order) -> datetime | None:
    """When a delivered order's chat closes (None while it has no end yet, or never opened)."""
    if order.status in (Status.DELIVERED, Status.COMPLETED) and order.delivered_at:
        return order.delivered_at + timedelta(hours=close_hours())
    return None


def closed_reason(order, now: datetime | None = None) -> str | None:
    """Why the chat is closed now, or None when it is open."""
    now = now or timezone.now()
    if order.status in (Status.CANCELLED, Status.EXPIRED):
        return _("This order is over: the chat is closed.")
    if order.status in (Status.DELIVERED, Status.COMPLETED):
        end = closes_at(order)
        if end is None or now >= end:
            return _("The chat closed %(h)s hours after delivery.") % {"h": f"{close_hours():g}"}
        return None
    if order.rider_id is None or order.status not in WITH_RIDER:
        return _("The chat opens when a rider accepts your order.")
    return None


def mask_phones(text: str) -> str:
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def quick_label(code: str) -> str:
    label = QUICK_REPLIES.get(code)
    return str(label) if label is not None else ""


@transaction.atomic
def chat_post(*, order, sender, body: str = "", quick: str = "") -> ChatMessage:
    """Send one message to the order's chat (a quick reply by its code, or text)."""
    role = role_of(order, sender)
    if role is None:
        raise NotAllowed(_("Only the customer and the rider of this order can chat."))
    if reason := closed_reason(order):
        raise ChatClosed(reason)
    quick = (quick or "").strip()
    body = " ".join((body or "").split())  # one line: no layout games in a chat bubble
    if quick:
        if quick not in QUICK_FOR[role]:
            raise OrderError(_("Unknown quick reply."))
        body = ""
    elif not body:
        raise OrderError(_("Write a message."))
    elif len(body) > MAX_LENGTH:
        raise OrderError(_("A message is at most %(n)d characters.") % {"n": MAX_LENGTH})
    _throttle(order, sender)
    message = ChatMessage.objects.create(
        order=order, sender=sender, role=role, quick=quick, body=mask_phones(body)
    )
    broadcast.chat_posted_on_commit(order, message_payload(message))
    return message


def _throttle(order, sender) -> None:
    """At most PER_MINUTE messages in any 60 seconds (a sliding window: a fixed minute would let
    twice as many through across its boundary)."""
    key = f"chat-rate:{order.pk}:{sender.pk}"
    now = timezone.now().timestamp()
    recent = [t for t in cache.get(key, []) if now - t < 60]
    if len(recent) >= PER_MINUTE:
        raise ChatTooFast()
    cache.set(key, [*recent, now], 60)


def message_payload(message: ChatMessage) -> dict:
    """A message as every reader sees it: the side, a masked name, the text or the quick code
    (whose label each page shows in its reader's language)."""
    return {
        "id": message.pk,
        "role": message.role,
        "name": message.sender.public_name,
        "quick": message.quick,
        "text": message.body or quick_label(message.quick),
        "at": message.created_at.isoformat(),
    }


def messages_for(order, limit: int = HISTORY) -> list[ChatMessage]:
    rows = (
        ChatMessage.objects.filter(order=order)
        .select_related("sender")
        .order_by("-created_at", "-pk")[:limit]
    )
    return list(reversed(rows))


@dataclass(frozen=True)
class ChatState:
    """The chat as one viewer sees it (the page, the snapshot)."""

    role: str | None  # the viewer's side, None for operators (read only)
    open: bool
    reason: str | None
    closes_at: datetime | None
    messages: list[dict]

    def payload(self) -> dict:
        return {
            "role": self.role,
            "open": self.open,
            "reason": self.reason,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "messages": self.messages,
            "quick": [
                {"code": code, "label": quick_label(code)} for code in QUICK_FOR.get(self.role, ())
            ],
        }


def chat_state(order, viewer) -> ChatState | None:
    """None for anyone who may not read this order's chat."""
    if not can_read(order, viewer):
        return None
    role = role_of(order, viewer)
    reason = closed_reason(order)
    if role is None and reason is None:
        reason = _("Operators read the chat; only the customer and the rider write in it.")
    messages = []
    # Never a rider, or no message at all (when the caller knows: orders.selectors
    # order_for_snapshot): nothing to read, no query.
    if getattr(order, "has_chat", True) and (order.rider_id or _ever_had_rider(order)):
        messages = [message_payload(m) for m in messages_for(order)]
    return ChatState(
        role=role,
        open=role is not None and reason is None,
        reason=reason,
        closes_at=closes_at(order),
        messages=messages,
    )


def _ever_had_rider(order) -> bool:
    """A released or cancelled order may have a chat from the rider it had."""
    return order.status != Status.PENDING and any(
        e.new_status == Status.ACCEPTED for e in order.events.all()
    )
