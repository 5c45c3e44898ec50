"""The demo shows takeout: canteen windows and shops with menus, and the merchant login."""

from django.conf import settings
from django.test import Client

from accounts.models import User
from campus.services import campus_load_geojson
from dispatch.demo import DEMO_PASSWORD, demo_seed
from merchants.models import Coupon, GroupMeal, Merchant


def test_demo_seed_opens_merchants_with_menus_and_a_merchant_login(db):
    campus = campus_load_geojson(path=settings.DEMO_CAMPUS_FILE)
    demo_seed(campus=campus)
    demo_seed(campus=campus)  # idempotent
    assert Merchant.objects.count() == 4
    noodles = Merchant.objects.get(slug="lanzhou-noodles")
    staff = User.objects.get(username="merchant")
    assert staff.check_password(DEMO_PASSWORD)
    assert list(noodles.staff.all()) == [staff]
    assert noodles.items.count() == 6 and noodles.tiers.count() == 2
    assert Coupon.objects.count() == 3 and GroupMeal.objects.count() == 3
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    assert client.get("/merchant/").status_code == 302
    assert client.get(f"/merchant/{noodles.slug}/").status_code == 200
    for merchant in Merchant.objects.all():
        assert client.get(f"/takeout/{merchant.slug}/").status_code == 200
    assert client.get("/takeout/meals/").status_code == 200
