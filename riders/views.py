import hashlib
import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campus.selectors import campus_default
from orders import services as order_services
from orders.errors import OrderError
from orders.models import Order
from orders.permissions import get_order_for_rider
from orders.status import Status, all_status_meta
from riders import selectors, services
from riders.forms import RiderApplicationForm
from riders.models import RiderProfile
from riders.permissions import is_rider

# The app shell: what the service worker keeps so that /rider/ opens on a flaky network.
SHELL_STATIC = (
    "css/app.css",
    "riders/rider.css",
    "riders/rider.js",
    "riders/sw-register.js",
    "riders/icons/icon-192.png",
)
SCAN_STATIC = ("riders/qr_reader.js", "riders/scan.js", "riders/vendor/jsQR-1.4.0.min.js")


def rider_page(view):
    """Login required; non-riders see the 'riders only' page with the way to apply."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_rider(request.user):
            return render(request, "riders/not_rider.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _board_context(request) -> dict:
    from dispatch import relay  # dispatch owns transfer-station relays

    tasks, offers = selectors.rider_board_page(request.user)
    # A second leg is still the first rider's order until the hand-over: add it to the tasks.
    tasks += selectors.order_cards(request.user, relay.relay_leg2_waiting(request.user))
    relay.relay_annotate(request.user, [card.order for card in (*tasks, *offers)])
    return {"profile": request.user.rider_profile, "tasks": tasks, "offers": offers}


@require_GET
@rider_page
def board(request):
    profile = request.user.rider_profile
    context = _board_context(request)
    config = {
        "online": profile.online,
        "userId": request.user.pk,
        "wsPath": "/ws/rider/",
        "locationUrl": reverse("api:rider-location"),
        "boardUrl": reverse("riders:board_fragment"),
        "offlineUrl": reverse("riders:online"),
        "strings": {
            "queued": _("%(n)s positions waiting for the network"),
            "sharing": _("Sharing your location while online."),
            "noGps": _("This phone gives no location: check the location permission."),
            "http": _("Live connection blocked: sending positions over HTTP."),
            "newOrder": _("New order"),
        },
    }
    return render(
        request,
        "riders/board.html",
        {
            **context,
            "shift": selectors.rider_open_shift(request.user) if profile.online else None,
            "status_meta": all_status_meta(),
            "rider_config": config,
        },
    )


@require_GET
@rider_page
@never_cache
def board_fragment(request):
    """The board's tasks and offers, polled by rider.js instead of a full-page refresh."""
    return render(request, "riders/_board.html", _board_context(request))


@require_POST
@rider_page
def set_online(request):
    try:
        services.rider_set_online(user=request.user, online=request.POST.get("online") == "1")
    except OrderError as exc:
        messages.error(request, exc.message)
    return redirect("riders:board")


@require_POST
@rider_page
def accept(request, number: str):
    order = get_order_for_rider(request.user, number)
    try:
        order_services.order_accept(order=order, rider=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Order accepted. Head to the pickup."))
    return redirect("riders:board")


@require_POST
@rider_page
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
    if to == Status.OPEN:
        messages.info(request, _("You gave the order back; it is open to other riders again."))
    return redirect("riders:board")


@login_required
@require_http_methods(["GET", "POST"])
def apply(request):
    profile = RiderProfile.objects.filter(user=request.user).first()
    if profile is not None and profile.state != "rejected":
        messages.info(request, _("You have already applied."))
        return redirect("riders:board")
    initial = {"campus": campus_default(), "phone": request.user.phone}
    if request.user.gender in ("male", "female"):
        initial["gender"] = request.user.gender
    form = RiderApplicationForm(request.POST or None, request.FILES or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.rider_apply(user=request.user, **form.cleaned_data)
            except OrderError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, _("Thank you! An operator will check your application soon.")
                )
                return redirect("riders:board")
        status = 400
    return render(request, "riders/apply.html", {"form": form, "profile": profile}, status=status)


@require_GET
@rider_page
def credit(request):
    # Cheap (a handful of counts), and the page then shows exactly what dispatch will read.
    report = services.rider_credit_recompute(user=request.user)
    return render(request, "riders/credit.html", {"report": report})


@require_GET
@rider_page
def earnings(request):
    return render(
        request,
        "riders/earnings.html",
        {
            "days": selectors.rider_daily_earnings(request.user),
            "shifts": selectors.rider_shift_list(request.user),
        },
    )


@require_GET
@rider_page
def scan(request):
    code = request.GET.get("code")
    if code is not None:
        number = services.scan_code_number(code)
        if number:
            return redirect("riders:scan_order", number=number)
        messages.error(request, services.NoSuchOrder.default_message)
    return render(request, "riders/scan.html", {"scan_api": reverse("api:rider-scan")})


@require_http_methods(["GET", "POST"])
@rider_page
def scan_order(request, number: str):
    """Where an order QR leads: also what a phone's own camera app opens."""
    if request.method == "POST":
        try:
            result = services.rider_scan_order(user=request.user, code=number)
        except OrderError as exc:
            messages.error(request, exc.message)
            return redirect("riders:scan_order", number=number)
        messages.success(request, _SCAN_MESSAGES[result.action])
        return redirect("riders:board")
    order = Order.objects.filter(number=number).select_related(
        "pickup_building", "dropoff_building", "campus"
    )
    order = order.first()
    if order is None:
        raise Http404("No such order")
    mine = order.rider_id == request.user.pk
    visible = mine or order.status == Status.OPEN
    cards = selectors.order_cards(request.user, [order]) if visible else []
    return render(
        request,
        "riders/scan_order.html",
        {"order": order, "card": cards[0] if cards else None, "mine": mine},
    )


_SCAN_MESSAGES = {
    "accepted": gettext_lazy("Order accepted. Head to the pickup."),
    "picked_up": gettext_lazy("Pickup confirmed."),
    "none": gettext_lazy("This order is already yours."),
}


@login_required
@require_GET
def student_card(request, pk: int):
    """An applicant's student card: operators only (404 for everyone else, the owner included)."""
    profile = RiderProfile.objects.filter(pk=pk).first()
    if not request.user.is_staff or profile is None or not profile.student_card:
        raise Http404("No such card")
    response = FileResponse(profile.student_card.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


# --- the installable app: manifest, service worker, offline page -----------------------------


def _static_version(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(static(path).encode())
        found = finders.find(path)
        if found:
            with open(found, "rb") as fh:
                digest.update(fh.read())
    return digest.hexdigest()[:16]


@require_GET
def service_worker(request):
    """/rider/sw.js: served under /rider/ so that its scope is the rider app."""
    shell = [static(p) for p in SHELL_STATIC] + [reverse("riders:offline")]
    body = render_to_string(
        "riders/sw.js",
        {
            "shell": json.dumps(shell),
            "scan_assets": json.dumps([static(p) for p in SCAN_STATIC]),
            "offline_url": json.dumps(reverse("riders:offline")),
            "logout_url": json.dumps(reverse("accounts:logout")),
            "version": json.dumps(_static_version((*SHELL_STATIC, *SCAN_STATIC))),
        },
    )
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/rider/"
    # The browser compares the worker byte for byte: never let a cache hide a new version.
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def manifest(request):
    icons = [
        {"src": static("riders/icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": static("riders/icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        {
            "src": static("riders/icons/maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    data = {
        "name": _("Campus Errand Rider"),
        "short_name": _("Rider"),
        "description": _("Go online, take orders, share your location while delivering."),
        "start_url": reverse("riders:board"),
        "scope": reverse("riders:board"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#ff7a00",
        "icons": icons,
        "shortcuts": [{"name": _("Scan an order"), "url": reverse("riders:scan")}],
    }
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False})
    response["Content-Type"] = "application/manifest+json"
    return response


@require_GET
def offline(request):
    """Shown by the service worker when a rider page cannot be loaded; nothing personal on it."""
    return render(request, "riders/offline.html")
