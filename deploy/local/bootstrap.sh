#!/usr/bin/env bash
# Installs what `make run` and `make test` need and the machine lacks: a JDK 17+, Maven, Chromium and
# promtool (Debian packages), uv (PyPI), the project's Python environment (uv.lock), and Apache Kafka's jars (Maven
# Central, cached under .local/). Safe to run again: each step is skipped when already done.
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
"${uv[@]}" run --frozen --quiet python -m deploy.local.infra install
