"""What ``fanet-export --int8-budget`` decided for an INT8 graph, as its sidecar records it
(Python 3.6 compatible): the budget, the groups kept float, and the mIoU the export
measured, so that ``fanet-trt-bench`` and ``fanet-eval`` can show them beside their own
figures.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple

from fanet.core.sidecar import MetadataError, Sidecar, typed_fields

JUDGED_TYPES: Dict[str, type] = {
    "fp32_miou": float,
    "miou": float,
    "images": int,
    "reference": str,
}


class Int8Budget(NamedTuple):
    """An INT8 graph's budget (mIoU points it may lose against FP32; None: none was given),
    its float groups (ONNX node names), and what the export measured: this graph's and
    the FP32 graph's mIoU (points) on ``images`` images scored against ``reference``."""

    points: Optional[float] = None
    float_groups: Tuple[str, ...] = ()
    fp32_miou: Optional[float] = None
    miou: Optional[float] = None
    images: int = 0
    reference: str = ""  # "labels" or "FP32 labels"

    @classmethod
    def of(cls, sidecar: Sidecar, origin: str = "sidecar") -> Optional["Int8Budget"]:
        """The record of an INT8 graph's sidecar; None for other precisions."""
        if sidecar.precision != "int8":
            return None
        recipe = sidecar.provenance.recipe
        points = recipe.get("int8_budget")
        if isinstance(points, int) and not isinstance(points, bool):
            points = float(points)
        groups = recipe.get("float_groups") or []
        judged = recipe.get("int8_judged") or {}
        if points is not None and not isinstance(points, float):
            raise _bad(origin, "int8_budget", "a number", points)
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise _bad(origin, "float_groups", "a list of node names", groups)
        if not isinstance(judged, dict):
            raise _bad(origin, "int8_judged", "an object", judged)
        return cls(points, tuple(groups), **typed_fields(judged, JUDGED_TYPES, origin))

    def to_json(self) -> Dict[str, Any]:
        return dict(self._asdict(), float_groups=list(self.float_groups))

    def summary(self) -> str:
        """One line: the budget, what stayed float, and the mIoU measured at export."""
        names = ", ".join(self.float_groups)
        floats = "{} float: {}".format(_groups(len(self.float_groups)), names)
        if self.points is None:
            return floats + " (--int8-float)" if self.float_groups else "every group INT8"
        text = "INT8 budget {:g} mIoU point{}, {}".format(
            self.points,
            "" if self.points == 1 else "s",
            floats if self.float_groups else "every group INT8",
        )
        if self.miou is not None and self.fp32_miou is not None:
            text += "; at export {:.2f} against FP32 {:.2f} mIoU on {} images ({})".format(
                self.miou, self.fp32_miou, self.images, self.reference
            )
        return text


def _bad(origin: str, name: str, kind: str, value: Any) -> MetadataError:
    return MetadataError("{}: {} must be {}, got {!r}".format(origin, name, kind, value))


def _groups(count: int) -> str:
    return "1 group" if count == 1 else "{} groups".format(count)
