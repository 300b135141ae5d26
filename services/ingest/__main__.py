from services.ingest.app import create_app
from services.ingest.handlers import SERVICE
from services.ingest.settings import IngestSettings
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, IngestSettings(), create_app)
