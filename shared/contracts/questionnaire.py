"""The questionnaire a respondent fills in: the vocabulary and the limits every service agrees on."""

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from shared.contracts.base import Contract
from shared.contracts.territories import DEPARTEMENTS, REGIONS

MAX_OPEN_REQUESTS = 50
MAX_IMPROVEMENT_REQUESTS = 50
MAX_SUGGESTIONS = 20
MAX_TITLE_LENGTH = 200
MAX_TEXT_LENGTH = 2000

DatasetId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"),
    Field(description="Identifier of a dataset in the catalogue (data.gouv.fr id or census id)."),
]
# Not blank (`\S`): the schema says what stripping the whitespace would leave.
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_LENGTH, pattern=r"\S")
]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT_LENGTH)]
# The version of the privacy notice in force; a response must consent to it.
# 2026-12: the results are published pseudonymised (not "anonymised"); the notice page states it all.
PRIVACY_NOTICE = "2026-12"


class Profile(StrEnum):
    """Who the respondent is, among the audiences of the consultation."""

    COMPANY = "company"
    DIGITAL_ACTOR = "digital_actor"
    RESEARCHER = "researcher"
    JOURNALIST = "journalist"
    LOCAL_AUTHORITY = "local_authority"
    TOURISM = "tourism"
    ASSOCIATION = "association"
    STUDENT = "student"
    PUBLIC_AGENT = "public_agent"
    CITIZEN = "citizen"
    OTHER = "other"


class Priority(StrEnum):
    """How much the respondent needs a dataset opened."""

    ESSENTIAL = "essential"
    IMPORTANT = "important"
    USEFUL = "useful"


class ImprovementKind(StrEnum):
    """What should be improved in an open dataset."""

    UPDATE_FREQUENCY = "update_frequency"
    EXPORT_FORMAT = "export_format"
    GEOLOCATION = "geolocation"
    API_ACCESS = "api_access"
    DOCUMENTATION = "documentation"
    COMPLETENESS = "completeness"
    DATA_QUALITY = "data_quality"
    LICENCE = "licence"
    OTHER = "other"


class OpenRequest(Contract):
    """A dataset of the census the respondent wants opened, with a priority."""

    dataset_id: DatasetId
    priority: Priority = Field(description="essential, important or useful.")


class ImprovementRequest(Contract):
    """An open dataset the respondent wants improved, and how."""

    dataset_id: DatasetId
    kinds: list[ImprovementKind] = Field(
        min_length=1,
        max_length=len(ImprovementKind),
        description="Kinds of improvement asked for, at least one, each once.",
        json_schema_extra={"uniqueItems": True},
    )
    comment: LongText | None = Field(default=None, description="Free comment on the improvement.")

    @model_validator(mode="after")
    def _kinds_unique(self) -> Self:
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError(
                "chaque type d'amélioration ne peut être donné qu'une fois / each kind of improvement may be given once"
            )
        return self


class Suggestion(Contract):
    """A dataset the respondent wants that is not in the catalogue."""

    title: ShortText = Field(description="Short name of the wished dataset.")
    description: LongText | None = Field(default=None, description="What it contains.")
    holder: ShortText | None = Field(default=None, description="Who holds it, when known.")


class PlatformFeedback(Contract):
    """How the open-data platform itself could serve the respondent better."""

    satisfaction: int | None = Field(default=None, ge=1, le=5, description="1 (poor) to 5 (very good).")
    comment: LongText | None = Field(default=None, description="Free comment on the platform.")


class Consent(Contract):
    """The respondent's explicit consent, and the privacy notice it refers to."""

    accepted: Literal[True] = Field(description="Must be true: the response is processed on this basis.")
    notice: Annotated[str, StringConstraints(max_length=40)] = Field(
        description=f"Version of the privacy notice consented to (in force: {PRIVACY_NOTICE})."
    )


def _territory_rule() -> dict[str, Any]:
    """The rule `_known_territory` applies, as JSON Schema: a département, when given with a région, is in it."""
    in_region = [
        {
            "properties": {
                "region": {"const": region},
                "departement": {"enum": sorted(d for d, (_, r) in DEPARTEMENTS.items() if r == region)},
            }
        }
        for region in sorted(REGIONS)
    ]
    return {
        "anyOf": [
            {"properties": {"departement": {"type": "null"}}},
            {"properties": {"region": {"type": "null"}}},
            *in_region,
        ]
    }


class RespondentForm(Contract):
    model_config = ConfigDict(json_schema_extra=_territory_rule())

    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")] | None = Field(
        default=None,
        description="Token returned by an earlier submission; sending it replaces that submission.",
    )
    profile: Profile = Field(description="The respondent's profile.")
    organisation: ShortText | None = Field(default=None, description="Optional organisation.")
    departement: Annotated[str, Field(json_schema_extra={"enum": sorted(DEPARTEMENTS)})] | None = Field(
        default=None, description="Optional INSEE département code, e.g. 2A, 75, 974."
    )
    region: Annotated[str, Field(json_schema_extra={"enum": sorted(REGIONS)})] | None = Field(
        default=None, description="Optional INSEE région code, e.g. 11, 84; the département's, when both are given."
    )
    email: EmailStr | None = Field(
        default=None,
        description="Optional e-mail: a respondent who gives it again replaces their earlier response. "
        "Ingest keeps only a keyed hash of it; it never travels further in clear.",
    )

    @model_validator(mode="after")
    def _known_territory(self) -> Self:
        if self.departement is not None and self.departement not in DEPARTEMENTS:
            raise ValueError(f"département inconnu / unknown département: {self.departement!r}")
        if self.region is not None and self.region not in REGIONS:
            raise ValueError(f"région inconnue / unknown région: {self.region!r}")
        if self.departement and self.region and DEPARTEMENTS[self.departement][1] != self.region:
            raise ValueError(
                f"le département {self.departement} n'est pas dans la région {self.region} / "
                f"département {self.departement} is not in région {self.region}"
            )
        return self


_AT_LEAST_ONE: list[Any] = [
    *(
        {"required": [name], "properties": {name: {"minItems": 1}}}
        for name in ("open_requests", "improvement_requests", "suggestions")
    ),
    {"required": ["platform"], "properties": {"platform": {"type": "object"}}},
]


class ResponseForm(BaseModel):
    """The body of `POST /v1/consultations/{id}/responses`: at least one dataset to open, to improve or
    to add, or feedback on the platform; each dataset once, either to open or to improve."""

    # The rule of `_each_dataset_once` that JSON Schema can state (it cannot compare items by a field).
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"anyOf": _AT_LEAST_ONE},
    )

    response_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = Field(
        default=None,
        description="Client-chosen id making the submission idempotent: a retry is counted once.",
    )
    respondent: RespondentForm
    open_requests: list[OpenRequest] = Field(default_factory=list, max_length=MAX_OPEN_REQUESTS)
    improvement_requests: list[ImprovementRequest] = Field(default_factory=list, max_length=MAX_IMPROVEMENT_REQUESTS)
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=MAX_SUGGESTIONS)
    platform: PlatformFeedback | None = Field(default=None, description="Feedback on the platform itself.")
    consent: Consent

    @model_validator(mode="after")
    def _each_dataset_once(self) -> Self:
        opened = [request.dataset_id for request in self.open_requests]
        improved = [request.dataset_id for request in self.improvement_requests]
        if len(set(opened)) != len(opened):
            raise ValueError(
                "un jeu de données ne peut être demandé qu'une fois / a dataset may be asked to be opened once"
            )
        if len(set(improved)) != len(improved):
            raise ValueError(
                "un jeu de données ne peut être cité qu'une fois / a dataset may be asked to be improved once"
            )
        if set(opened) & set(improved):
            raise ValueError(
                "un jeu de données ne peut être à la fois à ouvrir et à améliorer / "
                "a dataset cannot be both to open and to improve"
            )
        if not (opened or improved or self.suggestions or self.platform):
            raise ValueError(
                "indiquez au moins un jeu de données à ouvrir, à améliorer ou à ajouter / "
                "name at least one dataset to open, to improve or to add"
            )
        return self


# How profiles and kinds of improvement are shown to people: (French, English).
PROFILE_LABELS = {
    Profile.COMPANY: ("Entreprise, entrepreneur", "Company, entrepreneur"),
    Profile.DIGITAL_ACTOR: ("Acteur du numérique", "Digital actor"),
    Profile.RESEARCHER: ("Chercheur, chercheuse", "Researcher"),
    Profile.JOURNALIST: ("Journaliste", "Journalist"),
    Profile.LOCAL_AUTHORITY: ("Collectivité territoriale", "Local authority"),
    Profile.TOURISM: ("Acteur du tourisme", "Tourism stakeholder"),
    Profile.ASSOCIATION: ("Association culturelle ou sociale", "Cultural or social association"),
    Profile.STUDENT: ("Étudiant, étudiante", "Student"),
    Profile.PUBLIC_AGENT: ("Agent public", "Public agent"),
    Profile.CITIZEN: ("Citoyen, citoyenne", "Citizen"),
    Profile.OTHER: ("Autre", "Other"),
}
IMPROVEMENT_LABELS = {
    ImprovementKind.UPDATE_FREQUENCY: ("Fréquence de mise à jour", "Update frequency"),
    ImprovementKind.EXPORT_FORMAT: ("Format d'export", "Export format"),
    ImprovementKind.GEOLOCATION: ("Géolocalisation", "Geolocation"),
    ImprovementKind.API_ACCESS: ("Accès par API", "API access"),
    ImprovementKind.DOCUMENTATION: ("Documentation", "Documentation"),
    ImprovementKind.COMPLETENESS: ("Complétude", "Completeness"),
    ImprovementKind.DATA_QUALITY: ("Qualité des données", "Data quality"),
    ImprovementKind.LICENCE: ("Licence", "Licence"),
    ImprovementKind.OTHER: ("Autre", "Other"),
}
