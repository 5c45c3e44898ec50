import io

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campus.selectors import campus_default
from orders import selectors, services
from orders.errors import OrderError
from orders.forms import OrderForm
from orders.models import Kind
from orders.permissions import get_order_for_user
from orders.rules import CUSTOMER_MAY_CANCEL
from orders.status import Status, all_status_meta
from tracking.snapshot import order_snapshot


@require_GET
def home(request):
    active = []
    if request.user.is_authenticated:
        active = list(selectors.order_active_for_customer(request.user)[:10])
    return render(request, "orders/home.html", {"active_orders": active, "kinds": Kind.choices})


@require_GET
def privacy(request):
    return render(request, "privacy.html")


@login_required
@require_http_methods(["GET", "POST"])
def order_new(request):
    campus = campus_default()
    initial = {"kind": request.GET.get("kind")} if request.GET.get("kind") in Kind.values else {}
    form = OrderForm(request.POST or None, request.FILES or None, campus=campus, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                order = services.order_create(customer=request.user, **form.cleaned_data)
            except OrderError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("orders:detail", number=order.number)
        status = 400
    return render(request, "orders/order_new.html", {"form": form}, status=status)


@login_required
@require_GET
def order_list(request):
    orders = selectors.order_list_for_customer(request.user)[:100]
    return render(request, "orders/order_list.html", {"orders": orders})


@login_required
@require_GET
def order_detail(request, number: str):
    order = get_order_for_user(request.user, number)
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "snapshot": order_snapshot(order, request.user),
            "status_meta": all_status_meta(),
            "can_cancel": order.customer_id == request.user.pk
            and order.status in CUSTOMER_MAY_CANCEL,
            "ws_path": f"/ws/orders/{order.number}/",
            "tile_url": settings.MAP_TILE_URL,
        },
    )


@login_required
@require_POST
def order_cancel(request, number: str):
    order = get_order_for_user(request.user, number)
    try:
        services.order_transition(order=order, to=Status.CANCELLED, actor=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, Status.CANCELLED.label)
    return redirect(reverse("orders:detail", args=[order.number]))


@login_required
@require_GET
def order_qr(request, number: str):
    """The order QR (SVG): a rider scans it to accept the order or to confirm pickup.

    It encodes the rider app's scan URL, so a phone's own camera app lands on the right page too.
    Only the customer, the rider and operators may fetch it (404 for everyone else).
    """
    order = get_order_for_user(request.user, number)
    url = request.build_absolute_uri(reverse("riders:scan_order", args=[order.number]))
    svg = io.BytesIO()
    segno.make(url, error="m").save(svg, kind="svg", scale=8, border=2, xmldecl=False)
    response = HttpResponse(svg.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def order_photo(request, number: str):
    order = get_order_for_user(request.user, number)
    if not order.photo:
        raise Http404("No photo")
    return FileResponse(order.photo.open("rb"), content_type="image/jpeg")
