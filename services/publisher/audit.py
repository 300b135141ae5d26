"""Audit published results: recompute the rankings from the published archive and method alone
(no Kafka, no MongoDB) and compare them with the published ones, byte for byte.

    python -m services.publisher.audit https://…/v1/consultations/<id>/results [--token T]
    python -m services.publisher.audit ./downloaded-results-directory

Exit status 0 when every ranking file matches, 1 otherwise. The ministry's commitments, their history
and the approved excerpts are inputs, published as recorded: they are checked against the hashes the
data package declares, and listed as inputs, not recomputed. So are the clusters set aside
(`exclusions.csv`), with one more check: each counts the respondents the archive marks with it; the
rankings are recomputed without the respondents of the clusters it lists.
"""

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from services.publisher.archive import exclusion_problems
from services.publisher.files import (
    ANSWERS_CSV,
    DATAPACKAGE_JSON,
    DATASETS_CSV,
    EXCLUSIONS_CSV,
    INPUT_FILES,
    METHOD_JSON,
    RESPONDENTS_CSV,
    read_archive,
    read_exclusions,
    recompute,
)

NEEDED = (METHOD_JSON, RESPONDENTS_CSV, ANSWERS_CSV, DATASETS_CSV, DATAPACKAGE_JSON)


def consistent(files: Mapping[str, bytes]) -> bool:
    """Whether every file is the version its data package declares: files read one by one over HTTP
    while the publisher republishes them (a commitment changed) may mix two versions."""
    if DATAPACKAGE_JSON not in files:
        return True
    resources = json.loads(files[DATAPACKAGE_JSON]).get("resources", [])
    return all(r["hash"] == "sha256:" + hashlib.sha256(files.get(r["path"], b"")).hexdigest() for r in resources)


def fetch(source: str, token: str | None, attempts: int = 5) -> dict[str, bytes]:
    """Every published file, from a directory or from the publisher's `…/results` URL; over HTTP,
    read again (up to `attempts` times) while the set read mixes two versions."""
    if not source.startswith(("http://", "https://")):
        return {path.name: path.read_bytes() for path in Path(source).iterdir() if path.is_file()}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(headers=headers, timeout=120) as client:
        for _ in range(attempts):
            index = client.get(source.rstrip("/") + "/files")
            index.raise_for_status()
            files = {}
            for entry in index.json()["files"]:
                answer = client.get(source.rstrip("/") + "/" + entry["name"])
                answer.raise_for_status()
                files[entry["name"]] = answer.content
            if consistent(files):
                break
        return files


def first_difference(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    line = a[:at].count(b"\n") + 1
    return f"first difference at byte {at} (line {line}); {len(a)} bytes published, {len(b)} recomputed"


def audit(files: Mapping[str, bytes]) -> list[tuple[str, bool, str]]:
    """(file, matches, explanation) for each check."""
    missing = [name for name in NEEDED if name not in files]
    if missing:
        return [(name, False, "missing: cannot recompute without it") for name in missing]
    checks = []
    package = json.loads(files[DATAPACKAGE_JSON])
    for resource in package["resources"]:
        data = files.get(resource["path"], b"")
        ok = resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        what = "input, not recomputed: " if resource["path"] in INPUT_FILES else ""
        checks.append((resource["path"], ok, what + ("hash as declared in the data package" if ok else "hash differs")))
    try:
        recomputed = recompute(files)
        if EXCLUSIONS_CSV in files:
            archive = read_archive(files[RESPONDENTS_CSV], files[ANSWERS_CSV])
            problems = exclusion_problems(archive, read_exclusions(files[EXCLUSIONS_CSV], files[METHOD_JSON]))
            why = "; ".join(problems) or "each cluster counts the respondents the archive marks with it"
            checks.append((f"{EXCLUSIONS_CSV} / {RESPONDENTS_CSV}", not problems, why))
    except (ValueError, KeyError) as error:  # a file that does not read as published
        return [*checks, ("(recomputation)", False, f"cannot recompute: {error!r}")]
    for name, data in recomputed.items():
        published = files.get(name)
        if published is None:
            checks.append((name, False, "not published"))
        elif published == data:
            checks.append((name, True, f"recomputed byte for byte ({len(data)} bytes)"))
        else:
            checks.append((name, False, first_difference(published, data)))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a directory of published files, or the publisher's …/results URL")
    parser.add_argument("--token", help="administrator token, to audit results still under embargo")
    args = parser.parse_args(argv)
    checks = audit(fetch(args.source, args.token))
    for name, ok, why in checks:
        print(f"{'OK  ' if ok else 'FAIL'} {name}: {why}")
    matched = all(ok for _, ok, _ in checks)
    print("MATCH: the published rankings are what the archive and the method give." if matched else "MISMATCH")
    return 0 if matched else 1


if __name__ == "__main__":
    sys.exit(main())
