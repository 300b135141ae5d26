"""Write the alert rules as a Prometheus Operator `PrometheusRule` for Kubernetes.

    uv run python -m deploy.checks.prometheusrule

deploy/prometheus/alerts.yml is the source (Compose mounts it, promtool tests it); the tests check
that deploy/k8s/base/prometheusrule.yaml is what this writes from it.
"""

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1]
RULES = DEPLOY / "prometheus" / "alerts.yml"
TARGET = DEPLOY / "k8s" / "base" / "prometheusrule.yaml"
HEADER = "# Generated from deploy/prometheus/alerts.yml by `python -m deploy.checks.prometheusrule`: edit that file.\n"


def prometheus_rule() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "consultation-open-data"},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(resource, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    TARGET.write_text(prometheus_rule())
