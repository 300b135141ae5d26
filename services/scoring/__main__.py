from services.scoring.app import create_app
from services.scoring.handlers import SERVICE
from services.scoring.settings import ScoringSettings
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, ScoringSettings(), create_app)
