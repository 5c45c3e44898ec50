"""Takeout pages (students) and the merchant portal (merchant staff). Thin: check who it is,
validate a form, call one service, render or redirect."""

import csv
import io

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campus.selectors import campus_default
from merchants import forms, pricing, selectors, services
from merchants.hours import open_state
from merchants.models import (
    CartLine,
    Closure,
    Coupon,
    GroupMeal,
    GroupMealJoin,
    GroupStatus,
    MemberState,
    MenuCategory,
    MenuItem,
    Merchant,
    MerchantKind,
    MerchantStatus,
    Option,
    OptionGroup,
    TierDiscount,
)
from merchants.permissions import (
    get_merchant_for_staff,
    get_takeout_for_user,
    get_ticket_for_staff,
    merchants_run_by,
)
from orders.errors import OrderError
from orders.models import yuan
from orders.pricing import QuoteExpired

# --- students: browse, menu, cart ------------------------------------------------------------


def _campus_or_404():
    campus = campus_default()
    if campus is None:
        raise Http404("No campus yet")
    return campus


@require_GET
def browse(request):
    """Merchants open now (closed ones after them): by canteen, by kind, search by dish."""
    campus = _campus_or_404()
    q = request.GET.get("q", "")[:40]
    kind = request.GET.get("kind", "")
    kind = kind if kind in MerchantKind.values else ""
    building = request.GET.get("building", "")
    building = int(building) if building.isdigit() else None
    now = timezone.now()
    cards = selectors.merchant_browse(campus=campus, now=now, q=q, kind=kind, building=building)
    canteens = campus.buildings.filter(merchants__active=True).distinct().order_by("code")
    return render(
        request,
        "merchants/browse.html",
        {
            "cards": cards,
            "q": q,
            "kind": kind,
            "building": building,
            "kinds": MerchantKind.choices,
            "canteens": canteens,
            "notices": selectors.notices_unread(request.user),
            "period": selectors.period_label(selectors.current_period(now)),
        },
    )


def _listed_merchant(slug: str) -> Merchant:
    merchant = selectors.merchant_qs().filter(slug=slug, active=True).first()
    if merchant is None:
        raise Http404("No such merchant")
    return merchant


def _menu_context(request, merchant: Merchant) -> dict:
    now = timezone.now()
    state = open_state(merchant, now)
    cart = selectors.cart_for(request.user, merchant)
    view = selectors.cart_view(cart)
    tiers = selectors.tier_rules(merchant)
    return {
        "merchant": merchant,
        "state": state,
        "closing_soon": state.closing_soon(now),
        "minutes_left": state.minutes_left(now),
        "menu": selectors.menu_for(merchant, now=now),
        "period": selectors.period_label(selectors.current_period(now)),
        "cart": view,
        "tiers": [pricing.tier_label(t) for t in tiers],
        "next_tier": _next_tier_hint(tiers, view.items_fen),
    }


def _next_tier_hint(tiers, food_fen: int) -> str:
    """ "Add ¥4.50 more to save ¥6": the next tier the cart has not reached."""
    ahead = sorted((t for t in tiers if t.threshold_fen > food_fen), key=lambda t: t.threshold_fen)
    if not ahead or food_fen == 0:
        return ""
    tier = ahead[0]
    return _("Add ¥%(more)s more to save ¥%(save)s") % {
        "more": yuan(tier.threshold_fen - food_fen),
        "save": yuan(tier.discount_fen),
    }


@require_GET
def menu(request, slug: str):
    merchant = _listed_merchant(slug)
    return render(request, "merchants/menu.html", _menu_context(request, merchant))


@require_GET
def item_photo(request, pk: int, size: str):
    """Menu photos are public (they are on the menu); served through storage like every photo."""
    item = get_object_or_404(MenuItem, pk=pk, active=True)
    field = item.photo_thumb if size == "thumb" else item.photo
    if not field:
        raise Http404("No photo")
    response = FileResponse(field.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def _back_to_menu(request, merchant: Merchant):
    return redirect(_safe_next(request, reverse("merchants:menu", args=[merchant.slug])))


def _safe_next(request, default: str) -> str:
    """The form's `next`, only if it stays on this site."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_POST
def cart_add(request, slug: str):
    merchant = _listed_merchant(slug)
    form = forms.AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose how many you want."))
        return _back_to_menu(request, merchant)
    item = get_object_or_404(MenuItem, pk=form.cleaned_data["item"], merchant=merchant)
    group = None
    if token := request.POST.get("group"):
        group = selectors.group_get(token)
        if group is None:
            raise Http404("No such group")
    try:
        services.cart_add(
            user=request.user,
            item=item,
            quantity=form.cleaned_data["quantity"],
            option_ids=form.cleaned_data["options"],
            group=group,
        )
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Added %(name)s.") % {"name": item.name})
    return _back_to_menu(request, merchant)


@login_required
@require_POST
def cart_line(request, slug: str, pk: int):
    merchant = _listed_merchant(slug)
    line = get_object_or_404(
        CartLine.objects.select_related("cart", "cart__group", "item"),
        pk=pk,
        cart__user=request.user,
        cart__merchant=merchant,
    )
    form = forms.CartLineForm(request.POST)
    if form.is_valid():
        try:
            services.cart_line_set_quantity(
                line=line, user=request.user, quantity=form.cleaned_data["quantity"]
            )
        except OrderError as exc:
            messages.error(request, exc.message)
    return _back_to_menu(request, merchant)


# --- checkout ----------------------------------------------------------------------------------


def _checkout_form(request, merchant: Merchant, data=None):
    claims = selectors.coupon_claims_usable(request.user, merchant)
    addresses = list(request.user.addresses.select_related("building"))
    initial = {}
    if addresses:
        initial = {"address": addresses[0].pk}
    form = forms.CheckoutForm(
        data,
        campus=merchant.campus,
        addresses=addresses,
        slots=services.slots_for(merchant),
        claims=claims,
        initial=initial,
    )
    return form, claims


def _preview(request, merchant: Merchant, form, claims, view):
    """The price the customer will pay, line by line, with a signed delivery quote."""
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    dropoff = data.get("dropoff_building")
    unknown_place = False
    if dropoff is None:
        address = next(iter(form.addresses.values()), None)
        dropoff = address.building if address else merchant.building
        unknown_place = address is None
    deliver_by = data.get("deliver_by")
    quote = services.takeout_quote(
        merchant=merchant, dropoff=dropoff, customer=request.user, deliver_by=deliver_by
    )
    new_user = selectors.is_new_customer(request.user)
    settings = selectors.takeout_settings_for(merchant.campus)
    kwargs = {
        "lines": view.inputs,
        "delivery_fen": quote.fee_fen,
        "tiers": selectors.tier_rules(merchant),
        "new_user_fen": settings.new_user_discount_fen if new_user else 0,
    }
    claim, best = form.coupon_choice() if data else (None, True)
    if claim is not None:
        breakdown = pricing.price_order(coupon=selectors.coupon_rule(claim), **kwargs)
    elif best:
        breakdown = pricing.price_best(coupons=[selectors.coupon_rule(c) for c in claims], **kwargs)
    else:
        breakdown = pricing.price_order(**kwargs)
    if unknown_place:
        breakdown.notes.append(_("Choose where to deliver to see its delivery fee."))
    return breakdown, quote


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request, slug: str):
    merchant = _listed_merchant(slug)
    cart = selectors.cart_for(request.user, merchant)
    view = selectors.cart_view(cart)
    if not view.rows:
        messages.info(request, _("Your cart is empty."))
        return redirect("merchants:menu", slug=slug)
    status = 200
    if request.method == "POST":
        form, claims = _checkout_form(request, merchant, request.POST)
        placing = "preview" not in request.POST
        if placing and form.is_valid() and form.cleaned_data.get("quote_id") and not view.problems:
            claim, best = form.coupon_choice()
            data = form.cleaned_data
            try:
                order = services.takeout_checkout(
                    customer=request.user,
                    merchant=merchant,
                    dropoff_building=data["dropoff_building"],
                    dropoff_detail=data.get("dropoff_detail", ""),
                    deliver_by=data.get("deliver_by"),
                    note=data.get("note", ""),
                    coupon_claim=claim,
                    use_best_coupon=best,
                    quote_id=data["quote_id"],
                    expect_total_fen=data.get("expect_total_fen"),
                )
            except QuoteExpired as exc:
                messages.warning(request, exc.message)
                status = 409
            except ValidationError as exc:
                if "quote_id" in exc.message_dict:
                    # Priced for another place or time: show the new price to confirm.
                    messages.warning(request, " ".join(exc.message_dict["quote_id"]))
                    status = 409
                else:
                    for field, errors in exc.message_dict.items():
                        visible = field in form.fields and not form[field].is_hidden
                        for error in errors:
                            form.add_error(field if visible else None, error)
                    status = 400
            except OrderError as exc:
                form.add_error(None, exc.message)
                status = exc.http_status
            else:
                messages.success(request, _("Ordered! The merchant has your order."))
                return redirect("orders:detail", number=order.number)
        elif placing:
            status = 400 if not form.is_valid() or view.problems else 200
    else:
        form, claims = _checkout_form(request, merchant)
    breakdown, quote = _preview(request, merchant, form, claims, view)
    return render(
        request,
        "merchants/checkout.html",
        {
            "merchant": merchant,
            "cart": view,
            "form": form,
            "breakdown": breakdown,
            "quote": quote,
            "balance": _wallet_balance(request.user),
        },
        status=status,
    )


def _wallet_balance(user) -> int:
    from payments import selectors as money

    return money.wallet_balance(user)


# --- a takeout order, for everyone in it ---------------------------------------------------------


@login_required
@require_GET
def takeout_order(request, number: str):
    """The order as group members see it (the customer has the full tracking page too)."""
    ticket = get_takeout_for_user(request.user, number)
    mine = [line for line in ticket.lines.all() if line.member_id in (None, request.user.pk)]
    share = next((s for s in ticket.shares if s.get("user") == request.user.pk), None)
    return render(
        request,
        "merchants/takeout_order.html",
        {"ticket": ticket, "order": ticket.order, "mine": mine, "share": share},
    )


@login_required
@require_GET
@never_cache
def track(request, number: str):
    """The merchant track fragment (the order page refreshes it on every push)."""
    ticket = get_takeout_for_user(request.user, number)
    return render(request, "merchants/_track.html", {"ticket": ticket, "order": ticket.order})


@login_required
@require_POST
def notices_read(request):
    services.notices_mark_read(user=request.user)
    return redirect(_safe_next(request, reverse("merchants:browse")))


@login_required
@require_http_methods(["GET", "POST"])
def coupons(request):
    campus = _campus_or_404()
    if request.method == "POST":
        coupon = get_object_or_404(Coupon, pk=request.POST.get("coupon", 0), campus=campus)
        try:
            services.coupon_claim(user=request.user, coupon=coupon)
        except OrderError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Claimed: %(t)s") % {"t": coupon.title})
        return redirect("merchants:coupons")
    return render(
        request,
        "merchants/coupons.html",
        {
            "claimable": selectors.coupons_claimable(request.user, campus),
            "claims": selectors.coupon_claims_for(request.user),
            "now": timezone.now(),
        },
    )


# --- group orders (拼单) -------------------------------------------------------------------------


@login_required
@require_POST
def group_open(request, slug: str):
    merchant = _listed_merchant(slug)
    form = forms.GroupOpenForm(request.POST, campus=merchant.campus)
    if not form.is_valid():
        messages.error(request, _("Choose where the group's order goes."))
        return redirect("merchants:menu", slug=slug)
    try:
        group = services.group_open(opener=request.user, merchant=merchant, **form.cleaned_data)
    except (OrderError, ValidationError) as exc:
        messages.error(request, getattr(exc, "message", None) or "; ".join(exc.messages))
        return redirect("merchants:menu", slug=slug)
    messages.success(request, _("Group open: share the link with your roommates."))
    return redirect("merchants:group", token=group.token)


@login_required
@require_http_methods(["GET", "POST"])
def group(request, token: str):
    group = selectors.group_get(token)
    if group is None:
        raise Http404("No such group")
    if group.status == GroupStatus.OPEN and timezone.now() > group.deadline:
        # The deadline passed before the minute job ran: order it now (the same service).
        services.group_submit(group=group, actor=None)
        group = selectors.group_get(token)
    if request.method == "POST":
        return _group_action(request, group)
    carts = selectors.group_carts(group)
    mine = next((c for c in carts if c.user_id == request.user.pk), None)
    member = mine is not None and mine.member_state == MemberState.ACTIVE
    active = [c for c in carts if c.member_state == MemberState.ACTIVE]
    breakdown, shares, _members, problems = (None, [], [], [])
    if group.status == GroupStatus.OPEN:
        breakdown, shares, _members, problems = services.group_preview(group, carts=active)
    share_of = {s.member: s for s in shares}
    rows = [
        {
            "cart": c,
            "view": selectors.cart_view(c),
            "share": share_of.get(c.user_id),
        }
        for c in active
    ]
    ticket = getattr(group, "takeout", None) if group.status == GroupStatus.SUBMITTED else None
    context = {
        "group": group,
        "rows": rows,
        "member": member,
        "is_opener": request.user.pk == group.opener_id,
        "breakdown": breakdown,
        "problems": problems,
        "ticket": ticket,
        "share_url": request.build_absolute_uri(reverse("merchants:group", args=[group.token])),
        "dropped": mine is not None and mine.member_state == MemberState.DROPPED,
    }
    if member and group.status == GroupStatus.OPEN:
        merchant = selectors.merchant_qs().get(pk=group.merchant_id)
        context["menu"] = selectors.menu_for(merchant)
    return render(request, "merchants/group.html", context)


def _group_action(request, group):
    action = request.POST.get("action")
    back = redirect("merchants:group", token=group.token)
    handlers = {
        "join": lambda: services.group_join(user=request.user, group=group),
        "leave": lambda: services.group_leave(user=request.user, group=group),
        "cancel": lambda: services.group_cancel(user=request.user, group=group),
        "submit": lambda: services.group_submit(group=group, actor=request.user),
    }
    if action not in handlers:
        messages.error(request, _("Unknown action."))
        return back
    try:
        result = handlers[action]()
    except OrderError as exc:
        messages.error(request, exc.message)
        return back
    if action == "submit":
        if result is None:
            messages.warning(request, _("The group did not go ahead."))
        else:
            messages.success(request, _("Ordered! Everyone paid their share."))
            return redirect("merchants:takeout_order", number=result.order.number)
    return back


# --- group meals (拼好饭) -------------------------------------------------------------------------


@login_required
@require_GET
def meals(request):
    campus = _campus_or_404()
    now = timezone.now()
    services.meal_rounds_close(now=now)  # cutoffs the minute job has not reached yet
    day = timezone.localdate(now)
    offers = list(selectors.meals_on(campus, day))
    rounds = list(selectors.rounds_on(offers, day))
    by_meal: dict[int, list] = {}
    for r in rounds:
        by_meal.setdefault(r.meal_id, []).append(r)
    for meal in offers:
        meal.rounds_today = by_meal.get(meal.pk, [])
        cutoff, _deliver = services._round_times(meal, day)
        meal.cutoff_at = cutoff
        meal.closed = now > cutoff
    return render(
        request,
        "merchants/meals.html",
        {
            "meals": offers,
            "joins": list(selectors.meal_joins_for(request.user, day)),
            "form": forms.MealJoinForm(campus=campus),
            "notices": selectors.notices_unread(request.user),
        },
    )


@login_required
@require_POST
def meal_join(request, pk: int):
    campus = _campus_or_404()
    meal = get_object_or_404(GroupMeal, pk=pk, merchant__campus=campus)
    form = forms.MealJoinForm(request.POST, campus=campus)
    if not form.is_valid():
        messages.error(request, _("Choose your building."))
        return redirect("merchants:meals")
    try:
        services.meal_join(
            user=request.user,
            meal=meal,
            building=form.cleaned_data["building"],
            dropoff_detail=form.cleaned_data["dropoff_detail"],
        )
    except (OrderError, ValidationError) as exc:
        messages.error(request, getattr(exc, "message", None) or "; ".join(exc.messages))
    else:
        messages.success(request, _("You are in! Paid ¥%(p)s.") % {"p": yuan(meal.group_price_fen)})
    return redirect("merchants:meals")


@login_required
@require_POST
def meal_leave(request, pk: int):
    join = get_object_or_404(GroupMealJoin, pk=pk, user=request.user)
    try:
        services.meal_leave(user=request.user, join=join)
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You left the group meal; your money is back in your wallet."))
    return redirect("merchants:meals")


# --- the merchant portal -------------------------------------------------------------------------


def _portal(request, slug: str) -> Merchant:
    if not request.user.is_authenticated:
        raise Http404("No such merchant")
    return get_merchant_for_staff(request.user, slug)


def _portal_context(merchant: Merchant, section: str, **extra) -> dict:
    return {"merchant": merchant, "section": section, **extra}


@login_required
@require_GET
def portal_home(request):
    merchants = list(merchants_run_by(request.user).select_related("building")[:50])
    if not merchants:
        raise Http404("Not a merchant")
    if len(merchants) == 1:
        return redirect("merchants:inbox", slug=merchants[0].slug)
    return render(request, "merchants/portal/choose.html", {"merchants": merchants})


@login_required
@require_GET
def inbox(request, slug: str):
    merchant = _portal(request, slug)
    return render(
        request,
        "merchants/portal/inbox.html",
        _portal_context(
            merchant,
            "inbox",
            columns=selectors.inbox_tickets(merchant),
            reject_form=forms.RejectForm(),
            ws_path=f"/ws/merchant/{merchant.slug}/",
            state=open_state(merchant),
        ),
    )


@login_required
@require_GET
@never_cache
def inbox_fragment(request, slug: str):
    merchant = _portal(request, slug)
    return render(
        request,
        "merchants/portal/_inbox.html",
        {
            "merchant": merchant,
            "columns": selectors.inbox_tickets(merchant),
            "reject_form": forms.RejectForm(),
        },
    )


TICKET_STEPS = {
    "accept": MerchantStatus.ACCEPTED,
    "preparing": MerchantStatus.PREPARING,
    "ready": MerchantStatus.READY,
    "reject": MerchantStatus.REJECTED,
}


@login_required
@require_POST
def ticket_step(request, slug: str, number: str, action: str):
    merchant = _portal(request, slug)
    ticket = get_ticket_for_staff(merchant, number)
    try:
        if action == "handover":
            services.ticket_handed_over(ticket=ticket, actor=request.user)
        elif action in TICKET_STEPS:
            reason = ""
            if action == "reject":
                form = forms.RejectForm(request.POST)
                if not form.is_valid():
                    messages.error(request, "; ".join(form.non_field_errors()))
                    return redirect("merchants:inbox", slug=slug)
                reason = form.cleaned_data["text"]
            services.ticket_advance(
                ticket=ticket, to=TICKET_STEPS[action], actor=request.user, reason=reason
            )
        else:
            raise Http404("No such step")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("#%(n)s updated.") % {"n": ticket.ticket_no})
    return redirect(_safe_next(request, reverse("merchants:inbox", args=[slug])))


def _ticket_qr_svg(request, ticket) -> str:
    url = request.build_absolute_uri(reverse("riders:scan_order", args=[ticket.order.number]))
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return out.getvalue().decode()


@login_required
@require_GET
def ticket_print(request, slug: str, number: str):
    """The printable ticket (58/80 mm receipt printers print the page as it is), with the order
    QR a rider scans to take the order or to confirm the pickup."""
    merchant = _portal(request, slug)
    ticket = get_ticket_for_staff(merchant, number)
    return render(
        request,
        "merchants/portal/ticket_print.html",
        {
            "merchant": merchant,
            "ticket": ticket,
            "order": ticket.order,
            "qr_svg": _ticket_qr_svg(request, ticket),
        },
    )


# --- portal: menu -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def menu_admin(request, slug: str):
    merchant = _portal(request, slug)
    category_form = forms.CategoryForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "category_add" and category_form.is_valid():
                services.category_save(
                    merchant=merchant,
                    actor=request.user,
                    name=category_form.cleaned_data["name"],
                    position=category_form.cleaned_data.get("position") or 0,
                )
            elif action == "category_delete":
                category = get_object_or_404(
                    MenuCategory, pk=request.POST.get("category", 0), merchant=merchant
                )
                services.category_delete(category=category, actor=request.user)
            else:
                messages.error(request, _("Give the category a name."))
        except (OrderError, ValidationError) as exc:
            messages.error(request, getattr(exc, "message", None) or "; ".join(exc.messages))
        return redirect("merchants:menu_admin", slug=slug)
    return render(
        request,
        "merchants/portal/menu.html",
        _portal_context(
            merchant,
            "menu",
            items=selectors.portal_items(merchant),
            categories=selectors.categories_for(merchant),
            category_form=forms.CategoryForm(),
        ),
    )


def _item_of(merchant: Merchant, pk: int) -> MenuItem:
    return get_object_or_404(MenuItem.objects.select_related("merchant"), pk=pk, merchant=merchant)


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(request, slug: str, pk: int | None = None):
    merchant = _portal(request, slug)
    item = _item_of(merchant, pk) if pk else None
    initial = {}
    if item is not None:
        initial = {name: getattr(item, name) for name in services.ITEM_FIELDS}
    form = forms.ItemForm(
        request.POST or None, request.FILES or None, merchant=merchant, initial=initial
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                item = services.item_save(
                    merchant=merchant,
                    actor=request.user,
                    item=item,
                    photo=form.cleaned_data.get("photo"),
                    **form.item_fields(),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            except OrderError as exc:
                form.add_error("photo" if exc.code == "bad_photo" else None, exc.message)
            else:
                messages.success(request, _("Saved %(name)s.") % {"name": item.name})
                return redirect("merchants:menu_admin", slug=slug)
    return render(
        request,
        "merchants/portal/item_edit.html",
        _portal_context(merchant, "menu", form=form, item=item),
        status=status,
    )


@login_required
@require_POST
def item_quick(request, slug: str, pk: int, action: str):
    """The menu list's switches: sold out / back on, stock, delete."""
    merchant = _portal(request, slug)
    item = _item_of(merchant, pk)
    try:
        if action == "sold-out":
            services.item_set_sold_out(
                item=item, actor=request.user, sold_out=request.POST.get("sold_out") == "1"
            )
        elif action == "stock":
            form = forms.StockForm(request.POST)
            if not form.is_valid():
                messages.error(request, _("Enter the portions left, or leave it empty."))
                return redirect("merchants:menu_admin", slug=slug)
            services.item_set_stock(item=item, actor=request.user, stock=form.cleaned_data["stock"])
        elif action == "delete":
            services.item_delete(item=item, actor=request.user)
        else:
            raise Http404("No such action")
    except (OrderError, ValidationError) as exc:
        messages.error(request, getattr(exc, "message", None) or "; ".join(exc.messages))
    return redirect("merchants:menu_admin", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def item_options(request, slug: str, pk: int):
    merchant = _portal(request, slug)
    item = _item_of(merchant, pk)
    group_form = forms.OptionGroupForm(prefix="g")
    option_form = forms.OptionForm(prefix="o")
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "group_add":
                group_form = forms.OptionGroupForm(request.POST, prefix="g")
                if group_form.is_valid():
                    services.option_group_save(
                        item=item, actor=request.user, **group_form.cleaned_data
                    )
                    return redirect("merchants:item_options", slug=slug, pk=pk)
            elif action == "group_delete":
                group = get_object_or_404(OptionGroup, pk=request.POST.get("group", 0), item=item)
                services.option_group_delete(group=group, actor=request.user)
                return redirect("merchants:item_options", slug=slug, pk=pk)
            elif action == "option_add":
                group = get_object_or_404(OptionGroup, pk=request.POST.get("group", 0), item=item)
                option_form = forms.OptionForm(request.POST, prefix="o")
                if option_form.is_valid():
                    services.option_save(
                        group=group, actor=request.user, **option_form.cleaned_data
                    )
                    return redirect("merchants:item_options", slug=slug, pk=pk)
            elif action in ("option_delete", "option_toggle"):
                option = get_object_or_404(
                    Option.objects.select_related("group__item__merchant"),
                    pk=request.POST.get("option", 0),
                    group__item=item,
                )
                if action == "option_delete":
                    services.option_delete(option=option, actor=request.user)
                else:
                    services.option_save(
                        group=option.group,
                        actor=request.user,
                        name=option.name,
                        price_delta_fen=option.price_delta_fen,
                        available=not option.available,
                        position=option.position,
                        option=option,
                    )
                return redirect("merchants:item_options", slug=slug, pk=pk)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        except OrderError as exc:
            messages.error(request, exc.message)
    groups = item.option_groups.prefetch_related("options")
    return render(
        request,
        "merchants/portal/item_options.html",
        _portal_context(
            merchant,
            "menu",
            item=item,
            groups=groups,
            group_form=group_form,
            option_form=option_form,
        ),
        status=200 if request.method == "GET" else 400,
    )


# --- portal: settings (hours, closures, busy, pause, 满减) ----------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request, slug: str):
    merchant = _portal(request, slug)
    initial = {
        name: getattr(merchant, name)
        for name in (
            "prep_minutes",
            "busy",
            "busy_extra_minutes",
            "paused",
            "paused_note",
            "min_order_fen",
        )
    }
    settings_form = forms.SettingsForm(initial=initial)
    hours_form = forms.HoursForm(hours=list(merchant.hours.all()))
    closure_form = forms.ClosureForm()
    tier_form = forms.TierForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        status = 400
        try:
            if action == "settings":
                settings_form = forms.SettingsForm(request.POST)
                if settings_form.is_valid():
                    services.merchant_settings_update(
                        merchant=merchant, actor=request.user, **settings_form.cleaned_data
                    )
                    return _saved(request, slug)
            elif action in ("toggle_busy", "toggle_pause"):
                field = "busy" if action == "toggle_busy" else "paused"
                services.merchant_settings_update(
                    merchant=merchant, actor=request.user, **{field: not getattr(merchant, field)}
                )
                return redirect(_safe_next(request, reverse("merchants:settings", args=[slug])))
            elif action == "hours":
                hours_form = forms.HoursForm(request.POST, hours=list(merchant.hours.all()))
                if hours_form.is_valid():
                    services.merchant_hours_set(
                        merchant=merchant, actor=request.user, rows=hours_form.cleaned_data["rows"]
                    )
                    return _saved(request, slug)
            elif action == "closure_add":
                closure_form = forms.ClosureForm(request.POST)
                if closure_form.is_valid():
                    services.closure_add(
                        merchant=merchant, actor=request.user, **closure_form.cleaned_data
                    )
                    return _saved(request, slug)
            elif action == "closure_delete":
                closure = get_object_or_404(
                    Closure, pk=request.POST.get("closure", 0), merchant=merchant
                )
                services.closure_delete(closure=closure, actor=request.user)
                return _saved(request, slug)
            elif action == "tier_add":
                tier_form = forms.TierForm(request.POST)
                if tier_form.is_valid():
                    services.tier_save(
                        merchant=merchant, actor=request.user, **tier_form.cleaned_data
                    )
                    return _saved(request, slug)
            elif action == "tier_delete":
                tier = get_object_or_404(
                    TierDiscount, pk=request.POST.get("tier", 0), merchant=merchant
                )
                services.tier_delete(tier=tier, actor=request.user)
                return _saved(request, slug)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        except OrderError as exc:
            messages.error(request, exc.message)
    return render(
        request,
        "merchants/portal/settings.html",
        _portal_context(
            merchant,
            "settings",
            settings_form=settings_form,
            hours_form=hours_form,
            closure_form=closure_form,
            tier_form=tier_form,
            closures=merchant.closures.filter(ends_on__gte=timezone.localdate()),
            tiers=merchant.tiers.all(),
            state=open_state(merchant),
        ),
        status=status,
    )


def _saved(request, slug):
    messages.success(request, _("Saved."))
    return redirect("merchants:settings", slug=slug)


# --- portal: sales and settlement ---------------------------------------------------------------


def _chart(values: list[int], labels: list[str], *, height: int = 120) -> dict:
    """Bars for an inline SVG (templates/merchants/portal/_chart.svg.html): no script, no CDN."""
    top = max(values) if values and max(values) > 0 else 1
    width = 100 / max(len(values), 1)
    bars = [
        {
            "x": round(i * width + width * 0.15, 3),
            "w": round(width * 0.7, 3),
            "h": round(v * (height - 20) / top, 2),
            "y": round(height - 14 - v * (height - 20) / top, 2),
            "value": v,
            "label": labels[i],
            "lx": round(i * width + width / 2, 3),
            "ty": round(height - 15 - v * (height - 20) / top, 2),
        }
        for i, v in enumerate(values)
    ]
    return {"bars": bars, "height": height, "base": height - 14, "label_y": height - 9}


@login_required
@require_GET
def sales(request, slug: str):
    merchant = _portal(request, slug)
    form = forms.DayForm(request.GET)
    _start, day = form.range()
    summary = selectors.sales_day(merchant, day)
    week = selectors.sales_week(merchant, day)
    return render(
        request,
        "merchants/portal/sales.html",
        _portal_context(
            merchant,
            "sales",
            day=day,
            summary=summary,
            week=week,
            hour_chart=_chart(summary.by_hour[6:24], [f"{h}" for h in range(6, 24)]),
            week_chart=_chart(
                [d["revenue_fen"] // 100 for d in week], [d["day"].strftime("%m-%d") for d in week]
            ),
            payable=selectors.payable_balance(merchant),
        ),
    )


@login_required
@require_GET
def sales_csv(request, slug: str):
    merchant = _portal(request, slug)
    start, end = forms.DayForm(request.GET).range()
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 with a BOM as UTF-8
    writer = csv.writer(out)
    writer.writerow(
        [
            "day", "ticket", "order", "time", "status", "items", "food_fen", "packaging_fen",
            "tier_fen", "coupon_fen", "new_user_fen", "merchant_funded_fen",
            "platform_funded_fen", "merchant_revenue_fen", "prep_seconds", "deliver_to",
        ]
    )  # fmt: skip
    for t in selectors.sales_rows(merchant, start, end):
        writer.writerow(
            [
                t.day.isoformat(),
                t.ticket_no,
                t.order.number,
                timezone.localtime(t.created_at).strftime("%H:%M"),
                t.order.status,
                "; ".join(
                    f"{x.quantity}x {x.name}" + (f" ({x.options_text})" if x.options else "")
                    for x in t.lines.all()
                ),
                t.items_fen,
                t.packaging_fen,
                t.tier_discount_fen,
                t.coupon_discount_fen,
                t.new_user_discount_fen,
                t.merchant_funded_fen,
                t.platform_funded_fen,
                selectors.merchant_revenue_fen(t),
                t.prep_seconds if t.prep_seconds is not None else "",
                t.order.dropoff_building.code,
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"{merchant.slug}-sales-{start.isoformat()}-{end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def settlement(request, slug: str):
    merchant = _portal(request, slug)
    start, end = forms.DayForm(request.GET).range()
    day = end
    return render(
        request,
        "merchants/portal/settlement.html",
        _portal_context(
            merchant,
            "settlement",
            day=day,
            report=selectors.settlement_day(merchant, day),
            payable=selectors.payable_balance(merchant),
        ),
    )


@login_required
@require_GET
def settlement_all(request):
    """Operators: every merchant's settlement for one day (?day=), a page or CSV (?format=csv)."""
    if not request.user.is_staff:
        raise Http404("Operators only")
    start, day = forms.DayForm(request.GET).range()
    reports = selectors.settlement_all(day)
    if request.GET.get("format") == "csv":
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(
            ["day", "merchant", "orders", "settled_orders", "gross_fen", "merchant_discounts_fen",
             "platform_discounts_fen", "commission_fen", "payable_fen", "awaiting_fen"]
        )  # fmt: skip
        for r in reports:
            writer.writerow(
                [r.day.isoformat(), r.merchant.slug, r.orders, r.settled_orders, r.gross_fen,
                 r.merchant_discounts_fen, r.platform_discounts_fen, r.commission_fen,
                 r.payable_fen, r.awaiting_fen]
            )  # fmt: skip
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="settlement-{day.isoformat()}.csv"'
        return response
    return render(request, "merchants/portal/settlement_all.html", {"day": day, "reports": reports})
