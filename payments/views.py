"""Money pages: the wallet (balance, top-up, history, receipts), the sandbox cashier, rider
withdrawals, and the order's money actions (pay, cancel with a reason, confirm receipt, dispute).
Thin: a form, one service, a redirect."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders import services as order_services
from orders.errors import OrderError
from orders.permissions import get_order_for_user
from orders.status import Status
from payments import selectors, services
from payments.forms import CancelForm, DisputeForm, TopUpForm, WithdrawalForm
from payments.gateways import enabled_gateways
from payments.labels import entry_label
from payments.models import CallbackOutcome, TopUpStatus
from riders.permissions import is_rider

TOPUP_PRESETS_YUAN = (20, 50, 100, 200)


@login_required
@require_GET
def wallet(request):
    page = Paginator(selectors.entries_for(request.user), 30).get_page(request.GET.get("page"))
    rows = [(entry, entry_label(entry)) for entry in page]
    need = request.GET.get("need", "")
    # Coming from an order the wallet cannot pay: suggest the shortfall, rounded up to the yuan.
    suggested = max((int(need) + 99) // 100, 1) if need.isdigit() else 50
    return render(
        request,
        "payments/wallet.html",
        {
            "balance": selectors.wallet_balance(request.user),
            "page": page,
            "rows": rows,
            "form": TopUpForm(initial={"amount_yuan": suggested}),
            "presets": TOPUP_PRESETS_YUAN,
            "can_top_up": "sandbox" in enabled_gateways(),
            "is_rider": is_rider(request.user),
            "next_order": request.GET.get("order", ""),
        },
    )


@login_required
@require_POST
def topup_create(request):
    form = TopUpForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("amount_yuan", []):
            messages.error(request, error)
        return redirect("payments:wallet")
    try:
        topup, intent = services.topup_create(user=request.user, amount_fen=form.amount_fen)
    except OrderError as exc:
        messages.error(request, exc.message)
        return redirect("payments:wallet")
    url = intent.pay_url
    if order := request.POST.get("order", ""):
        url += f"?order={order}"
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def sandbox_cashier(request, intent_id: str):
    """Stands in for the gateway's hosted payment page."""
    topup = selectors.topup_for_user(request.user, intent_id)
    next_order = request.GET.get("order", "") or request.POST.get("order", "")
    if request.method == "POST":
        succeeded = request.POST.get("result") != "fail"
        result = services.sandbox_pay(topup=topup, payer=request.user, succeeded=succeeded)
        if result.outcome == CallbackOutcome.ACCEPTED:
            messages.success(
                request,
                _("%(amount)s added to your wallet.") % {"amount": services.yuan(topup.amount_fen)},
            )
        elif result.outcome == CallbackOutcome.PAYMENT_FAILED:
            messages.error(request, _("The payment did not go through. Nothing was charged."))
        else:
            messages.error(request, CallbackOutcome(result.outcome).label)
        if next_order and result.outcome == CallbackOutcome.ACCEPTED:
            return redirect("orders:detail", number=next_order)
        return redirect("payments:wallet")
    return render(
        request,
        "payments/sandbox_cashier.html",
        {"topup": topup, "paid": topup.status == TopUpStatus.SUCCEEDED, "next_order": next_order},
    )


@login_required
@require_GET
def receipt(request, pk: int):
    txn, entries = selectors.receipt_for_user(request.user, pk)
    rows = [(entry, entry_label(entry)) for entry in entries]
    return render(request, "payments/receipt.html", {"txn": txn, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def withdrawals(request):
    if not is_rider(request.user):
        return render(request, "riders/not_rider.html", status=403)
    form = WithdrawalForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.withdrawal_request(rider=request.user, amount_fen=form.amount_fen)
            except OrderError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Withdrawal requested. An operator will pay it out."))
                return redirect("payments:withdrawals")
        status = 400
    return render(
        request,
        "payments/withdrawals.html",
        {
            "form": form,
            "earnings": selectors.earnings_balance(request.user),
            "available": selectors.earnings_available(request.user),
            "withdrawals": selectors.withdrawals_for(request.user)[:50],
            "rows": [
                (e, entry_label(e))
                for e in selectors.entries_for(request.user, "rider_earnings")[:30]
            ],
        },
        status=status,
    )


# --- the order's money actions ----------------------------------------------------------------


@login_required
@require_POST
def order_pay(request, number: str):
    order = get_order_for_user(request.user, number)
    try:
        order_services.order_pay(order=order, payer=request.user)
    except OrderError as exc:
        messages.error(request, exc.message)
        if getattr(exc, "code", "") == "insufficient_funds":
            short = services.order_amount_due(order) - selectors.wallet_balance(request.user)
            return redirect(
                f"{reverse('payments:wallet')}?need={max(short, 0)}&order={order.number}"
            )
    else:
        messages.success(request, _("Paid. Your order is open to riders."))
    return redirect("orders:detail", number=order.number)


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel(request, number: str):
    """Shows what cancelling now refunds, and asks why; after pickup it points to a dispute."""
    order = get_order_for_user(request.user, number)
    if order.customer_id != request.user.pk:
        messages.error(request, _("Only the customer can cancel this order."))
        return redirect("orders:detail", number=order.number)
    preview = selectors.refund_preview(order)
    if preview is None:
        messages.error(request, _("After pickup an order cannot be cancelled: open a dispute."))
        return redirect("orders:detail", number=order.number)
    form = CancelForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                order_services.order_transition(
                    order=order, to=Status.CANCELLED, actor=request.user, note=form.note
                )
            except OrderError as exc:
                messages.error(request, exc.message)
            else:
                money = selectors.order_money(order)
                messages.success(
                    request,
                    _("Order cancelled. %(refund)s is back in your wallet.")
                    % {"refund": services.yuan(money.refunded)},
                )
            return redirect("orders:detail", number=order.number)
        status = 400
    refund, compensation = preview
    return render(
        request,
        "payments/order_cancel.html",
        {"order": order, "form": form, "refund": refund, "compensation": compensation},
        status=status,
    )


@login_required
@require_POST
def order_confirm(request, number: str):
    """The customer confirms receipt: delivered -> completed, which pays the rider."""
    order = get_order_for_user(request.user, number)
    try:
        order_services.order_transition(
            order=order, to=Status.COMPLETED, actor=request.user, note="confirmed by the customer"
        )
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Thank you! The rider has been paid."))
    return redirect("orders:detail", number=order.number)


@login_required
@require_http_methods(["GET", "POST"])
def order_dispute(request, number: str):
    order = get_order_for_user(request.user, number)
    form = DisputeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.dispute_open(
                    order=order, customer=request.user, reason=form.cleaned_data["reason"]
                )
            except OrderError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Dispute opened. An operator will look at it soon."))
                return redirect("orders:detail", number=order.number)
        status = 400
    return render(
        request, "payments/order_dispute.html", {"order": order, "form": form}, status=status
    )


@login_required
@require_GET
def order_money_fragment(request, number: str):
    """The order page's money block alone, re-read when the live status changes."""
    order = get_order_for_user(request.user, number)
    return render(request, "payments/_order_money_fragment.html", {"order": order})
