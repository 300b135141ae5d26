"""How ingest renders the pages respondents see: the shared DSFR layout, with the questionnaire's title."""

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse

from shared.web import page_templates, render_page

HERE = Path(__file__).resolve().parent
SERVICE_TITLE = "Consultation des réutilisateurs de données"
SERVICE_TAGLINE = "Ministère de la Culture — données ouvertes"
_TEMPLATES = page_templates(HERE / "templates")


def public_page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of ingest, in the layout every public page shares."""
    return render_page(
        _TEMPLATES, name, status, service_title=SERVICE_TITLE, service_tagline=SERVICE_TAGLINE, **context
    )
