"""Precision and recall of matching and grouping missing-dataset suggestions, on a labelled set.

    uv run python -m benchmarks.suggestion_matching [--write]

The labelled set is built, deterministically, from the ministry's real catalogue: for a sample of
real titles, variants a respondent could type (abbreviated, misspelled, reworded, with the
producer's acronym), each labelled with the dataset it means; and wishes that match nothing in the
catalogue, each typed two or three ways, labelled with the wish. The script scores every scorer
and threshold, prints the table, and the method the catalogue uses (`MatchingMethod`).

- Matching precision: of the suggestions matched to a dataset, the share matched to the right one.
- Matching recall: of the suggestions that mean a catalogue dataset, the share matched to it.
- Grouping precision / recall: over pairs of suggestions, "in the same group" against "mean the
  same thing" (the same dataset, or the same wish).
"""

import argparse
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from services.catalogue.domain import SCORERS, Catalogue, MatchingMethod
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_open_file
from shared.contracts.suggestions import normalise_title

EVALUATION_SET = Path(__file__).parent / "data" / "suggestion_evaluation.json"
ACRONYMS = {
    "Bibliothèque nationale de France": "BnF",
    "Centre national du cinéma et de l'image animée": "CNC",
    "Institut national de l'audiovisuel": "INA",
    "Centre des monuments nationaux": "CMN",
    "Institut national de recherches archéologiques préventives": "Inrap",
    "Ministère de la Culture": "MC",
}
# Wishes a respondent might have that the catalogue does not hold, each typed several ways.
NOT_IN_CATALOGUE = [
    ["Registre des fanfares et harmonies", "registre des Fanfares & Harmonies", "Liste des fanfares"],
    ["Horaires d'ouverture des bibliothèques municipales", "horaires des bibliothèques municipales"],
    ["Tarifs des écoles de musique associatives", "tarifs écoles de musique associatives"],
    ["Carte des luthiers et ateliers d'art", "carte des luthiers"],
    ["Programmation des salles de concert de jazz", "programmation salles de jazz"],
    ["Calendrier des fêtes médiévales", "Fêtes médiévales : calendrier", "calendrier fetes medievales"],
    ["Accessibilité PMR des théâtres municipaux", "accessibilité des théâtres municipaux aux PMR"],
    ["Recensement des graffitis et fresques urbaines", "recensement des fresques urbaines et graffitis"],
    ["Nombre de visiteurs des jardins remarquables", "visiteurs jardins remarquables"],
    ["Prix de vente des œuvres aux enchères publiques", "prix des oeuvres vendues aux enchères"],
    ["Emplois intermittents du spectacle par département", "intermittents du spectacle par departement"],
    ["Inventaire des carillons de France", "carillons de France inventaire"],
    ["Liste des ateliers de reliure artisanale en activité", "ateliers de reliure artisanale"],
    ["Dates des journées portes ouvertes des conservatoires", "portes ouvertes des conservatoires"],
    ["Budget culturel des communes de moins de 10 000 habitants", "budget culture petites communes"],
    ["Subventions aux radios associatives locales", "subventions radios associatives"],
    ["Localisation des kiosques à musique", "kiosques à musique localisation"],
    ["Œuvres d'art dans les gares", "oeuvres d'art exposées dans les gares"],
    ["Consommation énergétique des musées", "consommation d'énergie des musées"],
    ["Bénévoles des associations culturelles", "nombre de bénévoles associations culturelles"],
]


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # the dataset id meant, or "wish:<n>" for a wish not in the catalogue
    dataset_id: str | None
    variant: str


def _content_words(title: str) -> list[str]:
    return [w for w in title.replace("’", "'").split() if normalise_title(w)]


def _misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return rng.choice(
        [word[:i] + word[i + 1 :], word[:i] + word[i + 1] + word[i] + word[i + 2 :], word[:i] + word[i] + word[i:]]
    )


def variants(title: str, organisation: str | None, rng: random.Random) -> dict[str, str]:
    words = _content_words(title)
    found = {}
    if len(words) > 3:
        found["abbreviated"] = " ".join(words[: max(3, len(words) // 2)])
    long_words = [i for i, w in enumerate(words) if len(w) >= 5]
    if long_words:
        typo = list(words)
        for i in rng.sample(long_words, min(2, len(long_words))):
            typo[i] = _misspell(typo[i], rng)
        found["misspelled"] = " ".join(typo).lower()
    if len(words) > 1:
        found["reworded"] = rng.choice(["Les données : ", "Jeu de données sur ", "Liste : "]) + " ".join(
            words[1:] + words[:1]
        )
    if organisation in ACRONYMS and organisation in title:
        found["acronym"] = title.replace(organisation, ACRONYMS[organisation])
    return found


def build_set(catalogue: Catalogue, seed: int = 2026, sample: int = 90) -> list[Example]:
    rng = random.Random(seed)
    open_datasets = sorted(catalogue.datasets.values(), key=lambda d: d.dataset_id)
    # Only titles that identify one dataset: the catalogue holds yearly series with equal titles.
    by_title: dict[str, int] = defaultdict(int)
    for dataset in open_datasets:
        by_title[normalise_title(dataset.title)] += 1
    distinct = [d for d in open_datasets if by_title[normalise_title(d.title)] == 1]
    examples = []
    for dataset in rng.sample(distinct, sample):
        for kind, text in variants(dataset.title, dataset.organisation, rng).items():
            examples.append(Example(text, dataset.dataset_id, dataset.dataset_id, kind))
    for n, typings in enumerate(NOT_IN_CATALOGUE):
        examples += [Example(text, f"wish:{n}", None, "not in catalogue") for text in typings]
    return examples


@dataclass
class Scores:
    match_precision: float
    match_recall: float
    group_precision: float
    group_recall: float

    def f(self, beta: float = 0.5) -> float:
        p, r = self.match_precision, self.match_recall
        return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0


def evaluate(catalogue: Catalogue, examples: list[Example]) -> Scores:
    predicted = [catalogue.match_suggestion(e.text) for e in examples]
    matched = [(e, p) for e, p in zip(examples, predicted, strict=True) if p.matched_dataset_id]
    right = sum(1 for e, p in matched if p.matched_dataset_id == e.dataset_id)
    meant = sum(1 for e in examples if e.dataset_id)
    same_group = same_label = both = 0
    for (e1, p1), (e2, p2) in combinations(zip(examples, predicted, strict=True), 2):
        grouped, labelled = p1.group_key == p2.group_key, e1.label == e2.label
        same_group += grouped
        same_label += labelled
        both += grouped and labelled
    return Scores(
        match_precision=right / len(matched) if matched else 1.0,
        match_recall=right / meant,
        group_precision=both / same_group if same_group else 1.0,
        group_recall=both / same_label,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write the labelled set to {EVALUATION_SET}")
    args = parser.parse_args()
    path = CatalogueSettings().open_catalogue_path
    assert path is not None
    report = load_open_file(path)
    base = Catalogue(report.datasets)
    examples = build_set(base)
    if args.write:
        EVALUATION_SET.parent.mkdir(exist_ok=True)
        EVALUATION_SET.write_text(
            json.dumps([e.__dict__ for e in examples], ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    print(
        f"labelled set: {len(examples)} suggestions — {sum(1 for e in examples if e.dataset_id)} meaning one of "
        f"{len({e.dataset_id for e in examples if e.dataset_id})} real datasets (variants: "
        f"{', '.join(sorted({e.variant for e in examples if e.dataset_id}))}), "
        f"{sum(1 for e in examples if not e.dataset_id)} typings of {len(NOT_IN_CATALOGUE)} wishes not in it"
    )
    print(f"{'scorer':>18} {'threshold':>9} {'match P':>8} {'match R':>8} {'F0.5':>6} {'group P':>8} {'group R':>8}")
    best: tuple[float, MatchingMethod, Scores] | None = None
    for scorer in SCORERS:
        for threshold in (70.0, 75.0, 80.0, 85.0, 88.0, 90.0, 92.0, 95.0):
            method = MatchingMethod(scorer, threshold)
            scores = evaluate(Catalogue(report.datasets, method), examples)
            print(
                f"{scorer:>18} {threshold:9.0f} {scores.match_precision:8.3f} {scores.match_recall:8.3f} "
                f"{scores.f():6.3f} {scores.group_precision:8.3f} {scores.group_recall:8.3f}"
            )
            if best is None or scores.f() > best[0]:
                best = (scores.f(), method, scores)
    assert best is not None
    in_force = MatchingMethod()
    scores = evaluate(Catalogue(report.datasets, in_force), examples)
    baseline = evaluate(Catalogue(report.datasets, MatchingMethod(in_force.scorer, 101.0)), examples)
    print(f"best F0.5 (precision weighs double): {best[1].scorer} ≥ {best[1].threshold:.0f}")
    print(
        f"in force: {in_force.scorer} ≥ {in_force.threshold:.0f} — matching P {scores.match_precision:.3f} "
        f"R {scores.match_recall:.3f}, grouping P {scores.group_precision:.3f} R {scores.group_recall:.3f}"
    )
    print(
        f"baseline, normalised exact titles only: matching P {baseline.match_precision:.3f} "
        f"R {baseline.match_recall:.3f}, grouping P {baseline.group_precision:.3f} R {baseline.group_recall:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
