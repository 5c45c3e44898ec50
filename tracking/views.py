"""Tracking pages: the operators' live map and track replay, and the order page's forms that
work without scripts (chat, the rider's step with its proof, proof photos)."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders import services as order_services
from orders.errors import OrderError
from orders.models import Order
from orders.permissions import get_order_for_user
from orders.status import ACTIVE, Status, all_status_meta, status_meta
from tracking import chat, privacy, proof
from tracking.forms import ChatForm, ProofStepForm, ReplayReasonForm
from tracking.models import OrderProof, TrackAccessLog


def staff_page(view):
    """Operators only: anonymous users go to the login page, everyone else gets 403."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            return render(request, "403.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@staff_page
def ops_map(request):
    config = {
        "stateUrl": reverse("api:ops-map"),
        "routeUrl": reverse("api:ops-rider-route", args=[0]),
        "replayUrl": reverse("tracking:replay", args=["NUMBER"]),
        "orderUrl": reverse("orders:detail", args=["NUMBER"]),
        "wsPath": "/ws/ops/",
        "refreshMs": 30_000,
        "strings": {
            "riders": _("Riders"),
            "orders": _("Orders"),
            "load": _("Carrying"),
            "stale": _("No fix for a while"),
            "route": _("Current route"),
            "noRoute": _("No stops"),
            "atRisk": _("At risk"),
            "open": _("Open order page"),
        },
    }
    return render(
        request,
        "tracking/ops_map.html",
        {
            "config": config,
            "status_meta": all_status_meta(),
            "statuses": [status_meta(s) for s in Status if s in ACTIVE and s != Status.PENDING],
            "tile_url": settings.MAP_TILE_URL,
        },
    )


@require_http_methods(["GET", "POST"])
@staff_page
def order_replay(request, number: str):
    """A finished order's recorded track, for disputes. The operator says why every time; the
    access is logged (TrackAccessLog) before a single point is shown."""
    order = get_object_or_404(
        Order.objects.select_related("pickup_building", "dropoff_building", "rider", "customer"),
        number=number,
    )
    form = ReplayReasonForm(request.POST or None)
    context = {
        "order": order,
        "form": form,
        "log": TrackAccessLog.objects.filter(order=order).select_related("user")[:20],
        "status_meta": all_status_meta(),
    }
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                log, points = privacy.track_replay(
                    order=order, operator=request.user, **form.cleaned_data
                )
            except OrderError as exc:
                form.add_error(None, exc.message)
                status = exc.http_status
            else:
                context.update(
                    {
                        "access": log,
                        "replay": {
                            "points": points,
                            "pickup": _place(order.pickup_building),
                            "dropoff": _place(order.dropoff_building),
                            "events": [
                                {"status": e.new_status, "at": e.created_at.isoformat()}
                                for e in order.events.order_by("created_at", "pk")
                            ],
                        },
                        "tile_url": settings.MAP_TILE_URL,
                    }
                )
                status = 200
    response = render(request, "tracking/replay.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _place(building) -> dict:
    return {"name": building.display_name, "lat": building.lat, "lng": building.lng}


# --- the order page's forms (no script needed) -------------------------------------------------


def _back(request, order, fallback: str | None = None):
    target = request.POST.get("next") or fallback
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(reverse("orders:detail", args=[order.number]))


@login_required
@require_POST
def chat_post(request, number: str):
    order = get_order_for_user(request.user, number)
    form = ChatForm(request.POST)
    if form.is_valid():
        try:
            chat.chat_post(order=order, sender=request.user, **form.cleaned_data)
        except OrderError as exc:
            messages.error(request, exc.message)
    return redirect(reverse("orders:detail", args=[order.number]) + "#chat")


@login_required
@require_POST
def proof_step(request, number: str):
    """The rider's next step (picked up, delivered) with its proof: a code and/or a photo."""
    order = get_order_for_user(request.user, number)
    form = ProofStepForm(request.POST, request.FILES)
    if not form.is_valid() or form.cleaned_data["to"] not in proof.STEP_OF:
        messages.error(request, OrderError.default_message)
        return _back(request, order)
    to = form.cleaned_data["to"]
    try:
        if form.cleaned_data.get("photo"):
            proof.proof_photo_add(
                order=order,
                rider=request.user,
                stage=proof.STEP_OF[to],
                photo=form.cleaned_data["photo"],
            )
        order_services.order_transition(
            order=order, to=to, actor=request.user, code=form.cleaned_data.get("code") or ""
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, Status(to).label)
    return _back(request, order)


@login_required
@require_GET
def proof_photo(request, number: str, pk: int, thumb: bool = False):
    """A proof photo: the order's customer, its rider and operators (404 for everyone else)."""
    order = get_order_for_user(request.user, number)
    found = OrderProof.objects.filter(order=order, pk=pk).first()
    image = (found.photo_thumb if thumb else found.photo) if found else None
    if not image:
        raise Http404("No photo")
    response = FileResponse(image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
