"""The readable report: an HTML page with inline SVG charts, French first, English second.

No script and no external resource: the page works offline, archived with the other files."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.publisher.archive import FollowUp, Respondent, set_aside_by_reason, shown
from services.publisher.files import EXCLUSIONS_CSV
from shared.contracts import (
    IMPROVEMENT_LABELS,
    PROFILE_LABELS,
    CommitmentKind,
    CommitmentStatus,
    Profile,
    RankingRow,
    ResultsPublished,
)

TOP = 15
# French, then English: the words the report and the follow-up page use for a commitment.
KIND_LABELS = {
    CommitmentKind.OPEN: ("Ouvrir", "Open"),
    CommitmentKind.IMPROVE: ("Améliorer", "Improve"),
    CommitmentKind.ADD: ("Ajouter au catalogue", "Add to the catalogue"),
}
STATUS_LABELS = {
    CommitmentStatus.PLANNED: ("Prévu", "Planned"),
    CommitmentStatus.IN_PROGRESS: ("En cours", "In progress"),
    CommitmentStatus.DONE: ("Réalisé", "Done"),
    CommitmentStatus.DROPPED: ("Abandonné", "Dropped"),
}
BAR_WIDTH = 420
UNDETAILED_COLOUR = "#DDDDDD"  # the score of profiles too small to show
# A colour per profile, distinguishable and readable on white (Okabe–Ito palette, then greys).
PROFILE_COLOURS = dict(
    zip(
        Profile,
        (
            "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
            "#F0E442", "#000000", "#999999", "#666666", "#BBBBBB",
        ),
        strict=True,
    )
)  # fmt: skip


@dataclass(frozen=True)
class Segment:
    profile: Profile
    x: float
    width: float
    respondents: int


@dataclass(frozen=True)
class Bar:
    row: RankingRow
    segments: list[Segment]
    undetailed: float = 0.0  # width of the score of profiles too small to show (suppressed), after the segments

    @property
    def width(self) -> float:
        return sum(s.width for s in self.segments) + self.undetailed


def web_url(url: str | None) -> str | None:
    """A link the public may follow: http(s) only, never a script."""
    return url if url and url.startswith(("https://", "http://")) else None


def bars(rows: Sequence[RankingRow]) -> list[Bar]:
    """The top rows as stacked bars, one segment per profile shown, scaled to the highest score; the
    score of suppressed profiles is one grey segment at the end."""
    top = list(rows[:TOP])
    highest = max((r.score for r in top), default=1) or 1
    result = []
    for row in top:
        x, segments = 0.0, []
        for profile in Profile:
            tally = row.by_profile.get(profile)
            if tally is None or tally.score == 0:
                continue
            width = BAR_WIDTH * tally.score / highest
            segments.append(Segment(profile, x, width, tally.respondents))
            x += width
        hidden = row.score - sum(t.score for t in row.by_profile.values())
        result.append(Bar(row, segments, BAR_WIDTH * hidden / highest if hidden > 0 else 0.0))
    return result


@dataclass(frozen=True)
class ErrorBar:
    row: RankingRow
    x_low: float
    x_high: float
    x_rank: float


def error_bars(rows: Sequence[RankingRow]) -> list[ErrorBar]:
    """The top rows' rank intervals on one rank axis (rank 1 on the left), when they have intervals."""
    top = [r for r in rows[:TOP] if r.rank_interval is not None]
    last = max((r.rank_interval[1] for r in top if r.rank_interval), default=1)

    def x(rank: float) -> float:
        return round(BAR_WIDTH * (rank - 0.5) / last, 2)

    return [
        ErrorBar(r, x(r.rank_interval[0] - 0.4), x(r.rank_interval[1] + 0.4), x(r.rank))
        for r in top
        if r.rank_interval is not None
    ]


def undecided(rows: Sequence[RankingRow]) -> list[list[RankingRow]]:
    """The groups of rows too close to call that start in the top rows, each in rank order."""
    groups: dict[int, list[RankingRow]] = {}
    for row in rows:
        if row.too_close_to_call and row.tie_group is not None and row.tie_group <= TOP:
            groups.setdefault(row.tie_group, []).append(row)
    return [groups[first] for first in sorted(groups)]


def participation(archive: Sequence[Respondent]) -> list[tuple[str, int, float]]:
    """Respondents by week of their counted response (its Monday, as the public archive says):
    (week, count, bar height in %)."""
    weeks = Counter(r.received_on.isoformat() for r in archive)
    highest = max(weeks.values(), default=1)
    return [(week, n, 100 * n / highest) for week, n in sorted(weeks.items())]


class ReportRenderer:
    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["web_url"] = web_url

    def __call__(
        self, results: ResultsPublished, archive: Sequence[Respondent], follow_up: FollowUp, min_cell: int
    ) -> bytes:
        """The report of the published results; `archive`: the respondents the rankings count."""
        # The archive of the respondents counted: a profile pooled for none of the archive's respondents
        # may count fewer than `min_cell` once those set aside are left out, and is then not detailed.
        profiles = Counter(r.profile for r in archive)
        html = self._env.get_template("report.html").render(
            results=results,
            follow_up=follow_up,
            kind_labels=KIND_LABELS,
            status_labels=STATUS_LABELS,
            open_bars=bars(results.open),
            improve_bars=bars(results.improve),
            open_errors=error_bars(results.open),
            improve_errors=error_bars(results.improve),
            open_undecided=undecided(results.open),
            improve_undecided=undecided(results.improve),
            top=TOP,
            suggestions=results.suggestions[:TOP],
            weeks=participation(archive),
            min_cell=min_cell,
            profiles=[(p, profiles[p] if shown(profiles[p], min_cell) else None) for p in Profile if profiles[p]],
            set_aside=set_aside_by_reason(results.exclusions),
            exclusions_csv=EXCLUSIONS_CSV,
            profile_labels=PROFILE_LABELS,
            improvement_labels=IMPROVEMENT_LABELS,
            colours=PROFILE_COLOURS,
            bar_width=BAR_WIDTH,
            undetailed_colour=UNDETAILED_COLOUR,
        )
        return html.encode("utf-8")
