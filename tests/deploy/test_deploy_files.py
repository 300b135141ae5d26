"""The deployment files are valid, with no container engine and no cluster: Compose against the
Compose specification, Kubernetes manifests (built with Kustomize) against the Kubernetes API
schemas and the Strimzi and Prometheus Operator CRDs, the Dockerfile through hadolint, the alert
rules through promtool (checked and unit-tested). The privacy promises are read from the manifests:
who receives each secret, what the Ingresses route, what the NetworkPolicies allow. Each check is
also shown to catch a broken file."""

import copy
import ipaddress
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
from pydantic import ValidationError

from deploy.checks.crds import kafka_topic_crd, openapi_schema
from deploy.checks.prometheusrule import TARGET, prometheus_rule
from deploy.local.processes import DEFAULT_PORTS
from shared.topics import TOPICS
from shared.web import DSFR_DIST, SHARED_TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("staging", "production")
DOCUMENTED = ROOT / "docs" / "metrics.md"
# Every service and its HTTP port; the deployment files must carry each of them.
SERVICES = DEFAULT_PORTS
# The kinds a service runs as: ingest is a StatefulSet (stable slots for its transactional ids), the others Deployments.
WORKLOADS = ("Deployment", "StatefulSet")


def test_the_services_are_the_packages_that_run() -> None:
    assert set(SERVICES) == {main.parent.name for main in (ROOT / "services").glob("*/__main__.py")}


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)


def test_the_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    checked = check_compose(DEPLOY / "compose.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    broken["services"]["ingest"]["depends_on"]["kafka"]["condition"] = "service_ready"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    assert check_compose(tmp_path / "compose.yaml").returncode != 0


def test_compose_takes_secrets_from_the_environment_with_no_default() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for secret in ("COD_ADMIN_TOKEN", "COD_PSEUDONYM_SECRET", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required, not defaulted"
    # Required too, but it may be set empty: no staff account is created then.
    assert re.search(r"\$\{COD_STAFF_BOOTSTRAP\?", text), "COD_STAFF_BOOTSTRAP must be required, not defaulted"
    compose = yaml.safe_load(text)
    for name in [*SERVICES, "kafka", "mongo"]:
        assert "healthcheck" in compose["services"][name], name
    assert compose["services"]["scoring"]["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "--replSet" in compose["services"]["mongo"]["command"]


def test_compose_runs_every_service_on_its_port() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for name, port in SERVICES.items():
        service = compose[name]
        assert service["command"] == [f"services.{name}"]
        assert service["environment"]["COD_HTTP_PORT"] == str(port)
        assert service["ports"] == [f"{port}:{port}"]
        assert service["read_only"] is True
        for dependency in ("kafka", "mongo"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", (name, dependency)


def test_the_backoffice_reaches_the_other_services_by_their_compose_names() -> None:
    backoffice = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["backoffice"]
    for name in ("ingest", "scoring", "publisher"):
        assert backoffice["environment"][f"COD_{name.upper()}_URL"] == f"http://{name}:{SERVICES[name]}"
        assert backoffice["depends_on"][name]["condition"] == "service_healthy"
    assert {"COD_FORM_PUBLIC_URL", "COD_RESULTS_PUBLIC_URL", "COD_STAFF_BOOTSTRAP"} <= set(backoffice["environment"])


def kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    command = [kubectl, "kustomize"] if kubectl else ["go", "run", "sigs.k8s.io/kustomize/kustomize/v5@v5.5.0", "build"]
    built = run(*command, DEPLOY / "k8s" / "overlays" / overlay)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def validate_builtin(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kubernetes_manifests_are_valid(overlay: str) -> None:
    resources = kustomize(overlay)
    kinds = sorted({r["kind"] for r in resources})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "KafkaTopic",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
        "StatefulSet",
    ]
    topic_schema = openapi_schema(kafka_topic_crd(), "v1beta2")
    for resource in resources:
        if resource["kind"] == "KafkaTopic":
            jsonschema.validate(resource, topic_schema)
        elif resource["kind"] == "ServiceMonitor":
            ServiceMonitor.model_validate(resource)
        elif resource["kind"] == "PrometheusRule":
            PrometheusRule.model_validate(resource)
        else:
            validate_builtin(resource)


def test_the_validators_catch_broken_manifests() -> None:
    resources = kustomize("production")
    deployment = copy.deepcopy(next(r for r in resources if r["kind"] in WORKLOADS))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"name": "http"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(deployment)
    typo = copy.deepcopy(next(r for r in resources if r["kind"] in WORKLOADS))
    typo["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(typo)
    topic = copy.deepcopy(next(r for r in resources if r["kind"] == "KafkaTopic"))
    topic["spec"]["partitions"] = "six"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(topic, openapi_schema(kafka_topic_crd(), "v1beta2"))
    monitor = copy.deepcopy(next(r for r in resources if r["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = 15
    with pytest.raises(ValidationError):
        ServiceMonitor.model_validate(monitor)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_limited_and_unprivileged(overlay: str) -> None:
    resources = kustomize(overlay)
    deployments = [r for r in resources if r["kind"] in WORKLOADS]
    assert {d["metadata"]["name"] for d in deployments} == set(SERVICES)
    budgets = {
        r["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for r in resources
        if r["kind"] == "PodDisruptionBudget"
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["envFrom"] == [{"configMapRef": {"name": "cod-config"}}]
        assert deployment["metadata"]["name"] in budgets
    assert any(
        r["kind"] == "HorizontalPodAutoscaler" and r["spec"]["scaleTargetRef"]["name"] == "ingest" for r in resources
    )
    scoring = next(d for d in deployments if d["metadata"]["name"] == "scoring")
    assert scoring["spec"]["replicas"] <= next(t.partitions for t in TOPICS if t.name == "response.enriched.v1")


def named(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def workload(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A service's Deployment, or StatefulSet (ingest, for its stable pod index)."""
    return next(r for r in resources if r["kind"] in WORKLOADS and r["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_replicas_have_stable_slots_for_their_transactional_ids(overlay: str) -> None:
    resources = kustomize(overlay)
    ingest = named(resources, "StatefulSet", "ingest")
    env = ingest["spec"]["template"]["spec"]["containers"][0]["env"]
    slot = {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    assert {"name": "COD_INGEST_SLOT", "valueFrom": slot} in env
    autoscaler = named(resources, "HorizontalPodAutoscaler", "ingest")
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "ingest"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_runs_on_its_port_and_is_scraped(overlay: str) -> None:
    resources = kustomize(overlay)
    monitor = next(r for r in resources if r["kind"] == "ServiceMonitor")
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    scraped_ports = {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]}
    for name, port in SERVICES.items():
        container = workload(resources, name)["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [f"services.{name}"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert {"name": "COD_HTTP_PORT", "value": str(port)} in container["env"]
        service = named(resources, "Service", name)
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
        assert service["spec"]["ports"][0]["port"] == port
        assert selected <= service["metadata"]["labels"].items(), f"the ServiceMonitor misses {name}"
        assert service["spec"]["ports"][0]["name"] in scraped_ports


def test_the_backoffice_reaches_the_other_services() -> None:
    config = next(r for r in kustomize("production") if r["kind"] == "ConfigMap")["data"]
    for name in ("ingest", "scoring", "publisher"):
        assert config[f"COD_{name.upper()}_URL"] == f"http://{name}:{SERVICES[name]}"
    assert {"COD_FORM_PUBLIC_URL", "COD_RESULTS_PUBLIC_URL"} <= set(config)
    # Each service has its own database: a shared COD_MONGO_DATABASE would merge them.
    assert "COD_MONGO_DATABASE" not in config


# Each secret setting, the Secret it is taken from, and the services it reaches (and no other).
SECRET_READERS: dict[str, tuple[str, set[str]]] = {
    "COD_ADMIN_TOKEN": ("cod-secrets", set(SERVICES)),
    "COD_PSEUDONYM_SECRET": ("cod-ingest-secrets", {"ingest"}),
    "COD_FOLLOWUP_KEY": ("cod-followup-secrets", {"ingest", "backoffice"}),
    "COD_STAFF_BOOTSTRAP": ("cod-backoffice-secrets", {"backoffice"}),
    "COD_SMTP_USERNAME": ("cod-backoffice-secrets", {"backoffice"}),
    "COD_SMTP_PASSWORD": ("cod-backoffice-secrets", {"backoffice"}),
}
# Settings a deployment may leave out: an SMTP relay that takes mail without a login.
OPTIONAL_SECRETS = {"COD_SMTP_USERNAME", "COD_SMTP_PASSWORD"}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|STAFF|CREDENTIAL", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]*@")


def secret_leaks(resources: list[dict[str, Any]]) -> list[str]:
    """How the Deployments break SECRET_READERS: a whole Secret loaded (it would carry any key put
    in it later), a key from the wrong Secret or under another name, a key reaching a service that
    does not read it (or missing from one that does), a Secret mounted as files."""
    problems = []
    reached: dict[str, set[str]] = {key: set() for key in SECRET_READERS}
    for deployment in (r for r in resources if r["kind"] in WORKLOADS):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume or "projected" in volume:
                problems.append(f"{name} mounts the volume {volume['name']}")
        for container in pod["containers"] + pod.get("initContainers", []):
            problems += [
                f"{name} loads the Secret {source['secretRef']['name']} whole"
                for source in container.get("envFrom", [])
                if "secretRef" in source
            ]
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference is None:
                    if variable["name"] in SECRET_READERS:
                        problems.append(f"{name} sets {variable['name']} outside a Secret")
                    continue
                if reference["key"] not in SECRET_READERS:
                    problems.append(f"{name} reads {reference['key']}, a secret no one is meant to read")
                    continue
                secret, _ = SECRET_READERS[reference["key"]]
                if (variable["name"], reference["name"]) != (reference["key"], secret):
                    problems.append(f"{name} reads {reference['key']} as {variable['name']} from {reference['name']}")
                if reference.get("optional", False) != (reference["key"] in OPTIONAL_SECRETS):
                    problems.append(f"{name}: {reference['key']} is optional only until its setting exists")
                reached[reference["key"]].add(name)
    for key, (_, readers) in SECRET_READERS.items():
        if reached[key] != readers:
            problems.append(f"{key} reaches {sorted(reached[key])}, not {sorted(readers)}")
    return problems


def secrets_in_config(resources: list[dict[str, Any]]) -> list[str]:
    """Secret values where anyone who reads the configuration sees them: a Secret in the manifests
    (they are created out of band), a secret-looking key or credentials in a URL in a ConfigMap."""
    problems = [f"the Secret {r['metadata']['name']} is in the manifests" for r in resources if r["kind"] == "Secret"]
    for config in (r for r in resources if r["kind"] == "ConfigMap"):
        for key, value in config.get("data", {}).items():
            if key in SECRET_READERS or SECRET_NAME.search(key):
                problems.append(f"{key} is in the ConfigMap {config['metadata']['name']}")
            if CREDENTIALS_IN_URL.search(str(value)):
                problems.append(f"{key} carries credentials")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_secret_reaches_only_the_services_that_read_it(overlay: str) -> None:
    resources = kustomize(overlay)
    assert secret_leaks(resources) == []
    assert secrets_in_config(resources) == []
    ingest = workload(resources, "ingest")["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "COD_PSEUDONYM_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "cod-ingest-secrets", "key": "COD_PSEUDONYM_SECRET"}},
    } in ingest["env"]


def test_the_secret_checks_catch_a_leak() -> None:
    resources = kustomize("production")

    def broken(change: Any) -> list[dict[str, Any]]:
        copied = copy.deepcopy(resources)
        change(copied)
        return copied

    def container(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
        containers: list[dict[str, Any]] = workload(resources, name)["spec"]["template"]["spec"]["containers"]
        return containers[0]

    pseudonym = next(e for e in container(resources, "ingest")["env"] if e["name"] == "COD_PSEUDONYM_SECRET")
    assert secret_leaks(broken(lambda r: container(r, "scoring")["env"].append(pseudonym))) == [
        "COD_PSEUDONYM_SECRET reaches ['ingest', 'scoring'], not ['ingest']"
    ]
    whole = {"secretRef": {"name": "cod-ingest-secrets"}}
    assert secret_leaks(broken(lambda r: container(r, "publisher")["envFrom"].append(whole))) == [
        "publisher loads the Secret cod-ingest-secrets whole"
    ]
    followup = next(e for e in container(resources, "backoffice")["env"] if e["name"] == "COD_FOLLOWUP_KEY")
    assert secret_leaks(broken(lambda r: container(r, "catalogue")["env"].append(followup))) == [
        "COD_FOLLOWUP_KEY reaches ['backoffice', 'catalogue', 'ingest'], not ['backoffice', 'ingest']"
    ]
    assert secret_leaks(broken(lambda r: container(r, "ingest")["env"].remove(pseudonym))) == [
        "COD_PSEUDONYM_SECRET reaches [], not ['ingest']"
    ]

    def configure(key: str, value: str) -> Any:
        return lambda r: next(c for c in r if c["kind"] == "ConfigMap")["data"].update({key: value})

    assert secrets_in_config(broken(configure("COD_SMTP_PASSWORD", "x"))) == [
        "COD_SMTP_PASSWORD is in the ConfigMap cod-config"
    ]
    assert secrets_in_config(broken(configure("COD_MONGO_URI", "mongodb://cod:hunter2@mongodb-0:27017"))) == [
        "COD_MONGO_URI carries credentials"
    ]


def compose_secret_leaks(compose: dict[str, Any]) -> list[str]:
    problems = []
    for key, (_, readers) in SECRET_READERS.items():
        reached = {name for name, service in compose["services"].items() if key in service.get("environment", {})}
        if reached != readers:
            problems.append(f"{key} reaches {sorted(reached)}, not {sorted(readers)}")
    problems += [f"{name} reads an env_file" for name, service in compose["services"].items() if "env_file" in service]
    return problems


def test_compose_gives_each_secret_only_to_the_services_that_read_it() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose_secret_leaks(compose) == []
    for name in ("ingest", "backoffice"):
        # Required, with no default: the services refuse to start in production without it.
        assert compose["services"][name]["environment"]["COD_FOLLOWUP_KEY"].startswith("${COD_FOLLOWUP_KEY:?")
    assert compose["services"]["ingest"]["environment"]["COD_TRUSTED_PROXIES"] == "${COD_TRUSTED_PROXIES:-[]}"
    compose["services"]["publisher"]["environment"]["COD_PSEUDONYM_SECRET"] = "${COD_PSEUDONYM_SECRET}"
    assert compose_secret_leaks(compose) == ["COD_PSEUDONYM_SECRET reaches ['ingest', 'publisher'], not ['ingest']"]


def ingress_routes(resources: list[dict[str, Any]], url: str) -> list[tuple[str, int]]:
    """The backends an ingress-nginx controller sends `url` to. With use-regex, a path is a regular
    expression matched case-insensitively from the start of the request's path; otherwise Exact or
    Prefix (element-wise) as the Ingress API defines them."""
    parts = urlsplit(url)
    found = []
    for ingress in (r for r in resources if r["kind"] == "Ingress"):
        regex = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/use-regex") == "true"
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != parts.hostname:
                continue
            for entry in rule["http"]["paths"]:
                path = entry["path"]
                if regex:
                    hit = re.match(path, parts.path, re.IGNORECASE) is not None
                elif entry["pathType"] == "Exact":
                    hit = parts.path == path
                else:
                    hit = parts.path == path or parts.path.startswith(path.rstrip("/") + "/")
                if hit:
                    service = entry["backend"]["service"]
                    found.append((service["name"], service["port"]["number"]))
    return found


def backoffice_pages() -> set[str]:
    """The paths the workspace serves, read from its route decorators ({id} → demo)."""
    source = "\n".join(path.read_text() for path in (ROOT / "services" / "backoffice").glob("*.py"))
    paths = re.findall(r'@\w+\.(?:get|post|put|patch|delete)\(\s*"(/[^"]*)"', source)
    return {re.sub(r"\{[^}]+\}", "demo", path) for path in paths} | {"/static/backoffice.css"}


# What the public may reach on each host, and what must stay inside the cluster.
QUESTIONNAIRE_PATHS = [
    "/",
    "/consultations/demo",
    "/v1/consultations/demo/responses",
    "/static/form.css",
    "/static/dsfr/dsfr.min.css",
]
RESULTS_PATHS = [
    "/v1/consultations/demo/results",
    "/v1/consultations/demo/results/files",
    "/v1/consultations/demo/results/a-ouvrir.csv",
    "/v1/consultations/demo/results/datapackage.json",
    "/consultations/demo/suivi",
]
INTERNAL_PATHS = ["/metrics", "/healthz", "/readyz", "/docs", "/openapi.json"]
ADMINISTRATION_PATHS = [
    "/v1/consultations/demo",
    "/v1/consultations/demo/close",
    "/v1/consultations/demo/results/release",
    "/v1/consultations/demo/rankings",
    "/v1/datasets",
]


def routing_problems(resources: list[dict[str, Any]]) -> list[str]:
    """Where the Ingresses and the public URLs of the ConfigMap disagree with the tables above."""
    config = next(r for r in resources if r["kind"] == "ConfigMap")["data"]
    ingresses = [r for r in resources if r["kind"] == "Ingress"]
    problems = []
    services = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Service"}
    for ingress in ingresses:
        name = ingress["metadata"]["name"]
        if ingress["spec"].get("ingressClassName") != "nginx":
            problems.append(f"{name} is not for the nginx class")
        tls = {host for entry in ingress["spec"].get("tls", []) if entry.get("secretName") for host in entry["hosts"]}
        for rule in ingress["spec"]["rules"]:
            if rule["host"] not in tls:
                problems.append(f"{rule['host']} has no TLS certificate")
            for entry in rule["http"]["paths"]:
                if re.search(r"\(\?[=!<]", entry["path"]):
                    problems.append(f"{entry['path']}: lookaround is not RE2")
                backend = entry["backend"]["service"]
                service = services.get(backend["name"])
                if service is None or backend["port"]["number"] not in [p["port"] for p in service["spec"]["ports"]]:
                    problems.append(f"{entry['path']} goes to no Service port")

    def expect(url: str, backend: tuple[str, int] | None) -> None:
        routes = ingress_routes(resources, url)
        if routes != ([backend] if backend else []):
            problems.append(f"{url} goes to {routes}, not {backend}")

    workspace = {
        rule["host"]
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for entry in rule["http"]["paths"]
        if entry["backend"]["service"]["name"] == "backoffice"
    }
    origins = {
        "ingest": config["COD_FORM_PUBLIC_URL"],
        "publisher": config["COD_RESULTS_PUBLIC_URL"],
        "backoffice": "https://" + (workspace.pop() if len(workspace) == 1 else "workspace"),
    }
    if config["COD_PUBLIC_URL"] != config["COD_FORM_PUBLIC_URL"]:
        problems.append("ingest's amend links and the workspace's links to the questionnaire differ")
    if len({urlsplit(origin).hostname for origin in origins.values()}) != len(origins):
        problems.append("the questionnaire, the results and the workspace share a host")
    problems += [f"{origin} is not HTTPS" for origin in origins.values() if not origin.startswith("https://")]
    public = {
        "ingest": [*QUESTIONNAIRE_PATHS, "/consultations/demo?token=t"],
        "publisher": RESULTS_PATHS,
        "backoffice": sorted(backoffice_pages()),
    }
    for name, origin in origins.items():
        for path in public[name]:
            expect(origin + path, (name, SERVICES[name]))
        for path in INTERNAL_PATHS + ([] if name == "backoffice" else ADMINISTRATION_PATHS):
            expect(origin + path, None)
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_each_public_path_and_nothing_else(overlay: str) -> None:
    resources = kustomize(overlay)
    assert routing_problems(resources) == []
    config = next(r for r in resources if r["kind"] == "ConfigMap")["data"]
    questionnaire = next(
        i
        for i in resources
        if i["kind"] == "Ingress" and ("ingest", 8000) in ingress_routes([i], config["COD_FORM_PUBLIC_URL"] + "/")
    )
    assert int(questionnaire["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rpm"]) > 0
    # Ingest's rate limit keys on the client behind the ingress controller, not on the controller.
    proxies = json.loads(config["COD_TRUSTED_PROXIES"])
    assert proxies
    for cidr in proxies:
        ipaddress.ip_network(cidr)


def test_the_routing_check_catches_a_broken_ingress() -> None:
    resources = kustomize("production")

    def broken(name: str, index: int, change: dict[str, Any]) -> list[dict[str, Any]]:
        copied = copy.deepcopy(resources)
        named(copied, "Ingress", name)["spec"]["rules"][0]["http"]["paths"][index].update(change)
        return copied

    assert "https://consultation.example.org/metrics goes to [('ingest', 8000)], not None" in routing_problems(
        broken("questionnaire", 0, {"path": "/"})
    )
    wrong_port = {"backend": {"service": {"name": "publisher", "port": {"number": 8002}}}}
    assert "/consultations/[^/]+/suivi$ goes to no Service port" in routing_problems(broken("resultats", 2, wrong_port))
    release = "https://resultats.consultation.example.org/v1/consultations/demo/results/release"
    too_wide = broken("resultats", 1, {"path": "/v1/consultations/[^/]+/results/"})
    assert f"{release} goes to [('publisher', 8003)], not None" in routing_problems(too_wide)


# The pods the services talk to, by namespace and labels (what the policies select them by), and
# addresses outside the cluster (None: an ipBlock or a rule without peers reaches them).
Endpoint = tuple[str, dict[str, str]] | None
PEERS: dict[str, Endpoint] = {
    "kafka": (
        "cod",
        {"strimzi.io/cluster": "cod-kafka", "strimzi.io/kind": "Kafka", "strimzi.io/name": "cod-kafka-kafka"},
    ),
    "mongodb": ("cod", {"app.kubernetes.io/name": "mongodb"}),
    "ingress-nginx": (
        "ingress-nginx",
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    ),
    "prometheus": ("monitoring", {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}),
    "kube-dns": ("kube-system", {"k8s-app": "kube-dns"}),
    "smtp-relay": None,
    "internet": None,
}
PORTS = sorted({*SERVICES.values(), 9092, 27017, 53, 587, 443, 80})
# Every flow to or from a service that the policies allow, and no other: (from, to, port), TCP
# unless the port is 53 (UDP and TCP).
FLOWS = {
    *((name, "kafka", 9092) for name in SERVICES),
    *((name, "mongodb", 27017) for name in SERVICES),
    *((name, "kube-dns", 53) for name in SERVICES),
    *(("prometheus", name, port) for name, port in SERVICES.items()),
    *(("ingress-nginx", name, SERVICES[name]) for name in ("ingest", "publisher", "backoffice")),
    *(("backoffice", name, SERVICES[name]) for name in ("ingest", "scoring", "publisher")),
    # MongoDB and the SMTP relay may be anywhere: those rules name a port, not an address, so they
    # reach whatever listens on it outside the namespace (the services' pods admit neither port).
    *((name, peer, 27017) for name in SERVICES for peer in PEERS if peer != "kafka"),
    *(("backoffice", peer, 587) for peer in PEERS if peer not in {"kafka", "mongodb"}),
}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the evaluator reads matchLabels only"
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def peer_matches(peer: dict[str, Any], namespace: str, endpoint: Endpoint) -> bool:
    if endpoint is None:
        return "ipBlock" in peer and ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen == 0
    if "ipBlock" in peer:
        return False
    their_namespace, labels = endpoint
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": their_namespace})
    else:
        in_namespace = their_namespace == namespace
    return in_namespace and selects(peer.get("podSelector", {}), labels)


def port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    return "ports" not in rule or any(
        p.get("port", port) == port and p.get("protocol", "TCP") == protocol for p in rule["ports"]
    )


def rule_admits(rule: dict[str, Any], peers: str, namespace: str, other: Endpoint, port: int, protocol: str) -> bool:
    """A rule without ports admits every port; without peers, every peer."""
    if "ports" in rule and not any(
        p.get("port", port) == port and p.get("protocol", "TCP") == protocol for p in rule["ports"]
    ):
        return False
    return peers not in rule or any(peer_matches(peer, namespace, other) for peer in rule[peers])


def allowed(resources: list[dict[str, Any]], source: Endpoint, target: Endpoint, port: int, protocol: str) -> bool:
    """Whether the NetworkPolicies of the namespace let `source` open `port` on `target`: the egress
    side for a source in the namespace, the ingress side for a target in it (outside it, another
    namespace's policies decide, and are taken as allowing). A pod no policy of a direction selects
    is open in that direction; one that some select is open only to what one of their rules admits."""
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    namespace = policies[0]["metadata"]["namespace"]
    for endpoint, other, direction, peers in ((source, target, "Egress", "to"), (target, source, "Ingress", "from")):
        if endpoint is None or endpoint[0] != namespace:
            continue
        applying = [
            p
            for p in policies
            if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], endpoint[1])
        ]
        rules = [rule for policy in applying for rule in policy["spec"].get(direction.lower(), [])]
        if applying and not any(rule_admits(rule, peers, namespace, other, port, protocol) for rule in rules):
            return False
    return True


def flow_problems(resources: list[dict[str, Any]]) -> list[str]:
    """Where the NetworkPolicies differ from FLOWS, for every service's pods as they run."""
    namespace = next(r for r in resources if r["kind"] == "NetworkPolicy")["metadata"]["namespace"]
    endpoints: dict[str, Endpoint] = {
        name: (namespace, workload(resources, name)["spec"]["template"]["metadata"]["labels"]) for name in SERVICES
    }
    endpoints |= {
        name: None if peer is None else (namespace if peer[0] == "cod" else peer[0], peer[1])
        for name, peer in PEERS.items()
    }
    problems = []
    for source, target in itertools.product(endpoints, endpoints):
        if source not in SERVICES and target not in SERVICES:
            continue
        for port in PORTS:
            for protocol in ("TCP", "UDP") if port == 53 else ("TCP",):
                expected = (source, target, port) in FLOWS
                if allowed(resources, endpoints[source], endpoints[target], port, protocol) != expected:
                    problems.append(f"{source} → {target}:{port}/{protocol} {'refused' if expected else 'allowed'}")
    return problems


def policy_problems(resources: list[dict[str, Any]]) -> list[str]:
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    problems = []
    if not any(
        p["spec"]["podSelector"] == {}
        and sorted(p["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append("no default-deny policy")
    for deployment in (r for r in resources if r["kind"] in WORKLOADS):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        own = [p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)]
        if not own:
            problems.append(f"no policy of its own for {deployment['metadata']['name']}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_network_policies_allow_what_each_service_needs_and_nothing_else(overlay: str) -> None:
    resources = kustomize(overlay)
    assert policy_problems(resources) == []
    assert flow_problems(resources) == []
    # Kafka and MongoDB keep working under the default deny.
    kafka, mongodb = PEERS["kafka"], PEERS["mongodb"]
    namespace = next(r for r in resources if r["kind"] == "NetworkPolicy")["metadata"]["namespace"]
    assert kafka
    assert mongodb
    kafka, mongodb = (namespace, kafka[1]), (namespace, mongodb[1])
    assert allowed(resources, kafka, kafka, 9091, "TCP")
    assert allowed(resources, mongodb, mongodb, 27017, "TCP")
    assert allowed(resources, kafka, PEERS["kube-dns"], 53, "UDP")
    assert not allowed(resources, kafka, None, 80, "TCP")


def test_the_network_policy_checks_catch_a_broken_policy() -> None:
    resources = kustomize("production")

    def broken(change: Any) -> list[dict[str, Any]]:
        copied = copy.deepcopy(resources)
        change(copied)
        return copied

    assert policy_problems(broken(lambda r: r.remove(named(r, "NetworkPolicy", "default-deny")))) == [
        "no default-deny policy"
    ]

    def typo(r: list[dict[str, Any]]) -> None:
        named(r, "NetworkPolicy", "scoring")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "scorign"

    assert policy_problems(broken(typo)) == ["no policy of its own for scoring"]
    assert "backoffice → scoring:8002/TCP refused" in flow_problems(broken(typo))

    def public(r: list[dict[str, Any]]) -> None:
        from_controller = copy.deepcopy(named(r, "NetworkPolicy", "publisher")["spec"]["ingress"][0])
        from_controller["ports"][0]["port"] = SERVICES["scoring"]
        named(r, "NetworkPolicy", "scoring")["spec"]["ingress"].append(from_controller)

    assert flow_problems(broken(public)) == ["ingress-nginx → scoring:8002/TCP allowed"]

    def open_egress(r: list[dict[str, Any]]) -> None:
        named(r, "NetworkPolicy", "catalogue")["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 443}]})

    assert "catalogue → internet:443/TCP allowed" in flow_problems(broken(open_egress))


def test_the_strimzi_topics_agree_with_the_topics_the_services_create() -> None:
    declared = {r["spec"]["topicName"]: r["spec"] for r in kustomize("production") if r["kind"] == "KafkaTopic"}
    assert set(declared) == {t.name for t in TOPICS}
    for topic in TOPICS:
        spec = declared[topic.name]
        assert spec["partitions"] == topic.partitions, topic.name
        for key, value in topic.kafka_configs().items():
            assert str(spec["config"][key]) == value, (topic.name, key)
        assert spec["replicas"] == 3


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    linted = run(BIN / "hadolint", "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", text, re.MULTILINE), "the image runs as a non-root user"
    assert text.count("FROM ") >= 2, "multi-stage"
    (tmp_path / "Dockerfile").write_text(
        text.replace("FROM python:3.11-slim-bookworm AS build", "FROM python AS build")
    )
    assert run(BIN / "hadolint", tmp_path / "Dockerfile").returncode != 0


def test_the_image_exposes_every_service_port() -> None:
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed
    assert {int(port) for port in exposed.group(1).split()} == set(SERVICES.values())


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = {source.rstrip("/") for line in copies for source in line.split()}
    assert {"package.json", "package-lock.json", ".npmrc"} <= sources
    assert sources <= allowed, sources - allowed


def dsfr_files_needed() -> set[str]:
    """Paths under the DSFR's dist/ that the shared layout loads, with what its stylesheets load."""
    layout = (SHARED_TEMPLATES / "layout.html").read_text()
    needed = set(re.findall(r"\{\{ dsfr \}\}/([\w./-]+)", layout))
    for stylesheet in [path for path in needed if path.endswith(".css")]:
        text = (DSFR_DIST / stylesheet).read_text()
        for reference in re.findall(r"url\(['\"]?([^'\")]+)", text):
            if not reference.startswith(("data:", "#")):
                resolved = (DSFR_DIST / stylesheet).parent / reference.split("?")[0].split("#")[0]
                needed.add(resolved.resolve().relative_to(DSFR_DIST.resolve()).as_posix())
    return needed


def dsfr_files_missing_from_the_image(dockerfile: str) -> set[str]:
    stage = re.search(r"^FROM \S+ AS dsfr$(.*?)^FROM ", dockerfile, re.MULTILINE | re.DOTALL)
    assert stage, "a stage named dsfr installs the DSFR"
    copied = {
        word.rstrip("/")
        for command in re.findall(r"\bcp ([^&]+)", stage.group(1))
        for word in command.split()
        if not word.startswith(("-", "/"))
    }
    return {path for path in dsfr_files_needed() if not any(path == c or path.startswith(c + "/") for c in copied)}


def test_the_image_carries_the_dsfr_files_the_pages_load() -> None:
    text = (ROOT / "Dockerfile").read_text()
    needed = dsfr_files_needed()
    assert {"dsfr.min.css", "dsfr.module.min.js", "favicon/favicon.svg"} <= needed
    assert any(path.startswith("fonts/") for path in needed)
    assert any(path.startswith("icons/") for path in needed)
    assert not dsfr_files_missing_from_the_image(text)
    # shared/web.py looks for the DSFR under the repository root, /app in the image.
    assert re.search(r"^COPY --from=dsfr .* /app/node_modules/@gouvfr/dsfr/dist$", text, re.MULTILINE)
    assert "npm ci --omit=dev --ignore-scripts" in text
    assert dsfr_files_missing_from_the_image(text.replace(" fonts ", " ")) == {
        path for path in needed if path.startswith("fonts/")
    }


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is installed by deploy/local/bootstrap.sh (Debian's prometheus package)"
    return found


def test_the_alert_rules_are_valid_and_their_unit_tests_pass(tmp_path: Path) -> None:
    checked = run(promtool(), "check", "rules", DEPLOY / "prometheus" / "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool(), "test", "rules", "alerts.test.yml", cwd=DEPLOY / "prometheus")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # The unit tests can fail: with the lag threshold raised, the growing-lag alert no longer fires.
    for name in ("alerts.yml", "alerts.test.yml"):
        shutil.copy(DEPLOY / "prometheus" / name, tmp_path / name)
    rules = tmp_path / "alerts.yml"
    rules.write_text(
        rules.read_text().replace("(publisher_consumer_lag_messages) > 100", "(publisher_consumer_lag_messages) > 9999")
    )
    assert run(promtool(), "test", "rules", "alerts.test.yml", cwd=tmp_path).returncode != 0


def test_the_kubernetes_prometheus_rule_is_the_alert_rules_file() -> None:
    assert TARGET.read_text() == prometheus_rule(), "run: uv run python -m deploy.checks.prometheusrule"
    rule = yaml.safe_load(TARGET.read_text())
    assert rule["spec"]["groups"] == yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["for"] = 120
    with pytest.raises(ValidationError):
        PrometheusRule.model_validate(broken)


def test_prometheus_configuration_is_valid() -> None:
    checked = run(promtool(), "check", "config", "--syntax-only", DEPLOY / "prometheus" / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_every_service_under_compose() -> None:
    scraped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]] for job in scraped}
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICES.items()}


def documented_metrics() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", DOCUMENTED.read_text(), re.MULTILINE))


def test_the_dashboard_and_the_alerts_use_documented_metrics_only() -> None:
    documented = documented_metrics() | {"up"}
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "consultation.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = set()
    for expression in expressions:
        # `{__name__=~"(catalogue|scoring)_dead_letters_total"}` names two metrics
        for alternatives, suffix in re.findall(r"\(([a-z|]+)\)(_[a-z_]+)", expression):
            used |= {name + suffix for name in alternatives.split("|")}
        expression = re.sub(r"\(([a-z|]+)\)(_[a-z_]+)", "", expression)
        used |= set(re.findall(r"\b([a-z_]+_(?:total|seconds|messages|bytes|in_progress))(?:_bucket)?\b", expression))
    assert used, "the expressions name metrics"
    assert used <= documented, used - documented
    assert {p["title"] for p in dashboard["panels"]} >= {
        "Réponses acceptées / Responses accepted (per minute)",
        "Fraîcheur des classements / Rankings freshness (p50, p99)",
        "Retard des consommateurs / Consumer lag",
        "Erreurs HTTP / HTTP errors (5xx per minute)",
        "Connexions des agents / Staff sign-ins (per hour)",
        "Textes conservés / Texts stored (per minute)",
    }


def watched_jobs(expression: str) -> set[str]:
    found = re.search(r'up\{job=~"([a-z|]+)"\}', expression)
    assert found, expression
    return set(found.group(1).split("|"))


def test_the_alerts_and_the_dashboard_watch_every_service() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    down = next(r for g in rules["groups"] for r in g["rules"] if r["alert"] == "ServiceDown")
    assert watched_jobs(down["expr"]) == set(SERVICES)
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "consultation.json").read_text())
    up = next(p for p in dashboard["panels"] if p["title"] == "Services en ligne / Services up")
    assert watched_jobs(up["targets"][0]["expr"]) == set(SERVICES)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
