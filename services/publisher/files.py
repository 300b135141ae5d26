"""The published results as open data files (CSV, JSON, Frictionless data package, HTML report), rendered
from the archive and rankings of `archive`, and read back for the audit and the republication.

Every file is a pure function of the archive, the dataset snapshot and the method, so that (a) two
publisher replicas, or a restart, write byte-identical files, and (b) the audit command recomputes the
rankings from the published files alone and compares them byte for byte.

The ministry's commitments and the excerpts staff approved are inputs, published as recorded: the
files that carry them (and the data package and report that describe them) are a pure function of
the results and of those inputs, rendered again each time one of them changes. So are the clusters set
aside (`exclusions.csv`), as frozen at the close; the archive marks each respondent set aside with the
cluster, and the published rankings count the others.
"""

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services.publisher.archive import (
    FORMULA,
    OPAQUE_PREFIX,
    Answer,
    Consultation,
    DatasetRef,
    Engagement,
    FollowUp,
    Method,
    Respondent,
    consultation_of,
    counted,
    datasets_of,
    published_rankings,
    set_aside_by_reason,
    shown,
)
from shared.contracts import (
    DatasetStatus,
    DetectionSettings,
    ExclusionInForce,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingRow,
    ResultsPublished,
    Signal,
    Tally,
)
from shared.uncertainty import DEFAULT_LEVEL, STATEMENT, WEIGHTINGS, seed_of

# Text cells starting with one of these are formulas to a spreadsheet (CSV injection); such cells,
# and those starting with the escape quote itself, are published with a leading "'" (bijective).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")

SUPPRESSED = "s"  # a breakdown cell between 1 and min_cell - 1, in the CSV files

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
EXCLUSIONS_CSV = "exclusions.csv"
# Recorded by the ministry's staff, published as recorded: the audit checks their hashes, recomputes nothing
# (of the clusters set aside, it checks that each counts the respondents the archive marks with it).
INPUT_FILES = (ENGAGEMENTS_CSV, HISTORY_CSV, EXCERPTS_CSV, EXCLUSIONS_CSV)
RANKING_FILES = {RankingKind.OPEN: OPEN_CSV, RankingKind.IMPROVE: IMPROVE_CSV, RankingKind.SUGGESTIONS: SUGGESTIONS_CSV}
MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    title: str  # French
    description: str  # French, then English


# A breakdown cell's description: French, then English.
SECRET = (
    f" ; « {SUPPRESSED} » : entre 1 et le seuil de {METHOD_JSON}, non publié"
    f" / breakdown cell; '{SUPPRESSED}': between 1 and the threshold in {METHOD_JSON}, suppressed"
)


def _interval_columns(kind: RankingKind) -> list[Column]:
    interval = f"l'intervalle de rang à 90 % ({METHOD_JSON}) / the rank's bootstrap interval"
    columns = [
        Column("rank_low", "integer", "Rang, borne basse", f"Borne basse de {interval}, low end"),
        Column("rank_high", "integer", "Rang, borne haute", f"Borne haute de {interval}, high end"),
        Column(
            "too_close_to_call",
            "boolean",
            "Trop proche pour départager",
            "true : l'intervalle chevauche celui d'un voisin / true: the interval overlaps a neighbour's",
        ),
        Column(
            "tie_group",
            "integer",
            "Groupe",
            "Rang de la première ligne du groupe de lignes indiscernables / rank of the first row of its group",
        ),
    ]
    if kind is RankingKind.OPEN:
        columns += [
            Column(
                f"rank_{name}",
                "integer",
                f"Rang, pondération « {name} »",
                f"Rang avec les poids {weights} (essentiel, important, utile) / rank under these weights",
            )
            for name, weights in WEIGHTINGS.items()
        ]
    return columns


def _columns(kind: RankingKind, uncertain: bool = True) -> list[Column]:
    what = "Identifiant du groupe de suggestions / Suggestion group key" if kind is RankingKind.SUGGESTIONS else ""
    columns = [
        Column("rank", "integer", "Rang", "Position dans le classement, à partir de 1 / 1-based position"),
        *(_interval_columns(kind) if uncertain else []),
        Column("key", "string", "Clé", what or "Identifiant du jeu de données / Dataset id"),
        Column("dataset_id", "string", "Jeu de données", "Jeu de données du catalogue / Catalogue dataset id"),
        Column("title", "string", "Titre", "Titre / Title"),
        Column("status", "string", "Statut", "open : ouvert, not_open : pas encore ouvert / catalogue status"),
        Column("score", "integer", "Score", "Score selon la méthode publiée / Score under the published method"),
        Column("respondents", "integer", "Répondants", "Répondants distincts / Distinct respondents"),
    ]
    if kind is RankingKind.OPEN:
        columns += [
            Column(f"respondents_{p.value}", "integer", f"Répondants « {p.value} »", f"Priorité {p.value}{SECRET}")
            for p in Priority
        ]
    if kind is RankingKind.IMPROVE:
        columns += [
            Column(f"improvement_{k.value}", "integer", f"Amélioration « {k.value} »", f"Répondants{SECRET}")
            for k in ImprovementKind
        ]
    for p in Profile:
        columns += [
            Column(f"score_{p.value}", "integer", f"Score « {p.value} »", f"Score de ce profil{SECRET}"),
            Column(f"respondents_{p.value}_profile", "integer", f"Répondants « {p.value} »", f"Profil{SECRET}"),
        ]
    return columns


RESPONDENT_COLUMNS = [
    Column(
        "respondent",
        "integer",
        "Répondant",
        "Numéro pseudonyme, sans lien avec l'ordre des réponses / Pseudonymous number",
    ),
    Column(
        "profile",
        "string",
        "Profil",
        "Profil déclaré ; other : autre ou profil rare regroupé / Declared profile, or pooled",
    ),
    Column(
        "received_week",
        "date",
        "Semaine",
        "Lundi de la semaine ISO (UTC) de la réponse comptée / Monday of the ISO week (UTC) of the counted response",
    ),
    Column("submissions", "integer", "Envois", "Envois du répondant, le dernier compte / Submissions, latest counted"),
    Column(
        "exclusion",
        "string",
        "Mise à l'écart",
        f"Groupe suspect pour lequel le répondant est mis à l'écart des classements ({EXCLUSIONS_CSV}), sinon vide "
        "/ The excluded cluster the respondent is set aside for (not counted in the rankings), else empty",
    ),
]
ANSWER_COLUMNS = [
    Column("respondent", "integer", "Répondant", "Numéro du répondant / Respondent number"),
    Column("ranking", "string", "Classement", "open, improve ou suggestions / ranking"),
    Column("key", "string", "Clé", "Jeu de données ou groupe de suggestions / Dataset id or suggestion group"),
    Column("dataset_id", "string", "Jeu de données", "Jeu de données du catalogue / Catalogue dataset id"),
    Column("priority", "string", "Priorité", "essential, important ou useful (open) / priority"),
    Column("improvements", "string", "Améliorations", "Séparées par « ; » (improve) / ';'-separated kinds"),
    Column(
        "title",
        "string",
        "Titre du groupe",
        "Titre du groupe de suggestions, s'il compte assez de répondants / Suggestion group title, if large enough",
    ),
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
    Column(
        "suggestion_key",
        "string",
        "Suggestion",
        "Groupe de suggestions (add), clé publiée / Suggestion group (add), as published",
    ),
    Column("title", "string", "Titre", "Titre lors de l'engagement / Title when the commitment was made"),
    Column("rank", "integer", "Rang", "Rang dans le classement publié de cette nature / Rank in the published ranking"),
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
EXCLUSION_COLUMNS = [
    Column("cluster_id", "string", "Groupe", "Identifiant du groupe suspect / Cluster id"),
    Column(
        "signals",
        "string",
        "Signaux",
        "Ce qui l'a signalé, séparés par « | » : network_burst (rafale d'un même réseau), same_answers (mêmes "
        "réponses), fast_fill (formulaires trop vite remplis) / '|'-separated signals that flagged it",
    ),
    Column("first_at", "datetime", "Première réponse", "Première réception, à la minute (UTC) / First receipt (UTC)"),
    Column("last_at", "datetime", "Dernière réponse", "Dernière réception, à la minute (UTC) / Last receipt (UTC)"),
    Column(
        "respondents",
        "integer",
        "Répondants",
        "Répondants mis à l'écart, marqués dans l'archive / Respondents set aside, marked in the archive",
    ),
    Column("reason", "string", "Motif", "Motif public de la mise à l'écart / Public reason"),
    Column(
        "datasets",
        "string",
        "Jeux de données",
        "Jeux de données poussés, séparés par « | » / '|'-separated datasets the cluster pushes",
    ),
]
EXCERPT_COLUMNS = [
    Column("excerpt_id", "string", "Extrait", "Identifiant de l'extrait / Excerpt id"),
    Column("kind", "string", "Nature", "improvement : commentaire, suggestion : description / kind"),
    Column("dataset_id", "string", "Jeu de données", "Jeu de données commenté / Dataset commented on"),
    Column("group_key", "string", "Suggestion", "Groupe de suggestions / Suggestion group"),
    Column("title", "string", "Titre", "Titre du jeu de données ou du groupe / Title"),
    Column("text", "string", "Texte", "Texte approuvé pour publication / Text approved for publication"),
]


def timestamp(instant: datetime) -> str:
    """An instant as published: UTC, to the second, ISO 8601 (the Table Schema's default datetime)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _interval_cells(kind: RankingKind, row: RankingRow) -> list[object]:
    low, high = row.rank_interval or (None, None)
    close = None if row.too_close_to_call is None else str(row.too_close_to_call).lower()
    cells: list[object] = [low, high, close, row.tie_group]
    if kind is RankingKind.OPEN:
        cells += [row.ranks_by_weighting.get(name) for name in WEIGHTINGS]
    return cells


def ranking_csv(kind: RankingKind, rows: Iterable[RankingRow], min_cell: int, uncertain: bool = True) -> bytes:
    """A ranking as CSV, from rows in full detail: each breakdown cell between 1 and `min_cell - 1`
    written `s` (suppressed); with the rank intervals unless `uncertain` is false (the form published
    before they existed)."""

    def cell(value: int) -> object:
        return value if shown(value, min_cell) else SUPPRESSED

    def line(row: RankingRow) -> list[object]:
        cells: list[object] = [row.rank, *(_interval_cells(kind, row) if uncertain else [])]
        cells += [row.key, row.dataset_id, row.title, row.status, row.score, row.respondents]
        if kind is RankingKind.OPEN:
            cells += [cell(row.by_priority.get(p, 0)) for p in Priority]
        if kind is RankingKind.IMPROVE:
            cells += [cell(row.by_improvement.get(k, 0)) for k in ImprovementKind]
        for p in Profile:
            tally = row.by_profile.get(p, Tally(score=0, respondents=0))
            hidden = not shown(tally.respondents, min_cell)
            cells += [SUPPRESSED if hidden else tally.score, SUPPRESSED if hidden else tally.respondents]
        return cells

    return _csv(_columns(kind, uncertain), (line(r) for r in rows))


def _json(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def respondents_csv(archive: Iterable[Respondent], with_exclusion: bool = True) -> bytes:
    """The archive's respondents; `with_exclusion=False` in the form published before exclusions existed."""
    columns = RESPONDENT_COLUMNS if with_exclusion else RESPONDENT_COLUMNS[:-1]
    return _csv(
        columns,
        (
            (r.number, r.profile.value, r.received_on.isoformat(), r.submissions, r.exclusion)[: len(columns)]
            for r in archive
        ),
    )


def exclusions_csv(exclusions: Iterable[ExclusionInForce]) -> bytes:
    """The clusters set aside, as published (see `published_exclusions`): no identifier."""
    return _csv(
        EXCLUSION_COLUMNS,
        (
            (
                e.cluster_id,
                "|".join(s.value for s in e.signals),
                timestamp(e.first_at),
                timestamp(e.last_at),
                e.respondents,
                e.reason,
                "|".join(e.datasets),
            )
            for e in exclusions
        ),
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
            e.suggestion_key,
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


def method_json(
    consultation: Consultation, event_id: str, method: Method, exclusions: Sequence[ExclusionInForce] = ()
) -> bytes:
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
            "publication": publication_rules(method.min_cell),
            "detection": detection(exclusions),
            **({"uncertainty": uncertainty(consultation, method)} if method.resamples is not None else {}),
            "archive": {
                "respondents": RESPONDENTS_CSV,
                "answers": ANSWERS_CSV,
                "datasets": DATASETS_CSV,
                "note": "The pseudonymised archive, as the publication rules make it: no e-mail hash, token, "
                "response id or free text is published; the rankings are computed from it.",
            },
            "inputs": {
                "commitments": ENGAGEMENTS_CSV,
                "history": HISTORY_CSV,
                "excerpts": EXCERPTS_CSV,
                "exclusions": EXCLUSIONS_CSV,
                "note": "Recorded by the ministry's staff after the close and published as recorded, then again "
                "each time one changes: inputs, not recomputed. The rank, score and respondents of a commitment "
                "are those of its dataset or suggestion group in the published rankings.",
            },
        }
    )


def uncertainty(consultation: Consultation, method: Method) -> dict[str, Any]:
    """The bootstrap of the rank intervals and the alternative weightings, as `methode.json` states them."""
    return {
        "resamples": method.resamples,
        "level": method.level,
        "seed": seed_of(consultation.consultation_id),
        "seed_rule": "the first 8 bytes, big-endian, of SHA-256('bootstrap\\n' + consultation_id)",
        "draws": "half the counted respondents, rounded up, with replacement",
        "generator": "splitmix64 over a counter: draw j of resample b is respondent "
        "floor((splitmix64(seed, b * draws + j) >> 32) * respondents / 2**32), respondents numbered in the "
        f"order of {RESPONDENTS_CSV} (those set aside left out)",
        "statement": STATEMENT,
        "weightings": {name: dict(zip((p.value for p in Priority), w, strict=True)) for name, w in WEIGHTINGS.items()},
    }


DETECTION = {
    "fr": (
        "Bourrage présumé : la détection signale les groupes de réponses suspects : une rafale de nouveaux "
        "répondants venus d'un même réseau en peu de temps (network_burst), beaucoup de répondants donnant les "
        "mêmes réponses, ou presque, en peu de temps (same_answers), des formulaires remplis trop vite pour "
        "avoir été lus, venus d'un même réseau (fast_fill) ; les seuils sont dans « settings ». Le ministère "
        "examine chaque groupe signalé et le met à l'écart ou le garde, avec un motif public. Les classements "
        "publiés sont filtrés : ils ne comptent pas les répondants des groupes mis à l'écart ; l'archive "
        f"({RESPONDENTS_CSV}) garde tous les répondants, chacun avec le groupe pour lequel il est mis à l'écart "
        f"(colonne exclusion), et {EXCLUSIONS_CSV} décrit chaque groupe mis à l'écart."
    ),
    "en": (
        "Suspected ballot stuffing: detection flags clusters of suspicious responses: a burst of new respondents "
        "from one network in a short time (network_burst), many respondents giving the same answers, or nearly, "
        "in a short time (same_answers), web forms filled faster than a person reads them, from one network "
        "(fast_fill); the thresholds are in 'settings'. The ministry's staff review each flagged cluster and "
        "exclude it or clear it, with a public reason. The rankings published are filtered: they leave out the "
        f"respondents of the excluded clusters; the archive ({RESPONDENTS_CSV}) holds every respondent, each with "
        f"the cluster they are set aside for (column exclusion), and {EXCLUSIONS_CSV} describes each excluded "
        "cluster."
    ),
}


def detection(exclusions: Sequence[ExclusionInForce]) -> dict[str, Any]:
    """The detection rule, its settings and what was set aside (methode.json). `settings` are those the
    clusters were flagged under (null if none was set aside); should clusters have been flagged under
    different settings, `settings_of` gives those of each cluster whose settings are not `settings`."""
    latest = max(exclusions, key=lambda e: (e.last_at, e.cluster_id), default=None)
    settings = latest.settings if latest else None
    by_reason = set_aside_by_reason(exclusions)
    return {
        "fr": DETECTION["fr"],
        "en": DETECTION["en"],
        "exclusions": EXCLUSIONS_CSV,
        "settings": settings.model_dump(mode="json") if settings else None,
        "settings_of": {e.cluster_id: e.settings.model_dump(mode="json") for e in exclusions if e.settings != settings},
        "set_aside": {"by_reason": by_reason, "total": sum(by_reason.values())},
    }


def publication_rules(min_cell: int) -> dict[str, Any]:
    """What the publication does so that nothing published identifies anyone (methode.json)."""
    return {
        "min_cell": min_cell,
        "suppressed": SUPPRESSED,
        "fr": (
            "Rien de ce qui est publié n'identifie personne. Archive : les répondants sont numérotés dans "
            "l'ordre d'une empreinte SHA-256 de l'identifiant de la consultation et de celui de leur réponse "
            "comptée, non dans l'ordre où ils ont répondu ; le jour de la réponse comptée est publié comme le "
            f"lundi de sa semaine ISO (received_week). Un profil de moins de {min_cell} répondants dans la "
            "consultation est publié comme « other » (puis, tant que « other » compte de 1 à "
            f"{min_cell - 1} répondants, le plus petit profil restant aussi). Aucun texte libre : une "
            "suggestion porte le titre de son groupe (le titre que la plupart de ses répondants ont saisi) "
            f"seulement si le groupe compte au moins {min_cell} répondants ; un groupe plus petit n'a pas de "
            "titre, et sa clé, faite des mots saisis quand il n'est pas rapproché d'un jeu de données du "
            f"catalogue, est remplacée par « {OPAQUE_PREFIX} » suivi des 10 premiers chiffres hexadécimaux "
            "de son empreinte SHA-256. Classements, calculés à partir de cette archive : toute case de détail "
            f"(par profil, par priorité, par nature d'amélioration) valant de 1 à {min_cell - 1} est "
            f"masquée : « {SUPPRESSED} » dans les fichiers CSV, absente des détails de {RESULTS_JSON} (où "
            "une entrée absente vaut 0 ou est masquée) ; les totaux (score, répondants) sont publiés. Les "
            "rangs sont ceux que donne cette archive : à égalité parfaite, la clé publiée départage."
        ),
        "en": (
            "Nothing published identifies anyone. Archive: respondents are numbered in the order of a "
            "SHA-256 hash of the consultation id and of the id of their counted response, not in the order "
            "they answered; the day of the counted response is published as the Monday of its ISO week "
            f"(received_week). A profile with fewer than {min_cell} respondents in the consultation is "
            f"published as 'other' (then, while 'other' has 1 to {min_cell - 1} respondents, the smallest "
            "remaining profile too). No free text: a suggestion carries the title of its group (the title "
            f"most of its respondents typed) only when the group has at least {min_cell} respondents; a "
            "smaller group has no title, and its key, made of the typed words unless the group was matched "
            f"to a catalogue dataset, is replaced by '{OPAQUE_PREFIX}' and the first 10 hexadecimal digits "
            "of its SHA-256. Rankings, computed from this archive: every breakdown cell (by profile, by "
            f"priority, by kind of improvement) from 1 to {min_cell - 1} is suppressed: '{SUPPRESSED}' in "
            f"the CSV files, left out of the breakdowns of {RESULTS_JSON} (where a missing entry is 0 or "
            "suppressed); totals (score, respondents) are published. Ranks are those this archive gives: "
            "among exact ties, the published key decides."
        ),
    }


# Fields of the results that files published before exclusions existed do not carry.
EXCLUSION_FIELDS = frozenset({"excluded_respondents", "exclusions"})


INTERVAL_FIELDS = frozenset({"rank_interval", "too_close_to_call", "tie_group", "ranks_by_weighting"})


def results_json(results: ResultsPublished, with_exclusions: bool = True, with_intervals: bool = True) -> bytes:
    """`resultats.json`; `with_exclusions=False` in the form published before exclusions existed,
    `with_intervals=False` in the form published before rank intervals existed."""
    exclude: dict[str, Any] = {} if with_exclusions else dict.fromkeys(EXCLUSION_FIELDS, True)
    if not with_intervals:
        exclude |= {kind: {"__all__": set(INTERVAL_FIELDS)} for kind in ("open", "improve", "suggestions")}
        exclude["method"] = {"uncertainty"}
    return _json(results.model_dump(mode="json", exclude=exclude or None))


def _schema(
    columns: Sequence[Column], primary_key: Sequence[str] = (), missing: Sequence[str] = ("",)
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "fields": [
            {"name": c.name, "type": c.type, "title": c.title, "description": c.description}
            | ({"format": "%Y-%m-%d"} if c.type == "date" else {})
            for c in columns
        ],
        "missingValues": list(missing),
    }
    if primary_key:
        schema["primaryKey"] = list(primary_key)
    return schema


def ranking_schema(kind: RankingKind, uncertain: bool = True) -> dict[str, Any]:
    return _schema(_columns(kind, uncertain), missing=("", SUPPRESSED))


# What each input is, in the data package: published as recorded, not recomputed.
INPUT_DESCRIPTIONS = {
    ENGAGEMENTS_CSV: "Donnée d'entrée saisie par le ministère, publiée telle quelle, non recalculée ; rang, score et "
    "répondants sont ceux du classement arrêté à la clôture. / An input recorded by the ministry, "
    "published as recorded, not recomputed; rank, score and respondents are those of the frozen "
    "ranking.",
    HISTORY_CSV: "Donnée d'entrée, non recalculée : chaque changement de statut d'un engagement. / An input, not "
    "recomputed: each status change of a commitment.",
    EXCERPTS_CSV: "Donnée d'entrée, non recalculée : les seuls extraits de ce qu'ont écrit les répondants que le "
    "ministère a approuvés pour publication, tels qu'approuvés. / An input, not recomputed: only the "
    "excerpts of what respondents wrote that the ministry approved for publication, as approved.",
    EXCLUSIONS_CSV: "Donnée d'entrée, non recalculée : les groupes de réponses suspects que le ministère a mis à "
    "l'écart des classements, avec leur motif public ; le nombre de répondants de chacun est celui que marque "
    f"l'archive ({RESPONDENTS_CSV}, colonne exclusion). / An input, not recomputed: the clusters of "
    "suspicious responses the ministry set aside from the rankings, with their public reason; each "
    "one's respondents are those the archive marks with it.",
}


def _referencing(schema: dict[str, Any], field: str, resource: str, key: str) -> dict[str, Any]:
    """`schema` with `field` a foreign key to `key` of `resource`."""
    return schema | {"foreignKeys": [{"fields": [field], "reference": {"resource": resource, "fields": [key]}}]}


def _resource(name: str, data: bytes, title: str, schema: dict[str, Any]) -> dict[str, Any]:
    description = INPUT_DESCRIPTIONS.get(name)
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


def _resources(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """The CSV files the data package describes, in its order: rankings, archive, inputs."""
    uncertain = files[OPEN_CSV].startswith(b"rank,rank_low,")
    described = [
        (OPEN_CSV, "Jeux de données à ouvrir / Datasets to open", ranking_schema(RankingKind.OPEN, uncertain)),
        (
            IMPROVE_CSV,
            "Jeux de données à améliorer / Datasets to improve",
            ranking_schema(RankingKind.IMPROVE, uncertain),
        ),
        (
            SUGGESTIONS_CSV,
            "Jeux de données suggérés / Suggested datasets",
            ranking_schema(RankingKind.SUGGESTIONS, uncertain),
        ),
        (
            RESPONDENTS_CSV,
            "Répondants / Respondents",
            _referencing(_schema(RESPONDENT_COLUMNS, ["respondent"]), "exclusion", "exclusions", "cluster_id"),
        ),
        (
            ANSWERS_CSV,
            "Réponses comptées / Counted answers",
            _referencing(_schema(ANSWER_COLUMNS), "respondent", "repondants", "respondent"),
        ),
        (DATASETS_CSV, "Jeux de données cités / Datasets named", _schema(DATASET_COLUMNS, ["dataset_id"])),
        (
            ENGAGEMENTS_CSV,
            "Engagements du ministère / The ministry's commitments",
            _schema(ENGAGEMENT_COLUMNS, ["commitment_id"]),
        ),
        (
            HISTORY_CSV,
            "Suivi des engagements / Commitments' history",
            _referencing(_schema(HISTORY_COLUMNS), "commitment_id", "engagements", "commitment_id"),
        ),
        (EXCERPTS_CSV, "Extraits approuvés / Approved excerpts", _schema(EXCERPT_COLUMNS, ["excerpt_id"])),
        (EXCLUSIONS_CSV, "Groupes mis à l'écart / Clusters set aside", _schema(EXCLUSION_COLUMNS, ["cluster_id"])),
    ]
    return [_resource(name, files[name], title, schema) for name, title, schema in described]


def datapackage_json(consultation: Consultation, files: Mapping[str, bytes]) -> bytes:
    """`datapackage.json`: the Frictionless data package of the CSV files, with their sizes and hashes."""
    package = {
        "name": f"consultation-{consultation.consultation_id}".lower(),
        "title": f"Résultats de la consultation « {consultation.title} » / Consultation results",
        "description": (
            "Classements des jeux de données à ouvrir, à améliorer et des suggestions, avec le détail par "
            "profil (petites cases masquées), et l'archive pseudonymisée des réponses comptées qui permet de les "
            f"recalculer (voir {METHOD_JSON}) ; les engagements du ministère, leur suivi et les extraits "
            "approuvés, données d'entrée non recalculées. / Rankings of the datasets to open, to improve and of "
            "the suggestions, by profile (small cells suppressed), with the pseudonymised archive of the counted "
            "responses that recomputes them; the ministry's commitments, their history and the approved excerpts, "
            "inputs not recomputed."
        ),
        "licenses": [
            {
                "name": "etalab-2.0",
                "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
                "title": "Licence Ouverte / Open Licence version 2.0",
            }
        ],
        "created": consultation.frozen_at.isoformat(),
        "resources": _resources(files),
    }
    return _json(package)


def ranking_files(
    event_id: str,
    consultation: Consultation,
    archive: Sequence[Respondent],
    datasets: Mapping[str, DatasetRef],
    method: Method,
    exclusions: Sequence[ExclusionInForce] | None,
) -> tuple[ResultsPublished, dict[str, bytes]]:
    """The published results and the files the audit recomputes (the rankings, as CSV and as JSON), see
    `published_rankings`; small breakdown cells suppressed. `exclusions=None`: files published before
    exclusions existed."""
    results, rankings = published_rankings(event_id, consultation, archive, datasets, method, exclusions)
    uncertain = method.resamples is not None
    files = {
        RANKING_FILES[kind]: ranking_csv(kind, rows, method.min_cell, uncertain) for kind, rows in rankings.items()
    }
    files[RESULTS_JSON] = results_json(results, with_exclusions=exclusions is not None, with_intervals=uncertain)
    return results, files


NO_FOLLOW_UP = FollowUp()  # no commitment recorded, no excerpt approved

# The report of the published results, from the public archive, under the method's `min_cell`.
Report = Callable[[ResultsPublished, Sequence[Respondent], FollowUp, int], bytes]


def render_files(
    results: ResultsPublished,
    archive: Sequence[Respondent],
    method: Method,
    report: Report,
    follow_up: FollowUp = NO_FOLLOW_UP,
) -> dict[str, bytes]:
    """Every published file, byte for byte the same for the same inputs. `archive` is the public one;
    the rankings are computed from it, and only the consultation, the event id, the datasets and the
    clusters set aside are taken from `results` (frozen or published: the same)."""
    consultation = consultation_of(results)
    datasets = datasets_of(results)
    published, files = ranking_files(results.event_id, consultation, archive, datasets, method, results.exclusions)
    files[RESPONDENTS_CSV] = respondents_csv(archive)
    files[ANSWERS_CSV] = answers_csv(archive)
    files[DATASETS_CSV] = datasets_csv(datasets)
    files[ENGAGEMENTS_CSV] = engagements_csv(follow_up)
    files[HISTORY_CSV] = history_csv(follow_up)
    files[EXCERPTS_CSV] = excerpts_csv(follow_up)
    files[EXCLUSIONS_CSV] = exclusions_csv(published.exclusions)
    files[METHOD_JSON] = method_json(consultation, results.event_id, method, published.exclusions)
    files[DATAPACKAGE_JSON] = datapackage_json(consultation, files)
    files[REPORT_HTML] = report(published, counted(archive, published.exclusions), follow_up, method.min_cell)
    return files


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
            received_on=date.fromisoformat(row["received_week"]),
            submissions=int(row["submissions"]),
            answers=tuple(by_number.get(int(row["respondent"]), [])),
            exclusion=row.get("exclusion") or "",  # no such column in files published before exclusions
        )
        for row in _rows(respondents)
    ]


def read_exclusions(exclusions: bytes, method: bytes) -> list[ExclusionInForce]:
    """The clusters set aside as published: `exclusions.csv`, with the settings `methode.json` gives."""
    detected = json.loads(method).get("detection") or {}
    settings_of = detected.get("settings_of", {})
    found = []
    for row in _rows(exclusions):
        settings = settings_of.get(row["cluster_id"], detected.get("settings"))
        if settings is None:
            raise ValueError(f"{METHOD_JSON} gives no detection settings for cluster {row['cluster_id']}")
        found.append(
            ExclusionInForce(
                cluster_id=row["cluster_id"],
                reason=row["reason"],
                signals=[Signal(s) for s in row["signals"].split("|") if s],
                first_at=datetime.fromisoformat(row["first_at"]),
                last_at=datetime.fromisoformat(row["last_at"]),
                datasets=[d for d in row["datasets"].split("|") if d],
                respondents=int(row["respondents"]),
                settings=DetectionSettings.model_validate(settings),
            )
        )
    return found


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
    bootstrap = doc.get("uncertainty")  # none in files published before rank intervals existed
    method = Method(
        {Priority(p): int(w) for p, w in doc["weights"].items()},
        doc["code_version"],
        int(doc["publication"]["min_cell"]),
        int(bootstrap["resamples"]) if bootstrap else None,
        int(bootstrap["level"]) if bootstrap else DEFAULT_LEVEL,
    )
    return consultation, c["results_event_id"], method


def under_publication_rules(method: bytes) -> bool:
    """Whether files were rendered under the publication rules (files of an earlier version were not)."""
    return "min_cell" in json.loads(method).get("publication", {})


def recompute(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The ranking files as the archive, the clusters set aside and the method alone say they are
    (files published before exclusions existed have no `exclusions.csv`: nobody is set aside)."""
    consultation, event_id, method = read_method(files[METHOD_JSON])
    archive = read_archive(files[RESPONDENTS_CSV], files[ANSWERS_CSV])
    exclusions = read_exclusions(files[EXCLUSIONS_CSV], files[METHOD_JSON]) if EXCLUSIONS_CSV in files else None
    return ranking_files(event_id, consultation, archive, read_datasets(files[DATASETS_CSV]), method, exclusions)[1]
