"""An INT8 sidecar's budget record: read and checked, and the line that shows it."""

import pytest

from fanet.core.int8_budget_record import Int8Budget
from fanet.core.sidecar import MetadataError, Provenance, Sidecar

FLOATS = ["/net/clslayer/conv_out/Conv", "/net/resnet/layer1/layer1.1/conv1/Conv"]
JUDGED = {"fp32_miou": 81.97, "miou": 81.15, "images": 8, "reference": "labels"}


def _sidecar(precision="int8", **recipe):
    return Sidecar(precision=precision, provenance=Provenance(recipe=recipe))


def test_a_fitted_budget_shows_its_float_groups_and_what_the_export_measured():
    record = Int8Budget.of(_sidecar(int8_budget=1, float_groups=FLOATS, int8_judged=JUDGED))
    assert record == Int8Budget(1.0, tuple(FLOATS), 81.97, 81.15, 8, "labels")
    assert record.summary() == (
        "INT8 budget 1 mIoU point, 2 groups float: /net/clslayer/conv_out/Conv, "
        "/net/resnet/layer1/layer1.1/conv1/Conv; at export 81.15 against FP32 81.97 mIoU on "
        "8 images (labels)"
    )
    assert record.to_json()["float_groups"] == FLOATS


def test_a_budget_met_all_int8_and_float_groups_given_by_hand_say_so():
    met = Int8Budget.of(_sidecar(int8_budget=0.5, float_groups=[], int8_judged=JUDGED))
    assert met.summary().startswith("INT8 budget 0.5 mIoU points, every group INT8; at export")
    given = Int8Budget.of(_sidecar(int8_budget=None, float_groups=FLOATS[:1]))
    assert given.summary() == "1 group float: /net/clslayer/conv_out/Conv (--int8-float)"
    assert Int8Budget.of(_sidecar()).summary() == "every group INT8"


def test_other_precisions_have_none():
    assert Int8Budget.of(_sidecar("fp16", int8_budget=1.0)) is None


@pytest.mark.parametrize(
    "recipe, field",
    [
        ({"int8_budget": "one"}, "int8_budget"),
        ({"int8_budget": True}, "int8_budget"),
        ({"float_groups": "/net/a/Conv"}, "float_groups"),
        ({"float_groups": [3]}, "float_groups"),
        ({"int8_judged": [81.0]}, "int8_judged"),
        ({"int8_judged": dict(JUDGED, images="8")}, "images"),
    ],
)
def test_a_bad_field_is_named(recipe, field):
    with pytest.raises(MetadataError, match=field):
        Int8Budget.of(_sidecar(**recipe), "x_int8.json")
