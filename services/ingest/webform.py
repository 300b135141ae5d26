"""The reference web form's fields, turned into the API's response body and back (pure).

The HTML form works without JavaScript: one radio group per census dataset for "to open", a fixed
number of rows for "to improve" and for missing datasets. Each JSON pointer of the body maps to
the id of the form control to focus, so an error summary can link to each bad field.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.contracts import PRIVACY_NOTICE

OPEN_PREFIX = "open-"


@dataclass
class ParsedForm:
    body: dict[str, Any]
    field_ids: dict[str, str] = field(default_factory=dict)  # JSON pointer -> control id


def _one(fields: Mapping[str, Sequence[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0].strip()


def _optional(value: str) -> str | None:
    return value or None


def parse_web_form(fields: Mapping[str, Sequence[str]], improve_slots: int, suggestion_slots: int) -> ParsedForm:
    """The API body a filled-in form stands for, and where each of its fields lives on the page."""
    ids = {
        "/respondent/profile": "profile",
        "/respondent/organisation": "organisation",
        "/respondent/departement": "departement",
        "/respondent/region": "region",
        "/respondent/email": "email",
        "/consent": "consent",
        "/consent/accepted": "consent",
        "/consent/notice": "consent",
        "/platform/satisfaction": "satisfaction-1",
        "/platform/comment": "platform-comment",
        "/": "form-start",
    }
    respondent: dict[str, Any] = {}
    for name in ("profile", "organisation", "departement", "region", "email", "token"):
        value = _one(fields, name)
        if value:
            respondent[name] = value
    body: dict[str, Any] = {"respondent": respondent}
    response_id = _one(fields, "response_id")
    if response_id:
        body["response_id"] = response_id

    open_requests: list[dict[str, Any]] = []
    for name in sorted(fields):
        if name.startswith(OPEN_PREFIX) and _one(fields, name):
            dataset_id = name.removeprefix(OPEN_PREFIX)
            ids[f"/open_requests/{len(open_requests)}/dataset_id"] = f"open-{dataset_id}-essential"
            ids[f"/open_requests/{len(open_requests)}/priority"] = f"open-{dataset_id}-essential"
            open_requests.append({"dataset_id": dataset_id, "priority": _one(fields, name)})
    body["open_requests"] = open_requests

    improvements: list[dict[str, Any]] = []
    for slot in range(improve_slots):
        dataset_id = _one(fields, f"improve-{slot}-dataset")
        kinds = [k for k in fields.get(f"improve-{slot}-kinds", []) if k]
        comment = _one(fields, f"improve-{slot}-comment")
        if not (dataset_id or kinds or comment):
            continue
        index = len(improvements)
        ids[f"/improvement_requests/{index}/dataset_id"] = f"improve-{slot}-dataset"
        ids[f"/improvement_requests/{index}/kinds"] = f"improve-{slot}-kind-0"
        ids[f"/improvement_requests/{index}/comment"] = f"improve-{slot}-comment"
        ids[f"/improvement_requests/{index}"] = f"improve-{slot}-dataset"
        improvements.append({"dataset_id": dataset_id, "kinds": kinds, "comment": _optional(comment)})
    body["improvement_requests"] = improvements

    suggestions: list[dict[str, Any]] = []
    for slot in range(suggestion_slots):
        title = _one(fields, f"suggestion-{slot}-title")
        description = _one(fields, f"suggestion-{slot}-description")
        holder = _one(fields, f"suggestion-{slot}-holder")
        if not (title or description or holder):
            continue
        index = len(suggestions)
        for part in ("title", "description", "holder"):
            ids[f"/suggestions/{index}/{part}"] = f"suggestion-{slot}-{part}"
        suggestions.append({"title": title, "description": _optional(description), "holder": _optional(holder)})
    body["suggestions"] = suggestions

    satisfaction = _one(fields, "satisfaction")
    platform_comment = _one(fields, "platform_comment")
    if satisfaction or platform_comment:
        body["platform"] = {
            # Only ASCII digits are a number here: `"²".isdigit()` is true, and `int("²")` fails.
            "satisfaction": int(satisfaction)
            if satisfaction.isascii() and satisfaction.isdigit()
            else satisfaction or None,
            "comment": _optional(platform_comment),
        }
    if _one(fields, "consent") == "yes":
        body["consent"] = {"accepted": True, "notice": _one(fields, "privacy_notice") or PRIVACY_NOTICE}
    return ParsedForm(body, ids)


def field_id_for(pointer: str, field_ids: Mapping[str, str]) -> str:
    """The control to focus for an error at `pointer`: the nearest mapped ancestor."""
    while pointer:
        if pointer in field_ids:
            return field_ids[pointer]
        pointer = pointer.rsplit("/", 1)[0]
    return field_ids.get("/", "form-start")


def view_of(body: Mapping[str, Any] | None, improve_slots: int, suggestion_slots: int) -> dict[str, Any]:
    """What the form shows, from a body in the API's shape (a stored or a refused submission)."""
    body = body or {}
    respondent = body.get("respondent") or {}
    improvements = list(body.get("improvement_requests") or [])[:improve_slots]
    suggestions = list(body.get("suggestions") or [])[:suggestion_slots]
    platform = body.get("platform") or {}
    return {
        "respondent": respondent,
        "open": {r["dataset_id"]: r["priority"] for r in body.get("open_requests") or []},
        "improve": improvements + [{}] * (improve_slots - len(improvements)),
        "suggestions": suggestions + [{}] * (suggestion_slots - len(suggestions)),
        "satisfaction": str(platform.get("satisfaction") or ""),
        "platform_comment": platform.get("comment") or "",
        "consent": bool(body.get("consent")),
    }


_MESSAGES = {
    "missing": "Ce champ est obligatoire. / This field is required.",
    "string_too_long": "Ce texte est trop long. / This text is too long.",
    "string_too_short": "Ce champ ne peut pas être vide. / This field cannot be empty.",
    "too_short": "Choisissez au moins une option. / Choose at least one option.",
    "too_long": "Trop d'éléments. / Too many items.",
    "literal_error": "Vous devez accepter la notice de confidentialité. / You must accept the privacy notice.",
    "enum": "Choisissez une valeur de la liste. / Choose a value from the list.",
    "string_pattern_mismatch": "Format invalide. / Invalid format.",
}


def bilingual(error_type: str, message: str) -> str:
    """A validation message for a respondent: French first, English second."""
    if error_type in _MESSAGES:
        return _MESSAGES[error_type]
    message = message.removeprefix("Value error, ")
    if " / " in message:
        return message
    return f"Valeur invalide. / Invalid value: {message}"
