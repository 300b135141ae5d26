"""Web plumbing of the services that serve pages: the State design system (DSFR) served from the
npm package installed with the project, the page layout every page extends, and page headers."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

REPO_ROOT = Path(__file__).resolve().parents[1]
# `npm ci` (run by `make install` and the image build) puts the pinned DSFR here.
DSFR_DIST = REPO_ROOT / "node_modules" / "@gouvfr" / "dsfr" / "dist"
SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"
DSFR_URL = "/static/dsfr"

# Pages are personal (a respondent's answer, a staff session): never cached. The security headers of
# every response (CSP, nosniff, HSTS…) are added at the service's edge (shared/edge.py).
PAGE_HEADERS = {"Cache-Control": "no-store"}


def dsfr_static(directory: Path = DSFR_DIST) -> StaticFiles:
    """The DSFR's files, to mount at `DSFR_URL`; fails at start-up when `npm ci` was not run."""
    if not (directory / "dsfr.min.css").is_file():
        raise RuntimeError(f"the State design system is missing at {directory}: run `npm ci` (make install does)")
    return StaticFiles(directory=directory)


def page_templates(service_templates: Path) -> Environment:
    """Jinja templates of a service, which may extend the shared `layout.html`."""
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(service_templates), FileSystemLoader(SHARED_TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )
    environment.globals["dsfr"] = DSFR_URL
    return environment


def render_page(
    templates: Environment,
    name: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A rendered page with the page headers."""
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
