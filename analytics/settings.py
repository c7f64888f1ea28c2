"""The manager's settings named in docs/metrics.md, with their defaults.

Kept in the database (`meta` key `settings`) so that every page, export and command uses the
same values; `--setting name=value` overrides them for one command.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from analytics.errors import InputError


@dataclass(frozen=True)
class Settings:
    visit_minutes: float = 45.0
    road_factor: float = 1.3
    speed_kmh: float = 60.0
    capacity_hours: float = 1200.0
    """Annual selling hours of a rep whose own capacity_hours is empty."""
    visits_per_year: float = 12.0
    """Visits a year of an account with no visits_per_year and no segment setting."""
    visits_by_segment: dict[str, float] = field(default_factory=dict)
    """Visits a year by segment, for accounts with no visits_per_year of their own."""
    visit_minutes_by_segment: dict[str, float] = field(default_factory=dict)
    """Minutes a visit lasts by segment (a hospital's visit is longer than a clinic's);
    segments not named take visit_minutes."""
    overload_tolerance: float = 0.10
    underload_threshold: float = 0.70
    max_travel_km: float = 150.0
    touch_days: int = 90
    day_hours: float = 8.0
    """A rep's working day for visit routes: from leaving home to being back (hours)."""
    day_start_hour: float = 8.0
    """When a rep leaves home on a route day (hour of the day, 8.5 = 08:30)."""

    # -- text forms ---------------------------------------------------------------------
    def with_overrides(self, items: list[str] | None) -> Settings:
        """Apply `name=value` texts; `visits_per_year.SEGMENT=N` sets one segment."""
        out = self
        for item in items or ():
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep:
                raise InputError(f"--setting {item!r}: expected name=value, e.g. speed_kmh=50")
            number = _number(item, value)
            by_segment = {"visits_per_year.": "visits_by_segment",
                          "visit_minutes.": "visit_minutes_by_segment"}
            prefix = next((p for p in by_segment if name.startswith(p)), None)
            if prefix is not None:
                segment = name[len(prefix):]
                if not segment:
                    raise InputError(f"--setting {item!r}: name the segment after the dot")
                attr = by_segment[prefix]
                out = replace(out, **{attr: {**getattr(out, attr), segment: number}})
                continue
            known = {f.name for f in fields(Settings)} - set(by_segment.values())
            if name not in known:
                raise InputError(
                    f"--setting {item!r}: unknown setting {name!r}; settings are "
                    + ", ".join(sorted(known)) + ", visits_per_year.<segment>, "
                    "visit_minutes.<segment>"
                )
            if name == "touch_days":
                if number != int(number):
                    raise InputError(f"--setting {item!r}: touch_days is a whole number")
                number = int(number)
            out = replace(out, **{name: number})
        out.check()
        return out

    def check(self) -> None:
        positive = ("speed_kmh", "road_factor")
        for name in positive:
            if getattr(self, name) <= 0:
                raise InputError(f"setting {name} must be greater than 0")
        for f in fields(Settings):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and v < 0:
                raise InputError(f"setting {f.name} must not be negative")
        if not 0 < self.day_hours <= 24:
            raise InputError("setting day_hours must be more than 0 and at most 24")
        if not 0 <= self.day_start_hour < 24:
            raise InputError("setting day_start_hour must be from 0 to under 24")
        for seg, v in self.visits_by_segment.items():
            if v < 0:
                raise InputError(f"setting visits_per_year.{seg} must not be negative")
        for seg, v in self.visit_minutes_by_segment.items():
            if v < 0:
                raise InputError(f"setting visit_minutes.{seg} must not be negative")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Settings:
        if not text:
            return cls()
        data = json.loads(text)
        known = {f.name for f in fields(Settings)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_rows(self) -> list[tuple[str, object]]:
        rows = [(f.name, getattr(self, f.name)) for f in fields(Settings)
                if f.name not in ("visits_by_segment", "visit_minutes_by_segment")]
        rows += [(f"visits_per_year.{s}", v) for s, v in sorted(self.visits_by_segment.items())]
        rows += [(f"visit_minutes.{s}", v)
                 for s, v in sorted(self.visit_minutes_by_segment.items())]
        return rows


def _number(item: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError as exc:
        raise InputError(f"--setting {item!r}: {text.strip()!r} is not a number") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"--setting {item!r}: not a finite number")
    return value


def load_settings(store) -> Settings:
    return Settings.from_json(store.get_meta("settings"))


def save_settings(store, settings: Settings) -> None:
    from analytics import users

    users.require("change settings")
    settings.check()
    with store.transaction() as cur:
        store.set_meta("settings", settings.to_json(), cur)
