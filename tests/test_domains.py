"""Domain catalogue: Azure's exact ids, names and types; backbones; lookups."""
from __future__ import annotations

import pytest

from cvlab import CvlabError
from cvlab.domains import DOMAINS, default_domain, find_domain, get_domain, get_domains


def test_catalogue_is_azures():
    assert len(DOMAINS) == 18 and len({d.id for d in DOMAINS}) == 18
    assert get_domain("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31").name == "General"
    od = next(d for d in get_domains() if d.type == "ObjectDetection" and d.name == "General")  # the quickstart
    assert od.id == "da2e3a8a-40a5-4171-82f4-58522f70fbc1" == default_domain("ObjectDetection").id
    compact = find_domain("General (compact)", "ObjectDetection")
    assert compact.id == "a27d5ca5-bb19-49d8-a70a-fec086c47f5b" and compact.exportable
    assert "VAIDK" not in compact.exportable_platforms
    assert "VAIDK" in find_domain("General (compact)").exportable_platforms
    assert "VAIDK" in find_domain("General (compact) [S1]", "ObjectDetection").exportable_platforms
    assert not get_domain("45badf75-3591-4f26-a705-45678d3e9f5f").enabled  # Adult: kept, disabled
    assert find_domain("retail (COMPACT)").id == "6b4faeda-8396-481b-9f8b-177b9fa3097f"


def test_backbones_and_notes():
    for d in DOMAINS:
        if d.type == "ObjectDetection":
            assert d.backbone == "lite0"
        else:
            assert d.backbone == ("lite0" if d.exportable else "lite2")
        assert d.exportable == bool(d.exportable_platforms) and "ImageNet" in d.note


def test_lookup_errors():
    with pytest.raises(CvlabError) as e:
        get_domain("00000000-0000-0000-0000-000000000000")
    assert e.value.code == "NotFoundDomain" and e.value.status == 404
    with pytest.raises(CvlabError):
        find_domain("Logo", "Classification")
    with pytest.raises(CvlabError):
        default_domain("Segmentation")
