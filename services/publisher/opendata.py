"""The published results as open data: the pseudonymised archive, the rankings recomputed from it
with the published method, and the files (CSV, JSON, Frictionless data package, HTML report).

Everything here is a pure function of the archive, the dataset snapshot and the method, so that
(a) two publisher replicas, or a restart, write byte-identical files, and (b) the audit command
recomputes the rankings from the published files alone and compares them byte for byte.

The ministry's commitments and the excerpts staff approved are inputs, published as recorded: the
files that carry them (and the data package and report that describe them) are a pure function of
the results and of those inputs, rendered again each time one of them changes.
"""

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CountedBallot,
    DatasetStatus,
    ExcerptApproved,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingMethod,
    RankingRow,
    ResultsPublished,
    Tally,
)

# Text cells starting with one of these are formulas to a spreadsheet (CSV injection); such cells,
# and those starting with the escape quote itself, are published with a leading "'" (bijective).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")

FORMULA = {
    "fr": (
        "À ouvrir : score = somme, sur les répondants demandant l'ouverture du jeu de données, du poids "
        "de la priorité donnée (essentiel, important, utile), avec la dernière réponse de chacun. "
        "À améliorer : score = nombre de répondants demandant l'amélioration du jeu de données. "
        "Suggestions : regroupées (même jeu de données du catalogue si rapprochées, sinon même titre "
        "normalisé) ; score = nombre de répondants. Égalités : plus de répondants d'abord, puis "
        "identifiant croissant."
    ),
    "en": (
        "To open: score = sum, over respondents asking for the dataset to be opened, of the weight of "
        "the priority they gave (essential, important, useful), with each respondent's latest response. "
        "To improve: score = respondents asking for the dataset to be improved. Suggestions: grouped "
        "(same catalogue dataset when matched, else same normalised title); score = respondents. Ties: "
        "more respondents first, then identifier ascending."
    ),
}


@dataclass(frozen=True)
class DatasetRef:
    """A catalogue dataset as the results show it."""

    dataset_id: str
    title: str
    status: DatasetStatus


@dataclass(frozen=True)
class Answer:
    """One line of a respondent's counted response."""

    ranking: RankingKind
    key: str
    dataset_id: str | None
    priority: Priority | None = None
    improvements: tuple[ImprovementKind, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class Respondent:
    """A respondent of the archive: renumbered, no identifier, no e-mail, no token."""

    number: int
    profile: Profile
    received_on: date
    submissions: int
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class Consultation:
    """What the results say about the consultation itself."""

    consultation_id: str
    title: str
    opens_at: datetime
    closes_at: datetime
    frozen_at: datetime


@dataclass(frozen=True)
class Method:
    """The published method: weights in force, formula, tie-break, and the code that applied it."""

    weights: Mapping[Priority, int]
    code_version: str

    @property
    def ranking_method(self) -> RankingMethod:
        return RankingMethod(
            weights=dict(self.weights),
            formula=FORMULA["en"],
            tie_break="higher score first, then more respondents, then key (dataset id) ascending",
        )


# The ranking each kind of commitment answers: what the ministry commits to open, improve or add.
COMMITMENT_RANKING = {
    CommitmentKind.OPEN: RankingKind.OPEN,
    CommitmentKind.IMPROVE: RankingKind.IMPROVE,
    CommitmentKind.ADD: RankingKind.SUGGESTIONS,
}


@dataclass(frozen=True)
class Engagement:
    """A commitment with the row of the frozen ranking it answers (None when that was not ranked)."""

    commitment: CommitmentRecorded
    ranked: RankingRow | None


@dataclass(frozen=True)
class FollowUp:
    """What the ministry will do about a consultation's results, and the excerpts approved for publication."""

    engagements: tuple[Engagement, ...] = ()
    excerpts: tuple[ExcerptApproved, ...] = ()


def follow_up_of(
    results: ResultsPublished, commitments: Iterable[CommitmentRecorded], excerpts: Iterable[ExcerptApproved]
) -> FollowUp:
    """The consultation's commitments, ordered by kind, rank at the close and id, with their ranking rows;
    and its excerpts still approved, ordered by id. Nothing else of the inputs is kept."""
    cid = results.consultation_id
    rows = {
        RankingKind.OPEN: {r.key: r for r in results.open},
        RankingKind.IMPROVE: {r.key: r for r in results.improve},
        RankingKind.SUGGESTIONS: {r.key: r for r in results.suggestions},
    }
    kinds = list(CommitmentKind)
    engagements = [
        Engagement(c, rows[COMMITMENT_RANKING[c.kind]].get(c.suggestion_key or c.dataset_id or ""))
        for c in commitments
        if c.consultation_id == cid
    ]
    engagements.sort(
        key=lambda e: (
            kinds.index(e.commitment.kind),
            e.ranked is None,
            e.ranked.rank if e.ranked else 0,
            e.commitment.commitment_id,
        )
    )
    approved = sorted((e for e in excerpts if e.consultation_id == cid and e.approved), key=lambda e: e.excerpt_id)
    return FollowUp(tuple(engagements), tuple(approved))


def timestamp(instant: datetime) -> str:
    """An instant as published: UTC, to the second, ISO 8601 (the Table Schema's default datetime)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_of(ballots: Iterable[CountedBallot]) -> list[Respondent]:
    """The pseudonymised archive: respondents numbered 1… in the order their counted response was
    received (ties by its id, which is then dropped)."""
    ordered = sorted(ballots, key=lambda b: (b.received_at, b.response_id))
    respondents = []
    for number, ballot in enumerate(ordered, start=1):
        answers = [Answer(RankingKind.OPEN, o.dataset_id, o.dataset_id, priority=o.priority) for o in ballot.open]
        answers += [
            Answer(RankingKind.IMPROVE, i.dataset_id, i.dataset_id, improvements=tuple(i.kinds)) for i in ballot.improve
        ]
        answers += [
            Answer(RankingKind.SUGGESTIONS, s.group_key, s.dataset_id, title=s.title) for s in ballot.suggestions
        ]
        respondents.append(
            Respondent(number, ballot.profile, ballot.received_at.date(), ballot.submissions, tuple(answers))
        )
    return respondents


@dataclass
class _Row:
    dataset_id: str | None
    respondents: int = 0
    priorities: Counter[Priority] = field(default_factory=Counter)
    improvements: Counter[ImprovementKind] = field(default_factory=Counter)
    profiles: Counter[Profile] = field(default_factory=Counter)
    profile_priorities: Counter[tuple[Profile, Priority]] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)


def compute_rankings(
    archive: Iterable[Respondent], datasets: Mapping[str, DatasetRef], weights: Mapping[Priority, int]
) -> dict[RankingKind, list[RankingRow]]:
    """The three rankings of DESIGN §4, from the archive alone."""
    rows: dict[RankingKind, dict[str, _Row]] = {kind: {} for kind in RankingKind}
    for respondent in archive:
        for answer in respondent.answers:
            row = rows[answer.ranking].setdefault(answer.key, _Row(answer.dataset_id))
            row.respondents += 1
            row.profiles[respondent.profile] += 1
            if answer.priority is not None:
                row.priorities[answer.priority] += 1
                row.profile_priorities[(respondent.profile, answer.priority)] += 1
            row.improvements.update(answer.improvements)
            if answer.title:
                row.titles[answer.title] += 1

    def score(kind: RankingKind, row: _Row, profile: Profile | None = None) -> int:
        if kind is not RankingKind.OPEN:
            return row.respondents if profile is None else row.profiles[profile]
        if profile is None:
            return sum(w * row.priorities[p] for p, w in weights.items())
        return sum(w * row.profile_priorities[(profile, p)] for p, w in weights.items())

    def title(row: _Row) -> str | None:
        dataset = datasets.get(row.dataset_id) if row.dataset_id else None
        if dataset is not None:
            return dataset.title
        if row.titles:  # the title most respondents typed; among equals, the first alphabetically
            return min(row.titles.items(), key=lambda item: (-item[1], item[0]))[0]
        return None

    def status(row: _Row) -> DatasetStatus | None:
        dataset = datasets.get(row.dataset_id) if row.dataset_id else None
        return dataset.status if dataset else None

    ranked: dict[RankingKind, list[RankingRow]] = {}
    for kind, by_key in rows.items():
        order = sorted(by_key.items(), key=lambda item: (-score(kind, item[1]), -item[1].respondents, item[0]))
        ranked[kind] = [
            RankingRow(
                rank=position,
                key=key,
                dataset_id=row.dataset_id,
                title=title(row),
                status=status(row),
                score=score(kind, row),
                respondents=row.respondents,
                by_profile={
                    p: Tally(score=score(kind, row, p), respondents=row.profiles[p]) for p in Profile if row.profiles[p]
                },
                by_priority={p: row.priorities[p] for p in Priority if row.priorities[p]},
                by_improvement={k: row.improvements[k] for k in ImprovementKind if row.improvements[k]},
            )
            for position, (key, row) in enumerate(order, start=1)
        ]
    return ranked


def results_of(
    event_id: str,
    consultation: Consultation,
    respondents: int,
    method: Method,
    rankings: Mapping[RankingKind, list[RankingRow]],
) -> ResultsPublished:
    return ResultsPublished(
        event_id=event_id,
        occurred_at=consultation.frozen_at,
        consultation_id=consultation.consultation_id,
        title=consultation.title,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        frozen_at=consultation.frozen_at,
        respondents=respondents,
        method=method.ranking_method,
        open=rankings[RankingKind.OPEN],
        improve=rankings[RankingKind.IMPROVE],
        suggestions=rankings[RankingKind.SUGGESTIONS],
    )


def disagreements(
    ours: Mapping[RankingKind, Sequence[RankingRow]], theirs: Mapping[RankingKind, Sequence[RankingRow]]
) -> list[str]:
    """Where two computations of the rankings differ in what is counted (titles aside)."""

    def counted(row: RankingRow) -> tuple[Any, ...]:
        return (
            row.rank,
            row.key,
            row.dataset_id,
            row.score,
            row.respondents,
            row.by_profile,
            row.by_priority,
            row.by_improvement,
        )

    found = []
    for kind in RankingKind:
        a, b = [counted(r) for r in ours.get(kind, [])], [counted(r) for r in theirs.get(kind, [])]
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            found.append(f"{kind.value}: {len(a)} rows against {len(b)}, first difference at row {first + 1}")
    return found


# --- files ----------------------------------------------------------------------------------------

OPEN_CSV = "a-ouvrir.csv"
IMPROVE_CSV = "a-ameliorer.csv"
SUGGESTIONS_CSV = "suggestions.csv"
RESPONDENTS_CSV = "repondants.csv"
ANSWERS_CSV = "reponses.csv"
DATASETS_CSV = "jeux-de-donnees.csv"
RESULTS_JSON = "resultats.json"
METHOD_JSON = "methode.json"
DATAPACKAGE_JSON = "datapackage.json"
REPORT_HTML = "rapport.html"
ENGAGEMENTS_CSV = "engagements.csv"
HISTORY_CSV = "suivi-engagements.csv"
EXCERPTS_CSV = "extraits.csv"
# Recorded by the ministry's staff, published as recorded: the audit checks their hashes, recomputes nothing.
INPUT_FILES = (ENGAGEMENTS_CSV, HISTORY_CSV, EXCERPTS_CSV)
RANKING_FILES = {RankingKind.OPEN: OPEN_CSV, RankingKind.IMPROVE: IMPROVE_CSV, RankingKind.SUGGESTIONS: SUGGESTIONS_CSV}
MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    title: str  # French
    description: str  # French, then English


def _columns(kind: RankingKind) -> list[Column]:
    what = "Identifiant du groupe de suggestions / Suggestion group key" if kind is RankingKind.SUGGESTIONS else ""
    columns = [
        Column("rank", "integer", "Rang", "Position dans le classement, à partir de 1 / 1-based position"),
        Column("key", "string", "Clé", what or "Identifiant du jeu de données / Dataset id"),
        Column("dataset_id", "string", "Jeu de données", "Jeu de données du catalogue / Catalogue dataset id"),
        Column("title", "string", "Titre", "Titre / Title"),
        Column("status", "string", "Statut", "open : ouvert, not_open : pas encore ouvert / catalogue status"),
        Column("score", "integer", "Score", "Score selon la méthode publiée / Score under the published method"),
        Column("respondents", "integer", "Répondants", "Répondants distincts / Distinct respondents"),
    ]
    if kind is RankingKind.OPEN:
        columns += [
            Column(f"respondents_{p.value}", "integer", f"Répondants « {p.value} »", f"Priorité {p.value} / priority")
            for p in Priority
        ]
    if kind is RankingKind.IMPROVE:
        columns += [
            Column(f"improvement_{k.value}", "integer", f"Amélioration « {k.value} »", "Répondants / Respondents")
            for k in ImprovementKind
        ]
    for p in Profile:
        columns += [
            Column(f"score_{p.value}", "integer", f"Score « {p.value} »", "Score de ce profil / Score of this profile"),
            Column(f"respondents_{p.value}_profile", "integer", f"Répondants « {p.value} »", "Profil / Profile"),
        ]
    return columns


RESPONDENT_COLUMNS = [
    Column("respondent", "integer", "Répondant", "Numéro pseudonyme / Pseudonymous number"),
    Column("profile", "string", "Profil", "Profil déclaré / Declared profile"),
    Column("received_on", "date", "Reçue le", "Jour (UTC) de la réponse comptée / Day (UTC) of the counted response"),
    Column("submissions", "integer", "Envois", "Envois du répondant, le dernier compte / Submissions, latest counted"),
]
ANSWER_COLUMNS = [
    Column("respondent", "integer", "Répondant", "Numéro du répondant / Respondent number"),
    Column("ranking", "string", "Classement", "open, improve ou suggestions / ranking"),
    Column("key", "string", "Clé", "Jeu de données ou groupe de suggestions / Dataset id or suggestion group"),
    Column("dataset_id", "string", "Jeu de données", "Jeu de données du catalogue / Catalogue dataset id"),
    Column("priority", "string", "Priorité", "essential, important ou useful (open) / priority"),
    Column("improvements", "string", "Améliorations", "Séparées par « ; » (improve) / ';'-separated kinds"),
    Column("title", "string", "Titre saisi", "Titre tel que saisi (suggestions) / Title as typed"),
]
DATASET_COLUMNS = [
    Column("dataset_id", "string", "Jeu de données", "Identifiant / Id"),
    Column("title", "string", "Titre", "Titre / Title"),
    Column("status", "string", "Statut", "open ou not_open / status"),
]


ENGAGEMENT_COLUMNS = [
    Column("commitment_id", "string", "Engagement", "Identifiant de l'engagement / Commitment id"),
    Column("kind", "string", "Nature", "open : ouvrir, improve : améliorer, add : ajouter au catalogue / kind"),
    Column("dataset_id", "string", "Jeu de données", "Jeu de données du catalogue (open, improve) / Catalogue dataset"),
    Column("suggestion_key", "string", "Suggestion", "Groupe de suggestions (add) / Suggestion group (add)"),
    Column("title", "string", "Titre", "Titre lors de l'engagement / Title when the commitment was made"),
    Column("rank", "integer", "Rang", "Rang à la clôture dans le classement de cette nature / Rank at the close"),
    Column("score", "integer", "Score", "Score à la clôture / Score at the close"),
    Column("respondents", "integer", "Répondants", "Répondants à la clôture / Respondents at the close"),
    Column("service", "string", "Service", "Service chargé de l'engagement / Service in charge"),
    Column("target", "string", "Échéance", "Trimestre (2027-T2) ou jour (2027-06-30) visé / Target quarter or day"),
    Column("status", "string", "Statut", "planned, in_progress, done ou dropped / status"),
    Column("status_since", "datetime", "Depuis", "Date (UTC) du statut actuel / Since when (UTC)"),
    Column("note_fr", "string", "Note", "Note publique en français / Public note in French"),
    Column("note_en", "string", "Note (anglais)", "Note publique en anglais / Public note in English"),
    Column("reason", "string", "Motif", "Motif public d'un abandon / Public reason of a drop"),
    Column("done_url", "string", "Lien", "Où est le jeu de données, une fois fait / Where the dataset is, when done"),
]
HISTORY_COLUMNS = [
    Column("commitment_id", "string", "Engagement", "Identifiant de l'engagement / Commitment id"),
    Column("status", "string", "Statut", "Statut atteint / Status reached"),
    Column("at", "datetime", "Le", "Date (UTC) / When (UTC)"),
    Column("by", "string", "Par", "staff : le ministère, catalogue : constaté au catalogue / who"),
    Column("note", "string", "Note", "Motif d'un abandon ou lien une fois fait / Reason of a drop or link when done"),
]
EXCERPT_COLUMNS = [
    Column("excerpt_id", "string", "Extrait", "Identifiant de l'extrait / Excerpt id"),
    Column("kind", "string", "Nature", "improvement : commentaire, suggestion : description / kind"),
    Column("dataset_id", "string", "Jeu de données", "Jeu de données commenté / Dataset commented on"),
    Column("group_key", "string", "Suggestion", "Groupe de suggestions / Suggestion group"),
    Column("title", "string", "Titre", "Titre du jeu de données ou du groupe / Title"),
    Column("text", "string", "Texte", "Texte approuvé pour publication / Text approved for publication"),
]


def safe_cell(value: object) -> str:
    """A CSV cell no spreadsheet takes for a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unsafe_cell(text: str) -> str:
    """The value `safe_cell` escaped."""
    return text[1:] if text.startswith("'") else text


def _csv(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def ranking_csv(kind: RankingKind, rows: Iterable[RankingRow]) -> bytes:
    def line(row: RankingRow) -> list[object]:
        cells: list[object] = [row.rank, row.key, row.dataset_id, row.title, row.status, row.score, row.respondents]
        if kind is RankingKind.OPEN:
            cells += [row.by_priority.get(p, 0) for p in Priority]
        if kind is RankingKind.IMPROVE:
            cells += [row.by_improvement.get(k, 0) for k in ImprovementKind]
        for p in Profile:
            tally = row.by_profile.get(p)
            cells += [tally.score if tally else 0, tally.respondents if tally else 0]
        return cells

    return _csv(_columns(kind), (line(r) for r in rows))


def _json(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def respondents_csv(archive: Iterable[Respondent]) -> bytes:
    return _csv(
        RESPONDENT_COLUMNS, ((r.number, r.profile.value, r.received_on.isoformat(), r.submissions) for r in archive)
    )


def answers_csv(archive: Iterable[Respondent]) -> bytes:
    return _csv(
        ANSWER_COLUMNS,
        (
            (
                r.number,
                a.ranking.value,
                a.key,
                a.dataset_id,
                a.priority.value if a.priority else "",
                ";".join(k.value for k in a.improvements),
                a.title,
            )
            for r in archive
            for a in r.answers
        ),
    )


def datasets_csv(datasets: Mapping[str, DatasetRef]) -> bytes:
    return _csv(DATASET_COLUMNS, ((d.dataset_id, d.title, d.status.value) for _, d in sorted(datasets.items())))


def engagements_csv(follow_up: FollowUp) -> bytes:
    def line(e: Engagement) -> list[object]:
        c, row = e.commitment, e.ranked
        return [
            c.commitment_id,
            c.kind.value,
            c.dataset_id,
            c.suggestion_key,
            c.title,
            row.rank if row else None,
            row.score if row else None,
            row.respondents if row else None,
            c.service,
            c.target,
            c.status.value,
            timestamp(c.history[-1].at),
            c.note_fr,
            c.note_en,
            c.reason,
            c.done_url,
        ]

    return _csv(ENGAGEMENT_COLUMNS, (line(e) for e in follow_up.engagements))


def history_csv(follow_up: FollowUp) -> bytes:
    return _csv(
        HISTORY_COLUMNS,
        (
            (e.commitment.commitment_id, step.status.value, timestamp(step.at), step.by, step.note)
            for e in follow_up.engagements
            for step in e.commitment.history
        ),
    )


def excerpts_csv(follow_up: FollowUp) -> bytes:
    return _csv(
        EXCERPT_COLUMNS,
        ((x.excerpt_id, x.kind.value, x.dataset_id, x.group_key, x.title, x.text) for x in follow_up.excerpts),
    )


def method_json(consultation: Consultation, event_id: str, method: Method) -> bytes:
    return _json(
        {
            "consultation": {
                "consultation_id": consultation.consultation_id,
                "title": consultation.title,
                "opens_at": consultation.opens_at.isoformat(),
                "closes_at": consultation.closes_at.isoformat(),
                "frozen_at": consultation.frozen_at.isoformat(),
                "results_event_id": event_id,
            },
            "weights": {p.value: method.weights[p] for p in Priority},
            "formula": FORMULA,
            "tie_break": method.ranking_method.tie_break,
            "code_version": method.code_version,
            "archive": {
                "respondents": RESPONDENTS_CSV,
                "answers": ANSWERS_CSV,
                "datasets": DATASETS_CSV,
                "note": "Respondents renumbered in the order their counted (latest) response was received; "
                "no e-mail hash, token or response id is published.",
            },
            "inputs": {
                "commitments": ENGAGEMENTS_CSV,
                "history": HISTORY_CSV,
                "excerpts": EXCERPTS_CSV,
                "note": "Recorded by the ministry's staff after the close and published as recorded, then again "
                "each time one changes: inputs, not recomputed. The rank, score and respondents of a commitment "
                "are those of its dataset or suggestion group in the frozen rankings.",
            },
        }
    )


def results_json(results: ResultsPublished) -> bytes:
    return _json(results.model_dump(mode="json"))


def _schema(columns: Sequence[Column], primary_key: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "fields": [
            {"name": c.name, "type": c.type, "title": c.title, "description": c.description}
            | ({"format": "%Y-%m-%d"} if c.type == "date" else {})
            for c in columns
        ],
        "missingValues": [""],
    }
    if primary_key:
        schema["primaryKey"] = list(primary_key)
    return schema


def datapackage_json(consultation: Consultation, files: Mapping[str, bytes]) -> bytes:
    def resource(name: str, title: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
        data = files[name]
        return {
            "name": name.removesuffix(".csv"),
            "path": name,
            "title": title,
            **({"description": description} if description else {}),
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "bytes": len(data),
            "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
            "dialect": {"delimiter": ",", "quoteChar": '"', "header": True},
            "schema": schema,
        }

    history_schema = _schema(HISTORY_COLUMNS)
    history_schema["foreignKeys"] = [
        {"fields": ["commitment_id"], "reference": {"resource": "engagements", "fields": ["commitment_id"]}}
    ]
    answers_schema = _schema(ANSWER_COLUMNS)
    answers_schema["foreignKeys"] = [
        {"fields": ["respondent"], "reference": {"resource": "repondants", "fields": ["respondent"]}}
    ]
    package = {
        "name": f"consultation-{consultation.consultation_id}".lower(),
        "title": f"Résultats de la consultation « {consultation.title} » / Consultation results",
        "description": (
            "Classements des jeux de données à ouvrir, à améliorer et des suggestions, avec le détail par "
            "profil, et l'archive pseudonymisée des réponses comptées qui permet de les recalculer (voir "
            f"{METHOD_JSON}) ; les engagements du ministère, leur suivi et les extraits approuvés, données "
            "d'entrée non recalculées. / Rankings of the datasets to open, to improve and of the suggestions, by "
            "profile, with the pseudonymised archive of the counted responses that recomputes them; the "
            "ministry's commitments, their history and the approved excerpts, inputs not recomputed."
        ),
        "licenses": [
            {
                "name": "etalab-2.0",
                "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
                "title": "Licence Ouverte / Open Licence version 2.0",
            }
        ],
        "created": consultation.frozen_at.isoformat(),
        "resources": [
            resource(OPEN_CSV, "Jeux de données à ouvrir / Datasets to open", _schema(_columns(RankingKind.OPEN))),
            resource(
                IMPROVE_CSV, "Jeux de données à améliorer / Datasets to improve", _schema(_columns(RankingKind.IMPROVE))
            ),
            resource(
                SUGGESTIONS_CSV,
                "Jeux de données suggérés / Suggested datasets",
                _schema(_columns(RankingKind.SUGGESTIONS)),
            ),
            resource(RESPONDENTS_CSV, "Répondants / Respondents", _schema(RESPONDENT_COLUMNS, ["respondent"])),
            resource(ANSWERS_CSV, "Réponses comptées / Counted answers", answers_schema),
            resource(DATASETS_CSV, "Jeux de données cités / Datasets named", _schema(DATASET_COLUMNS, ["dataset_id"])),
            resource(
                ENGAGEMENTS_CSV,
                "Engagements du ministère / The ministry's commitments",
                _schema(ENGAGEMENT_COLUMNS, ["commitment_id"]),
                "Donnée d'entrée saisie par le ministère, publiée telle quelle, non recalculée ; rang, score et "
                "répondants sont ceux du classement arrêté à la clôture. / An input recorded by the ministry, "
                "published as recorded, not recomputed; rank, score and respondents are those of the frozen "
                "ranking.",
            ),
            resource(
                HISTORY_CSV,
                "Suivi des engagements / Commitments' history",
                history_schema,
                "Donnée d'entrée, non recalculée : chaque changement de statut d'un engagement. / An input, not "
                "recomputed: each status change of a commitment.",
            ),
            resource(
                EXCERPTS_CSV,
                "Extraits approuvés / Approved excerpts",
                _schema(EXCERPT_COLUMNS, ["excerpt_id"]),
                "Donnée d'entrée, non recalculée : les seuls extraits de ce qu'ont écrit les répondants que le "
                "ministère a approuvés pour publication, tels qu'approuvés. / An input, not recomputed: only the "
                "excerpts of what respondents wrote that the ministry approved for publication, as approved.",
            ),
        ],
    }
    return _json(package)


def ranking_files(results: ResultsPublished) -> dict[str, bytes]:
    """The files the audit recomputes: the rankings, as CSV and as JSON."""
    rankings = {
        RankingKind.OPEN: results.open,
        RankingKind.IMPROVE: results.improve,
        RankingKind.SUGGESTIONS: results.suggestions,
    }
    files = {RANKING_FILES[kind]: ranking_csv(kind, rows) for kind, rows in rankings.items()}
    files[RESULTS_JSON] = results_json(results)
    return files


def datasets_of(results: ResultsPublished) -> dict[str, DatasetRef]:
    """The catalogue as the results show it: every ranked dataset with its title and status."""
    datasets = {}
    for row in [*results.open, *results.improve, *results.suggestions]:
        if row.dataset_id and row.title is not None and row.status is not None:
            datasets[row.dataset_id] = DatasetRef(row.dataset_id, row.title, row.status)
    return datasets


Report = Callable[[ResultsPublished, Sequence[Respondent], FollowUp], bytes]


def render_files(
    results: ResultsPublished,
    archive: Sequence[Respondent],
    method: Method,
    report: Report,
    follow_up: FollowUp = FollowUp(),
) -> dict[str, bytes]:
    """Every published file, byte for byte the same for the same inputs."""
    consultation = consultation_of(results)
    files = ranking_files(results)
    files[RESPONDENTS_CSV] = respondents_csv(archive)
    files[ANSWERS_CSV] = answers_csv(archive)
    files[DATASETS_CSV] = datasets_csv(datasets_of(results))
    files[ENGAGEMENTS_CSV] = engagements_csv(follow_up)
    files[HISTORY_CSV] = history_csv(follow_up)
    files[EXCERPTS_CSV] = excerpts_csv(follow_up)
    files[METHOD_JSON] = method_json(consultation, results.event_id, method)
    files[DATAPACKAGE_JSON] = datapackage_json(consultation, files)
    files[REPORT_HTML] = report(results, archive, follow_up)
    return files


def consultation_of(results: ResultsPublished) -> Consultation:
    return Consultation(results.consultation_id, results.title, results.opens_at, results.closes_at, results.frozen_at)


# --- reading the published files back (the audit) -------------------------------------------------


def _rows(data: bytes) -> list[dict[str, str]]:
    return [{k: unsafe_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]


def read_archive(respondents: bytes, answers: bytes) -> list[Respondent]:
    by_number: dict[int, list[Answer]] = {}
    for row in _rows(answers):
        by_number.setdefault(int(row["respondent"]), []).append(
            Answer(
                ranking=RankingKind(row["ranking"]),
                key=row["key"],
                dataset_id=row["dataset_id"] or None,
                priority=Priority(row["priority"]) if row["priority"] else None,
                improvements=tuple(ImprovementKind(k) for k in row["improvements"].split(";") if k),
                title=row["title"],
            )
        )
    return [
        Respondent(
            number=int(row["respondent"]),
            profile=Profile(row["profile"]),
            received_on=date.fromisoformat(row["received_on"]),
            submissions=int(row["submissions"]),
            answers=tuple(by_number.get(int(row["respondent"]), [])),
        )
        for row in _rows(respondents)
    ]


def read_datasets(data: bytes) -> dict[str, DatasetRef]:
    return {
        row["dataset_id"]: DatasetRef(row["dataset_id"], row["title"], DatasetStatus(row["status"]))
        for row in _rows(data)
    }


def read_method(data: bytes) -> tuple[Consultation, str, Method]:
    doc = json.loads(data)
    c = doc["consultation"]
    consultation = Consultation(
        c["consultation_id"],
        c["title"],
        datetime.fromisoformat(c["opens_at"]),
        datetime.fromisoformat(c["closes_at"]),
        datetime.fromisoformat(c["frozen_at"]),
    )
    method = Method({Priority(p): int(w) for p, w in doc["weights"].items()}, doc["code_version"])
    return consultation, c["results_event_id"], method


def recompute(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The ranking files as the archive and the method alone say they are."""
    consultation, event_id, method = read_method(files[METHOD_JSON])
    archive = read_archive(files[RESPONDENTS_CSV], files[ANSWERS_CSV])
    rankings = compute_rankings(archive, read_datasets(files[DATASETS_CSV]), method.weights)
    return ranking_files(results_of(event_id, consultation, len(archive), method, rankings))
