"""Each errand kind's own form and rules, through the API, the pages and the services."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.utils import timezone

from orders import services
from orders.models import ErrandKindSetting, Order
from orders.status import Status
from tests import factories
from tests.factories import logged_in


def payload(campus, kind: str, *, pickup="P1", dropoff="D3", details=None, **over) -> dict:
    data = {
        "kind": kind,
        "pickup_building": factories.building(campus, pickup).pk,
        "dropoff_building": factories.building(campus, dropoff).pk,
        "description": "something",
        "details": dict(factories.ERRAND_DETAILS[kind] if details is None else details),
    }
    data.update(over)
    return data


def post_order(client, data: dict, photo=True):
    data = {**data, "details": json.dumps(data["details"], default=str)}
    if photo:
        data["photo"] = factories.photo_upload()
    return client.post("/api/orders/", data, format="multipart")


def walk(order, rider, *steps, **kw):
    for step in steps:
        order = services.order_transition(order=order, to=step, actor=rider, **kw)
    return order


@pytest.fixture
def funded(student):
    factories.fund_wallet(student, at_least=100_000)
    return student


# --- parcel pickup -----------------------------------------------------------------------------


def test_parcel_needs_courier_code_size_and_a_photo(funded, campus, api):
    response = post_order(api(funded), payload(campus, "parcel", details={}), photo=False)
    assert response.status_code == 400
    body = response.json()
    assert set(body["details"]) == {"courier", "pickup_code", "size_class"}
    assert "photo" in body


def test_parcel_is_picked_up_at_a_parcel_station(funded, campus, api):
    response = post_order(api(funded), payload(campus, "parcel", pickup="C1"))
    assert response.status_code == 400
    assert response.json()["pickup_building"] == ["Parcels are picked up at a parcel station."]


def test_operator_can_make_the_parcel_photo_optional(funded, campus, api):
    ErrandKindSetting.objects.create(campus=campus, kind="parcel", photo_required=False)
    response = post_order(api(funded), payload(campus, "parcel"), photo=False)
    assert response.status_code == 201, response.content


def test_a_kind_the_operator_switched_off_cannot_be_ordered(funded, campus, api):
    ErrandKindSetting.objects.create(campus=campus, kind="document", enabled=False)
    response = post_order(api(funded), payload(campus, "document"), photo=False)
    assert response.status_code == 400 and "kind" in response.json()


def test_pickup_code_is_stored_encrypted(funded, campus):
    order = factories.make_errand(customer=funded, campus=campus)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pickup_code FROM orders_order WHERE id = %s", [order.pk])
        raw = cursor.fetchone()[0]
    assert raw and "3-2-1045" not in raw
    assert Order.objects.get(pk=order.pk).pickup_code == "3-2-1045"


def test_pickup_code_is_shown_to_the_customer_and_the_carrying_rider_until_delivery(
    funded, campus, rider_male, api
):
    order = factories.make_errand(customer=funded, campus=campus)
    other_rider = factories.make_rider(campus, gender="male")
    url = f"/api/orders/{order.number}/"

    def code_for(user):
        response = api(user).get(url)
        return response.json()["details"]["pickup_code"] if response.status_code == 200 else 404

    board = api(rider_male).get("/api/rider/board/").json()
    mine = [o for o in board if o["number"] == order.number]
    assert mine and mine[0]["details"]["pickup_code"] is None  # the board never shows it
    assert code_for(funded) == "3-2-1045"
    services.order_accept(order=order, rider=rider_male)
    assert code_for(rider_male) == "3-2-1045"
    assert code_for(other_rider) in (None, 404)
    page = logged_in(rider_male).get(f"/orders/{order.number}/").content.decode()
    assert 'id="pickup-code"' in page and "3-2-1045" in page
    walk(order, rider_male, Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED)
    assert code_for(rider_male) is None
    assert "3-2-1045" not in logged_in(rider_male).get(f"/orders/{order.number}/").content.decode()
    assert code_for(funded) == "3-2-1045"


# --- buy for me --------------------------------------------------------------------------------


@pytest.fixture
def buy_order(funded, campus, rider_male):
    order = factories.make_errand(customer=funded, campus=campus, kind="buy", tip_fen=200)
    return services.order_accept(order=order, rider=rider_male)


def cost(client, order, fen="1250", photo=True):
    data = {"actual_cost_fen": fen}
    if photo:
        data["receipt_photo"] = factories.photo_upload("PNG")
    return client.post(f"/api/orders/{order.number}/cost/", data, format="multipart")


def test_buy_for_me_needs_a_budget_and_a_shopping_list(funded, campus, api):
    data = payload(campus, "buy", pickup="C1", details={}, description="")
    response = post_order(api(funded), data, photo=False)
    assert response.status_code == 400
    assert "budget_cap_fen" in response.json()["details"]
    assert "description" in response.json()


def test_buy_for_me_total_holds_fee_tip_and_budget(buy_order):
    assert buy_order.budget_cap_fen == 3000 and buy_order.tip_fen == 200
    assert buy_order.total_fen == buy_order.price_fen + 200 + 3000


def test_rider_records_the_actual_cost_with_a_receipt(buy_order, rider_male, api):
    response = cost(api(rider_male), buy_order)
    assert response.status_code == 200, response.content
    assert response.json()["details"] == {
        "budget_cap_fen": 3000,
        "actual_cost_fen": 1250,
        "has_receipt": True,
        "size_class": "small",
    }
    order = Order.objects.get(pk=buy_order.pk)
    assert order.receipt_photo.name.endswith(".jpg") and order.receipt_thumb
    assert order.total_fen == order.price_fen + 200 + 1250
    lines = {line["code"]: line["amount_fen"] for line in response.json()["price_lines"]}
    assert lines["actual_cost"] == 1250 and "budget_cap" not in lines
    assert sum(lines.values()) == response.json()["total_fen"] == order.total_fen
    assert order.events.last().note.startswith("Cost recorded: ¥12.50")


def test_cost_above_the_budget_cap_is_refused(buy_order, rider_male, api):
    response = cost(api(rider_male), buy_order, fen="3001")
    assert response.status_code == 400
    assert "¥30.00" in response.json()["actual_cost_fen"][0]
    assert Order.objects.get(pk=buy_order.pk).actual_cost_fen is None


def test_buy_order_is_picked_up_only_after_the_cost_is_recorded(buy_order, rider_male, api):
    refused = api(rider_male).post(
        f"/api/orders/{buy_order.number}/transition/", {"to": "picked_up"}, format="json"
    )
    assert refused.status_code == 409 and "cost" in refused.json()["detail"]
    assert cost(api(rider_male), buy_order).status_code == 200
    done = api(rider_male).post(
        f"/api/orders/{buy_order.number}/transition/", {"to": "picked_up"}, format="json"
    )
    assert done.status_code == 200


def test_record_cost_endpoint_refuses_everyone_but_the_rider(
    buy_order, funded, other_student, rider_male, api
):
    url = f"/api/orders/{buy_order.number}/cost/"
    assert cost(api(), buy_order).status_code == 401
    assert cost(api(other_student), buy_order).status_code == 404
    assert cost(api(funded), buy_order).status_code == 403
    assert api(rider_male).get(url).status_code == 405
    bad = api(rider_male).post(url, {"actual_cost_fen": "lots"}, format="multipart")
    assert bad.status_code == 400
    assert set(bad.json()) == {"actual_cost_fen", "receipt_photo"}


def test_rider_records_the_cost_on_the_order_page_in_yuan(buy_order, rider_male):
    client = logged_in(rider_male)
    page = client.get(f"/orders/{buy_order.number}/").content.decode()
    assert 'id="cost-form"' in page
    response = client.post(
        f"/orders/{buy_order.number}/cost/",
        {"actual_cost_fen": "12.5", "receipt_photo": factories.photo_upload()},
        follow=True,
    )
    assert response.status_code == 200
    assert Order.objects.get(pk=buy_order.pk).actual_cost_fen == 1250
    assert "¥12.50" in response.content.decode()


# --- documents -----------------------------------------------------------------------------------


@pytest.fixture
def document(funded, campus, rider_male):
    order = factories.make_errand(customer=funded, campus=campus, kind="document", pickup="C1")
    services.order_accept(order=order, rider=rider_male)
    return walk(order, rider_male, Status.PICKED_UP, Status.DELIVERING)


def deliver(client, order, code=None):
    data = {"to": "delivered"} | ({"code": code} if code is not None else {})
    return client.post(f"/api/orders/{order.number}/transition/", data, format="json")


def test_confidential_document_gets_a_code_only_the_customer_sees(
    document, funded, rider_male, api
):
    assert len(document.delivery_code) == 4 and document.delivery_code.isdigit()
    mine = api(funded).get(f"/api/orders/{document.number}/").json()["details"]
    assert mine["delivery_code"] == document.delivery_code
    theirs = api(rider_male).get(f"/api/orders/{document.number}/").json()["details"]
    assert theirs == {"confidential": True, "needs_delivery_code": True, "delivery_code": None}
    page = logged_in(rider_male).get(f"/orders/{document.number}/").content.decode()
    assert 'id="delivery-code"' not in page and 'id="deliver-form"' in page


def test_confidential_document_is_delivered_only_with_the_right_code(document, rider_male, api):
    client = api(rider_male)
    missing = deliver(client, document)
    assert missing.status_code == 400 and missing.json()["code"] == "delivery_code"
    wrong = "0000" if document.delivery_code != "0000" else "1111"
    assert "wrong" in deliver(client, document, wrong).json()["detail"]
    assert deliver(client, document, document.delivery_code).status_code == 200
    assert Order.objects.get(pk=document.pk).status == Status.DELIVERED


def test_too_many_wrong_codes_lock_the_delivery_for_a_while(document, rider_male, api):
    wrong = "0000" if document.delivery_code != "0000" else "1111"
    for _ in range(5):
        assert deliver(api(rider_male), document, wrong).status_code == 400
    locked = deliver(api(rider_male), document, document.delivery_code)
    assert locked.status_code == 400 and "Too many" in locked.json()["detail"]


def test_rider_delivers_with_the_code_on_the_order_page(document, rider_male):
    client = logged_in(rider_male)
    client.post(f"/orders/{document.number}/deliver/", {"code": "x"})
    assert Order.objects.get(pk=document.pk).status == Status.DELIVERING
    client.post(f"/orders/{document.number}/deliver/", {"code": document.delivery_code})
    assert Order.objects.get(pk=document.pk).status == Status.DELIVERED


def test_ordinary_document_needs_no_code(funded, campus, rider_male, api):
    order = factories.make_errand(
        customer=funded,
        campus=campus,
        kind="document",
        pickup="C1",
        details={"confidential": False},
    )
    assert order.delivery_code == ""
    services.order_accept(order=order, rider=rider_male)
    walk(order, rider_male, Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED)


# --- queue / seat holding ----------------------------------------------------------------------


@pytest.fixture
def queue_order(funded, campus, rider_male):
    order = factories.make_errand(customer=funded, campus=campus, kind="queue", pickup="C1")
    return services.order_accept(order=order, rider=rider_male)


def check_in(client, order, at):
    lat, lng = at
    return client.post(
        f"/api/orders/{order.number}/check-in/", {"lat": lat, "lng": lng}, format="json"
    )


def at_building(building, metres_north: float = 0):
    return (building.lat + metres_north / 111_195, building.lng)


def test_queue_is_priced_by_time_and_happens_at_one_place(queue_order):
    lines = {line["code"]: line["amount_fen"] for line in queue_order.price_lines}
    assert lines["queue_time"] == 600 and "distance" not in lines
    assert queue_order.dropoff_building_id == queue_order.pickup_building_id
    assert queue_order.promised_at == queue_order.start_at + dt.timedelta(minutes=60)


def test_queue_needs_a_start_time_and_a_duration(funded, campus, api):
    data = payload(campus, "queue", pickup="C1", dropoff="C1", details={})
    response = post_order(api(funded), data, photo=False)
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"start_at", "duration_minutes"}


def test_rider_checks_in_at_the_place(queue_order, rider_male, api):
    place = queue_order.pickup_building
    response = check_in(api(rider_male), queue_order, at_building(place, metres_north=40))
    assert response.status_code == 200, response.content
    order = Order.objects.get(pk=queue_order.pk)
    assert order.checked_in_at is not None
    assert 35 <= order.check_in_distance_m <= 45
    assert response.json()["details"]["checked_in_at"] is not None
    assert order.events.last().note.startswith("Rider checked in at")


def test_check_in_far_from_the_place_is_refused(queue_order, rider_male, api):
    place = queue_order.pickup_building
    response = check_in(api(rider_male), queue_order, at_building(place, metres_north=400))
    assert response.status_code == 409 and "m from" in response.json()["detail"]
    assert Order.objects.get(pk=queue_order.pk).checked_in_at is None


def test_check_in_long_before_the_start_is_refused(funded, campus, rider_male, api):
    start = timezone.now() + dt.timedelta(hours=3)
    order = factories.make_errand(
        customer=funded, campus=campus, kind="queue", pickup="C1", details={"start_at": start}
    )
    Order.objects.filter(pk=order.pk).update(opens_at=None)  # let the rider take it now
    services.order_accept(order=order, rider=rider_male)
    response = check_in(api(rider_male), order, at_building(order.pickup_building))
    assert response.status_code == 409 and "Too early" in response.json()["detail"]


def test_queue_is_started_only_after_check_in(queue_order, rider_male, api):
    url = f"/api/orders/{queue_order.number}/transition/"
    refused = api(rider_male).post(url, {"to": "picked_up"}, format="json")
    assert refused.status_code == 409 and "Check in" in refused.json()["detail"]
    check_in(api(rider_male), queue_order, at_building(queue_order.pickup_building))
    assert api(rider_male).post(url, {"to": "picked_up"}, format="json").status_code == 200


def test_check_in_endpoint_refuses_everyone_but_the_rider(
    queue_order, funded, other_student, rider_male, api
):
    url = f"/api/orders/{queue_order.number}/check-in/"
    here = at_building(queue_order.pickup_building)
    assert check_in(api(), queue_order, here).status_code == 401
    assert check_in(api(other_student), queue_order, here).status_code == 404
    assert check_in(api(funded), queue_order, here).status_code == 403
    assert api(rider_male).get(url).status_code == 405
    bad = api(rider_male).post(url, {"lat": 200, "lng": "east"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"lat", "lng"}


# --- custom ------------------------------------------------------------------------------------


def test_custom_errand_costs_the_customers_offer(funded, campus, api):
    data = payload(campus, "custom", pickup="C1", details={"offered_price_fen": 1200})
    response = post_order(api(funded), data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["price_fen"] == 1200
    assert [line["code"] for line in body["price_lines"]] == ["offer"]


@pytest.mark.parametrize("offer", [499, 2001])
def test_custom_offer_outside_the_band_is_refused(offer, funded, campus, api):
    data = payload(campus, "custom", pickup="C1", details={"offered_price_fen": offer})
    response = post_order(api(funded), data)
    assert response.status_code == 400
    assert "between ¥5.00 and ¥20.00" in response.json()["details"]["offered_price_fen"][0]
    assert not Order.objects.exists()


# --- the order page, kind by kind ----------------------------------------------------------------

KIND_FIELDS = {
    "parcel": ["courier", "pickup_code", "size_class"],
    "buy": ["budget_cap_fen", "size_class"],
    "document": ["confidential"],
    "queue": ["start_at", "duration_minutes"],
    "custom": ["offered_price_fen"],
}


@pytest.mark.parametrize("kind", list(KIND_FIELDS))
def test_each_kind_has_its_own_form(kind, student, campus):
    html = logged_in(student).get(f"/orders/new/?kind={kind}").content.decode()
    for name in KIND_FIELDS[kind]:
        assert f'name="{name}"' in html
    others = {n for k, names in KIND_FIELDS.items() if k != kind for n in names}
    for name in others - set(KIND_FIELDS[kind]):
        assert f'name="{name}"' not in html
    assert ('name="dropoff_building"' in html) is (kind != "queue")
    assert 'data-quote-url="/api/orders/quote/"' in html
    assert "orders/order_form.js" in html


def page_data(campus, **over) -> dict:
    data = {
        "kind": "parcel",
        "pickup_building": factories.building(campus, "P1").pk,
        "pickup_detail": "shelf 3",
        "dropoff_building": factories.building(campus, "D3").pk,
        "dropoff_detail": "402",
        "description": "",
        "required_gender": "any",
        "tip_fen": "100",
        **factories.ERRAND_DETAILS["parcel"],
    }
    data.update(over)
    return data


def test_without_a_quote_the_page_shows_the_price_to_confirm_first(funded, campus):
    client = logged_in(funded)
    response = client.post("/orders/new/", page_data(campus, photo=factories.photo_upload()))
    assert response.status_code == 200
    assert not Order.objects.exists()
    quote = response.context["quote"]
    html = response.content.decode()
    assert 'id="quote-total"' in html and f'value="{quote.token}"' in html
    placed = client.post(
        "/orders/new/",
        page_data(campus, photo=factories.photo_upload(), quote_id=quote.token),
    )
    order = Order.objects.get()
    assert placed.status_code == 302 and placed["Location"] == f"/orders/{order.number}/"
    assert order.price_fen == quote.fee_fen and order.tip_fen == 100
    assert order.total_fen == quote.total_fen
    assert (order.courier, order.pickup_code, order.dropoff_detail) == ("sf", "3-2-1045", "402")


def test_the_page_refuses_an_expired_quote_and_shows_the_new_price(funded, campus, monkeypatch):
    from orders import pricing

    client = logged_in(funded)
    first = client.post("/orders/new/", page_data(campus, photo=factories.photo_upload()))
    quote = first.context["quote"]
    later = timezone.now() + dt.timedelta(minutes=6)
    monkeypatch.setattr(timezone, "now", lambda: later)
    response = client.post(
        "/orders/new/", page_data(campus, photo=factories.photo_upload(), quote_id=quote.token)
    )
    assert response.status_code == 409
    assert not Order.objects.exists()
    assert response.context["quote"].token != quote.token
    assert str(pricing.QuoteExpired.default_message) in response.content.decode()


def test_page_shows_field_messages_for_the_kind(funded, campus):
    response = logged_in(funded).post(
        "/orders/new/?kind=buy",
        {"kind": "buy", "pickup_building": factories.building(campus, "C1").pk},
    )
    assert response.status_code == 400
    assert "budget_cap_fen" in response.context["form"].details.errors
    assert "dropoff_building" in response.context["form"].errors
    assert not Order.objects.exists()


def test_queue_page_form_needs_no_drop_off(funded, campus):
    client = logged_in(funded)
    start = (timezone.localtime() + dt.timedelta(minutes=25)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "kind": "queue",
        "pickup_building": factories.building(campus, "C1").pk,
        "pickup_detail": "window 3",
        "description": "hold two seats",
        "required_gender": "any",
        "start_at": start,
        "duration_minutes": "90",
    }
    quote = client.post("/orders/new/?kind=queue", data).context["quote"]
    response = client.post("/orders/new/?kind=queue", {**data, "quote_id": quote.token})
    assert response.status_code == 302, response.context["form"].errors
    order = Order.objects.get()
    assert order.dropoff_building_id == order.pickup_building_id
    assert order.duration_minutes == 90


def test_reorder_prefills_the_form_from_an_earlier_order(funded, other_student, campus):
    order = factories.make_errand(
        customer=funded, campus=campus, kind="buy", dropoff="D2", tip_fen=300
    )
    client = logged_in(funded)
    detail = client.get(f"/orders/{order.number}/").content.decode()
    assert f"/orders/new/?reorder={order.number}" in detail
    response = client.get(f"/orders/new/?reorder={order.number}")
    form = response.context["form"]
    assert form.errand_kind == "buy"
    html = response.content.decode()
    assert 'value="30.00"' in html  # the budget, in yuan
    assert form["dropoff_building"].value() == factories.building(campus, "D2").pk
    assert form["tip_fen"].value() == 300
    assert logged_in(other_student).get(f"/orders/new/?reorder={order.number}").status_code == 404


# --- the order page's new actions: who may call them, and bad input -----------------------------

PAGE_ACTIONS = ["cost/", "check-in/", "deliver/", "rate/"]
PAGE_IMAGES = ["photo/thumb/", "receipt/"]


@pytest.mark.parametrize("suffix", PAGE_ACTIONS + PAGE_IMAGES)
def test_page_actions_send_anonymous_visitors_to_log_in_and_hide_from_strangers(
    suffix, buy_order, other_student, client
):
    url = f"/orders/{buy_order.number}/{suffix}"
    method = "get" if suffix in PAGE_IMAGES else "post"
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert getattr(logged_in(other_student), method)(url).status_code == 404


@pytest.mark.parametrize("suffix", PAGE_ACTIONS + PAGE_IMAGES)
def test_page_actions_refuse_the_wrong_method(suffix, buy_order, funded):
    url = f"/orders/{buy_order.number}/{suffix}"
    wrong = "post" if suffix in PAGE_IMAGES else "get"
    assert getattr(logged_in(funded), wrong)(url).status_code == 405


def test_bad_cost_on_the_page_is_400_with_field_messages(buy_order, rider_male):
    response = logged_in(rider_male).post(
        f"/orders/{buy_order.number}/cost/",
        {"actual_cost_fen": "12.345", "receipt_photo": factories.photo_upload()},
    )
    assert response.status_code == 400
    assert "actual_cost_fen" in response.context["cost_form"].errors
    too_much = logged_in(rider_male).post(
        f"/orders/{buy_order.number}/cost/",
        {"actual_cost_fen": "31", "receipt_photo": factories.photo_upload()},
    )
    assert too_much.status_code == 400
    assert "¥30.00" in too_much.content.decode()
    assert Order.objects.get(pk=buy_order.pk).actual_cost_fen is None


def test_bad_rating_or_check_in_on_the_page_is_400(delivered_document, funded, rider_male):
    response = logged_in(funded).post(f"/orders/{delivered_document.number}/rate/", {"stars": 9})
    assert response.status_code == 400
    assert "stars" in response.context["rating_form"].errors
    response = logged_in(rider_male).post(
        f"/orders/{delivered_document.number}/check-in/", {"lat": "north"}
    )
    assert response.status_code == 400


@pytest.fixture
def delivered_document(document, rider_male):
    return walk(document, rider_male, Status.DELIVERED, code=document.delivery_code)


def test_operators_do_not_see_the_codes_in_admin(document, campus):
    admin_user = factories.make_user(username="admin", is_staff=True, is_superuser=True)
    parcel = factories.make_errand(customer=document.customer, campus=campus)
    Order.objects.filter(pk=document.pk).update(delivery_code="Q7Q7")  # unlike any other text
    client = logged_in(admin_user)
    for order, secret in ((document, "Q7Q7"), (parcel, "3-2-1045")):
        html = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
        assert order.number in html and secret not in html


def test_the_riders_task_card_links_to_the_order_page_with_the_kind_steps(buy_order, rider_male):
    html = logged_in(rider_male).get("/rider/").content.decode()
    assert f'href="/orders/{buy_order.number}/"' in html
