"""The credit score (信用分): one formula, pure, so that it can be explained and tested.

Inputs are counted over the last CREDIT_WINDOW_DAYS by riders.selectors.rider_credit_inputs. Each
part is smoothed towards a prior, so that a new rider neither starts at 100 nor drops to 60 after
one late delivery; old mistakes fade out of the window.

    score = 100 * (45% on-time rate + 25% reliability + 30% rating) - 5 per upheld complaint

clamped to 0..100 and rounded. Reliability is the share of accepted orders the rider did not give
back (accepted -> open). The rating is the average stars mapped from 1..5 to 0..1.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

CREDIT_WINDOW_DAYS = 90
ON_TIME_GRACE_SECONDS = 120

WEIGHT_ON_TIME = 0.45
WEIGHT_RELIABILITY = 0.25
WEIGHT_RATING = 0.30
COMPLAINT_PENALTY = 5
COMPLAINT_PENALTY_MAX = 30

# Priors: how much (in orders) an unknown rider is assumed to be like a typical good rider.
PRIOR_ON_TIME, PRIOR_ON_TIME_WEIGHT = 0.9, 5
PRIOR_RELIABILITY, PRIOR_RELIABILITY_WEIGHT = 1.0, 5
PRIOR_STARS, PRIOR_STARS_WEIGHT = 4.5, 3

GOOD_ON_TIME = 0.95
GOOD_STARS = 4.6


@dataclass(frozen=True)
class CreditInputs:
    delivered_with_promise: int = 0
    delivered_on_time: int = 0
    accepted: int = 0
    released: int = 0
    ratings: tuple[float, ...] = ()
    upheld_complaints: int = 0


@dataclass(frozen=True)
class CreditReport:
    score: int
    on_time_rate: float
    reliability: float
    average_stars: float
    inputs: CreditInputs
    tips: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        if self.score >= 90:
            return str(_("Excellent"))
        if self.score >= 75:
            return str(_("Good"))
        if self.score >= 60:
            return str(_("Fair"))
        return str(_("At risk"))


def _smoothed(successes: float, total: float, prior: float, weight: float) -> float:
    return (successes + prior * weight) / (total + weight)


def credit_compute(inputs: CreditInputs) -> CreditReport:
    on_time = _smoothed(
        inputs.delivered_on_time, inputs.delivered_with_promise, PRIOR_ON_TIME, PRIOR_ON_TIME_WEIGHT
    )
    kept = max(inputs.accepted - inputs.released, 0)
    reliability = _smoothed(
        kept, max(inputs.accepted, inputs.released), PRIOR_RELIABILITY, PRIOR_RELIABILITY_WEIGHT
    )
    stars = _smoothed(sum(inputs.ratings), len(inputs.ratings), PRIOR_STARS, PRIOR_STARS_WEIGHT)
    rating = (stars - 1) / 4
    penalty = min(inputs.upheld_complaints * COMPLAINT_PENALTY, COMPLAINT_PENALTY_MAX)
    raw = 100 * (
        WEIGHT_ON_TIME * on_time + WEIGHT_RELIABILITY * reliability + WEIGHT_RATING * rating
    )
    score = max(0, min(100, round(raw - penalty)))
    return CreditReport(
        score=score,
        on_time_rate=on_time,
        reliability=reliability,
        average_stars=stars,
        inputs=inputs,
        tips=_tips(inputs, on_time, reliability, stars),
    )


def _tips(inputs: CreditInputs, on_time: float, reliability: float, stars: float) -> list[str]:
    tips = []
    if on_time < GOOD_ON_TIME:
        tips.append(
            str(
                _(
                    "Deliver before the promised time: accept orders you can reach in time and "
                    "go straight from pickup to drop-off."
                )
            )
        )
    if inputs.released:
        tips.append(
            str(
                _(
                    "Giving an order back after accepting it lowers your score: accept only what "
                    "you can carry."
                )
            )
        )
    if stars < GOOD_STARS:
        tips.append(
            str(
                _(
                    "Good ratings raise your score: keep the customer informed in the order chat "
                    "and hand the order over with care."
                )
            )
        )
    if inputs.upheld_complaints:
        tips.append(
            str(
                _("Each upheld complaint costs %(n)d points until it is %(days)d days old.")
                % {"n": COMPLAINT_PENALTY, "days": CREDIT_WINDOW_DAYS}
            )
        )
    tips.append(
        str(
            _("Your score counts the last %(days)d days: every good delivery raises it.")
            % {"days": CREDIT_WINDOW_DAYS}
        )
    )
    return tips
