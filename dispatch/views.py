"""Rider pages of dispatch: answer an offer from the board, see the planned route."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dispatch import selectors, services
from orders.errors import OrderError
from riders.views import rider_page


def _offer(request, offer_id: int):
    offer = selectors.offer_for_rider(request.user, offer_id)
    if offer is None:
        raise Http404("No such offer")
    return offer


@require_POST
@rider_page
def offer_accept(request, offer_id: int):
    offer = _offer(request, offer_id)
    try:
        services.offer_accept(offer=offer, rider=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Order accepted. Head to the pickup."))
    return redirect("riders:board")


@require_POST
@rider_page
def offer_decline(request, offer_id: int):
    offer = _offer(request, offer_id)
    try:
        services.offer_decline(
            offer=offer, rider=request.user, reason=request.POST.get("reason", "")
        )
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, _("Declined: the order goes to another rider."))
    return redirect("riders:board")


@require_GET
@rider_page
def route(request):
    """The planned order of the rider's stops and the path, re-planned from where they are."""
    planned = selectors.rider_route(request.user)
    return render(request, "dispatch/route.html", {"route": planned})
