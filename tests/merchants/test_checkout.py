"""Checkout: a cart at a canteen window becomes a paid takeout order with its ticket, all or
nothing (closed, paused, sold out, short wallet), with every saving on its own line."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from merchants import selectors, services
from merchants.errors import CartError, MerchantClosed, OutOfStock
from merchants.models import Coupon, MerchantStatus, TakeoutOrder, TierDiscount
from orders.models import TAKEOUT
from orders.status import Status
from payments import selectors as money
from payments.errors import InsufficientFunds
from tests import factories


def test_checkout_places_a_paid_order_with_its_ticket(student, window, noodles, tea):
    large_egg = factories.option_ids(noodles, "Large", "Egg")
    order = factories.make_takeout(
        customer=student,
        merchant=window,
        lines=[(noodles, 2, large_egg), (tea, 1)],
        dropoff_detail="402",
        note="不要香菜",
    )
    assert order.kind == TAKEOUT and order.status == Status.OPEN
    assert order.pickup_building == window.building
    ticket = order.takeout
    assert ticket.merchant == window and ticket.ticket_no == 1
    assert ticket.merchant_status == MerchantStatus.NEW
    # (15 + 3 + 2) x 2 + 6 = 46 of food, 2 boxes of ¥1, the quoted fee; new-user ¥3 off
    assert (ticket.items_fen, ticket.packaging_fen) == (4600, 200)
    assert ticket.delivery_fen == order.price_fen > 0
    assert ticket.new_user_discount_fen == 300
    assert order.total_fen == ticket.due_fen == 4600 + 200 + order.price_fen - 300
    assert money.order_paid_fen(order) == ticket.due_fen
    lines = list(ticket.lines.order_by("pk"))
    assert [(x.name, x.quantity, x.unit_fen) for x in lines] == [
        ("牛肉面", 2, 2000),
        ("柠檬茶", 1, 600),
    ]
    assert lines[0].options_text == "Large, Egg"
    assert ticket.note == "不要香菜"
    assert selectors.cart_for(student, window).lines.count() == 0


def test_second_order_gets_the_next_ticket_number_and_no_new_user_discount(
    student, other_student, window, tea
):
    first = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    second = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    third = factories.make_takeout(customer=other_student, merchant=window, lines=[(tea, 1)])
    assert [o.takeout.ticket_no for o in (first, second, third)] == [1, 2, 3]
    assert [o.takeout.new_user_discount_fen for o in (first, second, third)] == [300, 0, 300]


def test_tiers_and_a_claimed_coupon_show_as_their_own_lines(student, campus, window, noodles):
    TierDiscount.objects.create(merchant=window, threshold_fen=2000, discount_fen=300)
    TierDiscount.objects.create(merchant=window, threshold_fen=3500, discount_fen=600)
    now = timezone.now()
    coupon = Coupon.objects.create(
        campus=campus,
        code="lunch5",
        title="午餐红包",
        discount_fen=500,
        min_spend_fen=2500,
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=1),
    )
    claim = services.coupon_claim(user=student, coupon=coupon)
    regular = factories.option_ids(noodles, "Regular")
    order = factories.make_takeout(
        customer=student, merchant=window, lines=[(noodles, 2, regular)], coupon_claim=claim
    )
    ticket = order.takeout
    assert [(x["code"], x["amount_fen"]) for x in ticket.price_lines] == [
        ("items", 3000),
        ("packaging", 200),
        ("delivery", order.price_fen),
        ("tier", -300),
        ("coupon", -500),
        ("new_user", -300),
    ]
    assert (ticket.merchant_funded_fen, ticket.platform_funded_fen) == (300, 800)
    claim.refresh_from_db()
    assert claim.used_by == ticket
    # the coupon is spent...
    assert selectors.coupon_claims_usable(student, window) == []
    # ...until the order is cancelled
    services.ticket_advance(ticket=ticket, to=MerchantStatus.REJECTED, actor=None, reason="closed")
    assert [c.pk for c in selectors.coupon_claims_usable(student, window)] == [claim.pk]


def test_an_expired_coupon_cannot_be_used(student, campus, window, tea):
    now = timezone.now()
    coupon = Coupon.objects.create(
        campus=campus,
        code="old",
        title="Old",
        discount_fen=500,
        valid_from=now - dt.timedelta(days=2),
        valid_until=now + dt.timedelta(seconds=1),
    )
    claim = services.coupon_claim(user=student, coupon=coupon)
    with pytest.raises(CartError):
        factories.make_takeout(
            customer=student,
            merchant=window,
            lines=[(tea, 1)],
            coupon_claim=claim,
            now=now + dt.timedelta(seconds=5),
        )


def test_a_closed_merchant_takes_no_orders(student, campus, merchant, tea):
    closed = factories.make_merchant(campus, staff=[merchant], always_open=False)
    item = factories.make_item(closed, price_fen=800)
    with pytest.raises(MerchantClosed):
        factories.make_takeout(customer=student, merchant=closed, lines=[(item, 1)])
    assert not TakeoutOrder.objects.exists()


def test_a_paused_merchant_says_why(student, window, merchant, tea):
    services.cart_add(user=student, item=tea)
    services.merchant_settings_update(
        merchant=window, actor=merchant, paused=True, paused_note="Out of gas until 12:30"
    )
    with pytest.raises(MerchantClosed, match="Out of gas"):
        services.takeout_checkout(
            customer=student,
            merchant=window,
            dropoff_building=factories.building(window.campus, "D3"),
        )


def test_short_wallet_leaves_no_order_and_no_stock_taken(student, window):
    item = factories.make_item(window, price_fen=1200, stock=3)
    with pytest.raises(InsufficientFunds):
        factories.make_takeout(customer=student, merchant=window, lines=[(item, 2)], fund=False)
    assert not TakeoutOrder.objects.exists()
    item.refresh_from_db()
    assert item.stock == 3
    assert selectors.cart_for(student, window).lines.get().quantity == 2


def test_stock_is_taken_and_the_last_portion_sells_once(student, other_student, window):
    item = factories.make_item(window, price_fen=1200, stock=2)
    factories.make_takeout(customer=student, merchant=window, lines=[(item, 1)])
    services.cart_add(user=other_student, item=item, quantity=1)
    services.cart_add(user=student, item=item, quantity=1)
    factories.fund_wallet(other_student, at_least=5000)
    services.takeout_checkout(
        customer=other_student,
        merchant=window,
        dropoff_building=factories.building(window.campus, "D3"),
    )
    item.refresh_from_db()
    assert item.stock == 0 and item.unavailable
    with pytest.raises(OutOfStock, match="just sold out"):
        services.takeout_checkout(
            customer=student,
            merchant=window,
            dropoff_building=factories.building(window.campus, "D3"),
        )


def test_sold_out_items_cannot_go_in_the_cart(student, window):
    item = factories.make_item(window, sold_out=True)
    with pytest.raises(OutOfStock):
        services.cart_add(user=student, item=item)


def test_required_options_are_enforced_at_the_cart(student, noodles):
    with pytest.raises(CartError, match="Choose a Size"):
        services.cart_add(user=student, item=noodles)


def test_items_outside_their_meal_period_cannot_be_ordered(student, window):
    breakfast = factories.make_item(window, name="豆浆", price_fen=300, periods=["breakfast"])
    services.cart_add(user=student, item=breakfast)
    noon = timezone.localtime().replace(hour=12, minute=0)
    factories.fund_wallet(student, at_least=5000)
    with pytest.raises(CartError, match="not sold at this time"):
        services.takeout_checkout(
            customer=student,
            merchant=window,
            dropoff_building=factories.building(window.campus, "D3"),
            now=noon,
        )


def test_minimum_order_is_enforced(student, window, tea, merchant):
    services.merchant_settings_update(merchant=window, actor=merchant, min_order_fen=2000)
    with pytest.raises(CartError, match="¥20.00"):
        factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])


def test_price_changed_since_the_customer_looked_is_refused(student, window, tea):
    with pytest.raises(CartError, match="price changed"):
        factories.make_takeout(
            customer=student, merchant=window, lines=[(tea, 1)], expect_total_fen=1
        )


def test_busy_mode_pushes_the_promise_back(student, other_student, window, tea, merchant):
    calm = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    services.merchant_settings_update(merchant=window, actor=merchant, busy=True)
    busy = factories.make_takeout(customer=other_student, merchant=window, lines=[(tea, 1)])
    assert busy.takeout.prep_minutes == calm.takeout.prep_minutes + window.busy_extra_minutes
    gap = (busy.promised_at - busy.created_at) - (calm.promised_at - calm.created_at)
    assert abs(gap - dt.timedelta(minutes=window.busy_extra_minutes)) < dt.timedelta(seconds=5)


def test_scheduled_delivery_slot_within_opening_hours(student, campus, merchant):
    lunch = factories.make_merchant(campus, staff=[merchant], always_open=False)
    services.merchant_hours_set(
        merchant=lunch,
        actor=merchant,
        rows=[(d, dt.time(10, 30), dt.time(13, 30)) for d in range(7)],
    )
    item = factories.make_item(lunch, price_fen=1200)
    slots = services.slots_for(lunch)
    assert slots, "the next lunch has slots"
    slot = slots[len(slots) // 2]
    local = timezone.localtime(slot)
    assert dt.time(10, 30) < local.time() <= dt.time(13, 45)
    order = factories.make_takeout(
        customer=student, merchant=lunch, lines=[(item, 1)], deliver_by=slot
    )
    assert order.deliver_by == slot == order.promised_at
    assert order.takeout.expected_ready_at < slot
    # a time outside the hours is refused
    services.cart_add(user=student, item=item)
    with pytest.raises(ValidationError):
        services.takeout_checkout(
            customer=student,
            merchant=lunch,
            dropoff_building=factories.building(campus, "D3"),
            deliver_by=local.replace(hour=3, minute=0) + dt.timedelta(days=1),
        )


def test_item_photos_are_cleaned_like_order_photos(window, merchant):
    from PIL import Image

    from orders.photos import PhotoRejected

    item = services.item_save(
        merchant=window,
        actor=merchant,
        name="Noodles",
        price_fen=1500,
        photo=factories.photo_upload("JPEG", exif_gps=True),
    )
    with item.photo.open("rb") as fh:
        assert not Image.open(fh).getexif()
    assert item.photo_thumb
    from django.core.files.uploadedfile import SimpleUploadedFile

    fake = SimpleUploadedFile("menu.jpg", b"%PDF-1.4 not an image", content_type="image/jpeg")
    with pytest.raises(PhotoRejected):
        services.item_save(merchant=window, actor=merchant, item=item, photo=fake)
