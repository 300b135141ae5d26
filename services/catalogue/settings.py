from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings
from shared.topics import CATALOGUE_GROUP

DATA = Path(__file__).resolve().parent / "data"


class CatalogueSettings(ServiceSettings):
    http_port: int = 8001
    consumer_group: str = CATALOGUE_GROUP
    batch_max_records: int = Field(default=500, gt=0)
    open_catalogue_path: Path | None = Field(
        default=DATA / "catalogue_culture_global.csv",
        description="data.gouv.fr catalogue export of the open datasets (the ministry's, by default).",
    )
    census_path: Path | None = Field(
        default=DATA / "census_illustrative.csv",
        description="Inventory of the datasets held, in the ministry's census schema. The default is "
        "illustrative: point this at the real inventory.",
    )
    census_schema_path: Path | None = Field(
        default=DATA / "culture_catalog_schema.json",
        description="Table Schema the census rows are validated against.",
    )
    datagouv_url: str = Field(default="https://www.data.gouv.fr", description="data.gouv.fr API base URL.")
    datagouv_organisations: list[str] = Field(
        default_factory=list,
        description="Organisation ids to refresh from data.gouv.fr (JSON list in COD_DATAGOUV_ORGANISATIONS).",
    )
    opendatasoft_url: str | None = Field(
        default=None, description="OpenDataSoft portal to refresh from, e.g. https://data.culture.gouv.fr."
    )
    refresh_interval_s: float = Field(default=3600.0, gt=0, description="How often the sources are read again.")
