"""`make run`: Kafka, SecantusDB and the five services on this machine, with a demo consultation.

Ctrl-C (or SIGTERM) stops the services gracefully, then the infrastructure.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta

import httpx

from deploy.local import infra as local_infra
from deploy.local.mail import MailSink
from deploy.local.processes import ServiceProcess, make_services
from shared.contracts import PRIVACY_NOTICE

DEMO_ID = "demo"
ADMIN_TOKEN = os.environ.get("COD_ADMIN_TOKEN", "dev-admin-token-change-me")  # the development default
# The workspace creates this account at start-up unless it exists (COD_STAFF_BOOTSTRAP=name:password changes it).
STAFF_ACCOUNT = os.environ.get("COD_STAFF_BOOTSTRAP") or "admin:dev-staff-change-me"


def main() -> int:
    infra = local_infra.Infra(
        profile="run",
        kafka_port=int(os.environ.get("COD_LOCAL_KAFKA_PORT", 9092)),
        kafka_controller_port=int(os.environ.get("COD_LOCAL_KAFKA_CONTROLLER_PORT", 9093)),
        mongo_port=int(os.environ.get("COD_LOCAL_MONGO_PORT", 27017)),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("starting Kafka and SecantusDB…", flush=True)
    try:
        local_infra.up(infra)
    except local_infra.InfraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # The follow-up e-mails go to a local SMTP server that writes them under .local/run/mail/, unless
    # COD_SMTP_HOST names a real one.
    mail = None
    overrides = {}
    if not os.environ.get("COD_SMTP_HOST"):
        mail = MailSink(int(os.environ.get("COD_LOCAL_SMTP_PORT", 8025)), infra.root / "mail")
        try:
            mail.start()
        except Exception as error:
            print(f"error: the local SMTP server cannot start: {error}", file=sys.stderr)
            local_infra.down(infra)
            return 1
        overrides = {"COD_SMTP_HOST": mail.host, "COD_SMTP_PORT": str(mail.port)}
    services = make_services(infra, overrides=overrides)
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        ingest = services["ingest"].url
        now = datetime.now(UTC)
        days = float(os.environ.get("COD_DEMO_DAYS", "61"))
        demo = {
            "title": "Consultation des réutilisateurs de données culturelles (démo)",
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(days=days)).isoformat(),
        }
        answer = httpx.put(
            f"{ingest}/v1/consultations/{DEMO_ID}",
            json=demo,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        answer.raise_for_status()
        print(_banner(services, demo, mail), flush=True)
        while not stop.is_set():
            for service in services.values():
                if not service.running():
                    print(f"{service.name} stopped unexpectedly; see {service.log}", file=sys.stderr)
                    stop.set()
            stop.wait(1.0)
    finally:
        print("\nstopping the services…", flush=True)
        for service in services.values():
            service.stop()
        if mail is not None:
            mail.stop()
        print("stopping Kafka and SecantusDB…", flush=True)
        local_infra.down(infra)
    return 0


def _banner(services: dict[str, ServiceProcess], demo: dict[str, str], mail: MailSink | None) -> str:
    ingest, scoring, publisher = (services[n].url for n in ("ingest", "scoring", "publisher"))
    catalogue, backoffice = services["catalogue"].url, services["backoffice"].url
    staff_name, _, staff_password = STAFF_ACCOUNT.partition(":")
    mail_line = (
        f"  e-mails    .local/run/mail/ (SMTP {mail.host}:{mail.port})"
        if mail
        else f"  e-mails    through {os.environ.get('COD_SMTP_HOST')}"
    )
    return f"""
Consultation Open Data is running.
  workspace  {backoffice}      staff sign-in: {staff_name} / {staff_password}
  form       {ingest}/consultations/{DEMO_ID}
  ingest     {ingest}      POST /v1/consultations/{DEMO_ID}/responses
  catalogue  {catalogue}      GET  /v1/datasets?status=not_open
  scoring    {scoring}      GET  /v1/consultations/{DEMO_ID}/rankings?kind=open
  publisher  {publisher}      GET  /v1/consultations/{DEMO_ID}/results (after {demo["closes_at"]})
  logs       .local/run/logs/
{mail_line}

Try:
  curl -s -XPOST {ingest}/v1/consultations/{DEMO_ID}/responses -H 'Content-Type: application/json' \\
    -d '{{"respondent": {{"profile": "researcher"}},
         "open_requests": [{{"dataset_id": "census-bibliotheques-publiques-activite-annuelle",
                            "priority": "essential"}}],
         "consent": {{"accepted": true, "notice": "{PRIVACY_NOTICE}"}}}}'
  # live rankings are for staff (the administrators' token; or the workspace):
  curl -s '{scoring}/v1/consultations/{DEMO_ID}/rankings?kind=open' -H 'Authorization: Bearer {ADMIN_TOKEN}'
  # close early, then the results and their files (administrators see them before the embargo ends):
  curl -s -XPOST {ingest}/v1/consultations/{DEMO_ID}/close -H 'Authorization: Bearer {ADMIN_TOKEN}'
  curl -s {publisher}/v1/consultations/{DEMO_ID}/results/files -H 'Authorization: Bearer {ADMIN_TOKEN}'

Ctrl-C stops everything.
"""


if __name__ == "__main__":
    sys.exit(main())
