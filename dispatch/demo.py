"""Demo accounts: the people a newcomer logs in as, and the simulated riders."""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Gender, User
from accounts.services import user_create
from campus.models import Campus
from payments.services import wallet_grant
from riders.models import RiderProfile
from riders.services import rider_profile_create

DEMO_PASSWORD = "campus123"
# Each demo student starts with ¥200: a promotional grant (promotions expense -> wallet).
DEMO_WALLET_FEN = 20_000


@dataclass(frozen=True)
class DemoAccount:
    username: str
    first_name: str
    gender: str
    role: str  # student | rider | operator | sim | merchant
    phone: str = ""


DEMO_ACCOUNTS = [
    DemoAccount("student", "林", Gender.FEMALE, "student", "13800001234"),
    DemoAccount("student2", "陈", Gender.MALE, "student", "13900005678"),
    DemoAccount("rider_m", "王", Gender.MALE, "rider", "13700001111"),
    DemoAccount("rider_f", "李", Gender.FEMALE, "rider", "13600002222"),
    DemoAccount("operator", "赵", Gender.UNDISCLOSED, "operator"),
    # Staff of the 兰州拉面 canteen window: the merchant portal at /merchant/.
    DemoAccount("merchant", "黄", Gender.FEMALE, "merchant"),
    DemoAccount("sim_m1", "张", Gender.MALE, "sim"),
    DemoAccount("sim_m2", "刘", Gender.MALE, "sim"),
    DemoAccount("sim_f1", "周", Gender.FEMALE, "sim"),
]
SIM_RIDERS = [a.username for a in DEMO_ACCOUNTS if a.role == "sim"]


@transaction.atomic
def demo_seed(*, campus: Campus) -> list[DemoAccount]:
    """Create the demo accounts once; running it again changes nothing."""
    for account in DEMO_ACCOUNTS:
        user = User.objects.filter(username=account.username).first()
        if user is None:
            user = user_create(
                username=account.username,
                password=DEMO_PASSWORD,
                gender=account.gender,
                phone=account.phone,
                first_name=account.first_name,
                is_staff=account.role == "operator",
            )
            if account.role == "operator":
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
        if account.role in ("rider", "sim") and not RiderProfile.objects.filter(user=user).exists():
            rider_profile_create(user=user, campus=campus, verified=True)
        if account.role == "student":
            # Idempotent: the grant's reference makes a second seed credit nothing.
            wallet_grant(
                user=user,
                amount_fen=DEMO_WALLET_FEN,
                reference=f"demo-welcome:{user.username}",
                memo="Demo welcome credit",
            )
    # Takeout: canteen windows and shops with menus, 满减, coupons and group meals.
    from merchants.demo import takeout_seed

    takeout_seed(campus=campus, staff=User.objects.get(username="merchant"))
    return DEMO_ACCOUNTS
