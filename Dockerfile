# One image for the five services: they share every dependency and the `shared` package, so one
# build, one scan and one tag to deploy; the command picks the service (`services.ingest`, …).
# Build from the repository root: docker build -t consultation-open-data .

# The State design system (npm @gouvfr/dsfr, pinned by package-lock.json), for the pages the
# services serve. node:20-bookworm-slim is the official Node.js image (Docker Hub `library/node`);
# the lock file's DSFR wants Node ^20.19. Install scripts are off (.npmrc and the flag alike).
FROM node:20-bookworm-slim AS dsfr
WORKDIR /build
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts
# Only what the pages load: the layout's stylesheets, scripts and favicon, and the fonts and icons
# those stylesheets point at (dist/ holds 88 MB of sources, variants and source maps besides).
WORKDIR /build/node_modules/@gouvfr/dsfr/dist
RUN mkdir -p /dsfr/utility \
    && cp dsfr.min.css dsfr.module.min.js dsfr.nomodule.min.js /dsfr/ \
    && cp -r fonts icons favicon /dsfr/ \
    && cp -r utility/icons /dsfr/utility/ \
    && find /dsfr -name '*.map' -delete

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9.7 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 cod \
    && useradd --system --uid 10001 --gid cod --no-create-home --shell /usr/sbin/nologin cod
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
# Where shared/web.py looks for it (DSFR_DIST, relative to the repository root /app).
COPY --from=dsfr --chown=root:root /dsfr /app/node_modules/@gouvfr/dsfr/dist
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COD_HTTP_HOST=0.0.0.0 \
    COD_ENVIRONMENT=production
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('COD_HTTP_PORT', '8000')}/healthz\", timeout=2)"]
ENTRYPOINT ["python", "-m"]
CMD ["services.ingest"]
