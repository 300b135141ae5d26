from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings
from shared.topics import CATALOGUE_GROUP

DATA = Path(__file__).resolve().parent / "data"


class CatalogueSettings(ServiceSettings):
    http_port: int = 8001
    consumer_group: str = CATALOGUE_GROUP
    open_catalogue_path: Path = Field(
        default=DATA / "catalogue_culture_global.csv",
        description="data.gouv.fr catalogue export of the open datasets.",
    )
    census_path: Path | None = Field(
        default=DATA / "census_illustrative.csv",
        description="Inventory of datasets not yet open, in the ministry's census schema.",
    )
    batch_max_records: int = Field(default=500, gt=0)
