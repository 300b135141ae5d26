"""What the end-to-end tests of the publisher check in every set of published files: nothing in them
identifies anyone (DESIGN §3)."""

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

MIN_CELL = 5  # COD_MIN_CELL: the harness runs the publisher with the default
RANKING_CSVS = ("a-ouvrir.csv", "a-ameliorer.csv", "suggestions.csv")
BREAKDOWN_PREFIXES = ("respondents_", "score_", "improvement_")
EXCLUSION_COLUMNS = ["cluster_id", "signals", "first_at", "last_at", "respondents", "reason", "datasets"]


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def small(value: int) -> bool:
    return 0 < value < MIN_CELL


def assert_nothing_identifies_anyone(files: Mapping[str, bytes], never: Iterable[str]) -> int:
    """No breakdown cell from 1 to MIN_CELL - 1 in any ranking CSV or in resultats.json, weeks not days,
    no pooled-away profile, and none of `never` (e-mail addresses, tokens, response ids, free text
    nobody approved) in any published file. Returns how many cells were suppressed."""
    assert json.loads(files["methode.json"])["publication"]["min_cell"] == MIN_CELL
    suppressed = 0
    for name in RANKING_CSVS:
        for row in csv_rows(files[name]):
            for column, value in row.items():
                if column.startswith(BREAKDOWN_PREFIXES):
                    assert value == "s" or not small(int(value)), (name, column, row)
                    suppressed += value == "s"
    results = json.loads(files["resultats.json"])
    for kind in ("open", "improve", "suggestions"):
        for row in results[kind]:
            tallies: list[dict[str, Any]] = list(row["by_profile"].values())
            cells = [t["respondents"] for t in tallies] + [t["score"] for t in tallies]
            cells += [*row["by_priority"].values(), *row["by_improvement"].values()]
            assert not any(small(n) for n in cells), (kind, row)
    respondents = csv_rows(files["repondants.csv"])
    assert all(date.fromisoformat(r["received_week"]).weekday() == 0 for r in respondents)
    # The clusters set aside: counts and public words only, each mark in the archive naming one of them.
    header = files["exclusions.csv"].decode("utf-8").split("\r\n", 1)[0]
    assert header.split(",") == EXCLUSION_COLUMNS, header
    clusters = {c["cluster_id"] for c in csv_rows(files["exclusions.csv"])}
    assert {r["exclusion"] for r in respondents} <= clusters | {""}
    profiles: dict[str, int] = {}
    for r in respondents:
        profiles[r["profile"]] = profiles.get(r["profile"], 0) + 1
    if len(respondents) >= MIN_CELL:
        assert not any(small(n) for n in profiles.values()), profiles
    answers = csv_rows(files["reponses.csv"])
    groups: dict[str, int] = {}
    for a in answers:
        if a["ranking"] == "suggestions":
            groups[a["key"]] = groups.get(a["key"], 0) + 1
    for a in answers:
        if a["ranking"] == "suggestions" and small(groups[a["key"]]):
            assert a["title"] == "", a
            assert not a["key"].startswith("title:"), a
    for text in never:
        for name, data in files.items():
            assert text.encode() not in data, f"{text!r} published in {name}"
    return suppressed
