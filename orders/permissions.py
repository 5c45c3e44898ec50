"""Who may see an order. Every order view, API and socket starts here."""

from django.http import Http404
from django.utils.translation import gettext as _

from orders.models import Order
from orders.selectors import order_detail_qs


def user_can_view_order(user, order: Order) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_staff or user.pk in (order.customer_id, order.rider_id)


def get_order_for_user(user, number: str) -> Order:
    """The order if this user may see it; 404 for strangers (no hint that it exists)."""
    order = order_detail_qs().filter(number=number).first()
    if order is None or not user_can_view_order(user, order):
        raise Http404(_("No such order"))
    return order


def get_order_for_rider(user, number: str) -> Order:
    """An order a rider acts on: theirs, or any order if they are a rider (to accept it).

    Non-riders get 404 for orders that are not theirs, as everywhere else.
    """
    order = order_detail_qs().filter(number=number).first()
    if order is None:
        raise Http404(_("No such order"))
    if user_can_view_order(user, order) or hasattr(user, "rider_profile"):
        return order
    raise Http404(_("No such order"))
