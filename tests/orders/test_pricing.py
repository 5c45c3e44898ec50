"""Pricing: each component, the band, rounding in fen; the quote API; a quote honoured within its
lifetime and refused after."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from campus_errand.memo import forget_all
from orders import pricing
from orders.models import ErrandKindSetting, Kind, Order, PricingRule, SizeClass
from tests import factories

DAY = dt.time(12, 0)
NIGHT = dt.time(23, 30)


def rule(**kw) -> PricingRule:
    return PricingRule(**kw)


def kind_setting(kind: str = Kind.PARCEL, **kw) -> ErrandKindSetting:
    setting = ErrandKindSetting.default_for(None, kind)
    for name, value in kw.items():
        setattr(setting, name, value)
    return setting


def lines(kind: str = Kind.PARCEL, *, r=None, s=None, **kw) -> dict[str, int]:
    kw.setdefault("distance_m", 0)
    kw.setdefault("local_time", DAY)
    out = pricing.fee_lines(rule=r or rule(), setting=s or kind_setting(kind), kind=kind, **kw)
    codes = [line.code for line in out]
    assert len(codes) == len(set(codes)), codes
    return {line.code: line.amount_fen for line in out}


def fee(**kw) -> int:
    return sum(lines(**kw).values())


# --- each component --------------------------------------------------------------------------


def test_a_short_small_parcel_costs_the_base_fee_raised_to_the_band_minimum():
    assert lines(Kind.PARCEL, distance_m=250) == {"base": 300, "band": 200}
    assert fee(distance_m=250) == 500


@pytest.mark.parametrize(
    ("metres", "distance_fen"),
    [(300, 0), (301, 50), (400, 50), (401, 100), (1000, 350), (1001, 400)],
)
def test_distance_is_charged_per_started_100_m_beyond_the_free_300_m(metres, distance_fen):
    r = rule(band_min_fen=0)
    assert lines(Kind.PARCEL, r=r, distance_m=metres).get("distance", 0) == distance_fen


@pytest.mark.parametrize(
    ("size", "size_fen"),
    [(SizeClass.SMALL, 0), (SizeClass.MEDIUM, 100), (SizeClass.LARGE, 300), (SizeClass.HEAVY, 600)],
)
def test_size_class_adds_its_surcharge(size, size_fen):
    r = rule(band_min_fen=0)
    assert lines(Kind.PARCEL, r=r, size_class=size).get("size", 0) == size_fen
    assert lines(Kind.BUY, r=r, size_class=size).get("size", 0) == size_fen


def test_size_does_not_apply_to_documents_or_queues():
    r = rule(band_min_fen=0)
    assert "size" not in lines(Kind.DOCUMENT, r=r, size_class=SizeClass.HEAVY)
    assert "size" not in lines(Kind.QUEUE, r=r, size_class=SizeClass.HEAVY, duration_minutes=30)


@pytest.mark.parametrize(("minutes", "time_fen"), [(15, 300), (30, 300), (31, 600), (90, 900)])
def test_queueing_is_priced_per_started_half_hour_and_ignores_distance(minutes, time_fen):
    got = lines(Kind.QUEUE, r=rule(band_max_fen=10_000), distance_m=5000, duration_minutes=minutes)
    assert got["queue_time"] == time_fen
    assert "distance" not in got


def test_urgent_adds_its_fee_except_for_queues_and_custom_offers():
    r = rule(band_min_fen=0)
    assert lines(Kind.DOCUMENT, r=r, urgent=True)["urgent"] == 300
    assert "urgent" not in lines(Kind.QUEUE, r=r, urgent=True, duration_minutes=30)
    assert lines(Kind.CUSTOM, r=r, urgent=True, offered_price_fen=900) == {"offer": 900}


@pytest.mark.parametrize(
    ("at", "night"),
    [
        (dt.time(21, 59), False),
        (dt.time(22, 0), True),
        (dt.time(23, 59), True),
        (dt.time(0, 0), True),
        (dt.time(6, 59), True),
        (dt.time(7, 0), False),
        (dt.time(12, 0), False),
    ],
)
def test_night_fee_applies_inside_the_window_that_wraps_midnight(at, night):
    assert ("night" in lines(Kind.PARCEL, local_time=at)) is night


def test_a_night_window_inside_one_day_and_an_empty_window_work_too():
    r = rule(night_starts=dt.time(1, 0), night_ends=dt.time(5, 0))
    assert "night" in lines(r=r, local_time=dt.time(3, 0))
    assert "night" not in lines(r=r, local_time=dt.time(23, 0))
    r = rule(night_starts=dt.time(0, 0), night_ends=dt.time(0, 0))
    assert "night" not in lines(r=r, local_time=dt.time(0, 0))


def test_weather_switch_adds_its_fee_only_when_on():
    assert "weather" not in lines()
    assert lines(r=rule(weather_on=True, band_min_fen=0))["weather"] == 300


@pytest.mark.parametrize(
    ("open_orders", "online", "steps"),
    [(0, 0, 0), (0, 5, 0), (3, 2, 0), (4, 2, 1), (5, 2, 1), (8, 2, 2), (100, 1, 2), (1, 0, 2)],
)
def test_peak_steps_follow_the_ratio_of_open_orders_to_online_riders(open_orders, online, steps):
    assert pricing.peak_steps(rule(), open_orders=open_orders, online_riders=online) == steps


def test_peak_surcharge_is_a_percentage_of_the_subtotal_per_step():
    r = rule(band_min_fen=0, band_max_fen=100_000)
    base = {"distance_m": 1000, "size_class": SizeClass.LARGE}  # 300 + 350 + 300 = 950
    assert lines(r=r, open_orders=4, online_riders=2, **base)["peak"] == 190  # 20%
    assert lines(r=r, open_orders=9, online_riders=2, **base)["peak"] == 380  # 40%, capped
    assert "peak" not in lines(r=r, open_orders=3, online_riders=2, **base)


def test_peak_does_not_apply_to_an_order_that_opens_later():
    got = lines(open_orders=50, online_riders=1, opens_now=False)
    assert "peak" not in got


@pytest.mark.parametrize(
    ("percent", "distance_m", "expected"),
    [
        # Subtotal: base 300 + distance (1000 m: 7 steps = 350; 1100 m: 8 steps = 400).
        (10, 1000, 65),  # 650 x 10% = 65.0
        (15, 1000, 98),  # 650 x 15% = 97.5 -> 98, half up
        (7, 1000, 46),  # 650 x 7% = 45.5 -> 46
        (3, 1000, 20),  # 650 x 3% = 19.5 -> 20
        (13, 1000, 85),  # 650 x 13% = 84.5 -> 85
        (13, 1100, 91),  # 700 x 13% = 91.0
        (1, 1200, 8),  # 750 x 1% = 7.5 -> 8
    ],
)
def test_the_one_percentage_is_rounded_half_up_to_the_fen(percent, distance_m, expected):
    r = rule(band_min_fen=0, peak_percent=percent, peak_max_steps=1)
    got = lines(r=r, distance_m=distance_m, open_orders=10, online_riders=1)
    assert got["peak"] == expected
    assert all(isinstance(v, int) for v in got.values())


def test_round_half_up_helper_is_exact_on_integers():
    assert pricing.round_half_up_percent(1235, 10) == 124  # 123.5
    assert pricing.round_half_up_percent(1234, 10) == 123  # 123.4
    assert pricing.round_half_up_percent(0, 40) == 0


# --- the band --------------------------------------------------------------------------------


def test_fee_above_the_band_is_clamped_down_with_a_negative_line():
    got = lines(
        r=rule(weather_on=True),
        distance_m=3000,
        size_class=SizeClass.HEAVY,
        urgent=True,
        local_time=NIGHT,
    )
    assert sum(got.values()) == 2000
    assert got["band"] < 0


def test_fee_exactly_at_a_band_edge_has_no_band_line():
    assert "band" not in lines(r=rule(band_min_fen=300, band_max_fen=300))
    assert fee(r=rule(band_min_fen=300, band_max_fen=300)) == 300


def test_operators_band_and_base_fee_are_used():
    r = rule(band_min_fen=800, band_max_fen=3000)
    s = kind_setting(Kind.PARCEL, base_fee_fen=1000)
    assert lines(r=r, s=s) == {"base": 1000}


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([Kind.PARCEL, Kind.BUY, Kind.DOCUMENT, Kind.QUEUE]),
    distance_m=st.integers(0, 20_000),
    size=st.sampled_from(SizeClass.values),
    urgent=st.booleans(),
    hour=st.integers(0, 23),
    weather=st.booleans(),
    open_orders=st.integers(0, 200),
    online=st.integers(0, 50),
    minutes=st.integers(15, 480),
    band=st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(sorted),
)
def test_every_fee_is_whole_fen_inside_the_band_and_its_lines_add_up(
    kind, distance_m, size, urgent, hour, weather, open_orders, online, minutes, band
):
    r = rule(weather_on=weather, band_min_fen=band[0], band_max_fen=band[1])
    out = pricing.fee_lines(
        rule=r,
        setting=kind_setting(kind),
        kind=kind,
        distance_m=distance_m,
        size_class=size,
        urgent=urgent,
        local_time=dt.time(hour, 30),
        open_orders=open_orders,
        online_riders=online,
        duration_minutes=minutes,
    )
    total = sum(line.amount_fen for line in out)
    assert all(type(line.amount_fen) is int for line in out)
    assert band[0] <= total <= band[1]
    assert all(line.amount_fen >= 0 for line in out if line.code != "band")


# --- quotes through the API ------------------------------------------------------------------


@pytest.fixture
def places(campus):
    return {code: factories.building(campus, code) for code in ("C1", "P1", "D1", "D2", "D3")}


@pytest.fixture
def noon(monkeypatch):
    """Freeze the clock at a weekday noon (no night fee); returns a function to move it."""
    state = {"now": timezone.make_aware(dt.datetime(2026, 3, 10, 12, 0))}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])

    def move(**delta):
        state["now"] = state["now"] + dt.timedelta(**delta)
        return state["now"]

    return move


def parcel_payload(places, **over) -> dict:
    payload = {
        "kind": "parcel",
        "pickup_building": places["P1"].pk,
        "dropoff_building": places["D3"].pk,
        "details": {"courier": "sf", "pickup_code": "8-1-2031", "size_class": "large"},
    }
    payload.update(over)
    return payload


def test_quote_api_returns_the_breakdown_line_by_line(student, places, api, noon):
    response = api(student).post("/api/orders/quote/", parcel_payload(places), format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) >= {"lines", "total_fen", "quote_id", "expires_at", "fee_fen"}
    assert all(set(line) == {"code", "label", "amount_fen"} for line in data["lines"])
    assert sum(line["amount_fen"] for line in data["lines"]) == data["total_fen"]
    codes = [line["code"] for line in data["lines"]]
    assert codes[:3] == ["base", "distance", "size"]  # P1 -> D3: ~480 m on the test paths
    assert data["distance_m"] == pricing.walking_distance_m(
        places["P1"].campus, places["P1"], places["D3"]
    )
    expires = dt.datetime.fromisoformat(data["expires_at"])
    assert expires - timezone.now() == dt.timedelta(seconds=300)


def test_quote_distance_is_the_walk_on_the_campus_paths_not_the_straight_line(campus, places):
    from campus.geo import haversine_m

    walk = pricing.walking_distance_m(campus, places["C1"], places["D3"])
    straight = haversine_m(places["C1"].lng, places["C1"].lat, places["D3"].lng, places["D3"].lat)
    assert walk > straight  # in from the door to the road, along it, out to the other door
    assert walk == pytest.approx(straight + 100, abs=15)


def test_quote_adds_tip_and_shopping_budget_after_the_fee(student, places, api, noon):
    payload = parcel_payload(
        places,
        kind="buy",
        pickup_building=places["C1"].pk,
        tip_fen=300,
        details={"budget_cap_fen": 4500},
    )
    data = api(student).post("/api/orders/quote/", payload, format="json").json()
    codes = [line["code"] for line in data["lines"]]
    assert codes[-2:] == ["tip", "budget_cap"]
    assert data["total_fen"] == data["fee_fen"] + 300 + 4500


def test_quote_reads_the_live_peak_ratio(student, campus, places, api, noon):
    # Two open orders and no rider online: the busiest step.
    for _ in range(2):
        factories.make_errand(customer=factories.make_user(), campus=campus)
    forget_all()  # the ratio is read at most every MEMO_SECONDS: as if they came a while ago
    data = api(student).post("/api/orders/quote/", parcel_payload(places), format="json").json()
    peak = [line for line in data["lines"] if line["code"] == "peak"]
    assert peak and peak[0]["label"].endswith("(+40%)")
    factories.make_rider(campus)  # 2 open / 1 online = 2.0: one step

    def peak_label():
        data = api(student).post("/api/orders/quote/", parcel_payload(places), format="json")
        return [line["label"] for line in data.json()["lines"] if line["code"] == "peak"][0]

    # The ratio is read at most every MEMO_SECONDS in a process (campus_errand/memo.py)...
    assert peak_label().endswith("(+40%)")
    forget_all()  # ...so it shows MEMO_SECONDS later
    assert peak_label().endswith("(+20%)")


def test_operators_weather_switch_changes_new_quotes_at_once(student, campus, places, api, noon):
    before = api(student).post("/api/orders/quote/", parcel_payload(places), format="json").json()
    PricingRule.objects.create(campus=campus, weather_on=True)
    after = api(student).post("/api/orders/quote/", parcel_payload(places), format="json").json()
    assert after["fee_fen"] == before["fee_fen"] + 300
    assert "weather" in [line["code"] for line in after["lines"]]


def test_quote_needs_only_the_fields_the_price_depends_on(student, places, api):
    payload = parcel_payload(places, details={"size_class": "small"})  # no courier, no code yet
    assert api(student).post("/api/orders/quote/", payload, format="json").status_code == 200


def test_quote_endpoint_refuses_anonymous_wrong_method_and_bad_payload(student, places, api):
    assert (
        api().post("/api/orders/quote/", parcel_payload(places), format="json").status_code == 401
    )
    assert api(student).get("/api/orders/quote/").status_code == 405
    bad = api(student).post(
        "/api/orders/quote/",
        {
            "kind": "parcel",
            "pickup_building": places["P1"].pk,
            "dropoff_building": "x",
            "details": {"size_class": "enormous"},
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "dropoff_building" in bad.json()
    bad = api(student).post(
        "/api/orders/quote/",
        parcel_payload(places, details={"size_class": "enormous"}),
        format="json",
    )
    assert bad.status_code == 400
    assert "size_class" in bad.json()["details"]
    bad = api(student).post(
        "/api/orders/quote/",
        parcel_payload(places, kind="custom", details={"offered_price_fen": 5000}),
        format="json",
    )
    assert bad.status_code == 400
    assert "¥5.00" in bad.json()["details"]["offered_price_fen"][0]
    bad = api(student).post(
        "/api/orders/quote/", parcel_payload(places, tip_fen=10**6), format="json"
    )
    assert bad.status_code == 400 and "tip_fen" in bad.json()


# --- the quote at checkout ---------------------------------------------------------------------


def order_payload(places, quote_id: str, **over) -> dict:
    return {**parcel_payload(places, **over), "description": "on shelf B", "quote_id": quote_id}


def place_with_photo(client, payload):
    import json

    from tests.factories import photo_upload

    data = {**payload, "details": json.dumps(payload["details"]), "photo": photo_upload()}
    return client.post("/api/orders/", data, format="multipart")


def test_a_quote_is_honoured_within_its_lifetime_even_if_prices_rose(
    student, campus, places, api, noon
):
    client = api(student)
    quote = client.post("/api/orders/quote/", parcel_payload(places), format="json").json()
    PricingRule.objects.create(campus=campus, weather_on=True, urgent_fee_fen=999)
    noon(minutes=4, seconds=59)
    response = place_with_photo(client, order_payload(places, quote["quote_id"]))
    assert response.status_code == 201, response.content
    order = Order.objects.get(number=response.json()["number"])
    assert order.price_fen == quote["fee_fen"]
    assert [line["code"] for line in order.price_lines] == [
        line["code"] for line in quote["lines"] if line["code"] in pricing.FEE_CODES
    ]
    assert order.promised_at == timezone.now() + dt.timedelta(minutes=quote["estimated_minutes"])


def test_an_expired_quote_is_refused_with_a_clear_message_and_nothing_is_placed(
    student, places, api, noon
):
    client = api(student)
    quote = client.post("/api/orders/quote/", parcel_payload(places), format="json").json()
    noon(minutes=5, seconds=1)
    response = place_with_photo(client, order_payload(places, quote["quote_id"]))
    assert response.status_code == 409
    assert response.json()["code"] == "quote_expired"
    assert "expired" in response.json()["detail"]
    assert not Order.objects.exists()


def test_a_quote_for_other_inputs_or_another_customer_is_refused(
    student, other_student, places, api, noon
):
    quote = api(student).post("/api/orders/quote/", parcel_payload(places), format="json").json()
    changed = place_with_photo(
        api(student), order_payload(places, quote["quote_id"], dropoff_building=places["D1"].pk)
    )
    assert changed.status_code == 400
    assert "changed" in changed.json()["quote_id"][0]
    stolen = place_with_photo(api(other_student), order_payload(places, quote["quote_id"]))
    assert stolen.status_code == 400 and "quote_id" in stolen.json()
    forged = place_with_photo(api(student), order_payload(places, quote["quote_id"][:-3] + "abc"))
    assert forged.status_code == 400 and "quote_id" in forged.json()
    assert not Order.objects.exists()


def test_an_order_placed_without_a_quote_is_priced_now(student, campus, places, noon):
    order = factories.make_errand(customer=student, campus=campus, details={"size_class": "heavy"})
    lines_ = {line["code"]: line["amount_fen"] for line in order.price_lines}
    assert lines_["size"] == 600
    assert order.price_fen == sum(lines_.values())
    assert 500 <= order.price_fen <= 2000


def test_operators_edit_the_rule_in_admin_with_a_preview_of_sample_quotes(campus):
    admin_user = factories.make_user(username="admin", is_staff=True, is_superuser=True)
    rule_row = PricingRule.objects.create(campus=campus, weather_on=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    html = client.get(f"/admin/orders/pricingrule/{rule_row.pk}/change/").content.decode()
    assert "Small parcel, now" in html and "Queue for 90 minutes" in html
    assert "Bad weather" in html and "¥3.00" in html
    assert client.get("/admin/orders/pricingrule/").status_code == 200
    assert client.get("/admin/orders/errandkindsetting/").status_code == 200
