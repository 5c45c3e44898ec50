"""The installable rider app: manifest, service worker, offline page, the self-refreshing board."""

import json
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from orders import services as order_services
from orders.models import Order
from tests import factories
from tests.factories import logged_in
from tracking import live

pytestmark = pytest.mark.django_db


def test_manifest_makes_the_rider_app_installable():
    response = Client().get(reverse("riders:manifest"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    data = json.loads(response.content)
    assert data["start_url"] == "/rider/" and data["scope"] == "/rider/"
    assert data["display"] == "standalone"
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        path = finders.find(icon["src"].removeprefix("/static/"))
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert f"{image.width}x{image.height}" == icon["sizes"]


def test_service_worker_is_served_for_the_rider_scope():
    response = Client().get(reverse("riders:service_worker"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/rider/"
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assert "/static/riders/rider.js" in body and '"/rider/offline/"' in body
    assert "networkFirst" in body and "cacheFirst" in body


def test_service_worker_version_changes_with_the_shell(tmp_path, settings):
    first = Client().get(reverse("riders:service_worker")).content
    settings.STATICFILES_DIRS = [tmp_path, *settings.STATICFILES_DIRS]
    (tmp_path / "riders").mkdir()
    (tmp_path / "riders" / "rider.js").write_text("/* a new release */")
    second = Client().get(reverse("riders:service_worker")).content
    assert first != second


def test_rider_pages_link_the_manifest_and_register_the_worker(rider_male):
    response = logged_in(rider_male).get(reverse("riders:board"))
    assert reverse("riders:manifest").encode() in response.content
    assert b"riders/sw-register.js" in response.content
    assert b'http-equiv="refresh"' not in response.content  # the board refreshes itself


def test_offline_page_needs_no_login():
    response = Client().get(reverse("riders:offline"))
    assert response.status_code == 200 and b"No network" in response.content


def test_board_cards_show_pickup_dropoff_distance_fee_and_deadline(rider_male, student, campus):
    order = factories.make_order(customer=student, campus=campus, pickup="P1", dropoff="D3")
    promised = timezone.now() + timedelta(minutes=40)
    Order.objects.filter(pk=order.pk).update(promised_at=promised)
    order.refresh_from_db()

    response = logged_in(rider_male).get(reverse("riders:board_fragment"))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-number="{order.number}"' in html
    assert (
        order.pickup_building.display_name in html and order.dropoff_building.display_name in html
    )
    assert f"¥{(order.price_fen + order.tip_fen) / 100:.2f}" in html
    # P1 to D3: four road blocks of ~96 m and the two entrance paths of ~50 m.
    walk = int(html.split('data-metres="')[1].split('"')[0])
    assert 450 < walk < 550
    local = timezone.localtime(promised)
    assert f"{local:%H:%M}" in html
    assert "no-cache" in response.get("Cache-Control", "") or "max-age=0" in response.get(
        "Cache-Control", ""
    )


def test_board_card_shows_the_way_to_the_pickup_from_the_last_fix(rider_male, student, campus):
    factories.make_order(customer=student, campus=campus, pickup="C1", dropoff="D3")
    lat, lng = factories.point_in(campus, dx=-2)
    live.position_set(rider_male.pk, {"lat": lat, "lng": lng, "recorded_at": "x"})
    html = logged_in(rider_male).get(reverse("riders:board_fragment")).content.decode()
    assert "m to pickup" in html


def test_board_fragment_lists_tasks_with_the_next_step(rider_male, student, campus):
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=rider_male)
    html = logged_in(rider_male).get(reverse("riders:board_fragment")).content.decode()
    assert 'class="card order-card task"' in html
    assert 'value="picked_up"' in html and 'value="open"' in html  # next step, give back


def test_board_fragment_of_an_offline_rider_has_no_offers(campus, student):
    rider = factories.make_rider(campus, gender="male", online=False, username="off")
    factories.make_order(customer=student, campus=campus)
    html = logged_in(rider).get(reverse("riders:board_fragment")).content.decode()
    assert "order-card offer" not in html and "Go online" in html


def test_board_fragment_is_for_riders(student):
    assert logged_in(student).get(reverse("riders:board_fragment")).status_code == 403
    assert Client().get(reverse("riders:board_fragment")).status_code == 302


RIDER_PAGES = ["/rider/", "/rider/board/fragment/", "/rider/credit/", "/rider/earnings/"]
RIDER_PAGES += ["/rider/scan/", "/rider/apply/"]


@pytest.mark.parametrize("path", RIDER_PAGES)
def test_rider_pages_send_anonymous_visitors_to_log_in(path):
    response = Client().get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/rider/online/"),
        ("get", "/rider/orders/{n}/advance/"),
        ("post", "/rider/credit/"),
        ("post", "/rider/earnings/"),
        ("post", "/rider/board/fragment/"),
        ("put", "/rider/scan/{n}/"),
        ("post", "/rider/sw.js"),
    ],
)
def test_rider_pages_refuse_the_wrong_method(method, path, rider_male, order):
    response = getattr(logged_in(rider_male), method)(path.format(n=order.number))
    assert response.status_code == 405


def test_only_the_orders_rider_may_advance_it(rider_male, other_student, order):
    response = logged_in(other_student).post(
        reverse("riders:advance", args=[order.number]), {"to": "picked_up"}
    )
    assert response.status_code == 403  # not a rider at all
    rider2 = factories.make_rider(order.campus, gender="male", username="rider2")
    order_services.order_accept(order=order, rider=rider_male)
    response = logged_in(rider2).post(
        reverse("riders:advance", args=[order.number]), {"to": "picked_up"}, follow=True
    )
    order.refresh_from_db()
    assert order.status == "accepted"
    assert b"msg-error" in response.content
