"""Simulate a campus day through the real services; print and save the KPIs.

    manage.py simulate_day --hours 11-13 --compare --out docs/
    manage.py simulate_day --day --policy auto-batch
    manage.py simulate_day --targets --out docs/     # the issue's two simulator targets

Every run is rolled back at the end (dispatch/simday.py): it can run against the development
database without leaving anything behind. Use a throwaway database with --keep.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.simday import POLICIES, SimConfig, SimDay, markdown_table, save_report


class Command(BaseCommand):
    help = "Simulate a campus day (or some hours) through the real services and report KPIs."

    def add_arguments(self, parser):
        parser.add_argument("--campus", default="demo")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--hours", default="11-13", help="Beijing hours, start-end (end excl.)")
        parser.add_argument("--day", action="store_true", help="7-23: the whole day")
        parser.add_argument("--minutes", type=int, default=None, help="a short run")
        parser.add_argument("--policy", default="auto-batch", choices=POLICIES)
        parser.add_argument("--compare", action="store_true", help="every policy, same demand")
        parser.add_argument("--targets", action="store_true", help="check the issue's targets")
        parser.add_argument("--riders", type=int, default=None)
        parser.add_argument("--female-riders", type=float, default=0.4, help="share, 0-1")
        parser.add_argument("--female-dorms", type=float, default=None, help="share of orders")
        parser.add_argument("--scale", type=float, default=1.0, help="demand multiplier")
        parser.add_argument("--out", default=None, help="directory for JSON, markdown, SVG")
        parser.add_argument("--keep", action="store_true", help="commit (throwaway DB only)")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **o):
        if o["day"]:
            start, end = 7, 23
        else:
            try:
                start, end = (int(x) for x in o["hours"].split("-"))
            except ValueError:
                raise CommandError("--hours takes start-end, e.g. 11-13") from None
        base = dict(
            campus=o["campus"],
            seed=o["seed"],
            start_hour=start,
            end_hour=end,
            riders=o["riders"],
            female_rider_share=o["female_riders"],
            female_dorm_share=o["female_dorms"],
            demand_scale=o["scale"],
            minutes=o["minutes"],
            progress=not o["quiet"],
        )
        out = Path(o["out"]) if o["out"] else None
        if o["targets"]:
            self._targets(base, out)
            return
        runs = [(o["policy"], True)]
        if o["compare"]:
            # Every policy on the same seeded demand, and batching without transfer stations.
            runs = [(policy, True) for policy in POLICIES] + [("auto-batch", False)]
        rows = []
        for policy, stations in runs:
            self.stderr.write(f"{policy}{'' if stations else ' (no stations)'}:")
            sim = SimDay(SimConfig(policy=policy, stations=stations, **base))
            rows.append(sim.run(keep=o["keep"]))
            self._refusals(sim)
        title = f"Campus {o['campus']}, {start}:00-{end}:00, seed {o['seed']}"
        self.stdout.write(title)
        self.stdout.write(markdown_table(rows))
        if out:
            save_report(rows, out=out, name="simulate_day", title=title)
            self.stdout.write(
                f"saved {out}/simulate_day.json, .md" + (", .svg" if rows[1:] else "")
            )

    def _refusals(self, sim: SimDay) -> None:
        """A simulated rider's button the services refused is a bug in the simulator or in the
        services: say so (the run goes on)."""
        if sim.errors:
            self.stderr.write(
                f"  {len(sim.errors)} refused action(s), the first: {sim.errors[0]}",
                style_func=self.style.WARNING,
            )

    def _targets(self, base: dict, out: Path | None) -> None:
        from dispatch.simday import check_targets

        report = check_targets(base, log=self.stderr.write)
        for line in report["lines"]:
            self.stdout.write(line)
        if out:
            save_report(
                report["rows"],
                out=out,
                name="simulate_day_targets",
                title=report["title"],
                extra={"targets": report["targets"]},
            )
