"""Rider onboarding: apply, approve, reject with a reason, suspend; only approved riders ride."""

import io

import pytest
from django.contrib.admin import helpers
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from orders.errors import NotAllowed
from orders.status import Status
from riders import services
from riders.models import RiderProfile, Shift
from tests import factories
from tests.factories import logged_in
from tracking import live

pytestmark = pytest.mark.django_db


def card_photo(name="card.png", fmt="PNG") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 90, 200)).save(buf, format=fmt)
    return SimpleUploadedFile(name, buf.getvalue(), content_type=f"image/{fmt.lower()}")


def application(campus, **kw) -> dict:
    data = {
        "campus": campus.pk,
        "real_name": "王小明",
        "student_number": "2023012345",
        "student_card": card_photo(),
        "gender": "male",
        "phone": "13712345678",
    }
    data.update(kw)
    return data


@pytest.fixture
def admin_user(db):
    return factories.make_user(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def applicant(campus, other_student):
    """other_student after applying: a pending rider."""
    logged_in(other_student).post(reverse("riders:apply"), application(campus))
    return RiderProfile.objects.get(user=other_student)


def admin_action(client, action: str, profiles, **extra):
    data = {
        "action": action,
        helpers.ACTION_CHECKBOX_NAME: [p.pk for p in profiles],
        **extra,
    }
    return client.post(reverse("admin:riders_riderprofile_changelist"), data)


# --- applying --------------------------------------------------------------------------------


def test_student_applies_and_waits_for_approval(campus, student):
    client = logged_in(student)
    assert client.get(reverse("riders:apply")).status_code == 200

    response = client.post(
        reverse("riders:apply"), application(campus, gender="female", phone="13600001111")
    )

    assert response.status_code == 302
    profile = RiderProfile.objects.get(user=student)
    assert profile.state == "pending"
    assert not profile.verified and not profile.online
    assert profile.real_name == "王小明" and profile.student_number == "2023012345"
    assert profile.student_card.name.endswith(".jpg")  # re-encoded, named by the server
    student.refresh_from_db()
    assert student.gender == "female" and student.phone == "13600001111"
    board = client.get(reverse("riders:board"))
    assert b"waiting for approval" in board.content


def test_real_name_and_student_number_are_encrypted_at_rest(applicant):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT real_name, student_number FROM riders_riderprofile WHERE id = %s",
            [applicant.pk],
        )
        real_name, number = cursor.fetchone()
    assert "王小明" not in real_name and "2023012345" not in number


def test_application_needs_a_real_photo(campus, student):
    not_a_photo = SimpleUploadedFile("card.png", b"%PDF-1.4 nope", content_type="image/png")
    response = logged_in(student).post(
        reverse("riders:apply"), application(campus, student_card=not_a_photo)
    )
    assert response.status_code == 400
    assert not RiderProfile.objects.filter(user=student).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("gender", "undisclosed"), ("phone", "call me"), ("student_number", "12"), ("real_name", "")],
)
def test_application_with_bad_fields_is_400(campus, student, field, value):
    response = logged_in(student).post(
        reverse("riders:apply"), application(campus, **{field: value})
    )
    assert response.status_code == 400
    assert not RiderProfile.objects.filter(user=student).exists()


def test_apply_needs_login(campus):
    response = Client().get(reverse("riders:apply"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_cannot_apply_twice(applicant, campus):
    client = logged_in(applicant.user)
    response = client.post(reverse("riders:apply"), application(campus, real_name="Other"))
    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.real_name == "王小明"


def test_non_rider_sees_the_way_to_apply(student):
    response = logged_in(student).get(reverse("riders:board"))
    assert response.status_code == 403
    assert reverse("riders:apply").encode() in response.content


# --- the operators' decisions ----------------------------------------------------------------


def test_operator_approves_in_admin_and_the_rider_goes_online(applicant, admin_user):
    response = admin_action(logged_in(admin_user), "approve", [applicant])
    assert response.status_code == 302

    applicant.refresh_from_db()
    assert applicant.state == "approved" and applicant.verified
    assert applicant.decided_by == admin_user and applicant.approved_at
    services.rider_set_online(user=applicant.user, online=True)
    applicant.refresh_from_db()
    assert applicant.online


def test_operator_rejects_with_a_reason_the_applicant_reads(applicant, admin_user):
    client = logged_in(admin_user)
    form = admin_action(client, "reject", [applicant])
    assert form.status_code == 200 and b'name="reason"' in form.content

    done = admin_action(client, "reject", [applicant], apply="1", reason="Card photo is blurry")
    assert done.status_code == 302

    applicant.refresh_from_db()
    assert applicant.state == "rejected" and not applicant.verified
    assert applicant.rejection_reason == "Card photo is blurry"
    board = logged_in(applicant.user).get(reverse("riders:board"))
    assert b"Card photo is blurry" in board.content
    assert reverse("riders:apply").encode() in board.content


def test_rejecting_without_a_reason_asks_again(applicant, admin_user):
    response = admin_action(logged_in(admin_user), "reject", [applicant], apply="1", reason="")
    assert response.status_code == 200 and b'name="reason"' in response.content
    applicant.refresh_from_db()
    assert applicant.state == "pending"


def test_rejected_applicant_may_apply_again(applicant, admin_user, campus):
    services.rider_reject(profile=applicant, operator=admin_user, reason="Blurry")
    response = logged_in(applicant.user).post(
        reverse("riders:apply"), application(campus, real_name="王大明")
    )
    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.state == "pending" and applicant.real_name == "王大明"
    assert applicant.rejection_reason == ""


def test_an_approved_rider_cannot_be_rejected_only_suspended(rider_male, admin_user):
    profile = rider_male.rider_profile
    admin_action(logged_in(admin_user), "reject", [profile], apply="1", reason="Changed my mind")
    profile.refresh_from_db()
    assert profile.state == "approved"


def test_suspension_takes_the_rider_offline_at_once(
    rider_male, admin_user, campus, django_capture_on_commit_callbacks
):
    services.rider_set_online(user=rider_male, online=True)  # opens a shift
    live.position_set(rider_male.pk, {"lat": 30.3, "lng": 120.08, "recorded_at": "x"})
    profile = rider_male.rider_profile

    with django_capture_on_commit_callbacks(execute=True):
        admin_action(
            logged_in(admin_user), "suspend", [profile], apply="1", reason="Rode on the lawn"
        )

    profile.refresh_from_db()
    assert profile.state == "suspended"
    assert not profile.verified and not profile.online
    assert profile.suspension_reason == "Rode on the lawn"
    assert not Shift.objects.filter(rider=rider_male, ended_at__isnull=True).exists()
    assert live.position_get(rider_male.pk) is None


def test_suspended_rider_cannot_go_online_or_accept(rider_male, admin_user, student, campus, api):
    order = factories.make_order(customer=student, campus=campus)
    services.rider_suspend(profile=rider_male.rider_profile, operator=admin_user, reason="Late")

    with pytest.raises(NotAllowed):
        services.rider_set_online(user=rider_male, online=True)
    page = logged_in(rider_male).post(reverse("riders:online"), {"online": "1"}, follow=True)
    assert b"suspended" in page.content
    rider = type(rider_male).objects.get(pk=rider_male.pk)  # as the next request would load it
    response = api(rider).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == Status.OPEN and order.rider_id is None


def test_reinstated_rider_may_ride_again(rider_male, admin_user):
    profile = rider_male.rider_profile
    services.rider_suspend(profile=profile, operator=admin_user, reason="Late")
    admin_action(logged_in(admin_user), "reinstate", [profile])
    profile.refresh_from_db()
    assert profile.state == "approved" and profile.verified
    services.rider_set_online(user=rider_male, online=True)


@pytest.mark.parametrize("state", ["pending", "rejected", "suspended"])
def test_rider_not_approved_cannot_go_online_or_accept(state, campus, student, admin_user, api):
    rider = factories.make_rider(campus, gender="male", verified=False, online=False)
    profile = rider.rider_profile
    if state == "rejected":
        services.rider_reject(profile=profile, operator=admin_user, reason="No")
    elif state == "suspended":
        profile.verified, profile.approved_at = True, timezone.now()
        profile.save()
        services.rider_suspend(profile=profile, operator=admin_user, reason="No")
    order = factories.make_order(customer=student, campus=campus)

    online = api(rider).post("/api/rider/online/", {"online": True}, format="json")
    accept = api(rider).post(f"/api/orders/{order.number}/accept/")
    scan = api(rider).post("/api/rider/scan/", {"code": order.number}, format="json")

    assert (online.status_code, accept.status_code, scan.status_code) == (403, 403, 403)
    profile.refresh_from_db()
    assert not profile.online
    assert not Shift.objects.filter(rider=rider).exists()
    page = logged_in(rider).get(reverse("riders:board"))
    assert b'id="online-toggle" disabled' in page.content


def test_student_card_is_shown_to_operators_only(applicant, admin_user, operator, rider_male):
    url = reverse("riders:student_card", args=[applicant.pk])
    assert logged_in(admin_user).get(url).status_code == 200
    assert logged_in(operator).get(url).status_code == 200
    assert logged_in(applicant.user).get(url).status_code == 404
    assert logged_in(rider_male).get(url).status_code == 404
    change = logged_in(admin_user).get(
        reverse("admin:riders_riderprofile_change", args=[applicant.pk])
    )
    assert url.encode() in change.content


def test_admin_lists_pending_applications(applicant, rider_male, admin_user):
    response = logged_in(admin_user).get(
        reverse("admin:riders_riderprofile_changelist") + "?state=pending"
    )
    assert response.status_code == 200
    assert applicant.user.username.encode() in response.content
    assert b"rider_male" not in response.content
