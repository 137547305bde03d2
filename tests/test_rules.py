"""Rules: data with sources, the Azure codes they raise, and the tag rules."""
from __future__ import annotations

import pytest

from cvlab import CvlabError, rules
from cvlab.errors import status_for_code


def test_limits_match_the_reference_table():
    expected = {  # rules.LIMITS_PAGE (the limits and quotas page, 01/22/2025) and the SDK's docstrings
        "projects": (2, 100), "images_per_project": (5_000, 100_000), "tags_per_project": (50, 500),
        "iterations_per_project": (20, 20), "predictions_per_month": (10_000, None),
        "tps_prediction_with_storage": (2, 10), "tps_prediction_without_storage": (2, 20),
        "tps_train_project": (2, 10), "tps_other": (10, 10), "max_image_side": (10_240, 10_240),
        "max_image_bytes_training": (6 * 2**20, 6 * 2**20), "max_image_bytes_prediction": (4 * 2**20, 4 * 2**20),
        "regions_per_image_training": (300, 300), "regions_per_image_prediction": (200, 200),
        "tags_per_image": (100, 100), "images_per_batch": (64, 64), "tags_per_batch": (20, 20),
        "min_image_side": (256, 256), "max_aspect_ratio": (25, 25),
    }
    for key, (f0, s0) in expected.items():
        assert (rules.limit(key, "F0"), rules.limit(key, "S0")) == (f0, s0), key
    assert all(lim.source for lim in rules.LIMITS.values())
    assert rules.min_images_per_tag("Classification") == 5 and rules.min_images_per_tag("ObjectDetection") == 15
    with pytest.raises(CvlabError):
        rules.min_images_per_tag("Segmentation")
    with pytest.raises(KeyError):
        rules.limit("nope")
    assert len(rules.rules_table()) == len(rules.LIMITS) + len(rules.TAG_RULES)


def test_check_limit_message_says_what_to_do():
    rules.check_limit("projects", "F0", 1, 1)
    with pytest.raises(CvlabError) as e:
        rules.check_limit("projects", "F0", 2, 1)
    assert e.value.code == "BadRequestExceedProjectLimit" and e.value.status == 400
    assert "F0" in e.value.message and "delete" in e.value.message
    rules.check_limit("predictions_per_month", "S0", 10**9, 1)  # unlimited on S0


def test_status_by_code_prefix():
    assert [status_for_code(c) for c in ("BadRequestX", "ForbiddenUser", "NotFoundTag", "Conflict",
                                         "UnsupportedMediaType", "ErrorUnknown")] == [400, 403, 404, 409, 415, 500]
    assert CvlabError("NotFoundProject", "m").to_dict() == {"code": "NotFoundProject", "message": "m"}


def test_tag_rules():
    assert rules.image_tag_problem("Classification", "Multiclass", ["Regular"], 0) is None
    assert rules.image_tag_problem("Classification", "Multilabel", ["Regular", "Regular"], 0) is None
    assert rules.image_tag_problem("Classification", "Multiclass", ["Regular", "Regular"], 0)[0] == "ErrorTagLimitExceed"
    assert rules.image_tag_problem("Classification", "Multilabel", ["Negative", "Regular"], 0)[:2] == \
        ("ErrorNegativeAndRegularTagOnSameImage", "BadRequestNegativeAndRegularTagOnSameImage")
    assert rules.image_tag_problem("ObjectDetection", "Multiclass", ["Regular"], 0)[0] == "ErrorInvalidTag"
    assert rules.image_tag_problem("ObjectDetection", "Multiclass", [], 301)[0] == "ErrorRegionLimitExceed"
    assert rules.image_tag_problem("Classification", "Multilabel", ["Regular"] * 101, 0)[0] == "ErrorTagLimitExceed"
    rules.check_new_tag_type("Classification", "Negative", ["Regular"])
    for args, code in [(("ObjectDetection", "Negative", []), "BadRequestTagType"),
                       (("Classification", "Negative", ["Negative"]), "BadRequestMultipleNegativeTag"),
                       (("Classification", "GeneralProduct", ["GeneralProduct"]), "BadRequestMultipleGeneralProductTag")]:
        with pytest.raises(CvlabError) as e:
            rules.check_new_tag_type(*args)
        assert e.value.code == code


@pytest.mark.parametrize("box", [(0, 0, 1, 1), (0.5, 0.5, 0.5, 0.5), (-1e-9, 0, 0.5, 1 + 1e-9)])
def test_regions_inside_unit_square(box):
    l, t, w, h = rules.check_region(*box)
    assert 0 <= l and 0 <= t and l + w <= 1 and t + h <= 1 and w > 0 and h > 0


@pytest.mark.parametrize("box", [(0, 0, 0, 1), (0.5, 0, 0.6, 1), (-0.1, 0, 0.5, 0.5), (0, 0, 2, 2),
                                 (None, 0, 1, 1), (float("nan"), 0, 1, 1), ("x", 0, 1, 1)])
def test_regions_rejected(box):
    with pytest.raises(CvlabError) as e:
        rules.check_region(*box)
    assert e.value.code == "BadRequestImageRegions"


def test_guids_names_metadata_and_export_flavors():
    assert rules.check_guid(" EE85A74C-405E-4ADC-BB47-FFA8CA0C9F31 ") == "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
    for bad in ("", "123", None, "not a guid/x"):
        with pytest.raises(CvlabError) as e:
            rules.check_guid(bad)
        assert e.value.code == "BadRequestInvalidIds"
    assert rules.check_name("  cat ", "tag", "BadRequestTagName") == "cat"
    assert rules.check_metadata({"a": 1}) == {"a": "1"}
    for bad, code in [({"": "x"}, "BadRequestImageMetadataKey"), ({"k": "v" * 513}, "BadRequestImageMetadataValue"),
                      ({str(i): "v" for i in range(51)}, "BadRequestImageMetadataKey")]:
        with pytest.raises(CvlabError) as e:
            rules.check_metadata(bad)
        assert e.value.code == code
    assert rules.check_export_platforms("ONNX,TensorFlow") == ["ONNX", "TensorFlow"]
    rules.check_export_flavor("DockerFile", "ARM")
    with pytest.raises(CvlabError) as e:
        rules.check_export_flavor("ONNX", "TensorFlowLite")
    assert "ONNX10" in e.value.message


def test_every_code_and_status_is_one_the_sdk_knows():
    """Codes raised by the core and batch statuses must be values of the SDK 3.1.1 enums, spelled exactly."""
    import re
    from pathlib import Path

    from azure.cognitiveservices.vision.customvision.training import models as m

    codes = {c.value for c in m.CustomVisionErrorCodes}
    statuses = {s.value for s in m.ImageCreateStatus}
    assert set(rules.IMAGE_CREATE_STATUSES) == statuses
    root = Path(rules.__file__).parent
    pattern = re.compile(r'"((?:BadRequest|NotFound|Forbidden|Conflict|Error|Unsupported)[A-Za-z]*)"')
    used = set()
    for path in [root / n for n in ("rules.py", "images.py", "domains.py", "model.py")] + \
            sorted((root / "workspace").glob("*.py")):
        used |= set(pattern.findall(path.read_text()))
    used |= {lim.code for lim in rules.LIMITS.values() if lim.code} | {r.code for r in rules.TAG_RULES.values()}
    assert used - codes - statuses == set()


def test_classification_images_take_no_regions(ws, jpeg_bytes):
    from cvlab import ImageEntry
    p = ws.create_project("C")
    t = ws.create_tag(p.id, "t")
    s = ws.create_images(p.id, [ImageEntry(jpeg_bytes(), regions=[{"tag_id": t.id, "left": 0, "top": 0,
                                                                    "width": 1, "height": 1}])])
    assert s.images[0].status == "ErrorInvalidTag" and "classification" in s.images[0].message
    assert rules.image_tag_problem("Classification", "Multiclass", [], 1)[1] == "BadRequestImageRegions"


def test_region_check_property():
    from hypothesis import given, settings, strategies as st
    num = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-2, 2))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(num, num, num, num)
    def check(l, t, w, h):
        try:
            box = rules.check_region(l, t, w, h)
        except CvlabError as e:
            assert e.code == "BadRequestImageRegions" and e.message
            return
        bl, bt, bw, bh = box
        assert 0 <= bl and 0 <= bt and bw > 0 and bh > 0 and bl + bw <= 1 + 1e-9 and bt + bh <= 1 + 1e-9
    check()


def test_sources_say_what_is_azures_and_what_is_cvlabs():
    """Facts the quizzes and notebooks teach from this table: where Microsoft's sources say otherwise, or say
    nothing, the row says so."""
    assert rules.TAG_RULES["one_negative_per_project"].source == rules.SDK_ERRORS
    assert "CustomVisionErrorCodes" in rules.SDK_ERRORS
    assert rules.LIMITS["max_aspect_ratio"].source.startswith("in cvlab") and "guidance" in rules.LIMITS[
        "max_aspect_ratio"].source
    for key in ("metadata_pairs", "metadata_key_chars", "metadata_value_chars"):
        source = rules.LIMITS[key].source
        assert source.startswith(rules.SWAGGER) and "10 pairs" in source, key  # the SDK docstrings disagree
    assert rules.ITERATION_STATUSES[-1] == "Queued"  # cvlab's (workshop mode), after Azure's three
