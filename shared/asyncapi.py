"""The AsyncAPI 3.0 document of the topics: one channel per topic of `shared.topics`, its message schema
from the contracts, and what each service sends and receives on it.

Every service serves the channels of every topic, with its own operations, at `/asyncapi.json` and
`/asyncapi` (HTML); `python -m shared.asyncapi > docs/asyncapi.yaml` writes the combined document, with
the operations of every service.

Written here rather than by FastStream's generator: that one makes a channel of each publisher and
subscriber object, so a topic one service sends and four read would be five channels (or, under one
name, a single operation that overwrites the others), and a topic a service neither sends nor reads
could not appear in its document at all.
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.contracts import (
    CommitmentRecorded,
    ConsultationDefined,
    DatasetCatalogued,
    ExcerptApproved,
    ExclusionDecided,
    FollowUpRequested,
    MessageDeadLettered,
    RankingsTallied,
    ResponseEnriched,
    ResponseSubmitted,
    ResultsPublished,
    TallyRequested,
)
from shared.topics import (
    CATALOGUE_DATASETS,
    CATALOGUE_GROUP,
    COMMITMENTS,
    CONSULTATIONS,
    DEAD_LETTERS,
    EXCERPTS,
    EXCLUSIONS,
    FOLLOW_UPS,
    RESPONSES_ENRICHED,
    RESPONSES_SUBMITTED,
    RESULTS_PUBLISHED,
    SCORING_GROUP,
    TALLIES,
    TALLY_REQUESTS,
    TopicSpec,
    topic_specs,
)

__all__ = ["FLOWS", "SERVICES", "Flow", "Operation", "asyncapi_router", "document", "to_yaml"]

SERVICES = ("ingest", "catalogue", "scoring", "publisher", "backoffice")
TITLE = "Consultation Open Data"
KAFKA_BINDING = "0.5.0"
STATE_VIEW = "Read from the start into its own view of the topic, and followed (no consumer group)."
TEMPLATES = Path(__file__).parent / "templates"
# The schema a consumer validates with (`model_validate_json`).
VALIDATION: Literal["validation"] = "validation"


@dataclass(frozen=True)
class Operation:
    service: str
    action: Literal["send", "receive"]
    summary: str
    group: str | None = None


@dataclass(frozen=True)
class Flow:
    """A topic: the one message model it carries, what its key is, and who sends and receives it."""

    topic: str
    message: type[BaseModel]
    description: str
    key: str
    operations: tuple[Operation, ...]


def _reads_view(*services: str) -> tuple[Operation, ...]:
    return tuple(Operation(service, "receive", STATE_VIEW) for service in services)


FLOWS: tuple[Flow, ...] = (
    Flow(
        CONSULTATIONS,
        ConsultationDefined,
        "Each consultation's latest definition (compacted): its window, questionnaire and publication.",
        "The consultation id.",
        (
            Operation(
                "ingest", "send", "Defines, edits and closes consultations (its admin API, which the workspace calls)."
            ),
            *_reads_view("ingest", "scoring", "publisher", "backoffice"),
        ),
    ),
    Flow(
        CATALOGUE_DATASETS,
        DatasetCatalogued,
        "Each dataset of the catalogue and of the census of datasets not yet open (compacted); a dataset "
        "that leaves the sources stays, marked retired.",
        "The dataset id.",
        (
            Operation("catalogue", "send", "Publishes what changed in its sources, at start and on each refresh."),
            *_reads_view("catalogue", "ingest", "scoring", "publisher", "backoffice"),
        ),
    ),
    Flow(
        RESPONSES_SUBMITTED,
        ResponseSubmitted,
        "Each accepted response, and each withdrawal, as ingest stamped it; written in Kafka transactions, "
        "so consumers read committed data only.",
        "<consultation_id>:<respondent_key>: a respondent's submissions stay in order.",
        (
            Operation("ingest", "send", "Answers 202 only once every in-sync replica has the response."),
            Operation("catalogue", "receive", "Enriches each response with the datasets it names.", CATALOGUE_GROUP),
        ),
    ),
    Flow(
        RESPONSES_ENRICHED,
        ResponseEnriched,
        "Each response with the catalogue metadata of the datasets it names and its suggestions grouped.",
        "The key of the submitted response: <consultation_id>:<respondent_key>.",
        (
            Operation("catalogue", "send", "Forwards each response it could enrich."),
            Operation("scoring", "receive", "Counts each respondent's latest answer once, in batches.", SCORING_GROUP),
            Operation("backoffice", "receive", "Keeps what respondents wrote, for staff to read.", "backoffice"),
            Operation(
                "publisher",
                "receive",
                "Folds each respondent's counted ballot into the archive it freezes at the close; every replica "
                "reads the whole topic from the beginning at start (no consumer group).",
            ),
        ),
    ),
    Flow(
        RESULTS_PUBLISHED,
        ResultsPublished,
        "A consultation's frozen results, emitted exactly once after its close; kept forever.",
        "The consultation id.",
        (
            Operation(
                "publisher", "send", "Emits the results once every response accepted before the close is counted."
            ),
            Operation("publisher", "receive", "Reads the topic back, so as to emit each consultation's results once."),
        ),
    ),
    Flow(
        DEAD_LETTERS,
        MessageDeadLettered,
        "Messages a consumer could not process, with the reason; kept 30 days for operators.",
        "The key of the message given up.",
        tuple(
            Operation(service, "send", "Parks each message it cannot decode, with the reason.")
            for service in ("catalogue", "scoring", "backoffice")
        ),
    ),
    Flow(
        COMMITMENTS,
        CommitmentRecorded,
        "What the ministry commits to after a consultation, each commitment's latest version (compacted).",
        "<consultation_id>:<commitment_id>.",
        (
            Operation("backoffice", "send", "Records the commitments staff make and their changes of status."),
            *_reads_view("publisher"),
            Operation(
                "backoffice",
                "receive",
                "Keeps its view of the commitments, and tells the followers of each dataset committed to.",
                "backoffice-commitments",
            ),
        ),
    ),
    Flow(
        EXCERPTS,
        ExcerptApproved,
        "The excerpts of free text staff approved for publication, each one's latest version (compacted).",
        "<consultation_id>:<excerpt_id>.",
        (
            Operation("backoffice", "send", "Records each excerpt staff approve or withdraw."),
            *_reads_view("publisher", "backoffice"),
        ),
    ),
    Flow(
        FOLLOW_UPS,
        FollowUpRequested,
        "The respondents who asked to be told of the commitments (compacted); a tombstone (null value) ends a request.",
        "The subscription id.",
        (
            Operation("ingest", "send", "Records a respondent's request, and its end when they unsubscribe."),
            Operation("backoffice", "send", "Ends each request once its follower has been told (a tombstone)."),
            Operation("backoffice", "receive", "Keeps the requests to e-mail their followers.", "backoffice-followups"),
        ),
    ),
    Flow(
        EXCLUSIONS,
        ExclusionDecided,
        "Staff's decision on each flagged cluster of suspicious responses, the latest holding (compacted).",
        "<consultation_id>:<cluster_id>.",
        (
            Operation("backoffice", "send", "Records each cluster staff exclude or clear, with the public reason."),
            Operation("scoring", "receive", "Applies each decision to the rankings.", SCORING_GROUP),
            Operation("publisher", "receive", "Marks in its archive the respondents each decision sets aside."),
            *_reads_view("backoffice"),
        ),
    ),
    Flow(
        TALLY_REQUESTS,
        TallyRequested,
        "The publisher's requests, at a consultation's close, for scoring's filtered tallies once scoring has "
        "committed up to the close's watermark; kept a day.",
        "The consultation id.",
        (
            Operation("publisher", "send", "Asks for the tallies it checks the archive's rankings against."),
            Operation(
                "scoring",
                "receive",
                "Waits until its group has committed up to the watermark, then replies (nothing if it cannot "
                "before the request expires).",
                SCORING_GROUP,
            ),
        ),
    ),
    Flow(
        TALLIES,
        RankingsTallied,
        "Scoring's replies: every ranking of a consultation, complete and filtered, without rank intervals; "
        "gzip-compressed, kept a day.",
        "The consultation id.",
        (
            Operation("scoring", "send", "Replies to each tally request once the watermark is committed."),
            Operation(
                "publisher",
                "receive",
                "Follows the topic from its end at start (no consumer group), keeping the replies to its own requests.",
            ),
        ),
    ),
)


def _channel(flow: Flow, spec: TopicSpec) -> dict[str, Any]:
    configs: dict[str, Any] = {"cleanup.policy": spec.kafka_configs()["cleanup.policy"].split(",")}
    configs |= {name: int(value) for name, value in spec.configs.items()}
    name = flow.message.__name__
    return {
        "address": flow.topic,
        "description": flow.description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        "bindings": {
            "kafka": {"partitions": spec.partitions, "topicConfiguration": configs, "bindingVersion": KAFKA_BINDING}
        },
    }


def _operation(flow: Flow, operation: Operation) -> dict[str, Any]:
    name = flow.message.__name__
    body: dict[str, Any] = {
        "action": operation.action,
        "channel": {"$ref": f"#/channels/{flow.topic}"},
        "summary": operation.summary,
        "messages": [{"$ref": f"#/channels/{flow.topic}/messages/{name}"}],
        "x-service": operation.service,
    }
    if operation.group is not None:
        group = {"type": "string", "enum": [operation.group]}
        body["bindings"] = {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING}}
    return body


def _message(flow: Flow) -> dict[str, Any]:
    name = flow.message.__name__
    return {
        "name": name,
        "title": name,
        "summary": (flow.message.__doc__ or name).strip().split("\n\n")[0].replace("\n", " "),
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": flow.key}, "bindingVersion": KAFKA_BINDING}},
    }


def document(service: str | None = None, flows: Sequence[Flow] = FLOWS) -> dict[str, Any]:
    """The AsyncAPI 3.0 document: every topic's channel; the operations of `service`, or of every service."""
    if service is not None and service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    specs = {spec.name: spec for spec in topic_specs()}
    models = [(flow.message, VALIDATION) for flow in flows]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    operations = {
        f"{operation.service}.{operation.action}.{flow.topic}": _operation(flow, operation)
        for flow in flows
        for operation in flow.operations
        if service in (None, operation.service)
    }
    whose = f"the operations of {service}" if service else "the operations of every service"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"{TITLE} — {service}" if service else TITLE,
            "version": "1",
            "description": (
                f"The Kafka topics between the services: every topic's channel and message, and {whose}. "
                "Messages are JSON; a breaking change to a message is a new .v<N+1> topic. "
                "The broker's address is each service's COD_KAFKA_BOOTSTRAP."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {flow.topic: _channel(flow, specs[flow.topic]) for flow in flows},
        "operations": operations,
        "components": {
            "messages": {flow.message.__name__: _message(flow) for flow in flows},
            "schemas": dict(sorted(schemas.get("$defs", {}).items())),
        },
    }


def to_yaml(doc: dict[str, Any]) -> str:
    """The document as YAML, keys in the document's order (PyYAML is a development dependency)."""
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def render_html(doc: dict[str, Any]) -> str:
    """The document as a page that needs no script: channels, operations, messages, schemas."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True
    )
    return environment.get_template("asyncapi.html").render(doc=doc)


def asyncapi_router(service: str) -> APIRouter:
    """`/asyncapi.json` and `/asyncapi` (HTML): every topic, with what `service` sends and receives."""
    doc = document(service)
    page = render_html(doc)
    router = APIRouter(include_in_schema=False)

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(doc)

    @router.get("/asyncapi")
    async def asyncapi_html() -> HTMLResponse:
        return HTMLResponse(page)

    return router


if __name__ == "__main__":
    sys.stdout.write(to_yaml(document()))
