from django.db import transaction

from accounts.models import Gender, User


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    gender: str = Gender.UNDISCLOSED,
    phone: str = "",
    first_name: str = "",
    is_staff: bool = False,
) -> User:
    user = User(username=username, gender=gender, phone=phone, first_name=first_name)
    user.is_staff = is_staff
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


def user_rotate_field_keys() -> int:
    """Re-encrypt every encrypted field under the newest key; returns how many rows changed."""
    count = 0
    for user in User.objects.exclude(phone="").iterator():
        # Loading decrypts with any key; saving encrypts with the first one.
        user.save(update_fields=["phone"])
        count += 1
    return count
