"""Every write to merchants and takeout.

The order itself (status, rider, money) is orders' and payments': a checkout creates the order
through orders.services.order_create and pays it through orders.services.order_pay (or, for a
group, payments.services.takeout_share_pay per member); the merchant's rejection cancels it
through orders.services.order_transition, whose refund gives every payer their money back.
orders.services.order_transition calls takeout_on_order_transition for every takeout order's
status change (the merchant's inbox, stock back on a cancellation, notices).

Locking: a checkout locks the merchant's row (ticket numbers are per merchant and day; the last
portion goes to one buyer: stock is taken by a conditional UPDATE, stock >= quantity); a ticket
step locks the ticket; a group submit locks the group; a group meal join locks the meal.
"""

import datetime as dt
from collections import Counter

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.models import Building
from merchants import pricing, selectors
from merchants.errors import (
    CartError,
    GroupClosed,
    MerchantClosed,
    OutOfStock,
    TakeoutError,
    TicketStepRefused,
)
from merchants.hours import delivery_slots, open_state
from merchants.models import (
    MERCHANT_TRANSITIONS,
    Cart,
    CartLine,
    Closure,
    Coupon,
    CouponClaim,
    GroupCart,
    GroupMeal,
    GroupMealJoin,
    GroupMealRound,
    GroupStatus,
    MemberState,
    MenuCategory,
    MenuItem,
    Merchant,
    MerchantStatus,
    Notice,
    OpeningHours,
    Option,
    OptionGroup,
    RoundStatus,
    Source,
    TakeoutLine,
    TakeoutOrder,
    TierDiscount,
)
from merchants.permissions import can_run_merchant
from orders import pricing as order_pricing
from orders import services as order_services
from orders.errors import NotAllowed
from orders.models import TAKEOUT, Order, yuan
from orders.photos import photo_process, photo_store
from orders.status import Status
from payments import services as payments
from payments.errors import InsufficientFunds
from tracking import broadcast

DEAD = (Status.CANCELLED, Status.EXPIRED)


def _check_staff(actor, merchant: Merchant) -> None:
    if actor is not None and not can_run_merchant(actor, merchant):
        raise NotAllowed()


# --- merchants ----------------------------------------------------------------------------------


def merchant_payee_create(*, slug: str):
    """The ledger holder of a new merchant's payables: an inactive user nobody logs in with."""
    User = get_user_model()
    username = f"merchant-payee-{slug}"[:150]
    while User.objects.filter(username=username).exists():
        username = f"merchant-payee-{slug}-{get_random_string(4).lower()}"[:150]
    user = User(username=username, is_active=False)
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def merchant_create(
    *, campus, building: Building, slug: str, name: str, kind: str, staff=(), **fields
) -> Merchant:
    if building.campus_id != campus.pk:
        raise ValidationError({"building": _("Choose a building on the merchant's campus.")})
    merchant = Merchant(campus=campus, building=building, slug=slug, name=name, kind=kind, **fields)
    merchant.payee = merchant_payee_create(slug=slug)
    merchant.full_clean(exclude=["payee"])
    merchant.save()
    if staff:
        merchant.staff.set(staff)
    return merchant


@transaction.atomic
def merchant_settings_update(*, merchant: Merchant, actor, **changes) -> Merchant:
    """Preparation time, busy mode, the pause switch, the minimum order."""
    _check_staff(actor, merchant)
    allowed = {
        "prep_minutes",
        "busy",
        "busy_extra_minutes",
        "paused",
        "paused_note",
        "min_order_fen",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise TakeoutError(_("Unknown setting: %(s)s") % {"s": ", ".join(sorted(unknown))})
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    for name, value in changes.items():
        setattr(merchant, name, value)
    merchant.full_clean(exclude=["payee", "staff"])
    merchant.save(update_fields=list(changes))
    return merchant


@transaction.atomic
def merchant_hours_set(*, merchant: Merchant, actor, rows) -> list[OpeningHours]:
    """Replace the weekly hours with `rows` [(weekday, opens, closes)]."""
    _check_staff(actor, merchant)
    made = []
    for weekday, opens, closes in rows:
        if opens == closes:
            raise ValidationError(_("An interval must not open and close at the same time."))
        made.append(OpeningHours(merchant=merchant, weekday=weekday, opens=opens, closes=closes))
    OpeningHours.objects.filter(merchant=merchant).delete()
    return OpeningHours.objects.bulk_create(made)


@transaction.atomic
def closure_add(*, merchant: Merchant, actor, starts_on, ends_on, reason: str = "") -> Closure:
    _check_staff(actor, merchant)
    if ends_on < starts_on:
        raise ValidationError({"ends_on": _("The closure must end on or after its first day.")})
    return Closure.objects.create(
        merchant=merchant, starts_on=starts_on, ends_on=ends_on, reason=reason[:100]
    )


@transaction.atomic
def closure_delete(*, closure: Closure, actor) -> None:
    _check_staff(actor, closure.merchant)
    closure.delete()


# --- menu ---------------------------------------------------------------------------------------


def _own(obj_merchant_id: int, merchant: Merchant) -> None:
    if obj_merchant_id != merchant.pk:
        raise NotAllowed()


@transaction.atomic
def category_save(
    *, merchant: Merchant, actor, name: str, position: int = 0, category: MenuCategory | None = None
) -> MenuCategory:
    _check_staff(actor, merchant)
    if category is None:
        category = MenuCategory(merchant=merchant)
    _own(category.merchant_id, merchant)
    category.name, category.position = name.strip()[:40], position
    if not category.name:
        raise ValidationError({"name": _("Give the category a name.")})
    category.save()
    return category


@transaction.atomic
def category_delete(*, category: MenuCategory, actor) -> None:
    """Its items stay on the menu, without a category."""
    _check_staff(actor, category.merchant)
    category.delete()


ITEM_FIELDS = (
    "name",
    "description",
    "category",
    "price_fen",
    "packaging_fen",
    "stock",
    "sold_out",
    "periods",
    "position",
    "active",
)


@transaction.atomic
def item_save(
    *, merchant: Merchant, actor, item: MenuItem | None = None, photo=None, **fields
) -> MenuItem:
    """Create or change a menu item. A photo is checked and cleaned like an order photo
    (content, size, EXIF stripped, re-encoded, thumbnailed); a refused photo stores nothing."""
    _check_staff(actor, merchant)
    if item is None:
        item = MenuItem(merchant=merchant)
    _own(item.merchant_id, merchant)
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise TakeoutError(_("Unknown field: %(f)s") % {"f": ", ".join(sorted(unknown))})
    for name, value in fields.items():
        setattr(item, name, value)
    if item.category_id and item.category.merchant_id != merchant.pk:
        raise NotAllowed()
    item.periods = sorted(set(item.periods or []))
    item.full_clean(exclude=["photo", "photo_thumb"])
    old_files = []
    if photo is not None:
        clean = photo_process(photo)  # PhotoRejected: nothing stored
        old_files = [item.photo.name, item.photo_thumb.name]
        photo_store(item.photo, item.photo_thumb, clean)
    item.save()
    if old_files:
        storage = item.photo.storage
        transaction.on_commit(lambda: [storage.delete(n) for n in old_files if n])
    return item


@transaction.atomic
def item_set_sold_out(*, item: MenuItem, actor, sold_out: bool) -> MenuItem:
    _check_staff(actor, item.merchant)
    MenuItem.objects.filter(pk=item.pk).update(sold_out=sold_out)
    item.sold_out = sold_out
    return item


@transaction.atomic
def item_set_stock(*, item: MenuItem, actor, stock: int | None) -> MenuItem:
    """Portions left (None: no limit). Restocking also switches "sold out" off."""
    _check_staff(actor, item.merchant)
    if stock is not None and stock < 0:
        raise ValidationError({"stock": _("Stock cannot be negative.")})
    changes = {"stock": stock}
    if stock is None or stock > 0:
        changes["sold_out"] = False
    MenuItem.objects.filter(pk=item.pk).update(**changes)
    for name, value in changes.items():
        setattr(item, name, value)
    return item


@transaction.atomic
def item_delete(*, item: MenuItem, actor) -> None:
    """Off the menu for good; tickets keep their own copy of the line."""
    _check_staff(actor, item.merchant)
    CartLine.objects.filter(item=item).delete()
    item.delete()


@transaction.atomic
def option_group_save(
    *,
    item: MenuItem,
    actor,
    name: str,
    required: bool = False,
    multiple: bool = False,
    max_choices: int | None = None,
    position: int = 0,
    group: OptionGroup | None = None,
) -> OptionGroup:
    _check_staff(actor, item.merchant)
    if group is None:
        group = OptionGroup(item=item)
    if group.item_id != item.pk:
        raise NotAllowed()
    group.name, group.required, group.multiple = name.strip()[:40], required, multiple
    group.max_choices = max_choices if multiple else None
    group.position = position
    if not group.name:
        raise ValidationError({"name": _("Give the option group a name, like Size.")})
    group.save()
    return group


@transaction.atomic
def option_group_delete(*, group: OptionGroup, actor) -> None:
    _check_staff(actor, group.item.merchant)
    group.delete()


@transaction.atomic
def option_save(
    *,
    group: OptionGroup,
    actor,
    name: str,
    price_delta_fen: int = 0,
    available: bool = True,
    position: int = 0,
    option: Option | None = None,
) -> Option:
    _check_staff(actor, group.item.merchant)
    if option is None:
        option = Option(group=group)
    if option.group_id != group.pk:
        raise NotAllowed()
    option.name, option.price_delta_fen = name.strip()[:40], int(price_delta_fen)
    option.available, option.position = available, position
    if not option.name:
        raise ValidationError({"name": _("Give the option a name, like Large.")})
    if group.item.price_fen + option.price_delta_fen < 0:
        raise ValidationError(
            {"price_delta_fen": _("The item would cost less than nothing with this option.")}
        )
    option.save()
    return option


@transaction.atomic
def option_delete(*, option: Option, actor) -> None:
    _check_staff(actor, option.group.item.merchant)
    option.delete()


# --- promotions ---------------------------------------------------------------------------------


@transaction.atomic
def tier_save(
    *, merchant: Merchant, actor, threshold_fen: int, discount_fen: int, tier=None
) -> TierDiscount:
    """满减, funded by the merchant (operators may set platform-funded tiers in admin)."""
    _check_staff(actor, merchant)
    if not 0 < discount_fen < threshold_fen:
        raise ValidationError(
            {"discount_fen": _("Save more than ¥0 and less than the amount to spend.")}
        )
    tier = tier or TierDiscount(merchant=merchant)
    _own(tier.merchant_id, merchant)
    tier.threshold_fen, tier.discount_fen, tier.active = threshold_fen, discount_fen, True
    tier.save()
    return tier


@transaction.atomic
def tier_delete(*, tier: TierDiscount, actor) -> None:
    _check_staff(actor, tier.merchant)
    tier.delete()


@transaction.atomic
def coupon_claim(*, user, coupon: Coupon, now=None) -> CouponClaim:
    """Claim a coupon (领红包): within its validity, its per-person and overall limits; new-user
    coupons only for students who have not ordered takeout yet."""
    now = now or timezone.now()
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    if not coupon.valid_at(now):
        raise TakeoutError(_("This coupon is not available now."))
    if coupon.new_users_only and not selectors.is_new_customer(user):
        raise TakeoutError(_("This coupon is for your first takeout order only."))
    if CouponClaim.objects.filter(coupon=coupon, user=user).count() >= coupon.per_user_limit:
        raise TakeoutError(_("You have already claimed this coupon."))
    if coupon.total_limit is not None and coupon.claims.count() >= coupon.total_limit:
        raise TakeoutError(_("All of these coupons have been claimed."))
    return CouponClaim.objects.create(coupon=coupon, user=user)


# --- carts ---------------------------------------------------------------------------------------


def _cart(user, merchant: Merchant, group: GroupCart | None = None) -> Cart:
    if group is not None:
        cart = Cart.objects.filter(user=user, group=group).first()
        if cart is None or cart.member_state != MemberState.ACTIVE:
            raise GroupClosed(_("Join the group first."))
        return cart
    cart, _created = Cart.objects.get_or_create(user=user, merchant=merchant, group=None)
    return cart


@transaction.atomic
def cart_add(
    *,
    user,
    item: MenuItem,
    quantity: int = 1,
    option_ids=(),
    group: GroupCart | None = None,
    now=None,
) -> CartLine:
    """Add an item with its options to the user's cart at the item's merchant (or to their part
    of a group order). The same item with the same options adds up on one line."""
    if group is not None:
        _group_check_open(group, now)
        if group.merchant_id != item.merchant_id:
            raise CartError(_("This group orders from another merchant."))
    if not item.active:
        raise CartError(_("This item is no longer on the menu."))
    if item.unavailable:
        raise OutOfStock(_("%(name)s is sold out.") % {"name": item.name})
    if not 1 <= quantity <= 99:
        raise CartError(_("Order between 1 and 99 of an item."))
    item = (
        MenuItem.objects.prefetch_related("option_groups__options")
        .select_related("merchant")
        .get(pk=item.pk)
    )
    try:
        chosen = pricing.options_choose(selectors.group_rules(item), option_ids)
    except pricing.PriceError as exc:
        raise CartError(exc.message) from None
    del chosen
    ids = sorted({int(i) for i in option_ids or ()})
    cart = _cart(user, item.merchant, group)
    line = CartLine.objects.filter(cart=cart, item=item, option_ids=ids).first()
    if line is None:
        line = CartLine(cart=cart, item=item, option_ids=ids, quantity=0)
    line.quantity = min(line.quantity + quantity, 99)
    if item.stock is not None and line.quantity > item.stock:
        raise OutOfStock(_("Only %(n)d of %(name)s left.") % {"n": item.stock, "name": item.name})
    line.save()
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
    return line


def _own_line(line: CartLine, user) -> None:
    if line.cart.user_id != user.pk:
        raise NotAllowed()
    if line.cart.group_id:
        _group_check_open(line.cart.group)


@transaction.atomic
def cart_line_set_quantity(*, line: CartLine, user, quantity: int) -> CartLine | None:
    _own_line(line, user)
    if quantity <= 0:
        line.delete()
        return None
    if quantity > 99:
        raise CartError(_("Order between 1 and 99 of an item."))
    if line.item.stock is not None and quantity > line.item.stock:
        raise OutOfStock(
            _("Only %(n)d of %(name)s left.") % {"n": line.item.stock, "name": line.item.name}
        )
    line.quantity = quantity
    line.save(update_fields=["quantity"])
    return line


@transaction.atomic
def cart_clear(*, user, merchant: Merchant) -> None:
    CartLine.objects.filter(cart__user=user, cart__merchant=merchant, cart__group=None).delete()


# --- checkout ------------------------------------------------------------------------------------


def takeout_quote(
    *, merchant: Merchant, dropoff: Building, customer, deliver_by=None, signed: bool = True
):
    """The delivery fee (orders' pricing: base, walking distance, night, weather, peak, band)."""
    request = order_pricing.QuoteRequest(
        campus=merchant.campus,
        kind=TAKEOUT,
        pickup=merchant.building,
        dropoff=dropoff,
        deliver_by=deliver_by,
    )
    if signed:
        return order_pricing.quote_make(request=request, customer=customer)
    return order_pricing.quote_price(request=request)


def slots_for(merchant: Merchant, *, dropoff: Building | None = None, now=None) -> list:
    """Scheduled delivery times the merchant can serve (定时送餐), within its opening hours."""
    from campus.models import Building as B

    now = now or timezone.now()
    rule = order_pricing.pricing_rule_for(merchant.campus)
    setting = order_pricing.kind_setting_for(merchant.campus, TAKEOUT)
    dropoff = dropoff or B(campus=merchant.campus, entrance=merchant.building.entrance)
    distance = order_pricing.walking_distance_m(merchant.campus, merchant.building, dropoff)
    travel = setting.handling_minutes + order_pricing.ceil_div(distance, rule.walk_m_per_min)
    lead = merchant.current_prep_minutes + travel + rule.approach_minutes
    settings = selectors.takeout_settings_for(merchant.campus)
    return delivery_slots(
        merchant,
        now=now,
        lead_minutes=lead,
        delivery_minutes=travel,
        slot_minutes=settings.slot_minutes,
    )


def _lock_merchant(merchant: Merchant) -> Merchant:
    return (
        Merchant.objects.select_for_update(of=("self",))
        .select_related("building", "campus")
        .prefetch_related("hours", "closures", "tiers")
        .get(pk=merchant.pk)
    )


def _check_can_take(merchant: Merchant, *, deliver_by, dropoff, now) -> None:
    state = open_state(merchant, now)
    if deliver_by is None:
        if not state.is_open:
            if merchant.paused:
                raise MerchantClosed(
                    merchant.paused_note or _("This merchant has paused orders for a while.")
                )
            raise MerchantClosed(_("%(m)s is closed now.") % {"m": merchant.display_name})
        return
    if deliver_by not in slots_for(merchant, dropoff=dropoff, now=now):
        raise ValidationError(
            {
                "deliver_by": _(
                    "Choose one of the delivery times offered: the merchant is closed then."
                )
            }
        )


def _next_ticket_no(merchant: Merchant, day: dt.date) -> int:
    last = TakeoutOrder.objects.filter(merchant=merchant, day=day).aggregate(n=Max("ticket_no"))
    return (last["n"] or 0) + 1


def _take_stock(inputs: list[pricing.LineInput], items: dict[int, MenuItem]) -> None:
    """Take the portions: a conditional UPDATE per limited item, so of two buyers of the last
    portion exactly one gets it (on PostgreSQL the second UPDATE waits for the first to commit
    and then finds the stock gone)."""
    wanted = Counter()
    for line in inputs:
        wanted[line.item_id] += line.quantity
    for item_id, quantity in sorted(wanted.items()):
        item = items[item_id]
        if item.stock is None:
            continue
        taken = MenuItem.objects.filter(
            pk=item_id, stock__gte=quantity, sold_out=False, active=True
        ).update(stock=F("stock") - quantity)
        if not taken:
            left = MenuItem.objects.filter(pk=item_id).values_list("stock", flat=True).first()
            if not left:
                raise OutOfStock(
                    _("Sorry, %(name)s has just sold out. Remove it to order the rest.")
                    % {"name": item.name}
                )
            raise OutOfStock(
                _("Only %(n)d of %(name)s left: lower the quantity.")
                % {"n": left, "name": item.name}
            )


def _restock(ticket: TakeoutOrder) -> None:
    wanted = Counter()
    for line in ticket.lines.all():
        if line.item_id:
            wanted[line.item_id] += line.quantity
    for item_id, quantity in wanted.items():
        MenuItem.objects.filter(pk=item_id, stock__isnull=False).update(stock=F("stock") + quantity)


def _ticket_lines(ticket: TakeoutOrder, inputs: list[pricing.LineInput]) -> None:
    TakeoutLine.objects.bulk_create(
        [
            TakeoutLine(
                takeout=ticket,
                item_id=line.item_id,
                member_id=line.member,
                name=line.name,
                options=[o.stored() for o in line.options],
                unit_fen=line.unit_fen,
                packaging_fen=line.packaging_fen,
                quantity=line.quantity,
            )
            for line in inputs
        ]
    )


def _expected_ready(order: Order, prep_minutes: int, now) -> dt.datetime:
    if order.deliver_by:
        # Ready when the rider must leave: the promised time less the walk and the handover.
        rule = order_pricing.pricing_rule_for(order.campus)
        walk = order_pricing.ceil_div(order.distance_m or 0, rule.walk_m_per_min)
        return order.deliver_by - dt.timedelta(minutes=walk + 5)
    return now + dt.timedelta(minutes=prep_minutes)


def _new_ticket(
    *, order: Order, merchant: Merchant, breakdown: pricing.Breakdown, source: str, now, **extra
) -> TakeoutOrder:
    day = timezone.localdate(now)
    prep = merchant.current_prep_minutes
    ticket = TakeoutOrder(
        order=order,
        merchant=merchant,
        source=source,
        day=day,
        ticket_no=_next_ticket_no(merchant, day),
        items_fen=breakdown.items_fen,
        packaging_fen=breakdown.packaging_fen,
        delivery_fen=breakdown.delivery_fen,
        tier_discount_fen=breakdown.tier_fen,
        coupon_discount_fen=breakdown.coupon_fen,
        new_user_discount_fen=breakdown.new_user_fen,
        merchant_funded_fen=breakdown.merchant_funded_fen,
        platform_funded_fen=breakdown.platform_funded_fen,
        due_fen=breakdown.total_fen,
        price_lines=[line.stored() for line in breakdown.lines],
        commission_rate_bp=merchant.commission_rate_bp,
        prep_minutes=prep,
        expected_ready_at=_expected_ready(order, prep, now),
        **extra,
    )
    ticket.save()
    return ticket


def _cart_inputs(cart: Cart, *, period: str) -> tuple[list[pricing.LineInput], dict]:
    view = selectors.cart_view(cart, period=period)
    if not view.rows:
        raise CartError(_("Your cart is empty."))
    sold_out = [row for row in view.rows if row["stock"]]
    if sold_out:
        raise OutOfStock(
            _("Sorry, %(name)s has just sold out. Remove it to order the rest.")
            % {"name": sold_out[0]["item"].name}
            if sold_out[0]["item"].unavailable
            else _("Only %(n)d of %(name)s left: lower the quantity.")
            % {"n": sold_out[0]["item"].stock, "name": sold_out[0]["item"].name}
        )
    if view.problems:
        raise CartError(_("Some items cannot be ordered: %(p)s") % {"p": "; ".join(view.problems)})
    return view.inputs, {row["item"].pk: row["item"] for row in view.rows}


@transaction.atomic
def takeout_checkout(
    *,
    customer,
    merchant: Merchant,
    dropoff_building: Building,
    dropoff_detail: str = "",
    deliver_by=None,
    note: str = "",
    coupon_claim: CouponClaim | None = None,
    use_best_coupon: bool = False,
    quote_id: str | None = None,
    expect_total_fen: int | None = None,
    now=None,
) -> Order:
    """Order the customer's cart at `merchant`: priced now (every saving on its own line), the
    portions taken from stock, paid from the wallet at once. All or nothing: a short wallet
    (InsufficientFunds), a sold-out item (OutOfStock) or a closed merchant (MerchantClosed)
    leaves no order, no stock taken and the cart as it was. With `expect_total_fen` (the total
    the customer saw) a different price is refused (CartError) rather than charged."""
    now = now or timezone.now()
    merchant = _lock_merchant(merchant)
    if dropoff_building.campus_id != merchant.campus_id:
        raise ValidationError({"dropoff_building": _("Choose a building on this campus.")})
    _check_can_take(merchant, deliver_by=deliver_by, dropoff=dropoff_building, now=now)
    cart = selectors.cart_for(customer, merchant)
    when = deliver_by or now
    inputs, items = _cart_inputs(cart, period=selectors.current_period(when))
    new_user = selectors.is_new_customer(customer)  # before this order exists
    settings = selectors.takeout_settings_for(merchant.campus)
    breakdown_input = {
        "lines": inputs,
        "tiers": selectors.tier_rules(merchant),
        "new_user_fen": settings.new_user_discount_fen if new_user else 0,
    }
    claims = selectors.coupon_claims_usable(customer, merchant, now=now, new_user=new_user)
    if sum(line.items_fen for line in inputs) < merchant.min_order_fen:
        raise CartError(
            _("%(m)s delivers orders of ¥%(min)s of food or more.")
            % {"m": merchant.display_name, "min": yuan(merchant.min_order_fen)}
        )
    order = order_services.order_create(
        customer=customer,
        kind=TAKEOUT,
        pickup_building=merchant.building,
        pickup_detail=merchant.counter,
        dropoff_building=dropoff_building,
        dropoff_detail=dropoff_detail,
        description=note[:1000],
        deliver_by=deliver_by,
        quote_id=quote_id or None,
        pay=False,
        prep_minutes=merchant.current_prep_minutes,
    )
    if coupon_claim is not None:
        claim = next((c for c in claims if c.pk == coupon_claim.pk), None)
        if claim is None:
            raise CartError(_("That coupon cannot be used for this order."))
        breakdown = pricing.price_order(
            delivery_fen=order.price_fen, coupon=selectors.coupon_rule(claim), **breakdown_input
        )
    elif use_best_coupon:
        breakdown = pricing.price_best(
            delivery_fen=order.price_fen,
            coupons=[selectors.coupon_rule(c) for c in claims],
            **breakdown_input,
        )
    else:
        breakdown = pricing.price_order(delivery_fen=order.price_fen, **breakdown_input)
    if expect_total_fen is not None and expect_total_fen != breakdown.total_fen:
        raise CartError(
            _("The price changed to ¥%(t)s while you were ordering: check it and order again.")
            % {"t": yuan(breakdown.total_fen)}
        )
    _take_stock(inputs, items)
    ticket = _new_ticket(
        order=order,
        merchant=merchant,
        breakdown=breakdown,
        source=Source.SINGLE,
        now=now,
        note=(cart.note or note)[:280],
    )
    _ticket_lines(ticket, inputs)
    if breakdown.coupon is not None:
        CouponClaim.objects.filter(pk=breakdown.coupon.id).update(used_by=ticket)
    CartLine.objects.filter(cart=cart).delete()
    return order_services.order_pay(order=order, payer=customer)  # InsufficientFunds: undone


@transaction.atomic
def takeout_place(*, customer, merchant: Merchant, lines, **checkout) -> Order:
    """Order exactly `lines` [(item, quantity, option ids)] (the API: a client keeps its own
    cart): the customer's cart at this merchant is replaced by them and checked out. All or
    nothing: if the checkout fails, the cart is as it was."""
    CartLine.objects.filter(
        cart__user=customer, cart__merchant=merchant, cart__group__isnull=True
    ).delete()
    for item, quantity, option_ids in lines:
        if item.merchant_id != merchant.pk:
            raise CartError(_("%(name)s is not on this menu.") % {"name": item.name})
        cart_add(user=customer, item=item, quantity=quantity, option_ids=option_ids)
    return takeout_checkout(customer=customer, merchant=merchant, **checkout)


# --- the merchant's track ---------------------------------------------------------------------

STEP_NOTES = {
    MerchantStatus.ACCEPTED: gettext_lazy("Merchant accepted the order"),
    MerchantStatus.PREPARING: gettext_lazy("Merchant is preparing the food"),
    MerchantStatus.READY: gettext_lazy("Food is ready for pickup (出餐)"),
}


@transaction.atomic
def ticket_advance(*, ticket: TakeoutOrder, to: str, actor, reason: str = "", now=None):
    """Move the merchant's track: accept, reject (with a reason: the order is cancelled and every
    payer refunded), preparing, ready. `actor` None is the platform (a ticket nobody accepted
    in time)."""
    now = now or timezone.now()
    ticket = (
        TakeoutOrder.objects.select_for_update(of=("self",))
        .select_related("order", "merchant")
        .get(pk=ticket.pk)
    )
    _check_staff(actor, ticket.merchant)
    order = ticket.order
    if order.status in DEAD:
        raise TicketStepRefused(_("This order was cancelled."))
    if order.status not in (Status.OPEN, Status.ACCEPTED):
        raise TicketStepRefused(_("The rider already has this order."))
    if ticket.awaiting_group:
        raise TicketStepRefused(_("This group meal has not filled yet."))
    if to not in MERCHANT_TRANSITIONS[ticket.merchant_status]:
        raise TicketStepRefused(
            _("An order that is “%(now)s” cannot become “%(to)s”.")
            % {
                "now": MerchantStatus(ticket.merchant_status).label,
                "to": MerchantStatus(to).label,
            }
        )
    reason = (reason or "").strip()
    if to == MerchantStatus.REJECTED and not reason:
        raise ValidationError({"reason": _("Tell the customer why you cannot take the order.")})
    ticket.merchant_status = to
    ticket.handled_by = actor
    fields = ["merchant_status", "handled_by"]
    if to == MerchantStatus.ACCEPTED:
        ticket.accepted_at = now
        if not order.deliver_by:
            ticket.expected_ready_at = now + dt.timedelta(minutes=ticket.prep_minutes)
        fields += ["accepted_at", "expected_ready_at"]
    elif to == MerchantStatus.PREPARING:
        ticket.preparing_at = now
        fields.append("preparing_at")
    elif to == MerchantStatus.READY:
        ticket.ready_at = now
        ticket.accepted_at = ticket.accepted_at or now
        fields += ["ready_at", "accepted_at"]
    elif to == MerchantStatus.REJECTED:
        ticket.rejected_at, ticket.reject_reason = now, reason[:200]
        fields += ["rejected_at", "reject_reason"]
    ticket.save(update_fields=fields)
    if to == MerchantStatus.REJECTED:
        note = _("Rejected by %(m)s: %(r)s") % {"m": ticket.merchant.display_name, "r": reason}
        # The platform cancels (the merchant is no party to the order): a full refund to every
        # payer, and the inbox and notices through takeout_on_order_transition.
        order_services.order_transition(order=order, to=Status.CANCELLED, actor=None, note=note)
    else:
        order_services.order_note(order=order, actor=actor, note=str(STEP_NOTES[to]))
        broadcast.merchant_ticket_changed_on_commit(ticket, "changed")
    return ticket


@transaction.atomic
def ticket_handed_over(*, ticket: TakeoutOrder, actor) -> None:
    """The merchant gave the bag to the order's rider: the pickup proof tracking asks for."""
    ticket = TakeoutOrder.objects.select_related("order", "merchant").get(pk=ticket.pk)
    _check_staff(actor, ticket.merchant)
    if not ticket.is_ready or ticket.order.rider_id is None:
        raise TicketStepRefused(_("Hand the order over once it is ready and a rider has it."))
    from tracking import proof

    proof.proof_merchant_confirm(order=ticket.order, by=actor)


def takeout_on_order_transition(*, order: Order, old: str, new: str) -> None:
    """orders.services.order_transition's hook for takeout orders (same transaction)."""
    ticket = selectors.ticket_for_order(order)
    if ticket is None:
        return
    ticket.order = order
    if new == Status.OPEN and old == Status.PENDING:
        if not ticket.awaiting_group:
            _ticket_sent(ticket)
        return
    if new in DEAD:
        if ticket.merchant_status in (MerchantStatus.NEW, MerchantStatus.REJECTED):
            _restock(ticket)  # nothing was cooked: the portions go back on sale
        _notify_members(ticket, order, new)
        if not ticket.awaiting_group:
            broadcast.merchant_ticket_changed_on_commit(ticket, "cancelled")
        return
    if not ticket.awaiting_group:
        broadcast.merchant_ticket_changed_on_commit(ticket, "changed")


def _ticket_sent(ticket: TakeoutOrder) -> None:
    """The merchant gets the order now: its inbox rings, and its time to accept starts."""
    ticket.sent_at = timezone.now()
    TakeoutOrder.objects.filter(pk=ticket.pk).update(sent_at=ticket.sent_at)
    broadcast.merchant_ticket_changed_on_commit(ticket, "new")


def _notify_members(ticket: TakeoutOrder, order: Order, new: str) -> None:
    """Tell the members of a group order why it was called off (the customer reads it on the
    order page; the members have no other way to know)."""
    if ticket.merchant_status == MerchantStatus.REJECTED:
        why = _("%(m)s could not take the order (%(r)s); you were refunded.") % {
            "m": ticket.merchant.display_name,
            "r": ticket.reject_reason,
        }
    elif new == Status.EXPIRED:
        why = _("No rider took the order in time; you were refunded.")
    else:
        why = _("The order was cancelled; you were refunded.")
    users = set()
    if ticket.group_id:
        users |= set(
            Cart.objects.filter(
                group_id=ticket.group_id, member_state=MemberState.ACTIVE
            ).values_list("user_id", flat=True)
        )
    if ticket.source == Source.GROUP_MEAL:
        return  # group meals tell their own story (meal_rounds_close)
    users.add(order.customer_id)
    link = reverse("merchants:takeout_order", args=[order.number])
    for uid in users:
        Notice.objects.create(
            user_id=uid,
            message=_("%(m)s order #%(n)s: %(why)s")
            % {"m": ticket.merchant.display_name, "n": ticket.ticket_no, "why": why},
            link=link,
        )


@transaction.atomic
def tickets_auto_reject(*, now=None) -> int:
    """New tickets nobody at the merchant accepted within the campus limit: rejected by the
    platform, every payer refunded. Returns how many."""
    now = now or timezone.now()
    done = 0
    stale = (
        TakeoutOrder.objects.filter(merchant_status=MerchantStatus.NEW, order__status=Status.OPEN)
        .filter(selectors.visible_to_merchant())
        .select_related("merchant__campus")
    )
    for ticket in stale.filter(sent_at__isnull=False):
        limit = selectors.takeout_settings_for(ticket.merchant.campus).accept_within_minutes
        if ticket.sent_at > now - dt.timedelta(minutes=limit):
            continue
        ticket_advance(
            ticket=ticket,
            to=MerchantStatus.REJECTED,
            actor=None,
            reason=_("the merchant did not answer within %(n)d minutes") % {"n": limit},
            now=now,
        )
        done += 1
    return done


# --- notices ----------------------------------------------------------------------------------


def notice_send(*, user, message: str, link: str = "") -> Notice:
    return Notice.objects.create(user=user, message=message[:300], link=link[:200])


def notices_mark_read(*, user) -> int:
    return Notice.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# --- group orders (拼单) -------------------------------------------------------------------------


def _group_check_open(group: GroupCart, now=None) -> None:
    now = now or timezone.now()
    if group.status != GroupStatus.OPEN:
        raise GroupClosed()
    if now > group.deadline:
        raise GroupClosed(_("This group's time is up: it is being ordered now."))


@transaction.atomic
def group_open(
    *,
    opener,
    merchant: Merchant,
    dropoff_building: Building,
    dropoff_detail: str = "",
    minutes: int | None = None,
    now=None,
) -> GroupCart:
    """Open a group order: the opener's own cart moves into it (they share the link)."""
    now = now or timezone.now()
    if dropoff_building.campus_id != merchant.campus_id:
        raise ValidationError({"dropoff_building": _("Choose a building on this campus.")})
    state = open_state(merchant, now)
    if not state.is_open:
        raise MerchantClosed()
    limit = selectors.takeout_settings_for(merchant.campus).group_deadline_minutes
    minutes = max(5, min(minutes or limit, limit))
    deadline = now + dt.timedelta(minutes=minutes)
    if state.closes_at and deadline > state.closes_at:
        deadline = state.closes_at
    group = GroupCart.objects.create(
        merchant=merchant,
        opener=opener,
        dropoff_building=dropoff_building,
        dropoff_detail=dropoff_detail[:120],
        deadline=deadline,
    )
    cart = Cart.objects.create(user=opener, merchant=merchant, group=group)
    own = Cart.objects.filter(user=opener, merchant=merchant, group=None).first()
    if own is not None:
        CartLine.objects.filter(cart=own).update(cart=cart)
    return group


@transaction.atomic
def group_join(*, user, group: GroupCart, now=None) -> Cart:
    group = GroupCart.objects.select_for_update().get(pk=group.pk)
    _group_check_open(group, now)
    cart = Cart.objects.filter(user=user, group=group).first()
    if cart is None:
        return Cart.objects.create(user=user, merchant_id=group.merchant_id, group=group)
    if cart.member_state != MemberState.ACTIVE:
        cart.member_state = MemberState.ACTIVE
        cart.save(update_fields=["member_state", "updated_at"])
    return cart


@transaction.atomic
def group_leave(*, user, group: GroupCart, now=None) -> None:
    group = GroupCart.objects.select_for_update().get(pk=group.pk)
    _group_check_open(group, now)
    if user.pk == group.opener_id:
        raise NotAllowed(_("You opened this group: cancel it instead."))
    cart = Cart.objects.filter(user=user, group=group, member_state=MemberState.ACTIVE).first()
    if cart is None:
        return
    CartLine.objects.filter(cart=cart).delete()
    cart.member_state = MemberState.LEFT
    cart.save(update_fields=["member_state", "updated_at"])


@transaction.atomic
def group_cancel(*, user, group: GroupCart) -> GroupCart:
    """The opener calls the group off before it orders: nobody pays, everybody is told."""
    group = GroupCart.objects.select_for_update().get(pk=group.pk)
    if user is not None and user.pk != group.opener_id:
        raise NotAllowed(_("Only the person who opened the group can cancel it."))
    if group.status != GroupStatus.OPEN:
        raise GroupClosed()
    group.status = GroupStatus.CANCELLED
    group.outcome = _("Cancelled by %(name)s.") % {"name": group.opener.public_name}
    group.save(update_fields=["status", "outcome"])
    _group_notify(
        group,
        _("The group order at %(m)s was cancelled by the person who opened it.")
        % {"m": group.merchant.display_name},
    )
    return group


def _group_notify(group: GroupCart, message: str, users=None) -> None:
    link = reverse("merchants:group", args=[group.token])
    if users is None:
        users = Cart.objects.filter(group=group, member_state=MemberState.ACTIVE).values_list(
            "user_id", flat=True
        )
    for uid in users:
        Notice.objects.create(user_id=uid, message=message[:300], link=link)


class _Drop(Exception):
    def __init__(self, cart: Cart, why: str):
        self.cart, self.why = cart, why


def group_preview(group: GroupCart, *, customer=None, carts=None):
    """(breakdown, shares, carts with items, problems) for the group as it stands, priced now."""
    carts = carts if carts is not None else selectors.group_active_carts(group)
    period = selectors.current_period()
    members, inputs, problems = [], [], []
    for cart in carts:
        view = selectors.cart_view(cart, period=period)
        if not view.rows:
            continue
        members.append(cart)
        inputs.extend(view.inputs)
        problems.extend(f"{cart.user.public_name}: {p}" for p in view.problems)
    if not members:
        return None, [], [], problems
    quote = takeout_quote(
        merchant=group.merchant,
        dropoff=group.dropoff_building,
        customer=customer or group.opener,
        signed=False,
    )
    breakdown, shares = pricing.price_group(
        members=[c.user_id for c in members],
        lines=inputs,
        delivery_fen=quote.fee_fen,
        tiers=selectors.tier_rules(group.merchant),
    )
    return breakdown, shares, members, problems


@transaction.atomic
def group_submit(*, group: GroupCart, actor=None, now=None) -> TakeoutOrder | None:
    """Order the group: the opener locks it (actor), or its deadline passed (actor None).

    Each member with items pays their own share from their wallet: their food and packaging, an
    equal part of the delivery fee and their part of the 满减 (merchants/pricing.py). A member
    whose wallet is short, or whose item sold out, is dropped with a notice and the shares are
    worked out again without them. Members without items are not part of the order. If the
    opener drops out or nobody is left, the group is cancelled (nobody pays)."""
    now = now or timezone.now()
    group = GroupCart.objects.select_for_update().select_related("opener").get(pk=group.pk)
    if actor is not None and actor.pk != group.opener_id:
        raise NotAllowed(_("Only the person who opened the group can order it."))
    if group.status != GroupStatus.OPEN:
        raise GroupClosed()
    merchant = _lock_merchant(group.merchant)
    carts = [c for c in selectors.group_active_carts(group)]
    if actor is not None:
        opener_cart = next((c for c in carts if c.user_id == group.opener_id), None)
        if opener_cart is None or not list(opener_cart.lines.all()):
            raise CartError(_("Add your own items before ordering the group."))
        state = open_state(merchant, now)
        if not state.is_open:
            raise MerchantClosed()
    dropped: list[tuple[Cart, str]] = []
    while True:
        try:
            with transaction.atomic():
                ticket = _group_place(group, merchant, carts, now)
            break
        except _Drop as drop:
            carts = [c for c in carts if c.pk != drop.cart.pk]
            if drop.cart.user_id == group.opener_id:
                ticket, group.outcome = None, drop.why[:255]
                break
            dropped.append((drop.cart, drop.why))
        except (MerchantClosed, CartError) as exc:
            if actor is not None:
                raise
            ticket, why = None, str(exc.message)
            group.outcome = why[:255]
            break
    for cart, why in dropped:
        Cart.objects.filter(pk=cart.pk).update(member_state=MemberState.DROPPED)
        notice_send(
            user=cart.user,
            message=_("You were dropped from the group order at %(m)s: %(why)s")
            % {"m": merchant.display_name, "why": why},
            link=reverse("merchants:group", args=[group.token]),
        )
    if ticket is None:
        group.status = GroupStatus.CANCELLED
        group.save(update_fields=["status", "outcome"])
        _group_notify(
            group,
            _("The group order at %(m)s did not go ahead: %(why)s")
            % {"m": merchant.display_name, "why": group.outcome},
        )
        return None
    group.status = GroupStatus.SUBMITTED
    group.outcome = _("Ordered: %(n)d people.") % {"n": len(ticket.shares)}
    group.save(update_fields=["status", "outcome"])
    return ticket


def _group_place(group: GroupCart, merchant: Merchant, carts: list[Cart], now) -> TakeoutOrder:
    period = selectors.current_period(now)
    members, inputs, items = [], [], {}
    for cart in carts:
        view = selectors.cart_view(cart, period=period)
        if not view.rows:
            continue
        if view.problems:
            raise _Drop(cart, "; ".join(view.problems))
        members.append(cart)
        inputs.extend(view.inputs)
        items.update({row["item"].pk: row["item"] for row in view.rows})
    opener_cart = next(c for c in carts if c.user_id == group.opener_id)
    if not members or members[0] is not opener_cart:
        raise _Drop(opener_cart, _("the person who opened the group ordered nothing"))
    order = order_services.order_create(
        customer=group.opener,
        kind=TAKEOUT,
        pickup_building=merchant.building,
        pickup_detail=merchant.counter,
        dropoff_building=group.dropoff_building,
        dropoff_detail=group.dropoff_detail,
        description="; ".join(c.note for c in members if c.note)[:1000],
        pay=False,
        prep_minutes=merchant.current_prep_minutes,
    )
    breakdown, shares = pricing.price_group(
        members=[c.user_id for c in members],
        lines=inputs,
        delivery_fen=order.price_fen,
        tiers=selectors.tier_rules(merchant),
    )
    for line in inputs:
        try:
            _take_stock([line], items)
        except OutOfStock as exc:
            member = next(c for c in members if c.user_id == line.member)
            raise _Drop(member, str(exc.message)) from None
    names = {c.user_id: c.user.public_name for c in members}
    ticket = _new_ticket(
        order=order,
        merchant=merchant,
        breakdown=breakdown,
        source=Source.GROUP,
        now=now,
        group=group,
        shares=[s.stored(names[s.member]) for s in shares],
        note="; ".join(f"{names[c.user_id]}: {c.note}" for c in members if c.note)[:280],
    )
    _ticket_lines(ticket, inputs)
    for cart, share in zip(members, shares, strict=True):
        try:
            payments.takeout_share_pay(
                order=order,
                payer=cart.user,
                amount_fen=share.total_fen,
                reference=f"group:{group.pk}:{cart.user_id}",
                memo=_("Your share of group order %(n)s") % {"n": order.number},
            )
        except InsufficientFunds:
            raise _Drop(
                cart,
                _("your wallet did not cover your share of ¥%(s)s") % {"s": yuan(share.total_fen)},
            ) from None
    CartLine.objects.filter(cart__in=members).delete()
    ticket.order = order_services.order_transition(
        order=order, to=Status.OPEN, actor=None, note="group paid"
    )
    return ticket


# --- group meals (拼好饭) -------------------------------------------------------------------------


def _round_times(meal: GroupMeal, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(day, meal.cutoff, tzinfo=tz),
        dt.datetime.combine(day, meal.delivery_time, tzinfo=tz),
    )


@transaction.atomic
def meal_join(
    *, user, meal: GroupMeal, building: Building, dropoff_detail: str = "", now=None
) -> GroupMealJoin:
    """Join today's group for this meal in this building, paying the group price at once. The
    group ships when it has the people it needs; at the cutoff an unfilled group is refunded."""
    now = now or timezone.now()
    meal = GroupMeal.objects.select_for_update().select_related("merchant").get(pk=meal.pk)
    day = timezone.localdate(now)
    cutoff_at, deliver_at = _round_times(meal, day)
    if not meal.active or not meal.starts_on <= day <= meal.ends_on:
        raise TakeoutError(_("This group meal is not on today."))
    if now > cutoff_at:
        raise GroupClosed(
            _("Joining closed at %(t)s.") % {"t": timezone.localtime(cutoff_at).strftime("%H:%M")}
        )
    if building.campus_id != meal.merchant.campus_id:
        raise ValidationError({"building": _("Choose a building on this campus.")})
    if (
        GroupMealJoin.objects.filter(
            user=user, round__meal=meal, round__day=day, left_at__isnull=True
        )
        .exclude(round__status=RoundStatus.FAILED)
        .exists()
    ):
        raise TakeoutError(_("You have already joined this group meal today."))
    round_ = (
        GroupMealRound.objects.select_for_update()
        .filter(meal=meal, building=building, day=day, status=RoundStatus.OPEN)
        .first()
    )
    if round_ is None:
        round_ = _round_start(meal=meal, building=building, day=day, user=user, now=now)
    ticket = TakeoutOrder.objects.select_for_update().get(pk=round_.takeout_id)
    join = GroupMealJoin.objects.create(
        round=round_, user=user, dropoff_detail=dropoff_detail[:120], paid_fen=meal.group_price_fen
    )
    payments.takeout_share_pay(
        order=ticket.order,
        payer=user,
        amount_fen=meal.group_price_fen,
        reference=f"meal:{join.pk}",
        memo=_("Group meal %(t)s") % {"t": meal.title},
    )
    TakeoutLine.objects.create(
        takeout=ticket,
        member=user,
        name=meal.title,
        options=[{"group": _("Room"), "name": dropoff_detail[:60], "delta_fen": 0}]
        if dropoff_detail
        else [],
        unit_fen=meal.group_price_fen,
        quantity=1,
    )
    _round_retotal(ticket)
    if ticket.order.status == Status.PENDING:
        order_services.order_transition(
            order=ticket.order, to=Status.OPEN, actor=None, note="group meal: first seat paid"
        )
    joined = round_.joins.filter(left_at__isnull=True).count()
    if joined >= meal.group_size:
        round_.status = RoundStatus.FILLED
        round_.save(update_fields=["status"])
        ticket = TakeoutOrder.objects.select_related("order").get(pk=ticket.pk)
        _ticket_sent(ticket)
        link = reverse("merchants:meals")
        for uid in round_.joins.filter(left_at__isnull=True).values_list("user_id", flat=True):
            Notice.objects.create(
                user_id=uid,
                message=_("%(t)s filled: it arrives at %(at)s.")
                % {"t": meal.title, "at": timezone.localtime(deliver_at).strftime("%H:%M")},
                link=link,
            )
    return join


def _round_start(*, meal: GroupMeal, building: Building, day, user, now) -> GroupMealRound:
    cutoff_at, deliver_at = _round_times(meal, day)
    merchant = meal.merchant
    order = order_services.order_create(
        customer=user,
        kind=TAKEOUT,
        pickup_building=merchant.building,
        pickup_detail=merchant.counter,
        dropoff_building=building,
        description=_("Group meal: %(t)s") % {"t": meal.title},
        deliver_by=deliver_at,
        pay=False,
    )
    breakdown = pricing.Breakdown(
        lines=[pricing.PriceLine("group_meal", 0)], items_fen=0, packaging_fen=0, delivery_fen=0
    )
    ticket = _new_ticket(
        order=order, merchant=merchant, breakdown=breakdown, source=Source.GROUP_MEAL, now=now
    )
    return GroupMealRound.objects.create(
        meal=meal,
        building=building,
        day=day,
        cutoff_at=cutoff_at,
        deliver_at=deliver_at,
        takeout=ticket,
    )


def _round_retotal(ticket: TakeoutOrder) -> None:
    """A group meal's ticket adds up its seats: each seat's group price includes delivery."""
    lines = list(ticket.lines.all())
    total = sum(line.total_fen for line in lines)
    ticket.items_fen = ticket.due_fen = total
    ticket.price_lines = (
        [
            pricing.PriceLine(
                "group_meal", total, f"{len(lines)} × ¥{yuan(lines[0].unit_fen)}"
            ).stored()
        ]
        if lines
        else []
    )
    ticket.save(update_fields=["items_fen", "due_fen", "price_lines"])


@transaction.atomic
def meal_leave(*, user, join: GroupMealJoin, now=None) -> None:
    """Leave before the group fills: the seat's money goes back at once."""
    now = now or timezone.now()
    join = GroupMealJoin.objects.select_for_update().select_related("round").get(pk=join.pk)
    round_ = GroupMealRound.objects.select_for_update().get(pk=join.round_id)
    if join.user_id != user.pk:
        raise NotAllowed()
    if join.left_at or round_.status != RoundStatus.OPEN or now > round_.cutoff_at:
        raise GroupClosed(_("This group meal can no longer be left."))
    ticket = (
        TakeoutOrder.objects.select_for_update().select_related("order").get(pk=round_.takeout_id)
    )
    others = round_.joins.filter(left_at__isnull=True).exclude(pk=join.pk).count()
    if ticket.order.customer_id == user.pk and others:
        raise NotAllowed(
            _("You started this group: it is refunded automatically if it does not fill.")
        )
    join.left_at = now
    join.save(update_fields=["left_at"])
    if not others:
        round_.status = RoundStatus.FAILED
        round_.save(update_fields=["status"])
        order_services.order_transition(
            order=ticket.order, to=Status.CANCELLED, actor=None, note="everyone left"
        )
        return
    payments.takeout_share_refund(
        order=ticket.order,
        payer=user,
        amount_fen=join.paid_fen,
        reference=f"meal:{join.pk}",
        memo=_("Left the group meal"),
    )
    TakeoutLine.objects.filter(takeout=ticket, member=user).delete()
    _round_retotal(ticket)


@transaction.atomic
def meal_rounds_close(*, now=None) -> tuple[int, int]:
    """At the cutoff: a group meal that has not filled is cancelled and every seat refunded,
    each joiner told why. Returns (failed, filled) counts seen."""
    now = now or timezone.now()
    failed = filled = 0
    due = GroupMealRound.objects.filter(status=RoundStatus.OPEN, cutoff_at__lt=now)
    for round_ in due.select_related("meal", "takeout__order"):
        round_ = GroupMealRound.objects.select_for_update().get(pk=round_.pk)
        if round_.status != RoundStatus.OPEN:
            continue
        joiners = list(round_.joins.filter(left_at__isnull=True).values_list("user_id", flat=True))
        meal = round_.meal
        if len(joiners) >= meal.group_size:  # filled exactly at the cutoff
            round_.status = RoundStatus.FILLED
            round_.save(update_fields=["status"])
            filled += 1
            continue
        round_.status = RoundStatus.FAILED
        round_.save(update_fields=["status"])
        note = _("Group meal did not fill: %(n)d of %(k)d joined") % {
            "n": len(joiners),
            "k": meal.group_size,
        }
        order_services.order_transition(
            order=round_.takeout.order, to=Status.CANCELLED, actor=None, note=note
        )
        for uid in joiners:
            Notice.objects.create(
                user_id=uid,
                message=_(
                    "%(t)s did not fill before %(at)s (%(n)d of %(k)d people joined): "
                    "your ¥%(p)s is back in your wallet."
                )
                % {
                    "t": meal.title,
                    "at": timezone.localtime(round_.cutoff_at).strftime("%H:%M"),
                    "n": len(joiners),
                    "k": meal.group_size,
                    "p": yuan(meal.group_price_fen),
                },
                link=reverse("merchants:meals"),
            )
        failed += 1
    return failed, filled


# --- the clock ----------------------------------------------------------------------------------


def takeout_deadlines_run(*, now=None) -> dict[str, int]:
    """Everything that happens at a time: group orders at their deadline, group meals at their
    cutoff, tickets nobody accepted. Run every minute (`manage.py takeout_deadlines`; the demo
    runs it too). Each step is its own transaction, so one failure does not hold the rest."""
    now = now or timezone.now()
    groups = 0
    for group in GroupCart.objects.filter(status=GroupStatus.OPEN, deadline__lt=now):
        group_submit(group=group, actor=None, now=now)
        groups += 1
    failed, filled = meal_rounds_close(now=now)
    rejected = tickets_auto_reject(now=now)
    return {"groups": groups, "meals_failed": failed, "meals_filled": filled, "rejected": rejected}
