from services.catalogue.app import create_app
from services.catalogue.handlers import SERVICE
from services.catalogue.settings import CatalogueSettings
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, CatalogueSettings(), create_app)
