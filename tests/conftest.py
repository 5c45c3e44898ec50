"""Personas and fixtures shared by every test (see STYLE: no shared mutable fixtures)."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import translation
from rest_framework.test import APIClient

from campus_errand.memo import forget_all
from tests import factories


def _no_fsync(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = OFF")


@pytest.fixture(autouse=True, scope="session")
def _no_fsync_on_sqlite(django_db_blocker):
    """Transactional tests commit every write (and Channels reconnects for each database call);
    on a SQLite file every commit waits for the disk, most of all in the flush after each test.
    A test database need not survive a power cut."""
    connection_created.connect(_no_fsync)
    with django_db_blocker.unblock():
        if connection.connection is not None:
            _no_fsync(None, connection)
    yield
    connection_created.disconnect(_no_fsync)


@pytest.fixture(autouse=True)
def _fast_and_clean(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"
    # A request handled by the test client leaves its language active in this thread: start every
    # test from English so that stored notes and messages don't depend on the test before.
    translation.activate("en")
    cache.clear()
    forget_all()
    yield
    cache.clear()
    forget_all()
    translation.deactivate()


@pytest.fixture
def campus(db):
    return factories.make_campus()


@pytest.fixture
def student(db):
    return factories.make_user(username="student", gender="female", phone="13800001234")


@pytest.fixture
def other_student(db):
    return factories.make_user(username="other_student", gender="male")


@pytest.fixture
def rider_male(campus):
    return factories.make_rider(campus, gender="male", username="rider_male")


@pytest.fixture
def rider_female(campus):
    return factories.make_rider(campus, gender="female", username="rider_female")


@pytest.fixture
def operator(db):
    return factories.make_user(username="operator", gender="male", is_staff=True)


@pytest.fixture
def order(student, campus):
    return factories.make_order(customer=student, campus=campus)


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated as user (None: anonymous)."""

    def make(user=None):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
