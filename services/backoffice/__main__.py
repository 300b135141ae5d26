from services.backoffice.app import create_app
from services.backoffice.handlers import SERVICE
from services.backoffice.settings import BackofficeSettings
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, BackofficeSettings(), create_app)
