"""Proof of pickup and delivery (tracking/proof.py), enforced in orders' one transition service:
per campus and kind, the parcel's pickup code, the customer's delivery code, a photo, or the
merchant's confirmation; offered on the rider's board and the order page."""

import pytest

from orders import services
from orders.errors import DeliveryCodeRefused, NotAllowed, OrderError, StepNotReady
from orders.models import Order
from orders.status import Status
from tests import factories
from tests.factories import logged_in
from tracking import proof
from tracking.models import OrderProof, ProofMethod, ProofSettings

M = ProofMethod


@pytest.fixture
def funded(student):
    factories.fund_wallet(student, at_least=100_000)
    return student


def require(campus, kind="parcel", *, pickup=M.NONE, delivery=M.NONE):
    ProofSettings.objects.update_or_create(
        campus=campus, kind=kind, defaults={"pickup": pickup, "delivery": delivery}
    )


def parcel(customer, campus, rider=None, **kw):
    order = factories.make_errand(customer=customer, campus=campus, kind="parcel", **kw)
    if rider is not None:
        order = services.order_accept(order=order, rider=rider)
    return order


def step(order, rider, to, **kw):
    return services.order_transition(order=order, to=to, actor=rider, **kw)


def on_the_way(order, rider):
    order = step(order, rider, Status.PICKED_UP, code=order.pickup_code)
    return step(order, rider, Status.DELIVERING)


# --- defaults ----------------------------------------------------------------------------------


def test_without_settings_only_confidential_documents_need_a_code(funded, campus, rider_male):
    order = parcel(funded, campus, rider_male)
    assert order.delivery_code == ""
    order = step(order, rider_male, Status.PICKED_UP)
    order = step(order, rider_male, Status.DELIVERING)
    assert step(order, rider_male, Status.DELIVERED).status == Status.DELIVERED
    assert not OrderProof.objects.exists()
    document = factories.make_errand(customer=funded, campus=campus, kind="document", pickup="C1")
    assert proof.required_method(document, "delivery") == M.CODE


# --- pickup ------------------------------------------------------------------------------------


def test_parcel_pickup_needs_the_code_on_its_label(funded, campus, rider_male, api):
    require(campus, pickup=M.CODE)
    order = parcel(funded, campus, rider_male)
    url = f"/api/orders/{order.number}/transition/"
    missing = api(rider_male).post(url, {"to": "picked_up"}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "proof_required"
    wrong = api(rider_male).post(url, {"to": "picked_up", "code": "3-2-1046"}, format="json")
    assert wrong.status_code == 400 and "label" in wrong.json()["detail"]
    # Typed as it reads on the label: case, spaces and dashes do not matter.
    right = api(rider_male).post(url, {"to": "picked_up", "code": "3 2 1045"}, format="json")
    assert right.status_code == 200
    confirmed = OrderProof.objects.get(order=order)
    assert (confirmed.stage, confirmed.method, confirmed.actor) == ("pickup", "code", rider_male)


def test_pickup_by_photo(funded, campus, rider_male):
    require(campus, pickup=M.PHOTO)
    order = parcel(funded, campus, rider_male)
    with pytest.raises(proof.ProofRequired, match="photo"):
        step(order, rider_male, Status.PICKED_UP)
    proof.proof_photo_add(
        order=order, rider=rider_male, stage="pickup", photo=factories.photo_upload()
    )
    assert step(order, rider_male, Status.PICKED_UP).status == Status.PICKED_UP


def test_pickup_waits_for_the_merchants_hand_over(funded, campus, rider_male, operator):
    require(campus, pickup=M.MERCHANT)
    order = parcel(funded, campus, rider_male)
    with pytest.raises(StepNotReady, match="merchant"):
        step(order, rider_male, Status.PICKED_UP)
    first = proof.proof_merchant_confirm(order=order, by=operator)
    assert proof.proof_merchant_confirm(order=order, by=operator) == first  # idempotent
    assert step(order, rider_male, Status.PICKED_UP).status == Status.PICKED_UP


# --- delivery ----------------------------------------------------------------------------------


def test_new_orders_get_a_delivery_code_when_the_campus_asks_for_one(funded, campus, student):
    require(campus, delivery=M.CODE)
    order = parcel(funded, campus)
    assert len(order.delivery_code) == 4 and order.delivery_code.isdigit()
    page = logged_in(student).get(f"/orders/{order.number}/").content.decode()
    assert order.delivery_code in page  # the customer sees it ...
    require(campus, kind="buy", delivery=M.PHOTO)
    buy = factories.make_errand(customer=funded, campus=campus, kind="buy")
    assert buy.delivery_code == ""  # ... and only orders that need one get one


def test_delivery_needs_the_customers_code(funded, campus, rider_male):
    require(campus, delivery=M.CODE)
    order = on_the_way(parcel(funded, campus, rider_male), rider_male)
    with pytest.raises(DeliveryCodeRefused):
        step(order, rider_male, Status.DELIVERED)
    with pytest.raises(DeliveryCodeRefused, match="wrong"):
        step(
            order,
            rider_male,
            Status.DELIVERED,
            code="0000" if order.delivery_code != "0000" else "1111",
        )
    delivered = step(order, rider_male, Status.DELIVERED, code=order.delivery_code)
    assert delivered.status == Status.DELIVERED
    assert OrderProof.objects.get(order=order, stage="delivery").method == "code"


def test_a_photo_does_not_replace_a_required_code(funded, campus, rider_male):
    require(campus, delivery=M.CODE)
    order = on_the_way(parcel(funded, campus, rider_male), rider_male)
    proof.proof_photo_add(
        order=order, rider=rider_male, stage="delivery", photo=factories.photo_upload()
    )
    with pytest.raises(DeliveryCodeRefused):
        step(order, rider_male, Status.DELIVERED)


def test_delivery_by_code_or_photo(funded, campus, rider_male):
    require(campus, delivery=M.CODE_OR_PHOTO)
    by_code = on_the_way(parcel(funded, campus, rider_male), rider_male)
    step(by_code, rider_male, Status.DELIVERED, code=by_code.delivery_code)
    by_photo = on_the_way(parcel(funded, campus, rider_male), rider_male)
    with pytest.raises(DeliveryCodeRefused, match="or add a photo"):
        step(by_photo, rider_male, Status.DELIVERED)
    proof.proof_photo_add(
        order=by_photo, rider=rider_male, stage="delivery", photo=factories.photo_upload()
    )
    assert step(by_photo, rider_male, Status.DELIVERED).status == Status.DELIVERED


def test_an_order_placed_before_codes_were_asked_for_is_delivered_with_a_photo(
    funded, campus, rider_male
):
    order = on_the_way(parcel(funded, campus, rider_male), rider_male)
    require(campus, delivery=M.CODE)  # switched on after the order was placed: it has no code
    assert proof.step_proof(Order.objects.get(pk=order.pk), Status.DELIVERED).method == M.PHOTO
    with pytest.raises(proof.ProofRequired):
        step(order, rider_male, Status.DELIVERED)


def test_a_confidential_document_always_needs_the_code(funded, campus, rider_male):
    require(campus, kind="document", delivery=M.PHOTO)  # the campus cannot switch it to a photo
    document = factories.make_errand(customer=funded, campus=campus, kind="document", pickup="C1")
    document = services.order_accept(order=document, rider=rider_male)
    document = step(step(document, rider_male, Status.PICKED_UP), rider_male, Status.DELIVERING)
    proof.proof_photo_add(
        order=document, rider=rider_male, stage="delivery", photo=factories.photo_upload()
    )
    with pytest.raises(DeliveryCodeRefused):
        step(document, rider_male, Status.DELIVERED)


def test_operators_override_and_it_is_recorded(funded, campus, rider_male, operator):
    require(campus, pickup=M.CODE, delivery=M.CODE)
    order = parcel(funded, campus, rider_male)
    order = step(order, operator, Status.PICKED_UP)
    order = step(order, operator, Status.DELIVERING)
    step(order, operator, Status.DELIVERED)
    overrides = OrderProof.objects.filter(order=order, method="override")
    assert sorted(overrides.values_list("stage", flat=True)) == ["delivery", "pickup"]


# --- photos ------------------------------------------------------------------------------------


def test_only_the_carrying_rider_adds_photos_at_the_right_time(funded, campus, rider_male, student):
    order = parcel(funded, campus, rider_male)
    photo = factories.photo_upload
    with pytest.raises(NotAllowed):
        proof.proof_photo_add(order=order, rider=student, stage="pickup", photo=photo())
    with pytest.raises(StepNotReady):
        proof.proof_photo_add(order=order, rider=rider_male, stage="delivery", photo=photo())
    for _ in range(proof.PHOTOS_PER_STEP):
        proof.proof_photo_add(order=order, rider=rider_male, stage="pickup", photo=photo())
    with pytest.raises(OrderError, match="most"):
        proof.proof_photo_add(order=order, rider=rider_male, stage="pickup", photo=photo())


def test_proof_photos_are_clean_and_shown_only_to_the_order_people(
    funded, campus, rider_male, student, other_student, operator
):
    order = parcel(funded, campus, rider_male)
    added = proof.proof_photo_add(
        order=order,
        rider=rider_male,
        stage="pickup",
        photo=factories.photo_upload(exif_gps=True),
    )
    from PIL import Image

    with added.photo.open("rb") as fh, Image.open(fh) as image:
        assert not image.getexif()  # re-encoded: no camera, no GPS
    url = f"/orders/{order.number}/proofs/{added.pk}/photo/"
    for user in (student, rider_male, operator):
        assert logged_in(user).get(url).status_code == 200
    assert logged_in(other_student).get(url).status_code == 404
    page = logged_in(student).get(f"/orders/{order.number}/").content.decode()
    assert f"/proofs/{added.pk}/thumb/" in page


# --- the rider's forms -------------------------------------------------------------------------


def test_the_board_asks_for_the_code_and_the_step_goes_through(funded, campus, rider_male):
    require(campus, pickup=M.CODE_OR_PHOTO)
    order = parcel(funded, campus, rider_male)
    client = logged_in(rider_male)
    board = client.get("/rider/").content.decode()
    assert f'action="/orders/{order.number}/proof/"' in board
    assert 'name="code"' in board and 'name="photo"' in board
    response = client.post(
        f"/orders/{order.number}/proof/", {"to": "picked_up", "code": "x", "next": "/rider/"}
    )
    assert response.status_code == 302 and response["Location"] == "/rider/"
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED  # a wrong code
    response = client.post(
        f"/orders/{order.number}/proof/",
        {"to": "picked_up", "photo": factories.photo_upload(), "next": "https://evil.example/"},
    )
    assert response["Location"] == f"/orders/{order.number}/"  # never off-site
    assert Order.objects.get(pk=order.pk).status == Status.PICKED_UP
    assert OrderProof.objects.get(order=order).method == "photo"


def test_the_board_shows_no_proof_form_when_none_is_needed(funded, campus, rider_male):
    order = parcel(funded, campus, rider_male)
    board = logged_in(rider_male).get("/rider/").content.decode()
    assert f"/orders/{order.number}/proof/" not in board
    assert f"/rider/orders/{order.number}/advance/" in board


def test_strangers_cannot_step_through_the_proof_form(funded, campus, rider_male, other_student):
    order = parcel(funded, campus, rider_male)
    response = logged_in(other_student).post(
        f"/orders/{order.number}/proof/", {"to": "picked_up", "code": order.pickup_code}
    )
    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
