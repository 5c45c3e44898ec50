from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from orders import services as order_services
from orders.errors import OrderError
from orders.permissions import get_order_for_rider
from orders.status import RIDER_NEXT, Status, all_status_meta
from riders import selectors, services
from riders.permissions import is_rider


@login_required
@require_GET
def board(request):
    if not is_rider(request.user):
        return render(request, "riders/not_rider.html", status=403)
    profile = request.user.rider_profile
    active = list(selectors.rider_active_orders(request.user))
    return render(
        request,
        "riders/board.html",
        {
            "profile": profile,
            "open_orders": selectors.rider_board(request.user)[:50] if profile.online else [],
            "active_orders": [(o, RIDER_NEXT.get(o.status)) for o in active],
            "status_meta": all_status_meta(),
        },
    )


@login_required
@require_POST
def set_online(request):
    try:
        services.rider_set_online(user=request.user, online=request.POST.get("online") == "1")
    except OrderError as exc:
        messages.error(request, exc.message)
    return redirect("riders:board")


@login_required
@require_POST
def accept(request, number: str):
    order = get_order_for_rider(request.user, number)
    try:
        order_services.order_accept(order=order, rider=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
    return redirect("riders:board")


@login_required
@require_POST
def advance(request, number: str):
    order = get_order_for_rider(request.user, number)
    to = request.POST.get("to", "")
    if to not in Status.values:
        messages.error(request, OrderError.default_message)
        return redirect("riders:board")
    try:
        order_services.order_transition(order=order, to=to, actor=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
    return redirect("riders:board")
