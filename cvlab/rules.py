"""The service's rules and limits, in one place, each with the Azure error code it raises and its source.

Everything here is data (`LIMITS`, `TAG_RULES`, name rules) plus small `check_*` helpers that raise
`CvlabError` with Azure's code and a message that says what to do. Nobody else writes these numbers.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import CvlabError

LIMITS_PAGE = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/limits-and-quotas (01/22/2025)"
SDK_DOCSTRINGS = "azure-cognitiveservices-vision-customvision 3.1.1 docstrings/validators"
SWAGGER = "Azure/azure-rest-api-specs CustomVision swagger"
CLASSIFIER_DOC = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/getting-started-build-a-classifier"
IMPROVE_DOC = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/getting-started-improving-your-classifier"
CVLAB_CHOICE = "cvlab choice (Azure does not document this limit)"
SDK_ERRORS = ("https://github.com/Azure/azure-sdk-for-python/blob/main/sdk/cognitiveservices/"
              "azure-cognitiveservices-vision-customvision/azure/cognitiveservices/vision/customvision/training/models/"
              "_custom_vision_training_client_enums.py (CustomVisionErrorCodes)")
#: Microsoft's sources disagree on image metadata: the REST spec (SWAGGER) allows 50 pairs, 256-character keys and
#: 512-character values; the SDK's docstrings (ImageFileCreateBatch.metadata and the other create batches) say 10
#: pairs, 128 and 256. cvlab follows the REST spec.
METADATA_SOURCES = SWAGGER + "; the SDK docstrings say 10 pairs, keys of 128 and values of 256 characters"

TIERS = ("F0", "S0")
UNLIMITED = None

PROJECT_TYPES = ("Classification", "ObjectDetection")
CLASSIFICATION_TYPES = ("Multiclass", "Multilabel")
TAG_TYPES = ("Regular", "Negative", "GeneralProduct")
TAGGING_STATUSES = ("All", "Tagged", "Untagged")
ORDER_BY = ("Newest", "Oldest")
TRAINING_TYPES = ("Regular", "Advanced")
#: Azure's iteration states, then "Queued", which is cvlab's own (in cvlab: workshop mode, an iteration waiting for
#: the room's training slot; Azure documents no such state).
ITERATION_STATUSES = ("Training", "Completed", "Failed", "Queued")
EXPORT_DOC = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/export-your-model"
EXPORT_SAMPLES = "https://github.com/Azure-Samples/customvision-export-samples"


@dataclass(frozen=True)
class ExportFlavor:
    """One export platform/flavor pair: whose it is, and how cvlab builds it (or what to export instead)."""

    platform: str
    flavor: str | None               # None: the flavor Azure uses when none is given
    build: str | None                # "onnx" | "tflite" | "docker"; None: cvlab cannot build it offline
    quantization: str | None = None  # "int8" | "fp16" for the edge variants
    source: str = SWAGGER            # where the pair comes from: Azure's API, its export samples, or cvlab
    instead: str = ""                # when build is None: what to export instead

    @property
    def cvlab_only(self) -> bool:
        """A pair Azure does not offer: cvlab's own edge variant (its source starts "in cvlab")."""
        return self.source.startswith("in cvlab")


_NO_GRAPH = "cvlab builds TensorFlow Lite, not a frozen graph: use flavor TensorFlowLite."
_CVLAB_INT8 = "in cvlab: a weight-only int8 edge variant (not an Azure flavor)"
#: Every platform/flavor pair, the one table the workspace's checks, the exporter and the quizzes read.
EXPORT_FLAVORS: tuple[ExportFlavor, ...] = (
    ExportFlavor("CoreML", None, None, instead="CoreML export needs Apple's tool chain; export ONNX or TensorFlow "
                                               "(TensorFlowLite) instead."),
    ExportFlavor("TensorFlow", None, None, instead=_NO_GRAPH),
    ExportFlavor("TensorFlow", "TensorFlowNormal", None, instead=_NO_GRAPH),
    ExportFlavor("TensorFlow", "TensorFlowLite", "tflite"),
    ExportFlavor("TensorFlow", "TensorFlowLiteFloat16", "tflite", "fp16", source=EXPORT_SAMPLES),
    ExportFlavor("TensorFlow", "TensorFlowLiteInt8", "tflite", "int8", source=_CVLAB_INT8),
    ExportFlavor("DockerFile", None, "docker"),
    ExportFlavor("DockerFile", "Linux", "docker"),
    ExportFlavor("DockerFile", "Windows", None, instead="Windows containers are not built offline: use flavor Linux "
                                                        "or ARM."),
    ExportFlavor("DockerFile", "ARM", "docker"),
    ExportFlavor("ONNX", None, "onnx"),
    ExportFlavor("ONNX", "ONNX10", "onnx"),
    ExportFlavor("ONNX", "ONNX12", "onnx"),
    ExportFlavor("ONNX", "OnnxFloat16", None, source=EXPORT_SAMPLES,
                 instead="cvlab builds float32 ONNX only: export ONNX without a flavor (or ONNX10, ONNX12), or "
                         "TensorFlow with flavor TensorFlowLiteFloat16 for a half-size model."),
    ExportFlavor("VAIDK", None, None, instead="The Vision AI Dev Kit is retired; export ONNX or TensorFlow "
                                              "(TensorFlowLite) instead."),
    ExportFlavor("OpenVino", None, None, instead="OpenVINO export is not available offline; export ONNX (OpenVINO "
                                                 "reads ONNX) instead."),
)
EXPORT_PLATFORMS = tuple(dict.fromkeys(f.platform for f in EXPORT_FLAVORS))
#: cvlab flavours no longer built, and why (the error says so; benchmarks/export_speed.md has the figures).
WITHDRAWN_FLAVORS = {
    ("ONNX", "OnnxInt8"): "cvlab no longer builds int8 ONNX (Azure offers none): static int8 changed the top tag of "
                          "closely tied images. For a small edge model export TensorFlow with flavor "
                          "TensorFlowLiteInt8.",
}
EXPORT_STATUSES = ("Exporting", "Failed", "Done")
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")  # Azure: jpg, png, bmp, gif; cvlab also takes WebP

# Per-image statuses of an ImageCreateSummary (SDK enum ImageCreateStatus).
IMAGE_CREATE_STATUSES = (
    "OK", "OKDuplicate", "ErrorSource", "ErrorImageFormat", "ErrorImageSize", "ErrorStorage",
    "ErrorLimitExceed", "ErrorTagLimitExceed", "ErrorRegionLimitExceed", "ErrorUnknown",
    "ErrorNegativeAndRegularTagOnSameImage", "ErrorImageDimensions", "ErrorInvalidTag",
)


@dataclass(frozen=True)
class Limit:
    """One numeric limit: value per tier (None = unlimited), the error code a violation raises, the source."""

    key: str
    f0: float | int | None
    s0: float | int | None
    code: str
    unit: str
    what: str
    source: str
    fix: str = ""

    def value(self, tier: str = "S0"):
        check_tier(tier)
        return self.f0 if tier == "F0" else self.s0


_L = Limit
LIMITS: dict[str, Limit] = {lim.key: lim for lim in (
    _L("projects", 2, 100, "BadRequestExceedProjectLimit", "projects", "projects per resource", LIMITS_PAGE,
       "delete a project you no longer need (or switch the workspace to tier S0)"),
    _L("images_per_project", 5_000, 100_000, "BadRequestImageExceededCount", "images", "training images per project",
       LIMITS_PAGE, "delete images you don't need or start a new project"),
    _L("tags_per_project", 50, 500, "BadRequestExceedTagPerProjectLimit", "tags", "tags per project", LIMITS_PAGE,
       "delete unused tags or merge similar ones"),
    _L("iterations_per_project", 20, 20, "BadRequestExceedIterationPerProjectLimit", "iterations",
       "iterations per project", LIMITS_PAGE, "delete an old, unpublished iteration before training again"),
    _L("predictions_per_month", 10_000, UNLIMITED, "BadRequestExceededQuota", "predictions",
       "predictions per month", LIMITS_PAGE, "wait for next month or switch the workspace to tier S0"),
    _L("min_images_per_tag_classification", 5, 5, "BadRequestClassificationTrainingValidationFailed", "images",
       "minimum labelled images per tag before training a classifier (50+ recommended)", LIMITS_PAGE,
       "label more images for this tag (at least 5, ideally 50 or more)"),
    _L("min_images_per_tag_detection", 15, 15, "BadRequestDetectionTrainingValidationFailed", "images",
       "minimum labelled images per tag before training a detector (50+ recommended)", LIMITS_PAGE,
       "draw boxes for this tag on more images (at least 15, ideally 50 or more)"),
    _L("recommended_images_per_tag", 50, 50, "BadRequestTrainingValidationFailed", "images",
       "recommended labelled images per tag", LIMITS_PAGE, "label more images"),
    _L("prediction_storage_days", 30, 30, "", "days", "days stored prediction images are kept", LIMITS_PAGE),
    _L("tps_prediction_with_storage", 2, 10, "", "transactions/s", "prediction with storage", LIMITS_PAGE),
    _L("tps_prediction_without_storage", 2, 20, "", "transactions/s", "prediction without storage", LIMITS_PAGE),
    _L("tps_train_project", 2, 10, "", "calls/s", "TrainProject calls", LIMITS_PAGE),
    _L("tps_other", 10, 10, "", "transactions/s", "other API calls", LIMITS_PAGE),
    _L("min_image_side", 256, 256, "", "px",
       "minimum image width/height (smaller images are accepted but upscaled)", LIMITS_PAGE),
    _L("max_image_side", 10_240, 10_240, "BadRequestImageDimensions", "px", "maximum image width/height",
       LIMITS_PAGE, "resize the image so that neither side exceeds 10,240 px"),
    _L("max_image_pixels", 10_240 * 10_240, 10_240 * 10_240, "BadRequestImageDimensions", "pixels",
       "maximum pixels per image (follows from the maximum side; guards against decompression bombs)",
       LIMITS_PAGE, "resize the image"),
    _L("max_aspect_ratio", 25, 25, "BadRequestImageAspectRatio", ":1", "maximum aspect ratio (long:short side)",
       "in cvlab: refused with the SDK's code; Microsoft gives 25:1 as guidance for training images, " + LIMITS_PAGE,
       "crop the image so its long side is at most 25 times its short side"),
    _L("max_image_bytes_training", 6 * 1024 * 1024, 6 * 1024 * 1024, "BadRequestImageSizeBytes", "bytes",
       "maximum image file size for a training upload", LIMITS_PAGE, "compress or downscale the image below 6 MB"),
    _L("max_image_bytes_prediction", 4 * 1024 * 1024, 4 * 1024 * 1024, "BadRequestImageSizeBytes", "bytes",
       "maximum image file size for a prediction", LIMITS_PAGE, "compress or downscale the image below 4 MB"),
    _L("regions_per_image_training", 300, 300, "BadRequestImageRegions", "regions",
       "maximum regions per image (training, object detection)", LIMITS_PAGE, "split the boxes over fewer tags"),
    _L("regions_per_image_prediction", 200, 200, "", "regions",
       "maximum regions returned per image (prediction, object detection)", LIMITS_PAGE),
    _L("tags_per_image", 100, 100, "BadRequestExceedTagPerImageLimit", "tags",
       "maximum tags per image (classification)", LIMITS_PAGE, "remove some tags from the image"),
    _L("images_per_batch", 64, 64, "BadRequestExceededBatchSize", "images", "images per create batch",
       SDK_DOCSTRINGS, "send the images in batches of at most 64"),
    _L("tags_per_batch", 20, 20, "BadRequestImageBatch", "tags", "tag ids per create batch", SDK_DOCSTRINGS,
       "pass at most 20 tag ids"),
    _L("take", 256, 256, "BadRequestInvalid", "images", "images per page (take)", SDK_DOCSTRINGS,
       "use take <= 256 and page with skip"),
    _L("ids_per_request", 256, 256, "BadRequestInvalidIds", "ids", "image ids per get/delete request",
       SDK_DOCSTRINGS, "pass at most 256 ids per call"),
    _L("regions_per_batch", 64, 64, "BadRequestExceededBatchSize", "regions", "regions per create_image_regions",
       SDK_DOCSTRINGS, "send at most 64 regions per call"),
    _L("ids_per_delete", 64, 64, "BadRequestInvalidIds", "ids",
       "ids per delete_image_regions / delete_image_tags / delete_prediction", SDK_DOCSTRINGS,
       "pass at most 64 ids per call"),
    _L("tags_per_query", 2, 2, "BadRequestPredictionTagsExceededCount", "tags", "tags combined in query_predictions",
       SDK_DOCSTRINGS, "filter on at most 2 tags"),
    _L("metadata_pairs", 50, 50, "BadRequestImageMetadataKey", "pairs", "metadata pairs per image",
       METADATA_SOURCES, "keep at most 50 metadata entries"),
    _L("metadata_key_chars", 256, 256, "BadRequestImageMetadataKey", "characters", "metadata key length",
       METADATA_SOURCES, "shorten the metadata key"),
    _L("metadata_value_chars", 512, 512, "BadRequestImageMetadataValue", "characters", "metadata value length",
       METADATA_SOURCES, "shorten the metadata value"),
    _L("name_chars", 256, 256, "BadRequest", "characters", "project/tag/iteration/image name length", CVLAB_CHOICE,
       "use a shorter name"),
    _L("filter_terms", 100, 100, "BadRequestInvalid", "terms", "terms of an image metadata $filter (twice the "
       "metadata pairs an image may have)", CVLAB_CHOICE, "filter on fewer metadata terms"),
    # Microsoft documents no range for the Advanced budget; the REST spec types reservedBudgetInHours as int32.
    _L("reserved_budget_hours", 2**31 - 1, 2**31 - 1, "BadRequestInvalid", "hours",
       "reservedBudgetInHours (REST spec: integer, format int32; minimum 1 for Advanced training)", SWAGGER,
       "pass a whole number of hours from 1 to 2147483647"),
    _L("description_chars", 4096, 4096, "BadRequest", "characters", "description length", CVLAB_CHOICE,
       "shorten the description"),
)}


def limit(key: str, tier: str = "S0"):
    """The value of limit `key` for `tier` (None = unlimited)."""
    try:
        return LIMITS[key].value(tier)
    except KeyError:
        raise KeyError(f"unknown limit {key!r}; known: {sorted(LIMITS)}") from None


def check_limit(key: str, tier: str, current: int, adding: int = 1, what: str | None = None) -> None:
    """Raise the limit's Azure error when `current + adding` exceeds it."""
    lim = LIMITS[key]
    cap = lim.value(tier)
    if cap is not None and current + adding > cap:
        label = what or lim.what
        tier_note = f" on tier {tier}" if lim.f0 != lim.s0 else ""
        got = f"you have {current:,}, adding {adding:,}" if adding else f"got {current:,}"
        raise CvlabError(lim.code or "BadRequest",
                         f"Limit reached: {label} is at most {cap:,} {lim.unit}{tier_note} ({got}). "
                         f"To fix: {lim.fix}.")


def min_images_per_tag(project_type: str) -> int:
    """Minimum labelled images per tag before training (classification 5, object detection 15)."""
    check_project_type(project_type)
    key = "min_images_per_tag_detection" if project_type == "ObjectDetection" else "min_images_per_tag_classification"
    return LIMITS[key].s0


def training_validation_code(project_type: str, classification_type: str | None = None) -> str:
    """Azure's code for a training-data validation failure of this kind of project."""
    if project_type == "ObjectDetection":
        return "BadRequestDetectionTrainingValidationFailed"
    if classification_type == "Multilabel":
        return "BadRequestMultiLabelClassificationTrainingValidationFailed"
    if classification_type == "Multiclass":
        return "BadRequestMultiClassClassificationTrainingValidationFailed"
    return "BadRequestClassificationTrainingValidationFailed"


# ---- tag rules (IMPROVE_DOC, CLASSIFIER_DOC and the detector quickstart) ----------------------------------------
@dataclass(frozen=True)
class Rule:
    key: str
    code: str
    text: str
    source: str


TAG_RULES: dict[str, Rule] = {r.key: r for r in (
    Rule("negative_classification_only", "BadRequestDetectionTrainingNotAllowNegativeTag",
         "A Negative tag exists only in classification projects: an object detector already treats everything "
         "outside the boxes as negative.", IMPROVE_DOC),
    Rule("one_negative_per_project", "BadRequestMultipleNegativeTag",
         "A project has at most one Negative tag.", SDK_ERRORS),
    Rule("one_general_product_per_project", "BadRequestMultipleGeneralProductTag",
         "A project has at most one GeneralProduct tag.", SWAGGER),
    Rule("negative_alone", "BadRequestNegativeAndRegularTagOnSameImage",
         "An image tagged Negative cannot also carry a regular tag.", IMPROVE_DOC),
    Rule("multiclass_one_tag", "BadRequestImageTags",
         "In a Multiclass project each image has exactly one tag (use Multilabel for several).", CLASSIFIER_DOC),
    Rule("classification_uses_tags", "BadRequestImageRegions",
         "In a classification project images carry whole-image tags, not regions (boxes).", CLASSIFIER_DOC),
    Rule("detection_uses_regions", "BadRequestImageTags",
         "In an object detection project images are labelled with regions (boxes), not whole-image tags.",
         "https://learn.microsoft.com/azure/ai-services/custom-vision-service/get-started-build-detector"),
)}


# ---- simple validators ------------------------------------------------------------------------------------------
def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise CvlabError("BadRequestInvalid", f"Unknown tier {tier!r}: use 'F0' (free) or 'S0' (standard).")
    return tier


def check_project_type(project_type: str) -> str:
    if project_type not in PROJECT_TYPES:
        raise CvlabError("BadRequestInvalid",
                         f"Unknown project type {project_type!r}: use 'Classification' or 'ObjectDetection'.")
    return project_type


def check_guid(value: Any, what: str = "id", code: str = "BadRequestInvalidIds") -> str:
    """Normalise a GUID to lowercase hyphenated form; raise `code` when it is not one."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError, TypeError):
        raise CvlabError(code, f"{what} {value!r} is not a valid GUID (expected e.g. "
                               f"'ee85a74c-405e-4adc-bb47-ffa8ca0c9f31'). Copy the id from the object itself.") from None


# C0 and C1 controls and Unicode's line/paragraph separators: none belongs in a one-line name, and the separators
# are line breaks to str.splitlines(), so a label file holding them would shift every later line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def unicode_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode (a lone surrogate such as "\\ud800", which no UTF-8 file, database
    row or JSON reply can hold), or None. Checked before anything is stored."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"it contains {text[e.start:e.end].encode('unicode_escape').decode()!r}, a lone UTF-16 surrogate " \
               "that is not a character"
    return None


def check_text(text: str, what: str, code: str) -> str:
    """``text`` unchanged, or ``CvlabError(code)`` when it is not valid Unicode."""
    problem = unicode_problem(text)
    if problem:
        raise CvlabError(code, f"The {what} is not valid Unicode: {problem}. Send UTF-8 text.")
    return text


def check_name(name: Any, what: str, code: str) -> str:
    """A name: a non-empty string of valid Unicode, at most 256 characters, no control characters or line
    separators; surrounding spaces dropped."""
    if not isinstance(name, str):
        raise CvlabError(code, f"The {what} name must be text, got {type(name).__name__}.")
    name = check_text(name, f"{what} name", code).strip()
    cap = LIMITS["name_chars"].s0
    if not name:
        raise CvlabError(code, f"The {what} name is empty: give it a short descriptive name.")
    if len(name) > cap:
        raise CvlabError(code, f"The {what} name has {len(name)} characters: use at most {cap}.")
    if _CONTROL.search(name):
        raise CvlabError(code, f"The {what} name {name!r} contains control characters or line separators (newline, "
                         "tab, U+0085, U+2028...): remove them.")
    return name


def image_name_problem(name: Any) -> str | None:
    """Why an image's file name cannot be stored (None: it can, or there is none): the rules of every other name
    (valid Unicode, at most 256 characters, no NUL, control characters or line separators)."""
    if name is None:
        return None
    try:
        check_name(name, "image", "ErrorSource")
    except CvlabError as e:
        return e.message
    return None


def check_description(description: Any, what: str, code: str) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise CvlabError(code, f"The {what} description must be text, got {type(description).__name__}.")
    check_text(description, f"{what} description", code)
    cap = LIMITS["description_chars"].s0
    if len(description) > cap:
        raise CvlabError(code, f"The {what} description has {len(description)} characters: use at most {cap}.")
    return description


def check_budget_hours(value: Any) -> int:
    """``reserved_budget_in_hours`` as an int in Azure's int32 range (0 = none, Quick training's default)."""
    cap = LIMITS["reserved_budget_hours"].s0
    try:
        hours = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        hours = None
    if hours is None or isinstance(value, float) and value != hours or not 0 <= hours <= cap:
        raise CvlabError("BadRequestInvalid", f"reserved_budget_in_hours {value!r} is not a whole number of hours "
                         f"from 0 to {cap:,} (Azure's REST spec types it as int32). Use e.g. 1 for Advanced "
                         "training.")
    return hours


def check_choice(value: Any, choices: Iterable, what: str, code: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise CvlabError(code, f"{what} {value!r} is not valid: use one of {', '.join(map(str, choices))}.")
    return value


def check_classification_type(value: Any) -> str:
    return check_choice(value, CLASSIFICATION_TYPES, "Classification type", "BadRequestProjectUnknownClassification")


def check_tag_type(value: Any) -> str:
    return check_choice(value, TAG_TYPES, "Tag type", "BadRequestTagType")


def check_export_platforms(platforms: Any) -> list[str]:
    if platforms is None:
        return []
    if isinstance(platforms, str):
        platforms = [p for p in platforms.split(",") if p.strip()]
    out = []
    for p in platforms:
        p = str(p).strip()
        check_choice(p, EXPORT_PLATFORMS, "Export platform", "BadRequestProjectUnsupportedExportPlatform")
        if p not in out:
            out.append(p)
    return out


def check_export_flavor(platform: str, flavor: str | None) -> ExportFlavor:
    """The table's row for a platform/flavor pair Azure (or cvlab) knows; BadRequestExportValidationFailed else."""
    check_choice(platform, EXPORT_PLATFORMS, "Export platform", "BadRequestExportValidationFailed")
    rows = {f.flavor: f for f in EXPORT_FLAVORS if f.platform == platform}
    if flavor not in rows:
        allowed = [f for f in rows if f]
        why = WITHDRAWN_FLAVORS.get((platform, flavor))
        raise CvlabError("BadRequestExportValidationFailed",
                         f"Flavor {flavor!r} does not exist for platform {platform}: "
                         + (f"use one of {', '.join(allowed)} or none." if allowed else "omit the flavor.")
                         + (f" {why}" if why else ""))
    return rows[flavor]


def export_build(platform: str, flavor: str | None) -> ExportFlavor:
    """The row of a pair cvlab can build; BadRequestNotSupported (saying what to use instead) for the others."""
    row = check_export_flavor(platform, flavor)
    if row.build is None:
        raise CvlabError("BadRequestNotSupported", row.instead)
    return row


#: How far a box may pass the image border before it is "outside": float rounding, not a mistake (COCO files
#: often hold ``x + w`` a hair beyond the image).
BOX_TOLERANCE = 1e-3


def box_problems(boxes) -> tuple[int, str] | None:
    """The first box (left, top, width, height, normalised) that is not a region inside the image, with why.

    Azure's rule for a region: a positive width and height, inside the image up to ``BOX_TOLERANCE``. One rule
    for the workspace, the file formats, the detector's targets and the metrics.

    >>> box_problems([(0.1, 0.1, 0.2, 0.2), (0.9, 0.1, 0.2, 0.2)])
    (1, 'box ends outside the image (right=1.1, bottom=0.3; both must be <= 1)')
    """
    import numpy as np

    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    tol = BOX_TOLERANCE
    checks = (
        (~np.isfinite(b).all(1), lambda l, t, w, h: "coordinates must be numbers, got NaN (or infinity)"),
        ((b[:, 2] < 0) | (b[:, 3] < 0),
         lambda l, t, w, h: f"width and height must be > 0, got width={w:g}, height={h:g} (a negative width or "
                            "height)"),
        ((b[:, 2] == 0) | (b[:, 3] == 0),
         lambda l, t, w, h: f"width and height must be > 0, got width={w:g}, height={h:g}"),
        ((b[:, 0] < -tol) | (b[:, 1] < -tol),
         lambda l, t, w, h: f"box starts outside the image (left={l:g}, top={t:g})"),
        ((b[:, 0] + b[:, 2] > 1 + tol) | (b[:, 1] + b[:, 3] > 1 + tol),
         lambda l, t, w, h: f"box ends outside the image (right={l + w:g}, bottom={t + h:g}; both must be <= 1)"),
    )
    first = None
    for bad, why in checks:
        hits = np.flatnonzero(bad)
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), why(*b[hits[0]].tolist()))
        if first is not None and first[0] == 0:
            break
    return first


def box_problem(box) -> str | None:
    """Why one normalised (left, top, width, height) box is not a region inside the image, or None."""
    found = box_problems([box])
    return None if found is None else found[1]


def check_region(left: Any, top: Any, width: Any, height: Any) -> tuple[float, float, float, float]:
    """A region normalised to the image (``box_problem``'s rule), clipped to the image's edges."""
    try:
        vals = tuple(float(v) for v in (left, top, width, height))
    except (TypeError, ValueError):
        raise CvlabError("BadRequestImageRegions",
                         f"Region values must be numbers, got left={left!r} top={top!r} width={width!r} "
                         f"height={height!r}.") from None
    l, t, w, h = vals
    why = box_problem(vals)
    if why:
        raise CvlabError("BadRequestImageRegions",
                         f"Region (left={l}, top={t}, width={w}, height={h}): {why}. Values are fractions of the "
                         "image size, so 0 <= left, top and left+width, top+height <= 1: divide pixel coordinates "
                         "by the image width/height.")
    l, t = min(max(l, 0.0), 1.0), min(max(t, 0.0), 1.0)  # absorb float noise at the edges
    w, h = min(w, 1.0 - l), min(h, 1.0 - t)
    if w <= 0 or h <= 0:
        raise CvlabError("BadRequestImageRegions",
                         f"Region (left={l}, top={t}) starts on the image's right or bottom edge, so it has no area "
                         "inside the image: check the coordinates.")
    return l, t, w, h


def check_application_name(application: Any) -> None:
    """Azure's rule for a stored prediction's ``application``: None, or text of at most 64 characters."""
    if application is not None and (not isinstance(application, str) or len(application) > 64):
        raise CvlabError("BadRequestPredictionInvalidApplicationName",
                         "The application name must be text of at most 64 characters.")


def check_publish_name(publish_name: Any) -> None:
    """A publish name the prediction URL can carry: text of at most 256 characters, no spaces at the ends and none
    of ``/ \\ ? # % &``."""
    if not isinstance(publish_name, str) or not publish_name.strip() or len(publish_name) > 256 or \
            any(ch in publish_name for ch in "/\\?#%&\x00") or publish_name != publish_name.strip():
        raise CvlabError("BadRequestInvalidPublishName",
                         f"Publish name {publish_name!r} is not valid: use a short name without spaces at the "
                         "ends or the characters / \\ ? # % &, e.g. 'Iteration1' or 'detectModel'.")


_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def check_notification_email(address: Any) -> str | None:
    """train_project's ``notificationEmailAddress`` (and the portal's outbox): None, or an e-mail address of at
    most 254 characters such as name@example.com, returned without surrounding spaces."""
    if address is None:
        return None
    text = address.strip() if isinstance(address, str) else ""
    if len(text) > 254 or not _EMAIL.match(text):
        raise CvlabError("BadRequestInvalidEmailAddress", f"{address!r} is not an e-mail address: write it as "
                         "name@example.com.")
    return text


def check_metadata(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise CvlabError("BadRequestImageMetadataKey", "Image metadata must be a dict of text keys to text values.")
    check_limit("metadata_pairs", "S0", len(metadata), 0)
    out = {}
    for k, v in metadata.items():
        if not isinstance(k, str) or not k.strip() or len(k) > LIMITS["metadata_key_chars"].s0:
            raise CvlabError("BadRequestImageMetadataKey",
                             f"Metadata key {k!r} must be non-empty text of at most "
                             f"{LIMITS['metadata_key_chars'].s0} characters.")
        if not isinstance(v, (str, int, float, bool)) or len(str(v)) > LIMITS["metadata_value_chars"].s0:
            raise CvlabError("BadRequestImageMetadataValue",
                             f"Metadata value for {k!r} must be text of at most "
                             f"{LIMITS['metadata_value_chars'].s0} characters.")
        check_text(k, "metadata key", "BadRequestImageMetadataKey")
        check_text(str(v), f"metadata value for {k!r}", "BadRequestImageMetadataValue")
        out[k] = str(v)
    return out


def check_new_tag_type(project_type: str, tag_type: str, existing_types: Iterable[str]) -> None:
    """Tag-type rules at tag creation: Negative only for classification; one Negative / GeneralProduct each."""
    check_tag_type(tag_type)
    existing = list(existing_types)
    if tag_type == "Negative":
        if project_type == "ObjectDetection":
            raise CvlabError("BadRequestTagType", TAG_RULES["negative_classification_only"].text
                             + " Create a Regular tag instead.")
        if "Negative" in existing:
            raise CvlabError("BadRequestMultipleNegativeTag", TAG_RULES["one_negative_per_project"].text
                             + " Reuse the existing Negative tag.")
    if tag_type == "GeneralProduct" and "GeneralProduct" in existing:
        raise CvlabError("BadRequestMultipleGeneralProductTag", TAG_RULES["one_general_product_per_project"].text)


def image_tag_problem(project_type: str, classification_type: str, tag_types: list[str],
                      n_regions: int) -> tuple[str, str, str] | None:
    """Why a set of whole-image tags (their types) plus `n_regions` boxes is not allowed on one image.

    Returns (batch status, Azure error code, message) or None when the labels are fine.
    """
    if project_type == "ObjectDetection" and tag_types:
        r = TAG_RULES["detection_uses_regions"]
        return "ErrorInvalidTag", r.code, r.text + " Pass regions=[{tag_id, left, top, width, height}] instead."
    if project_type == "Classification" and n_regions:
        r = TAG_RULES["classification_uses_tags"]
        return "ErrorInvalidTag", r.code, r.text + " Pass tag_ids instead, or use an object detection project."
    if len(tag_types) > LIMITS["tags_per_image"].s0:
        return ("ErrorTagLimitExceed", "BadRequestExceedTagPerImageLimit",
                f"An image has at most {LIMITS['tags_per_image'].s0} tags; this one would have {len(tag_types)}.")
    if n_regions > LIMITS["regions_per_image_training"].s0:
        return ("ErrorRegionLimitExceed", "BadRequestImageRegions",
                f"An image has at most {LIMITS['regions_per_image_training'].s0} regions; this one would have "
                f"{n_regions}.")
    if "Negative" in tag_types and len(tag_types) > 1:
        r = TAG_RULES["negative_alone"]
        return ("ErrorNegativeAndRegularTagOnSameImage", r.code,
                r.text + " Remove the Negative tag or the other tags from this image.")
    if project_type == "Classification" and classification_type == "Multiclass" and len(tag_types) > 1:
        r = TAG_RULES["multiclass_one_tag"]
        return ("ErrorTagLimitExceed", r.code,
                r.text + f" This image would have {len(tag_types)} tags: keep one, or switch the project to "
                         "Multilabel.")
    return None


def rules_table() -> list[dict]:
    """Every limit and rule as rows (for notebooks and docs)."""
    rows = [dict(key=l.key, F0=l.f0, S0=l.s0, unit=l.unit, what=l.what, code=l.code, source=l.source)
            for l in LIMITS.values()]
    rows += [dict(key=r.key, F0=None, S0=None, unit="", what=r.text, code=r.code, source=r.source)
             for r in TAG_RULES.values()]
    return rows
