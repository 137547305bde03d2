"""Azure Custom Vision's domain catalogue (https://learn.microsoft.com/azure/ai-services/custom-vision-service/
select-domain): exact ids, names and types, and cvlab's backbone for each.

Honest difference: Azure trains its specialised domains (Food, Retail, Logo, ...) on domain data; in cvlab every
domain of a kind shares the same ImageNet-pretrained EfficientNet-Lite weights, so a domain changes the backbone
size and exportability, not the knowledge the model starts from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CvlabError

SOURCE = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/select-domain"
NOTE = ("Azure trains specialised domains on domain-specific data; cvlab's domains all start from the same "
        "ImageNet-pretrained EfficientNet-Lite weights and differ only in backbone size and exportability.")

# Compact domains export to these (doc: ONNX, TensorFlow(+Lite, .js), CoreML, VAIDK, Docker; OD compact: no VAIDK).
_COMPACT_PLATFORMS = ["CoreML", "TensorFlow", "DockerFile", "ONNX", "VAIDK", "OpenVino"]
_OD_COMPACT_PLATFORMS = ["CoreML", "TensorFlow", "DockerFile", "ONNX", "OpenVino"]


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    type: str  # "Classification" | "ObjectDetection"
    exportable: bool  # compact domains export
    exportable_platforms: list[str] = field(default_factory=list)
    enabled: bool = True
    model_information: dict = field(default_factory=dict)
    backbone: str = "lite2"  # "lite0" | "lite1" | "lite2" (EfficientNet-Lite variant cvlab trains)
    note: str = NOTE

    @property
    def compact(self) -> bool:
        return self.exportable


def _d(id, name, type, compact, description, size_mb=None, platforms=None, enabled=True):
    if type == "ObjectDetection":
        backbone = "lite0"  # cvlab's detector is built on Lite0
    else:
        backbone = "lite0" if compact else "lite2"
    if platforms is None:
        platforms = (_OD_COMPACT_PLATFORMS if type == "ObjectDetection" else _COMPACT_PLATFORMS) if compact else []
    info = {"description": description}
    if size_mb is not None:
        info["estimated_model_size_in_megabytes"] = size_mb
    return Domain(id, name, type, compact, list(platforms), enabled, info, backbone)


DOMAINS: list[Domain] = [
    _d("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", "Classification", False,
       "Broad range of images; the default when no domain is given."),
    _d("a8e3c40f-fb4a-466f-832a-5e457ae4a344", "General [A1]", "Classification", False,
       "Better accuracy than General for the same training time; for larger datasets."),
    _d("2e37d7fb-3a54-486a-b4d6-cfc369af0018", "General [A2]", "Classification", False,
       "Better accuracy with faster inference than A1; recommended for most datasets."),
    _d("c151d5b5-dd07-472a-acc8-15d29dea8518", "Food", "Classification", False,
       "Photos of dishes as on a restaurant menu."),
    _d("ca455789-012d-4b50-9fec-5bb63841c793", "Landmarks", "Classification", False,
       "Recognisable natural and artificial landmarks."),
    _d("b30a91ae-e3c1-4f73-a81e-c270bff27c39", "Retail", "Classification", False,
       "Shopping catalogue / website product images."),
    _d("45badf75-3591-4f26-a705-45678d3e9f5f", "Adult", "Classification", False,
       "Adult content classification; appears in older GetDomains output, probably retired.", enabled=False),
    _d("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", "Classification", True,
       "Optimised for real-time classification on edge devices (doc: ~6 MB, ~10 ms CPU).", 6),
    _d("a1db07ca-a19a-4830-bae8-e004a42dc863", "General (compact) [S1]", "Classification", True,
       "Compact domain with higher accuracy for edge devices (doc: ~43 MB).", 43),
    _d("8882951b-82cd-4c32-970b-d5f8cb8bf6d7", "Food (compact)", "Classification", True,
       "Compact food domain (seen in GetDomains output, not in current docs)."),
    _d("b5cfd229-2ac7-4b2b-8d0a-2b0661344894", "Landmarks (compact)", "Classification", True,
       "Compact landmarks domain for edge devices."),
    _d("6b4faeda-8396-481b-9f8b-177b9fa3097f", "Retail (compact)", "Classification", True,
       "Compact retail domain for edge devices."),
    _d("da2e3a8a-40a5-4171-82f4-58522f70fbc1", "General", "ObjectDetection", False,
       "Broad range of object detection tasks; the default detection domain."),
    _d("9c616dff-2e7d-ea11-af59-1866da359ce6", "General [A1]", "ObjectDetection", False,
       "Better accuracy than General for the same training time; for larger datasets."),
    _d("1d8ffafe-ec40-4fb2-8f90-72b3b6cecea4", "Logo", "ObjectDetection", False,
       "Finding brand logos in images."),
    _d("3780a898-81c3-4516-81ae-3a139614e1f3", "Products on Shelves", "ObjectDetection", False,
       "Detecting and classifying products on shelves."),
    _d("a27d5ca5-bb19-49d8-a70a-fec086c47f5b", "General (compact)", "ObjectDetection", True,
       "Real-time detection on edge devices (doc: ~45 MB; exported model needs post-processing).", 45),
    _d("7ec2ac80-887b-48a6-8df9-8b1357765430", "General (compact) [S1]", "ObjectDetection", True,
       "Compact detection domain (doc: ~14 MB).", 14),
]

_BY_ID = {d.id: d for d in DOMAINS}
DEFAULT_DOMAIN_ID = {"Classification": "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31",
                     "ObjectDetection": "da2e3a8a-40a5-4171-82f4-58522f70fbc1"}


def get_domains() -> list[Domain]:
    """All domains, in Azure's order."""
    return list(DOMAINS)


def get_domain(domain_id: str, code: str = "NotFoundDomain") -> Domain:
    """The domain with this id (case-insensitive GUID); raises `code` (NotFoundDomain by default)."""
    d = _BY_ID.get(str(domain_id).strip().lower())
    if d is None:
        raise CvlabError(code, f"Domain {domain_id!r} does not exist. Pick one from cvlab.domains.get_domains() "
                               f"(e.g. General {DEFAULT_DOMAIN_ID['Classification']}).")
    return d


def find_domain(name: str, type: str = "Classification") -> Domain:
    """The domain called `name` (exact, then case-insensitive) of `type`."""
    for exact in (True, False):
        for d in DOMAINS:
            if d.type == type and (d.name == name if exact else d.name.lower() == str(name).lower()):
                return d
    names = ", ".join(d.name for d in DOMAINS if d.type == type)
    raise CvlabError("NotFoundDomain", f"No {type} domain is called {name!r}. Available: {names}.")


def default_domain(type: str = "Classification") -> Domain:
    """The General domain of a project type (Azure's default when no domain id is given)."""
    if type not in DEFAULT_DOMAIN_ID:
        raise CvlabError("BadRequestInvalid", f"Unknown project type {type!r}: use Classification or ObjectDetection.")
    return _BY_ID[DEFAULT_DOMAIN_ID[type]]
