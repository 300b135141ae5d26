"""The Atom 1.0 feed of a consultation's commitments (RFC 4287): one entry per status change,
newest first, each with an id that never changes, so a feed reader shows each step once."""

import uuid
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from services.publisher.archive import FollowUp
from services.publisher.files import timestamp
from services.publisher.report import KIND_LABELS, STATUS_LABELS, web_url
from shared.contracts import CommitmentRecorded, CommitmentStatus, ResultsPublished, StatusChange

ATOM = "http://www.w3.org/2005/Atom"
FEED_NAMESPACE = uuid.UUID("0b6f4c8e-3f0e-4a52-8f4e-2d2b8c6a1e55")
AUTHOR = "Ministère de la Culture"


@dataclass(frozen=True)
class Step:
    """One status change of a commitment, with its position in the commitment's history."""

    commitment: CommitmentRecorded
    position: int
    change: StatusChange

    @property
    def entry_id(self) -> str:
        c = self.commitment
        return "urn:uuid:" + str(uuid.uuid5(FEED_NAMESPACE, f"{c.consultation_id}/{c.commitment_id}/{self.position}"))


def steps(follow_up: FollowUp) -> list[Step]:
    """Every status change of every commitment, newest first."""
    found = [
        Step(e.commitment, position, change)
        for e in follow_up.engagements
        for position, change in enumerate(e.commitment.history)
    ]
    return sorted(found, key=lambda s: (s.change.at, s.commitment.commitment_id, s.position), reverse=True)


def _summary(step: Step) -> str:
    c, change = step.commitment, step.change
    kind, status = KIND_LABELS[c.kind], STATUS_LABELS[change.status]
    french = f"{kind[0]} « {c.title} » ({c.service}, échéance {c.target}) : {status[0].lower()}."
    english = f"{kind[1]} “{c.title}” ({c.service}, target {c.target}): {status[1].lower()}."
    note = f" {change.note}" if change.note else ""
    return f"{french}{note}\n{english}"


def atom_feed(results: ResultsPublished, follow_up: FollowUp, page_url: str, feed_url: str) -> bytes:
    """The feed as bytes: the same for the same results and commitments."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
        element.text = text
        return element

    entries = steps(follow_up)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "fr"})
    sub(feed, "id", "urn:uuid:" + str(uuid.uuid5(FEED_NAMESPACE, f"{results.consultation_id}/suivi")))
    sub(feed, "title", f"Suivi des engagements — {results.title} / Commitments follow-up")
    sub(feed, "updated", timestamp(entries[0].change.at if entries else results.frozen_at))
    sub(feed, "link", rel="self", type="application/atom+xml", href=feed_url)
    sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    sub(sub(feed, "author"), "name", AUTHOR)
    for step in entries:
        c, status = step.commitment, STATUS_LABELS[step.change.status]
        entry = sub(feed, "entry")
        sub(entry, "id", step.entry_id)
        sub(entry, "title", f"{c.title} : {status[0].lower()} / {status[1].lower()}")
        sub(entry, "updated", timestamp(step.change.at))
        sub(entry, "link", rel="alternate", type="text/html", href=f"{page_url}#engagement-{c.commitment_id}")
        if step.change.status is CommitmentStatus.DONE and (url := web_url(c.done_url)):
            sub(entry, "link", rel="related", href=url)
        sub(entry, "summary", _summary(step), type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body + b"\n"
