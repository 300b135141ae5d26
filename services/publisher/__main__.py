from services.publisher.app import SERVICE, create_app
from services.publisher.settings import PublisherSettings
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, PublisherSettings(), create_app)
