"""Takeout pages and the merchant portal: they render, in a fixed number of queries however big the
menu, and every portal page is 404 to students and to other merchants' staff."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from merchants import services
from merchants.models import MenuCategory, MerchantStatus, TierDiscount
from orders.models import Order
from tests import factories
from tests.factories import logged_in


def queries(client, url: str) -> int:
    client.get(url)  # warm the session and the campus caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(captured)


def add_menu(merchant, n: int) -> None:
    category = MenuCategory.objects.create(merchant=merchant, name=f"Cat {n}")
    for i in range(n):
        factories.make_item(
            merchant,
            category=category,
            price_fen=1000 + i,
            options=[
                ("Size", True, False, [("S", 0), ("L", 200)]),
                ("Add", False, True, [("Egg", 100)]),
            ],
        )


# --- fixed number of queries -------------------------------------------------------------------


def test_merchant_list_queries_do_not_grow_with_merchants_or_items(
    student, campus, django_assert_max_num_queries
):
    client = logged_in(student)
    small = factories.make_merchant(campus)
    add_menu(small, 2)
    TierDiscount.objects.create(merchant=small, threshold_fen=2000, discount_fen=300)
    few = queries(client, "/takeout/")
    for _ in range(6):
        big = factories.make_merchant(campus)
        add_menu(big, 8)
        TierDiscount.objects.create(merchant=big, threshold_fen=2000, discount_fen=300)
    assert queries(client, "/takeout/") == few
    with django_assert_max_num_queries(12):
        response = client.get("/takeout/?q=菜")
    assert response.status_code == 200


def test_menu_page_queries_do_not_grow_with_items(student, window, django_assert_max_num_queries):
    client = logged_in(student)
    add_menu(window, 2)
    item = window.items.first()
    services.cart_add(user=student, item=item, option_ids=factories.option_ids(item, "L"))
    few = queries(client, f"/takeout/{window.slug}/")
    add_menu(window, 40)
    for extra in window.items.all()[5:9]:
        services.cart_add(user=student, item=extra, option_ids=factories.option_ids(extra, "S"))
    assert queries(client, f"/takeout/{window.slug}/") == few
    with django_assert_max_num_queries(16):
        response = client.get(f"/takeout/{window.slug}/")
    html = response.content.decode()
    assert html.count('class="card dish') == 42


def test_home_shows_what_is_open_now_in_one_more_query(
    student, window, django_assert_max_num_queries
):
    closed = factories.make_merchant(window.campus, always_open=False, name="夜宵")
    client = logged_in(student)
    with django_assert_max_num_queries(8):
        html = client.get("/").content.decode()
    assert window.display_name in html and closed.display_name not in html


# --- student pages ----------------------------------------------------------------------------


def test_menu_greys_out_sold_out_and_hints_closing_soon(student, window, tea):
    sold = factories.make_item(window, name="卖完了", sold_out=True)
    html = logged_in(student).get(f"/takeout/{window.slug}/").content.decode()
    assert re.search(rf'class="card dish unavailable" id="item-{sold.pk}"', html)
    assert f'class="card dish" id="item-{tea.pk}"' in html


def test_cart_and_checkout_through_the_pages(student, window, noodles):
    client = logged_in(student)
    factories.fund_wallet(student, at_least=10_000)
    large = factories.option_ids(noodles, "Large")
    response = client.post(
        f"/takeout/{window.slug}/cart/",
        {"item": noodles.pk, "quantity": 2, "options": large},
    )
    assert response.status_code == 302
    assert client.get(f"/takeout/{window.slug}/checkout/").status_code == 200
    building = factories.building(window.campus, "D3")
    where = {"dropoff_building": building.pk, "dropoff_detail": "402", "coupon": "auto"}
    # The customer picks the building; the page shows its price (the script presses "update")
    page = client.post(f"/takeout/{window.slug}/checkout/", {**where, "preview": "1"})
    assert page.status_code == 200
    html = page.content.decode()
    quote = re.search(r'name="quote_id" value="([^"]+)"', html).group(1)
    total = re.search(r'name="expect_total_fen" value="(\d+)"', html).group(1)
    assert 'data-code="new_user"' in html
    response = client.post(
        f"/takeout/{window.slug}/checkout/", {**where, "quote_id": quote, "expect_total_fen": total}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    order = Order.objects.get(customer=student)
    assert response["Location"] == f"/orders/{order.number}/"
    assert order.total_fen == int(total)
    detail = client.get(f"/orders/{order.number}/").content.decode()
    assert 'id="takeout-track"' in detail and "Expected ready at" in detail


def test_checkout_with_a_bad_building_is_400(student, window, tea):
    client = logged_in(student)
    services.cart_add(user=student, item=tea)
    response = client.post(f"/takeout/{window.slug}/checkout/", {"dropoff_building": "nope"})
    assert response.status_code == 400


def test_add_to_cart_without_a_required_option_says_so(student, window, noodles):
    client = logged_in(student)
    response = client.post(
        f"/takeout/{window.slug}/cart/", {"item": noodles.pk, "quantity": 1}, follow=True
    )
    assert "Choose a Size" in response.content.decode()


def test_anonymous_must_log_in_to_order(client, window, tea):
    response = client.post(f"/takeout/{window.slug}/cart/", {"item": tea.pk, "quantity": 1})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(f"/takeout/{window.slug}/").status_code == 200  # menus are public


def test_cart_add_is_post_only(student, window):
    assert logged_in(student).get(f"/takeout/{window.slug}/cart/").status_code == 405


def test_takeout_order_page_is_404_for_strangers(student, other_student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    assert logged_in(student).get(f"/takeout/orders/{order.number}/").status_code == 200
    assert logged_in(other_student).get(f"/takeout/orders/{order.number}/").status_code == 404
    assert logged_in(other_student).get(f"/takeout/orders/{order.number}/track/").status_code == 404


# --- the portal: who may see it ------------------------------------------------------------------


PORTAL_PAGES = ["", "inbox/", "menu/", "settings/", "sales/", "sales.csv", "settlement/"]


@pytest.mark.parametrize("page", PORTAL_PAGES)
def test_portal_pages_render_for_the_merchants_staff(page, merchant, window, tea):
    assert logged_in(merchant).get(f"/merchant/{window.slug}/{page}").status_code == 200


@pytest.mark.parametrize("page", PORTAL_PAGES)
def test_students_get_404_on_the_portal(page, student, window):
    assert logged_in(student).get(f"/merchant/{window.slug}/{page}").status_code == 404


@pytest.mark.parametrize("page", PORTAL_PAGES)
def test_merchant_a_cannot_see_merchant_b(page, merchant, window, other_window):
    assert logged_in(merchant).get(f"/merchant/{other_window.slug}/{page}").status_code == 404


@pytest.mark.parametrize("page", PORTAL_PAGES)
def test_anonymous_visitors_are_sent_to_log_in(page, client, window):
    response = client.get(f"/merchant/{window.slug}/{page}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_portal_home_is_404_for_students_and_leads_staff_to_their_inbox(student, merchant, window):
    assert logged_in(student).get("/merchant/").status_code == 404
    response = logged_in(merchant).get("/merchant/")
    assert response["Location"] == f"/merchant/{window.slug}/"


def test_merchant_a_cannot_change_merchant_b_menu_or_orders(
    student, merchant, other_merchant, window, other_window
):
    theirs = factories.make_item(other_window, name="饺子", price_fen=1200, stock=4)
    order = factories.make_takeout(customer=student, merchant=other_window, lines=[(theirs, 1)])
    client = logged_in(merchant)
    # through their own merchant's URLs...
    assert (
        client.post(
            f"/merchant/{window.slug}/menu/items/{theirs.pk}/sold-out/", {"sold_out": "1"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/merchant/{window.slug}/menu/items/{theirs.pk}/",
            {"name": "x", "price_fen": "1", "packaging_fen": "0", "position": 0},
        ).status_code
        == 404
    )
    assert client.post(f"/merchant/{window.slug}/tickets/{order.number}/accept/").status_code == 404
    assert client.get(f"/merchant/{window.slug}/tickets/{order.number}/print/").status_code == 404
    # ...or through the other merchant's
    assert (
        client.post(
            f"/merchant/{other_window.slug}/menu/items/{theirs.pk}/stock/", {"stock": "0"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/merchant/{other_window.slug}/tickets/{order.number}/reject/", {"reason": "closing"}
        ).status_code
        == 404
    )
    theirs.refresh_from_db()
    order.takeout.refresh_from_db()
    assert (theirs.stock, theirs.sold_out) == (3, False)
    assert order.takeout.merchant_status == MerchantStatus.NEW


def test_ticket_steps_through_the_portal(merchant, student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    client = logged_in(merchant)
    inbox = client.get(f"/merchant/{window.slug}/inbox/").content.decode()
    assert f'id="ticket-{order.number}"' in inbox
    for action in ("accept", "preparing", "ready"):
        assert (
            client.post(f"/merchant/{window.slug}/tickets/{order.number}/{action}/").status_code
            == 302
        )
    order.takeout.refresh_from_db()
    assert order.takeout.merchant_status == MerchantStatus.READY
    assert client.get(f"/merchant/{window.slug}/tickets/{order.number}/accept/").status_code == 405
    assert client.post(f"/merchant/{window.slug}/tickets/{order.number}/fly/").status_code == 404


def test_reject_without_a_reason_changes_nothing(merchant, student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    response = logged_in(merchant).post(
        f"/merchant/{window.slug}/tickets/{order.number}/reject/", {}, follow=True
    )
    assert "Tell the customer why" in response.content.decode()
    order.refresh_from_db()
    assert order.status == "open"


def test_printed_ticket_carries_the_order_qr_and_its_number(merchant, student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    html = (
        logged_in(merchant)
        .get(f"/merchant/{window.slug}/tickets/{order.number}/print/")
        .content.decode()
    )
    assert "<svg" in html and order.display_number in html
    assert "#1" in html


def test_item_edit_with_a_bad_price_is_400(merchant, window):
    response = logged_in(merchant).post(
        f"/merchant/{window.slug}/menu/items/new/",
        {"name": "Soup", "price_fen": "abc", "position": 0},
    )
    assert response.status_code == 400


def test_merchant_edits_menu_hours_and_tiers(merchant, window):
    client = logged_in(merchant)
    response = client.post(
        f"/merchant/{window.slug}/menu/items/new/",
        {
            "name": "Soup",
            "price_fen": "8.5",
            "packaging_fen": "0.5",
            "position": 0,
            "active": "on",
            "periods": ["lunch", "dinner"],
            "stock": "20",
        },
    )
    assert response.status_code == 302
    soup = window.items.get(name="Soup")
    assert (soup.price_fen, soup.packaging_fen, soup.periods, soup.stock) == (
        850,
        50,
        ["dinner", "lunch"],
        20,
    )
    client.post(
        f"/merchant/{window.slug}/menu/items/{soup.pk}/options/",
        {"action": "group_add", "g-name": "Spice", "g-required": "on"},
    )
    group = soup.option_groups.get()
    client.post(
        f"/merchant/{window.slug}/menu/items/{soup.pk}/options/",
        {"action": "option_add", "group": group.pk, "o-name": "Mild", "o-price_delta_fen": "-0.5"},
    )
    assert group.options.get().price_delta_fen == -50
    response = client.post(
        f"/merchant/{window.slug}/settings/",
        {"action": "hours", **{f"day_{d}": "10:30-13:30, 17:00-01:00" for d in range(7)}},
    )
    assert response.status_code == 302
    assert window.hours.count() == 14
    bad = client.post(f"/merchant/{window.slug}/settings/", {"action": "hours", "day_0": "lunch"})
    assert bad.status_code == 400
    client.post(
        f"/merchant/{window.slug}/settings/",
        {"action": "tier_add", "threshold_fen": "20", "discount_fen": "3"},
    )
    assert str(window.tiers.get()) == "满20减3"
    client.post(
        f"/merchant/{window.slug}/settings/",
        {"action": "toggle_pause", "next": f"/merchant/{window.slug}/"},
    )
    window.refresh_from_db()
    assert window.paused


def test_sales_page_and_csv(merchant, student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 3)])
    client = logged_in(merchant)
    html = client.get(f"/merchant/{window.slug}/sales/").content.decode()
    assert 'id="stat-orders">1<' in html and "<svg" in html and "柠檬茶 × 3" in html
    csv_text = client.get(f"/merchant/{window.slug}/sales.csv?days=7").content.decode("utf-8-sig")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("day,ticket,order") and order.number in lines[1]
    assert "3x 柠檬茶" in lines[1]


def test_settlement_report_for_operators_only(operator, student, merchant, window):
    assert logged_in(operator).get("/merchant/settlement/").status_code == 200
    assert logged_in(operator).get("/merchant/settlement/?format=csv").status_code == 200
    assert logged_in(merchant).get("/merchant/settlement/").status_code == 404
    assert logged_in(student).get("/merchant/settlement/").status_code == 404


def test_home_leads_merchant_staff_to_their_portal(merchant, student, window):
    assert 'id="portal-link"' in logged_in(merchant).get("/").content.decode()
    assert 'id="portal-link"' not in logged_in(student).get("/").content.decode()


def test_next_never_leads_off_the_site(merchant, student, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        response = logged_in(merchant).post(
            f"/merchant/{window.slug}/tickets/{order.number}/accept/", {"next": evil}
        )
        assert response["Location"] == f"/merchant/{window.slug}/", evil
