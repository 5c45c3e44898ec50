"""Who may run a merchant, and who may see a takeout order. Every portal view, API and socket
starts with one of these; everyone else gets 404 (no hint that the merchant or order exists)."""

from django.http import Http404
from django.utils.translation import gettext as _

from merchants.models import Cart, GroupMealJoin, MemberState, Merchant, TakeoutOrder


def can_run_merchant(user, merchant: Merchant) -> bool:
    """The merchant's own staff, and operators."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    return merchant.staff.filter(pk=user.pk).exists()


def merchants_run_by(user):
    if not getattr(user, "is_authenticated", False):
        return Merchant.objects.none()
    if user.is_staff:
        return Merchant.objects.all()
    return Merchant.objects.filter(staff=user)


def is_merchant_staff(user) -> bool:
    return getattr(user, "is_authenticated", False) and (
        user.is_staff or Merchant.objects.filter(staff=user).exists()
    )


def get_merchant_for_staff(user, slug: str) -> Merchant:
    """The merchant if this user runs it; 404 for students, other merchants' staff, strangers."""
    merchant = (
        Merchant.objects.select_related("building", "campus").filter(slug=slug).first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    if merchant is None or not can_run_merchant(user, merchant):
        raise Http404(_("No such merchant"))
    return merchant


def get_ticket_for_staff(merchant: Merchant, number: str) -> TakeoutOrder:
    """A ticket of this merchant (the merchant already checked with get_merchant_for_staff)."""
    from merchants.selectors import ticket_for_merchant

    ticket = ticket_for_merchant(merchant, number)
    if ticket is None or ticket.awaiting_group:
        raise Http404(_("No such order"))
    return ticket


def user_can_view_takeout(user, ticket: TakeoutOrder) -> bool:
    """The order's customer and rider, the members of its group order or group meal, the
    merchant's staff and operators."""
    if not getattr(user, "is_authenticated", False):
        return False
    order = ticket.order
    if user.is_staff or user.pk in (order.customer_id, order.rider_id):
        return True
    if (
        ticket.group_id
        and Cart.objects.filter(
            group_id=ticket.group_id, user=user, member_state=MemberState.ACTIVE
        ).exists()
    ):
        return True
    if GroupMealJoin.objects.filter(
        round__takeout=ticket, user=user, left_at__isnull=True
    ).exists():
        return True
    return not ticket.awaiting_group and ticket.merchant.staff.filter(pk=user.pk).exists()


def get_takeout_for_user(user, number: str) -> TakeoutOrder:
    from merchants.selectors import ticket_qs

    ticket = ticket_qs().filter(order__number=number).first() if user.is_authenticated else None
    if ticket is None or not user_can_view_takeout(user, ticket):
        raise Http404(_("No such order"))
    return ticket
