"""The publisher's close at millions of respondents, in one process: where its floor is.

    uv run python -m benchmarks.close_in_process [--responses 2000000] [--amended 0.1]

No Kafka, no store: the enriched responses are encoded as the catalogue writes them, then
(a) folded into the publisher's `Ledger` as its `LogFollower` folds them (the cost paid as the
    responses arrive, and again when a publisher restarts and rebuilds its archive);
(b) at the close, the archive's ballots read (on the event loop in the service) and the results
    frozen with `closing.freeze` (in a thread in the service): archive, rankings, the cross-check
    against scoring's tallies (computed here by scoring's own functions, before the clock starts),
    the public archive and its check;
(c) the files rendered (`render_files`, with the rank intervals' bootstrap, after the emission).
The responses name datasets of the ministry's real catalogue (`../shared/data`), 2 to open with a
priority and 1 to improve, profiles and priorities drawn at random; `--amended` of the respondents
answer twice. It prints the time of each step and the process's peak memory.
"""

import argparse
import asyncio
import random
import resource
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_census_file, load_open_file
from services.publisher.archive import Consultation, DatasetRef
from services.publisher.closing import Publishing, freeze
from services.publisher.files import render_files
from services.publisher.ledger import Ledger, Record
from services.publisher.report import ReportRenderer
from services.scoring.domain import (
    DEFAULT_WEIGHTS,
    Ballot,
    RowChange,
    RowId,
    StoredRow,
    filtered,
    method,
    plan_batch,
    rank,
)
from shared.contracts import (
    ConsultationDefined,
    DatasetStatus,
    DatasetSummary,
    ImprovementKind,
    ImprovementRequest,
    OpenRequest,
    Priority,
    Profile,
    RankingKind,
    RankingPage,
    RankingView,
    ResponseEnriched,
    ResponseSubmitted,
)
from shared.topics import RESPONSES_ENRICHED
from tests.service.builders import T0

CID = "large"
WINDOW = ConsultationDefined(
    event_id="e", occurred_at=T0, consultation_id=CID, title="Large", opens_at=T0, closes_at=T0 + timedelta(days=60)
)


def catalogue() -> tuple[dict[str, DatasetSummary], list[str], list[str]]:
    settings = CatalogueSettings()
    assert settings.open_catalogue_path is not None
    assert settings.census_path is not None
    records = [
        *load_open_file(settings.open_catalogue_path).datasets,
        *load_census_file(settings.census_path, settings.census_schema_path).datasets,
    ]
    summaries = {r.dataset_id: DatasetSummary(dataset_id=r.dataset_id, title=r.title, status=r.status) for r in records}
    to_open = sorted(r.dataset_id for r in records if r.status is DatasetStatus.NOT_OPEN)
    to_improve = sorted(r.dataset_id for r in records if r.status is not DatasetStatus.NOT_OPEN)
    return summaries, to_open, to_improve


def responses(count: int, amended: float) -> Iterator[ResponseEnriched]:
    """`count` enriched responses, about `amended` of their respondents answering twice."""
    summaries, to_open, to_improve = catalogue()
    rng = random.Random(7)
    respondents = int(count / (1 + amended))
    for n in range(count):
        who = n if n < respondents else rng.randrange(respondents)
        opens = {d: rng.choice(list(Priority)) for d in rng.sample(to_open, 2)}
        improve = rng.choice(to_improve)
        received = T0 + timedelta(seconds=n * 2.5)
        response = ResponseSubmitted(
            event_id=f"e{n}",
            occurred_at=received,
            consultation_id=CID,
            response_id=f"r{n:08d}",
            respondent_key=f"k{who:08d}",
            profile=rng.choice(list(Profile)),
            received_at=received,
            open_requests=[OpenRequest(dataset_id=d, priority=p) for d, p in opens.items()],
            improvement_requests=[ImprovementRequest(dataset_id=improve, kinds=[ImprovementKind.API_ACCESS])],
        )
        named = {d: summaries[d] for d in [*opens, improve]}
        yield ResponseEnriched(event_id=f"x{n}", occurred_at=received, response=response, datasets=named)


def log_and_tallies(count: int, amended: float) -> tuple[list[Record], dict[RankingKind, RankingPage]]:
    """The responses as the log holds them, and scoring's filtered rankings of them, computed by scoring's
    own functions batch by batch as its subscriber does."""
    records: list[Record] = []
    stored: dict[tuple[str, str], Ballot] = {}
    rows: dict[RowId, RowChange] = {}
    batch: list[ResponseEnriched] = []
    for n, message in enumerate(responses(count, amended)):
        records.append(Record(RESPONSES_ENRICHED, n % 6, n // 6, None, message.model_dump_json().encode()))
        batch.append(message)
        if len(batch) == 5000 or n == count - 1:
            plan = plan_batch(batch, stored)
            stored |= {(CID, new.respondent_key): new for _, new in plan.ballots}
            for row_id, change in plan.rows.items():
                rows.setdefault(row_id, RowChange()).add(change)
            batch = []
    respondents = sum(not ballot.withdrawn for ballot in stored.values())
    pages = {}
    for kind in RankingKind:
        kind_rows = [
            StoredRow(row_id.key, change.dataset_id, change.title, change.counts)
            for row_id, change in rows.items()
            if row_id.kind is kind
        ]
        items = rank(kind, filtered(kind_rows, []), DEFAULT_WEIGHTS)
        pages[kind] = RankingPage(
            consultation_id=CID, kind=kind, as_of=None, respondents=respondents, total=len(items), offset=0,
            limit=len(items), method=method(DEFAULT_WEIGHTS), items=items, view=RankingView.FILTERED,
            excluded_respondents=0,
        )  # fmt: skip
    return records, pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=2_000_000)
    parser.add_argument("--amended", type=float, default=0.1)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    records, pages = log_and_tallies(args.responses, args.amended)
    print(f"{args.responses} responses built, scoring's tallies computed: {time.perf_counter() - started:.0f} s")

    ledger = Ledger({CID: WINDOW}.get)
    started = time.perf_counter()
    for start in range(0, len(records), 5000):
        ledger.fold(records[start : start + 5000])
    fold_s = time.perf_counter() - started
    del records
    print(f"  (a) folded into the archive:   {fold_s:6.1f} s ({1e6 * fold_s / args.responses:.0f} µs per response)")

    started = time.perf_counter()
    ballots = asyncio.run(ledger.ballots(CID))
    read_s = time.perf_counter() - started
    summaries = catalogue()[0]
    refs = {d: DatasetRef(d, s.title, s.status) for d, s in summaries.items()}
    window = Consultation(CID, WINDOW.title, WINDOW.opens_at, WINDOW.closes_at, WINDOW.closes_at)
    started = time.perf_counter()
    results, public, used = freeze(window, ballots, [], pages, refs.get, Publishing("bench", 5, args.resamples))
    freeze_s = time.perf_counter() - started
    print(f"  (b) the close: ballots read    {read_s:6.1f} s, frozen and checked {freeze_s:6.1f} s "
          f"({len(ballots)} respondents)")  # fmt: skip

    started = time.perf_counter()
    files = render_files(results, public, used, ReportRenderer())
    render_s = time.perf_counter() - started
    size = sum(len(data) for data in files.values()) / 1e6
    print(f"  (c) files rendered:            {render_s:6.1f} s ({size:.0f} MB, {args.resamples} resamples)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"  peak memory of the process:    {peak:6.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
