"""Rider pages of dispatch: answer an offer from the board, see the planned route, hand an
order over at a transfer station."""

from functools import wraps

import segno
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dispatch import relay, selectors, services
from dispatch.forms import HandoffCodeForm
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
    relay.relay_annotate(request.user, {stop.order for stop in planned.stops})
    return render(request, "dispatch/route.html", {"route": planned})


# --- the hand-over at a transfer station (dispatch.relay) ----------------------------------------


def _post_only(view):
    """405 with a sentence in the rider's language (not an empty page) for a GET on a button."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            response = render(
                request,
                "dispatch/relay_refused.html",
                {"message": _("This is a button on the hand-over page: open the page and tap it.")},
                status=405,
            )
            response["Allow"] = "POST"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _relay(request, number: str) -> relay.RelayView:
    view = relay.relay_view_get(number=number, rider=request.user)
    if view is None:
        raise Http404(_("No such relay"))
    return view


def _qr_svg(request, view: relay.RelayView) -> str:
    """This rider's code as a QR: the hand-over page's address with the code, so that the other
    rider's in-app scanner or their phone's own camera app reads it."""
    url = request.build_absolute_uri(
        reverse("dispatch:relay", args=[view.order.number]) + f"?code={view.code}"
    )
    return mark_safe(segno.make(url, error="m").svg_inline(scale=5, border=2, omitsize=True))  # noqa: S308


def _relay_page(request, view, *, form=None, error: str = "", status: int = 200):
    if form is None:
        form = HandoffCodeForm(initial={"code": request.GET.get("code", "")[:6]})
    return render(
        request,
        "dispatch/relay.html",
        {
            "relay": view,
            "order": view.order,
            "form": form,
            "error": error,
            "qr_svg": _qr_svg(request, view) if not view.handed_over else "",
        },
        status=status,
    )


@require_GET
@rider_page
@never_cache
def relay_page(request, number: str):
    """One relay rider's hand-over screen: the leg, the station, their code as QR and text, and
    the form for the other rider's code (typed or scanned)."""
    return _relay_page(request, _relay(request, number))


@require_GET
@rider_page
@never_cache
def relay_state(request, number: str):
    """What the hand-over page polls while waiting for the other rider."""
    view = _relay(request, number)
    return JsonResponse({"state": view.state, "handed_over": view.handed_over})


@_post_only
@rider_page
def relay_arrive(request, number: str):
    view = _relay(request, number)
    try:
        relay.relay_arrive(order=view.order, rider=request.user)
    except OrderError as exc:
        return _relay_page(request, view, error=exc.message, status=exc.http_status)
    messages.success(
        request,
        _("You are at %(station)s: show your code to the second rider and enter theirs.")
        % {"station": view.station},
    )
    return redirect("dispatch:relay", number=view.order.number)


@_post_only
@rider_page
def relay_handoff(request, number: str):
    view = _relay(request, number)
    form = HandoffCodeForm(request.POST)
    if not form.is_valid():
        return _relay_page(request, view, form=form, status=400)
    try:
        order = relay.handoff_confirm(
            order=view.order, rider=request.user, code=form.cleaned_data["code"]
        )
    except OrderError as exc:
        return _relay_page(request, view, form=form, error=exc.message, status=exc.http_status)
    if order.status != view.order.status:
        messages.success(request, _("Hand-over done."))
    else:
        messages.success(request, _("Code accepted. Waiting for the other rider to enter yours."))
    return redirect("dispatch:relay", number=view.order.number)
