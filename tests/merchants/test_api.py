"""The takeout API: browse, menu, price, order (with Idempotency-Key), and the merchant's inbox and
steps; anonymous, strangers, wrong method and bad payloads each get their answer."""

import pytest

from merchants.models import MerchantStatus
from payments import selectors as money
from tests import factories


def order_payload(item, building, **kw) -> dict:
    return {"lines": [{"item": item.pk, "quantity": 2}], "dropoff_building": building.pk, **kw}


def test_merchants_and_menu_are_public(api, window, noodles):
    merchants = api().get("/api/takeout/merchants/").json()
    assert [m["slug"] for m in merchants] == [window.slug] and merchants[0]["is_open"]
    menu = api().get(f"/api/takeout/merchants/{window.slug}/menu/").json()
    groups = menu[0]["option_groups"]
    assert [g["name"] for g in groups] == ["Size", "Toppings"]
    assert groups[0]["required"] and not groups[0]["multiple"]


def test_price_shows_every_line(api, student, window, tea):
    building = factories.building(window.campus, "D3")
    priced = (
        api(student)
        .post(
            f"/api/takeout/merchants/{window.slug}/price/",
            order_payload(tea, building),
            format="json",
        )
        .json()
    )
    codes = [line["code"] for line in priced["lines"]]
    assert codes == ["items", "delivery", "new_user"]
    assert priced["total_fen"] == sum(line["amount_fen"] for line in priced["lines"])


def test_order_through_the_api_once_per_idempotency_key(api, student, window, tea):
    factories.fund_wallet(student, at_least=10_000)
    building = factories.building(window.campus, "D3")
    client = api(student)
    url = f"/api/takeout/merchants/{window.slug}/orders/"
    first = client.post(url, order_payload(tea, building), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["merchant_status"] == "new" and body["status"] == "open"
    balance = money.wallet_balance(student)
    again = client.post(url, order_payload(tea, building), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == body["number"]
    assert money.wallet_balance(student) == balance


def test_short_wallet_is_402_and_orders_nothing(api, student, window, tea):
    building = factories.building(window.campus, "D3")
    response = api(student).post(
        f"/api/takeout/merchants/{window.slug}/orders/", order_payload(tea, building), format="json"
    )
    assert response.status_code == 402 and response.json()["code"] == "insufficient_funds"


@pytest.mark.parametrize(
    ("lines", "with_building", "field"),
    [
        ([], True, "lines"),
        ([{"item": 999999}], True, "lines"),
        ([{"item": "tea", "quantity": 0}], True, "lines"),
        ([{"item": "tea"}], False, "dropoff_building"),
    ],
)
def test_bad_payloads_are_400_with_the_field(
    api, student, window, tea, lines, with_building, field
):
    payload = {"lines": [{**x, "item": tea.pk if x["item"] == "tea" else x["item"]} for x in lines]}
    if with_building:
        payload["dropoff_building"] = factories.building(window.campus, "D3").pk
    response = api(student).post(
        f"/api/takeout/merchants/{window.slug}/orders/", payload, format="json"
    )
    assert response.status_code == 400 and field in response.json()


def test_anonymous_cannot_order(api, window, tea):
    response = api().post(f"/api/takeout/merchants/{window.slug}/orders/", {}, format="json")
    assert response.status_code == 401


def test_wrong_method_is_405(api, student, window):
    assert api(student).get(f"/api/takeout/merchants/{window.slug}/orders/").status_code == 405


def test_inbox_api_for_staff_only(
    api, student, merchant, other_merchant, window, other_window, tea
):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    inbox = api(merchant).get(f"/api/merchant/{window.slug}/tickets/").json()
    assert [t["number"] for t in inbox["new"]] == [order.number]
    assert api(student).get(f"/api/merchant/{window.slug}/tickets/").status_code == 404
    assert api(other_merchant).get(f"/api/merchant/{window.slug}/tickets/").status_code == 404
    assert api().get(f"/api/merchant/{window.slug}/tickets/").status_code == 401
    url = f"/api/merchant/{window.slug}/tickets/{order.number}/accept/"
    assert api(other_merchant).post(url).status_code == 404
    assert api(merchant).post(url).json()["merchant_status"] == MerchantStatus.ACCEPTED
    again = api(merchant).post(url)
    assert again.status_code == 409 and again.json()["code"] == "ticket_step"


def test_reject_through_the_api_needs_a_reason(api, student, merchant, window, tea):
    order = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    url = f"/api/merchant/{window.slug}/tickets/{order.number}/reject/"
    assert api(merchant).post(url, {}, format="json").status_code == 400
    done = api(merchant).post(url, {"reason": "Out of lemons"}, format="json").json()
    assert done["merchant_status"] == "rejected" and done["order_status"] == "cancelled"
