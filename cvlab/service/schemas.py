"""Request bodies as the SDK sends them (camelCase), for validation and the OpenAPI page at /docs."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Region(Wire):
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class ImageFileCreateEntry(Wire):
    name: str | None = None
    contents: str = Field(..., description="standard base64 with padding")
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageFileCreateBatch(Wire):
    images: list[ImageFileCreateEntry] = Field(default_factory=list)
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageUrlCreateEntry(Wire):
    url: str
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageUrlCreateBatch(Wire):
    images: list[ImageUrlCreateEntry] = Field(default_factory=list)
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageIdCreateEntry(Wire):
    id: str
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageIdCreateBatch(Wire):
    images: list[ImageIdCreateEntry] = Field(default_factory=list)
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageRegionCreateEntry(Wire):
    image_id: str
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class ImageRegionCreateBatch(Wire):
    regions: list[ImageRegionCreateEntry] = Field(default_factory=list)


class ImageTagCreateEntry(Wire):
    image_id: str
    tag_id: str


class ImageTagCreateBatch(Wire):
    tags: list[ImageTagCreateEntry] = Field(default_factory=list)


class ProjectSettings(Wire):
    domain_id: str | None = None
    classification_type: str | None = None
    target_export_platforms: list[str] | None = None
    image_processing_settings: dict | None = None


class ProjectUpdate(Wire):
    name: str | None = None
    description: str | None = None
    settings: ProjectSettings | None = None
    status: str | None = None


class TagUpdate(Wire):
    name: str | None = None
    description: str | None = None
    type: str | None = None


class IterationUpdate(Wire):
    name: str | None = None


class CreateProjectOptions(Wire):
    export_model_container_uri: str | None = None
    notification_queue_uri: str | None = None


class CustomBaseModelInfo(Wire):
    project_id: str | None = None
    iteration_id: str | None = None


class TrainingParameters(Wire):
    selected_tags: list[str] | None = None
    custom_base_model_info: CustomBaseModelInfo | None = None


class ImageUrl(Wire):
    url: str


class PredictionQueryTag(Wire):
    id: str
    min_threshold: float | None = None
    max_threshold: float | None = None


class PredictionQueryToken(Wire):
    session: str | None = None
    continuation: str | None = None
    max_count: int | None = None
    order_by: str | None = None
    tags: list[PredictionQueryTag] | None = None
    iteration_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    application: str | None = None


class TagFilter(Wire):
    tag_ids: list[str] | None = None
    threshold: float | None = None


class SuggestedTagAndRegionQueryToken(Wire):
    tag_ids: list[str] | None = None
    threshold: float | None = None
    session: str | None = None
    continuation: str | None = None
    max_count: int | None = None
    sort_by: str | None = None
