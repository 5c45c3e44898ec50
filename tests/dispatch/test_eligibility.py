"""Who may take which order (orders.rules, the one place), as the board, the dispatcher and the
accept button all apply it: gender pools and building rules, online, approved, capacity, reach,
offers reserved for another rider, and the campus's dispatch mode."""

import pytest
from django.urls import reverse

from dispatch.models import Mode, Offer, OfferStatus
from orders import rules
from orders import services as order_services
from orders.errors import NotAllowed
from riders.selectors import rider_board
from tests import factories

# (rider gender, order's required gender, drop-off building, refusal or None). D1 admits men
# only, D2 women only, D3 anyone. Orders whose required gender the drop-off refuses cannot be
# placed at all (order_create), so they are not here.
CASES = [
    ("male", "any", "D3", None),
    ("male", "any", "D1", None),
    ("male", "male", "D1", None),
    ("male", "male", "D3", None),
    ("male", "any", "D2", "cannot enter the drop-off building"),
    ("male", "female", "D2", "asked for a rider of the other gender"),
    ("male", "female", "D3", "asked for a rider of the other gender"),
    ("female", "any", "D3", None),
    ("female", "any", "D2", None),
    ("female", "female", "D2", None),
    ("female", "female", "D3", None),
    ("female", "any", "D1", "cannot enter the drop-off building"),
    ("female", "male", "D1", "asked for a rider of the other gender"),
    ("female", "male", "D3", "asked for a rider of the other gender"),
    ("undisclosed", "any", "D3", None),
    ("undisclosed", "any", "D1", "cannot enter the drop-off building"),
    ("undisclosed", "any", "D2", "cannot enter the drop-off building"),
    ("undisclosed", "male", "D3", "asked for a rider of the other gender"),
]


@pytest.mark.parametrize(("gender", "required", "dropoff", "refusal"), CASES)
def test_gender_and_building_rules(campus, student, gender, required, dropoff, refusal):
    rider = factories.make_rider(campus, gender=gender)
    order = factories.make_order(
        customer=student, campus=campus, dropoff=dropoff, required_gender=required
    )
    reason = rules.rider_refusal(rider, order)
    on_board = order in rider_board(rider)
    in_pool = gender in rules.admitted_pools(required, order.dropoff_building.gender_rule)
    if refusal is None:
        assert reason is None
        assert on_board and in_pool
        order_services.order_accept(order=order, rider=rider)
    else:
        assert refusal in reason
        assert not on_board and not in_pool
        with pytest.raises(NotAllowed, match=refusal):
            order_services.order_accept(order=order, rider=rider)


def test_offline_unapproved_own_and_other_campus_orders_are_refused(campus, student):
    order = factories.make_order(customer=student, campus=campus)
    offline = factories.make_rider(campus, online=False)
    unapproved = factories.make_rider(campus, verified=False)
    elsewhere = factories.make_rider(factories.make_campus())
    assert "Go online" in rules.rider_refusal(offline, order)
    assert "not been approved" in rules.rider_refusal(unapproved, order)
    assert "another campus" in rules.rider_refusal(elsewhere, order)
    rider_customer = factories.make_rider(campus, gender="female")
    own = factories.make_order(customer=rider_customer, campus=campus)
    assert "your own order" in rules.rider_refusal(rider_customer, own)
    assert own not in rider_board(rider_customer)


def test_a_rider_at_capacity_is_refused_and_sees_an_empty_board(campus, student, rider_male):
    factories.dispatch_settings(campus, rider_capacity=2)
    first, second, third = (factories.make_order(customer=student, campus=campus) for _ in "abc")
    order_services.order_accept(order=first, rider=rider_male)
    assert rules.rider_refusal(rider_male, third) is None
    order_services.order_accept(order=second, rider=rider_male)
    assert "your limit" in rules.rider_refusal(rider_male, third)
    assert rider_board(rider_male) == []
    with pytest.raises(NotAllowed, match="your limit"):
        order_services.order_accept(order=third, rider=rider_male)
    # Delivering one frees a place.
    for step in ("picked_up", "delivering", "delivered"):
        order_services.order_transition(order=first, to=step, actor=rider_male)
    assert rules.rider_refusal(rider_male, third) is None


def test_reach_counts_walking_distance_on_the_paths(campus, student, rider_male):
    factories.dispatch_settings(campus, reach_m=250)
    near = factories.make_order(customer=student, campus=campus, pickup="C1")  # x = -2
    far = factories.make_order(customer=student, campus=campus, pickup="D3", dropoff="D3")
    # Unknown position: not held against the rider.
    assert rules.rider_refusal(rider_male, far) is None
    factories.set_position(rider_male, dx=-2, dy=0)  # on the road below C1
    assert rules.rider_refusal(rider_male, near) is None
    assert "beyond the 250 m reach" in rules.rider_refusal(rider_male, far)
    assert rider_board(rider_male) == [near]
    with pytest.raises(NotAllowed, match="reach"):
        order_services.order_accept(order=far, rider=rider_male)


def test_an_order_offered_to_one_rider_is_reserved_for_them(campus, student, rider_male):
    other = factories.make_rider(campus, gender="male")
    order = factories.make_order(customer=student, campus=campus)
    from django.utils import timezone

    now = timezone.now()
    offer = Offer.objects.create(
        campus=campus,
        order=order,
        rider=other,
        created_at=now,
        expires_at=now + timezone.timedelta(seconds=30),
    )
    assert "offered to another rider" in rules.rider_refusal(rider_male, order)
    assert order not in rider_board(rider_male)
    assert rules.rider_refusal(other, order) is None
    Offer.objects.filter(pk=offer.pk).update(status=OfferStatus.DECLINED)
    assert rules.rider_refusal(rider_male, order) is None


def test_scanning_an_order_applies_the_same_rules(campus, student, rider_female):
    from riders import services as rider_services

    scan = getattr(rider_services, "rider_scan_order", None)
    if scan is None:
        pytest.skip("scan-to-accept is not in riders.services")
    order = factories.make_order(customer=student, campus=campus, dropoff="D1")  # men only
    with pytest.raises(NotAllowed, match="cannot enter"):
        scan(user=rider_female, code=order.number)
    factories.dispatch_settings(campus, rider_capacity=1)
    mine = factories.make_order(customer=student, campus=campus)
    assert scan(user=rider_female, code=mine.number).action == "accepted"
    another = factories.make_order(customer=student, campus=campus)
    with pytest.raises(NotAllowed, match="your limit"):
        scan(user=rider_female, code=another.number)


# --- the board per mode --------------------------------------------------------------------------


def test_grab_board_is_sorted_by_a_score_shown_in_parts(campus, student, rider_male, client):
    factories.set_position(rider_male, dx=-2, dy=0)
    close_cheap = factories.make_order(customer=student, campus=campus, pickup="C1")
    far_cheap = factories.make_order(customer=student, campus=campus, pickup="D3")
    board = rider_board(rider_male)
    assert board == [close_cheap, far_cheap]
    score = board[0].grab_score
    assert score.distance_m < board[1].grab_score.distance_m
    assert score.total == round(score.distance_points + score.fee_points + score.urgency_points, 1)
    client.force_login(rider_male)
    html = client.get(reverse("riders:board")).content.decode()
    assert "m to pickup" in html and f"★ {score.total}" in html


def test_auto_mode_board_shows_no_open_orders(campus, student, rider_male):
    factories.make_order(customer=student, campus=campus)
    factories.dispatch_settings(campus, mode=Mode.AUTO)
    assert rider_board(rider_male) == []


def test_hybrid_board_shows_orders_after_n_unanswered_offers(campus, student, rider_male):
    from django.utils import timezone

    factories.dispatch_settings(campus, mode=Mode.HYBRID, hybrid_fallback_offers=2)
    order = factories.make_order(customer=student, campus=campus)
    others = [factories.make_rider(campus) for _ in range(2)]
    now = timezone.now()
    for n, other in enumerate(others):
        assert rider_board(rider_male) == []
        Offer.objects.create(
            campus=campus,
            order=order,
            rider=other,
            status=OfferStatus.EXPIRED if n else OfferStatus.DECLINED,
            created_at=now,
            expires_at=now + timezone.timedelta(seconds=30),
        )
    assert rider_board(rider_male) == [order]
