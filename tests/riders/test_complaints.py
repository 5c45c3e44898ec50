"""The customer reports a problem with the rider (order page and API); operators decide in admin,
and upheld reports lower the rider's credit score."""

from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from orders.status import Status
from riders import services
from riders.models import NEW_RIDER_CREDIT, Complaint, ComplaintStatus, RiderProfile
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


def taken(order, rider) -> Order:
    return order_services.order_accept(order=order, rider=rider)


def delivered(order, rider, *, days_ago: float = 0) -> Order:
    order = taken(order, rider)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=to, actor=rider)
    if days_ago:
        at = timezone.now() - timedelta(days=days_ago)
        Order.objects.filter(pk=order.pk).update(delivered_at=at)
        order.delivered_at = at
    return order


def page_url(order) -> str:
    return reverse("orders:complaint", args=[order.number])


def api_url(order) -> str:
    return f"/api/orders/{order.number}/complaint/"


LATE = {"category": "late", "reason": "Forty minutes late, no message."}


@pytest.fixture
def admin_user(db):
    return factories.make_user(username="admin", is_staff=True, is_superuser=True)


# --- the order page ---------------------------------------------------------------------------


def test_customer_reports_the_rider_from_the_order_page(student, rider_male, order):
    order = taken(order, rider_male)
    client = logged_in(student)
    page = client.get(reverse("orders:detail", args=[order.number])).content.decode()
    assert 'id="complaint-form"' in page and "Report a problem with the rider" in page

    response = client.post(page_url(order), LATE)

    assert response.status_code == 302
    complaint = Complaint.objects.get()
    assert (complaint.rider, complaint.order, complaint.filed_by) == (rider_male, order, student)
    assert complaint.category == "late" and complaint.reason == LATE["reason"]
    assert complaint.status == ComplaintStatus.OPEN
    page = client.get(reverse("orders:detail", args=[order.number])).content.decode()
    assert "an operator is looking into it" in page and 'id="complaint-form"' not in page


def test_customer_may_report_up_to_seven_days_after_delivery(student, rider_male, campus):
    recent = delivered(
        factories.make_order(customer=student, campus=campus), rider_male, days_ago=6
    )
    old = delivered(factories.make_order(customer=student, campus=campus), rider_male, days_ago=8)
    client = logged_in(student)

    assert (
        'id="complaint-form"'
        in client.get(reverse("orders:detail", args=[recent.number])).content.decode()
    )
    assert client.post(page_url(recent), {"category": "damaged"}).status_code == 302

    assert (
        b'id="complaint-form"'
        not in client.get(reverse("orders:detail", args=[old.number])).content
    )
    response = client.post(page_url(old), {"category": "damaged"})
    assert response.status_code == 409
    assert b"up to 7 days after delivery" in response.content
    assert list(Complaint.objects.values_list("order", flat=True)) == [recent.pk]


def test_no_report_form_before_a_rider_nor_for_the_rider(student, rider_male, order):
    assert (
        b"complaint-form"
        not in logged_in(student).get(reverse("orders:detail", args=[order.number])).content
    )
    order = taken(order, rider_male)
    assert (
        b"complaint-form"
        not in logged_in(rider_male).get(reverse("orders:detail", args=[order.number])).content
    )


def test_page_refusals_are_4xx_and_store_nothing(student, other_student, rider_male, campus, order):
    not_taken = factories.make_order(customer=student, campus=campus)
    order = taken(order, rider_male)

    assert Client().post(page_url(order), LATE).status_code == 302  # to the login page
    assert logged_in(other_student).post(page_url(order), LATE).status_code == 404
    assert logged_in(rider_male).post(page_url(order), LATE).status_code == 403
    assert logged_in(student).post(page_url(not_taken), LATE).status_code == 409
    assert logged_in(student).get(page_url(order)).status_code == 405
    bad = logged_in(student).post(page_url(order), {"category": "smelly"})
    assert bad.status_code == 400 and b'id="complaint-form"' in bad.content
    no_text = logged_in(student).post(page_url(order), {"category": "other", "reason": " "})
    assert no_text.status_code == 400 and b"Tell us what happened." in no_text.content
    assert not Complaint.objects.exists()


def test_second_report_while_the_first_is_open_is_refused_in_chinese(student, rider_male, order):
    order = taken(order, rider_male)
    client = logged_in(student, language="zh-hans")
    assert client.post(page_url(order), LATE).status_code == 302

    again = client.post(page_url(order), {"category": "rude"})

    assert again.status_code == 409
    assert "你已就此订单举报过问题" in again.content.decode()
    assert Complaint.objects.count() == 1


# --- the API ----------------------------------------------------------------------------------


def test_api_files_a_report_and_shows_it(api, student, rider_male, order):
    order = taken(order, rider_male)
    client = api(student)
    assert client.get(api_url(order)).status_code == 404

    response = client.post(api_url(order), {"category": "rude", "reason": "Shouted"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["category"] == "rude" and body["status"] == "open" and body["decided_at"] is None
    assert client.get(api_url(order)).json()["reason"] == "Shouted"
    assert Complaint.objects.get().filed_by == student


def test_api_refusals_are_clear_4xx_and_store_nothing(
    api, student, other_student, rider_male, campus, order
):
    not_taken = factories.make_order(customer=student, campus=campus)
    order = taken(order, rider_male)

    assert api().post(api_url(order), LATE, format="json").status_code == 401
    assert api(other_student).post(api_url(order), LATE, format="json").status_code == 404
    as_rider = api(rider_male).post(api_url(order), LATE, format="json")
    assert as_rider.status_code == 403 and as_rider.json()["code"] == "forbidden"
    no_rider = api(student).post(api_url(not_taken), LATE, format="json")
    assert no_rider.status_code == 409
    assert no_rider.json()["detail"] == (
        "You can report the rider once a rider has taken your order."
    )
    assert api(student).put(api_url(order), LATE, format="json").status_code == 405
    for payload in (
        {},
        {"category": "smelly"},
        {"category": "other"},
        {"category": "late", "reason": "x" * 1001},
        ["late"],
    ):
        response = api(student).post(api_url(order), payload, format="json")
        assert response.status_code == 400, payload
    assert (
        "reason" in api(student).post(api_url(order), {"category": "other"}, format="json").json()
    )
    assert not Complaint.objects.exists()


def test_api_refuses_a_second_open_report_in_the_users_language(api, student, rider_male, order):
    order = taken(order, rider_male)
    assert api(student).post(api_url(order), LATE, format="json").status_code == 201

    english = api(student).post(api_url(order), LATE, format="json")
    chinese = api(student).post(api_url(order), LATE, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert english.status_code == chinese.status_code == 409
    assert english.json()["code"] == "already_reported"
    assert "already reported" in english.json()["detail"]
    assert "你已就此订单举报过问题" in chinese.json()["detail"]
    assert Complaint.objects.count() == 1


def test_after_a_decision_the_customer_may_report_again(api, student, rider_male, operator, order):
    order = taken(order, rider_male)
    first = services.order_complaint_file(order=order, customer=student, category="late", reason="")
    services.complaint_decide(complaint=first, operator=operator, upheld=False)

    assert api(student).post(api_url(order), LATE, format="json").status_code == 201
    assert Complaint.objects.filter(status=ComplaintStatus.OPEN).count() == 1


def test_two_open_reports_cannot_both_be_stored(student, rider_male, order):
    """The database refuses the second (two tabs at once), and the service says so clearly."""
    order = taken(order, rider_male)
    services.complaint_file(rider=rider_male, order=order, filed_by=student, reason="a")
    with pytest.raises(services.AlreadyComplained):
        services.complaint_file(rider=rider_male, order=order, filed_by=student, reason="b")
    assert Complaint.objects.count() == 1


def test_a_cancelled_order_with_a_rider_can_still_be_reported(api, student, rider_male, order):
    order = taken(order, rider_male)
    order_services.order_transition(order=order, to=Status.CANCELLED, actor=student)

    assert api(student).post(api_url(order), {"category": "rude"}, format="json").status_code == 201


# --- operators decide; upheld reports cost credit ---------------------------------------------


def decide(client, action: str, complaints):
    return client.post(
        reverse("admin:riders_complaint_changelist"),
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [c.pk for c in complaints]},
    )


def test_upholding_in_admin_lowers_the_riders_stored_score(
    admin_user, student, rider_male, order, django_capture_on_commit_callbacks
):
    order = taken(order, rider_male)
    complaint = services.order_complaint_file(
        order=order, customer=student, category="rude", reason="Shouted"
    )
    client = logged_in(admin_user)
    assert b"Rude or unfriendly" in client.get(reverse("admin:riders_complaint_changelist")).content

    with django_capture_on_commit_callbacks(execute=True):
        assert decide(client, "uphold", [complaint]).status_code == 302

    complaint.refresh_from_db()
    assert complaint.status == ComplaintStatus.UPHELD and complaint.decided_by == admin_user
    profile = RiderProfile.objects.get(user=rider_male)
    assert profile.credit_score == NEW_RIDER_CREDIT - 5 and profile.credit_updated_at


def test_dismissing_in_admin_leaves_the_score(
    admin_user, student, rider_male, order, django_capture_on_commit_callbacks
):
    order = taken(order, rider_male)
    complaint = services.order_complaint_file(
        order=order, customer=student, category="late", reason=""
    )
    with django_capture_on_commit_callbacks(execute=True):
        decide(logged_in(admin_user), "dismiss", [complaint])

    assert Complaint.objects.get().status == ComplaintStatus.DISMISSED
    assert RiderProfile.objects.get(user=rider_male).credit_score == NEW_RIDER_CREDIT


def test_customer_sees_the_decision(student, rider_male, operator, order):
    order = taken(order, rider_male)
    complaint = services.order_complaint_file(
        order=order, customer=student, category="late", reason=""
    )
    services.complaint_decide(complaint=complaint, operator=operator, upheld=True)

    page = logged_in(student).get(reverse("orders:detail", args=[order.number])).content
    assert b"upheld: it counts against the rider" in page


def test_admin_refuses_a_second_open_report_of_the_same_filer(
    admin_user, student, rider_male, order
):
    order = taken(order, rider_male)
    services.complaint_file(rider=rider_male, order=order, filed_by=student, reason="a")

    response = logged_in(admin_user).post(
        reverse("admin:riders_complaint_add"),
        {
            "rider": rider_male.pk,
            "order": order.pk,
            "filed_by": student.pk,
            "category": "other",
            "reason": "again",
        },
    )

    assert response.status_code == 200  # the form again, with the message
    assert b"already reported a problem" in response.content
    assert Complaint.objects.count() == 1
