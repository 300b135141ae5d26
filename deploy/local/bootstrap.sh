#!/usr/bin/env bash
# Installs what `make run` and `make test` need and the machine lacks: a JDK 17+, Maven, Chromium, promtool and
# Node.js with npm (Debian packages), uv (PyPI), the project's Python environment (uv.lock), the State design system
# and axe-core (npm, package-lock.json), and Apache Kafka's jars (Maven Central, cached under .local/). Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null || missing+=(maven)
# The browser tests drive Debian's Chromium (Playwright cannot download a browser here).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# promtool checks the alert rules and the services' /metrics (Debian's prometheus package).
command -v promtool >/dev/null || missing+=(prometheus)
# npm installs the State design system the pages serve, and axe-core for the accessibility tests.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]}…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: please install ${missing[*]} (Debian packages)" >&2
    exit 1
  fi
fi

if command -v uv >/dev/null; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
  uv=(python3 -m uv)
fi
"${uv[@]}" sync --frozen --quiet
# Skip `npm ci` while node_modules holds what this very lock file describes.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.cod-lock 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.cod-lock
fi
"${uv[@]}" run --frozen --quiet python -m deploy.local.infra install
