import io

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campus.selectors import campus_default
from orders import errand_api, pricing, rules, selectors, services
from orders.errors import OrderError
from orders.forms import (
    CheckInForm,
    CostForm,
    CustomerRatingForm,
    DeliverForm,
    OrderForm,
    RatingForm,
)
from orders.models import CustomerRating, Kind, Rating
from orders.permissions import get_order_for_user
from orders.photos import PhotoRejected, photo_process
from orders.pricing import QuoteExpired, kind_setting_for
from orders.rules import CUSTOMER_MAY_CANCEL
from orders.status import WITH_RIDER, Status, all_status_meta
from riders.forms import ComplaintForm
from riders.services import order_complaint_file
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
    """The errand form of one kind (?kind=), prefilled from an earlier order (?reorder=), with the
    live quote (static/orders/order_form.js). A POST with the quote the customer saw places the
    order at that price; without one (no script), the page shows the price to confirm first."""
    campus = campus_default()
    kind = request.GET.get("kind") if request.GET.get("kind") in Kind.values else Kind.PARCEL
    initial = {"kind": kind}
    if number := request.GET.get("reorder"):
        initial = order_reorder_initial(get_order_for_user(request.user, number), request.user)
        kind = initial["kind"]
    form = OrderForm(
        request.POST or None,
        request.FILES or None,
        campus=campus,
        user=request.user,
        kind=kind,
        initial=initial,
    )
    quote, status = None, 200
    if request.method == "POST":
        status = 400
        if form.all_valid():
            quote, status, order = _order_new_post(request, form)
            if order is not None:
                return redirect("orders:detail", number=order.number)
    setting = kind_setting_for(campus, form.errand_kind) if campus else None
    context = {
        "form": form,
        "kinds": Kind.choices,
        "quote": quote,
        "photo_required": bool(setting and setting.photo_required),
        "quote_url": reverse("api:order-quote"),
    }
    return render(request, "orders/order_new.html", context, status=status)


def _order_new_post(request, form: OrderForm):
    """(quote to show, status, placed order or None) for a valid order form."""
    kwargs = form.order_kwargs()
    photo = form.cleaned_data.get("photo")
    try:
        if photo:
            photo = photo_process(photo, owner=request.user)
    except PhotoRejected as exc:
        form.add_error("photo", exc.message)
        return None, 400, None
    quote_id = request.POST.get("quote_id", "")
    try:
        if not quote_id:
            # No price seen yet (no script): show it and let the customer confirm.
            messages.info(request, _("Check the price, then place the order."))
            return _quote(kwargs, request.user), 200, None
        order = services.order_create(
            customer=request.user, photo=photo or None, quote_id=quote_id, **kwargs
        )
    except QuoteExpired as exc:
        messages.warning(request, exc.message)
        return _quote(kwargs, request.user), 409, None
    except ValidationError as exc:
        form.add_errors(exc.message_dict)
    except OrderError as exc:
        form.add_error(None, exc.message)
    else:
        return None, 302, order
    return None, 400, None


def _quote(kwargs: dict, user):
    return pricing.quote_make(
        request=pricing.QuoteRequest.of(
            kind=kwargs["kind"],
            pickup=kwargs["pickup_building"],
            dropoff=kwargs["dropoff_building"],
            details=kwargs["details"],
            urgent=kwargs["urgent"],
            deliver_by=kwargs["deliver_by"],
            tip_fen=kwargs["tip_fen"],
        ),
        customer=user,
    )


def order_reorder_initial(order, user) -> dict:
    """The form prefilled from one of the customer's orders (not its photo or codes)."""
    if order.customer_id != user.pk or order.kind not in Kind.values:
        raise Http404("No such order")  # (takeout is reordered from the merchant's menu)
    initial = {
        "kind": order.kind,
        "pickup_building": order.pickup_building_id,
        "pickup_detail": order.pickup_detail,
        "dropoff_building": order.dropoff_building_id,
        "dropoff_detail": order.dropoff_detail,
        "description": order.description,
        "required_gender": order.required_gender,
        "tip_fen": order.tip_fen,
        "urgent": order.urgent,
        "size_class": order.size_class,
        "courier": order.courier,
        "confidential": order.confidential,
        "duration_minutes": order.duration_minutes,
    }
    if order.budget_cap_fen:
        initial["budget_cap_fen"] = order.budget_cap_fen
    if order.kind == Kind.CUSTOM:
        initial["offered_price_fen"] = order.price_fen
    return initial


@login_required
@require_GET
def order_list(request):
    orders = selectors.order_list_for_customer(request.user)[:100]
    return render(request, "orders/order_list.html", {"orders": orders})


@login_required
@require_GET
def order_detail(request, number: str):
    return order_page(request, number)


def order_page(request, number: str, *, status: int = 200, **forms):
    """The live order page. The rider's and customer's action views render it again with their
    bound form (`forms`) and status 400 when what they sent does not pass."""
    order = get_order_for_user(request.user, number)
    return render(
        request,
        "orders/order_detail.html",
        {
            **order_kind_context(order, request.user),
            **forms,
            "order": order,
            "snapshot": order_snapshot(order, request.user),
            "status_meta": all_status_meta(),
            "can_cancel": order.customer_id == request.user.pk
            and order.status in CUSTOMER_MAY_CANCEL,
            "ws_path": f"/ws/orders/{order.number}/",
            "tile_url": settings.MAP_TILE_URL,
        },
        status=status,
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


# --- errand kinds on the order page: the rider's steps, the rating, photos ---------------------


def order_kind_context(order, user) -> dict:
    """What the order page shows of the kind, for this viewer (codes only for who may see them)."""
    is_customer = user.pk == order.customer_id
    is_rider = order.rider_id is not None and user.pk == order.rider_id
    rider_active = is_rider and order.status in WITH_RIDER
    rating = Rating.objects.filter(order=order).first() if order.rider_id else None
    delivered = order.rider_id and order.status in (Status.DELIVERED, Status.COMPLETED)
    customer_rating = CustomerRating.objects.filter(order=order).first() if is_rider else None
    return {
        "price_lines": errand_api.price_lines(order),
        "details": errand_api.order_details(order, user),
        "is_customer": is_customer,
        "show_pickup_code": rules.can_see_pickup_code(order, user),
        "show_delivery_code": rules.can_see_delivery_code(order, user),
        "cost_form": CostForm()
        if rider_active and order.kind == Kind.BUY and order.status != Status.DELIVERING
        else None,
        "check_in_form": CheckInForm()
        if rider_active and order.kind == Kind.QUEUE and not order.checked_in_at
        else None,
        "deliver_form": DeliverForm()
        if rider_active and order.delivery_code and order.status == Status.DELIVERING
        else None,
        "rating": rating,
        "rating_form": RatingForm()
        if is_customer
        and rating is None
        and order.rider_id
        and order.status in (Status.DELIVERED, Status.COMPLETED)
        else None,
        "can_reorder": is_customer and order.kind in Kind.values,
        # The rider sees the customer's average stars from riders, never more about them.
        "customer_stars": selectors.customer_rating_summary(order.customer_id)
        if is_rider
        else None,
        "customer_rating": customer_rating,
        "customer_rating_form": CustomerRatingForm()
        if is_rider and delivered and customer_rating is None
        else None,
    }


def _back(order):
    return redirect(reverse("orders:detail", args=[order.number]))


def _invalid(request, number: str, **forms):
    """The order page again, with the bound form and its field messages: 400."""
    return order_page(request, number, status=400, **forms)


@login_required
@require_POST
def order_record_cost(request, number: str):
    order = get_order_for_user(request.user, number)
    form = CostForm(request.POST, request.FILES)
    if not form.is_valid():
        return _invalid(request, number, cost_form=form)
    try:
        services.order_record_cost(
            order=order,
            rider=request.user,
            actual_cost_fen=form.cleaned_data["actual_cost_fen"],
            receipt_photo=form.cleaned_data["receipt_photo"],
        )
    except ValidationError as exc:
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
        return _invalid(request, number, cost_form=form)
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cost recorded."))
    return _back(order)


@login_required
@require_POST
def order_check_in(request, number: str):
    order = get_order_for_user(request.user, number)
    form = CheckInForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Your position is needed to check in: allow location access."))
        return _invalid(request, number, check_in_form=form)
    try:
        services.order_check_in(
            order=order,
            rider=request.user,
            lat=form.cleaned_data["lat"],
            lng=form.cleaned_data["lng"],
            accuracy_m=form.cleaned_data.get("accuracy"),
        )
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Checked in."))
    return _back(order)


@login_required
@require_POST
def order_deliver(request, number: str):
    """The rider marks the order delivered with the customer's delivery code."""
    order = get_order_for_user(request.user, number)
    form = DeliverForm(request.POST)
    form.is_valid()
    try:
        services.order_transition(
            order=order,
            to=Status.DELIVERED,
            actor=request.user,
            code=form.cleaned_data.get("code", ""),
        )
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, Status.DELIVERED.label)
    return _back(order)


def _order_form_post(request, number: str, form_class, form_name: str, act, thanks: str):
    """A form on the order page: invalid -> the page again with its errors (400); refused by the
    service -> the page with the reason (its 4xx); done -> back to the page with `thanks`."""
    order = get_order_for_user(request.user, number)
    form = form_class(request.POST)
    if not form.is_valid():
        return _invalid(request, number, **{form_name: form})
    try:
        act(order, form.cleaned_data)
    except OrderError as exc:
        messages.error(request, exc.message)
        return order_page(request, number, status=exc.http_status)
    messages.success(request, thanks)
    return _back(order)


@login_required
@require_POST
def order_rate(request, number: str):
    return _order_form_post(
        request,
        number,
        RatingForm,
        "rating_form",
        lambda order, data: services.order_rate(order=order, customer=request.user, **data),
        _("Thank you for rating your rider."),
    )


@login_required
@require_POST
def order_rate_customer(request, number: str):
    return _order_form_post(
        request,
        number,
        CustomerRatingForm,
        "customer_rating_form",
        lambda order, data: services.order_rate_customer(order=order, rider=request.user, **data),
        _("Thank you for rating the customer."),
    )


@login_required
@require_POST
def order_complaint(request, number: str):
    """The customer reports a problem with the rider (riders.services.order_complaint_file)."""
    return _order_form_post(
        request,
        number,
        ComplaintForm,
        "complaint_form",
        lambda order, data: order_complaint_file(order=order, customer=request.user, **data),
        _("Thank you: an operator will look into your report."),
    )


def _image(field_file):
    if not field_file:
        raise Http404("No photo")
    return FileResponse(field_file.open("rb"), content_type="image/jpeg")


@login_required
@require_GET
def order_photo_thumb(request, number: str):
    return _image(get_order_for_user(request.user, number).photo_thumb)


@login_required
@require_GET
def order_receipt(request, number: str):
    return _image(get_order_for_user(request.user, number).receipt_photo)
