"""Accounts: phone encrypted at rest and masked for others, key rotation, tokens, signup."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts import crypto
from accounts.models import User, mask_phone
from tests import factories

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_phone(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT phone FROM {User._meta.db_table} WHERE id = %s", [user.pk])
        return cursor.fetchone()[0]


# --- the phone number --------------------------------------------------------------------------


def test_phone_is_encrypted_at_rest_and_decrypts_back(student):
    stored = raw_phone(student)
    assert stored and stored != "13800001234"
    assert "13800001234" not in stored and "1234" not in stored
    assert crypto.decrypt(stored) == "13800001234"
    assert User.objects.get(pk=student.pk).phone == "13800001234"


def test_same_phone_encrypts_differently_each_time(db):
    a = factories.make_user(phone="13800001234")
    b = factories.make_user(phone="13800001234")
    assert raw_phone(a) != raw_phone(b)


def test_empty_phone_stays_empty(other_student):
    assert raw_phone(other_student) == ""
    assert User.objects.get(pk=other_student.pk).phone == ""
    assert other_student.masked_phone == ""


def test_phone_is_masked_for_everyone_but_its_owner(student, other_student, operator):
    assert student.phone_for(student) == "13800001234"
    assert student.phone_for(other_student) == "138****1234"
    assert student.phone_for(operator) == "138****1234"
    assert student.masked_phone == "138****1234"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800001234", "138****1234"), ("138 0000 1234", "138****1234"), ("12345", "*****")],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_phone_never_appears_in_order_pages_or_api(order, rider_male, api):
    from orders import services

    services.order_accept(order=order, rider=rider_male)
    client = Client()
    client.force_login(rider_male)
    page = client.get(f"/orders/{order.number}/").content.decode()
    body = api(rider_male).get(f"/api/orders/{order.number}/").content.decode()
    for text in (page, body):
        assert "13800001234" not in text


# --- key rotation ------------------------------------------------------------------------------


def test_rotation_re_encrypts_under_the_new_key(settings, db):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    user = factories.make_user(phone="13912345678")
    under_old = raw_phone(user)

    # Step 1: the new key goes first; old values still read.
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert User.objects.get(pk=user.pk).phone == "13912345678"

    # Without the rotation, dropping the old key would make the phone unreadable.
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(ValueError):
        User.objects.get(pk=user.pk)

    # Step 2: rotate.
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_field_key", stdout=open("/dev/null", "w"))
    under_new = raw_phone(user)
    assert under_new != under_old
    assert Fernet(NEW_KEY.encode()).decrypt(under_new.encode()) == b"13912345678"

    # Step 3: the old key is removed; everything still decrypts.
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert User.objects.get(pk=user.pk).phone == "13912345678"


def test_rotation_reports_how_many_rows_it_changed(settings, db, capsys):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    factories.make_user(phone="13900000001")
    factories.make_user(phone="13900000002")
    factories.make_user()  # no phone: nothing to re-encrypt
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_field_key")
    assert "re-encrypted 2 rows" in capsys.readouterr().out


# --- API tokens --------------------------------------------------------------------------------


def test_token_endpoint_gives_a_token_that_authenticates(student):
    client = Client()
    response = client.post(
        "/api/auth/token/", {"username": "student", "password": "pw-123456"}, "application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert len(token) == 40

    again = client.post("/api/auth/token/", {"username": "student", "password": "pw-123456"})
    assert again.json()["token"] == token

    orders = Client().get("/api/orders/", HTTP_AUTHORIZATION=f"Token {token}")
    assert orders.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"username": "student", "password": "wrong"},
        {"username": "nobody", "password": "pw-123456"},
        {"username": "student"},
        {},
    ],
)
def test_token_endpoint_refuses_bad_credentials_with_400(data, student):
    response = Client().post("/api/auth/token/", data, "application/json")
    assert response.status_code == 400
    assert "token" not in response.json()
    assert response.json()


def test_inactive_user_gets_no_token(student):
    student.is_active = False
    student.save()
    response = Client().post(
        "/api/auth/token/", {"username": "student", "password": "pw-123456"}, "application/json"
    )
    assert response.status_code == 400


def test_bad_token_is_401(db):
    response = Client().get("/api/orders/", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 401


# --- signup and login pages --------------------------------------------------------------------


def test_signup_creates_the_user_and_logs_them_in(db):
    client = Client()
    assert client.get("/accounts/signup/").status_code == 200
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "first_name": "林",
            "gender": "female",
            "phone": "13700001111",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="newbie")
    assert (user.gender, user.phone) == ("female", "13700001111")
    assert raw_phone(user) != "13700001111"
    assert int(client.session["_auth_user_id"]) == user.pk
    assert client.get("/orders/").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password2": "something-else-9"}, "password2"),
        ({"phone": "12345"}, "phone"),
        ({"username": ""}, "username"),
        ({"gender": "robot"}, "gender"),
    ],
)
def test_signup_with_bad_input_is_400_with_a_message(change, field, db):
    data = {
        "username": "newbie",
        "gender": "female",
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
        **change,
    }
    response = Client().post("/accounts/signup/", data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert 'class="error"' in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_signup_refuses_a_taken_username(student):
    response = Client().post(
        "/accounts/signup/",
        {"username": "student", "password1": "x-long-pass-9", "password2": "x-long-pass-9"},
    )
    assert response.status_code == 400
    assert User.objects.filter(username="student").count() == 1


def test_login_page_logs_in(student):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "student", "password": "pw-123456", "next": "/orders/"}
    )
    assert response.status_code == 302 and response["Location"] == "/orders/"
    assert int(client.session["_auth_user_id"]) == student.pk
