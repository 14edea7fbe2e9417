"""INT8 within an accuracy budget: each quantization group's cost in mIoU, and the fewest
groups kept in float that bring every INT8 form within the budget (host side).

Drops are in mIoU points against the FP32 graph on the same images. While a form misses
the budget, the worst form's groups are measured one by one, quantized alone (everything
else float: what the group costs) and left in float besides the groups already float
(what keeping it float gains). Then groups go float greedily: the largest measured gain first,
the gains of the next candidates re-measured with the groups already float, until every
form is within the budget or no group is left to try.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from fanet.core.progress import with_progress
from fanet.evaluation.scoring import Scores
from fanet.export.int8_eval import Scorer
from fanet.export.int8_forms import Group, Int8Forms, fake_quant

logger = logging.getLogger(__name__)

RECHECKED = 4  # candidates whose gain is re-measured at each greedy step
WORST_CLASSES = 5  # classes the report shows the IoU change of


@dataclass
class GroupCost:
    """What one group costs in one form: mIoU points lost when it alone is quantized,
    and gained when it is left in float, besides the groups already float when the form
    was measured (none, for the form measured first)."""

    group: Group
    form: str
    quantized_alone: float
    float_gain: float
    class_change: dict[str, float]  # quantized alone: the classes that lose most IoU


@dataclass
class BudgetReport:
    """What fitting the budget measured and decided."""

    budget: float
    reference: str  # "labels" or "FP32 labels"
    origin: str
    images: int
    fp32_miou: float
    groups: list[Group]
    costs: list[GroupCost] = field(default_factory=list)
    float_groups: list[str] = field(default_factory=list)
    gains: dict[str, float] = field(default_factory=dict)  # float group -> gain when chosen
    plain_miou: dict[str, float] = field(default_factory=dict)  # form -> mIoU, all INT8
    final_miou: dict[str, float] = field(default_factory=dict)  # form -> with float groups
    class_change: dict[str, dict[str, float]] = field(default_factory=dict)
    unmet: list[str] = field(default_factory=list)  # forms no float set brought within

    def drop(self, form: str) -> float:
        return self.fp32_miou - self.final_miou[form]

    def int8_convs(self) -> float:
        """The fraction of the graph's Convs that stay INT8."""
        convs = [g.node for g in self.groups if g.op_type == "Conv"]
        return 1 - len(set(convs) & set(self.float_groups)) / max(len(convs), 1)

    def judged(self, form: str) -> dict:
        """What ``form``'s sidecar records of the judging (``Int8Budget``'s fields)."""
        return {
            "fp32_miou": self.fp32_miou,
            "miou": self.final_miou[form],
            "images": self.images,
            "reference": self.reference,
        }

    def to_json(self) -> dict:
        return {
            "budget": self.budget,
            "reference": self.reference,
            "images": self.images,
            "origin": self.origin,
            "fp32_miou": self.fp32_miou,
            "plain_miou": self.plain_miou,
            "final_miou": self.final_miou,
            "float_groups": [{"node": n, "gain": self.gains.get(n)} for n in self.float_groups],
            "int8_conv_fraction": self.int8_convs(),
            "unmet": self.unmet,
            "class_change": self.class_change,
            "groups": [
                {
                    "node": cost.group.node,
                    "op_type": cost.group.op_type,
                    "form": cost.form,
                    "quantized_alone": cost.quantized_alone,
                    "float_gain": cost.float_gain,
                    "class_change": cost.class_change,
                }
                for cost in self.costs
            ],
        }


def _points(scores: Scores) -> float:
    return 100 * scores.miou()


class BudgetFitter:
    """Fits ``forms`` to ``budget`` mIoU points on ``scorer``'s images."""

    def __init__(self, forms: Int8Forms, scorer: Scorer, budget: float) -> None:
        self.forms = forms
        self.scorer = scorer
        self.budget = budget
        self.fp32 = scorer.use_as_reference(forms.fp32)
        self.groups = forms.groups()

    def score(self, form: str, float_groups: frozenset[str]) -> Scores:
        model = self.forms.build(form, float_groups, check=False)
        return self.scorer.score(model, fake_quant(form))

    def fit(self) -> BudgetReport:
        images = self.scorer.images
        report = BudgetReport(
            self.budget,
            images.reference,
            images.origin,
            len(images.batches),
            _points(self.fp32),
            self.groups,
        )
        floats: frozenset[str] = frozenset()
        scores = {form: self.score(form, floats) for form in self.forms.variants}
        report.plain_miou = {form: _points(s) for form, s in scores.items()}
        measured: set[str] = set()
        gains: dict[str, float] = {}
        while True:
            misses = {f: _points(self.fp32) - _points(s) for f, s in scores.items()}
            misses = {f: d for f, d in misses.items() if d > self.budget}
            if not misses:
                break
            worst = max(misses, key=lambda form: misses[form])
            candidates = [g.node for g in self.groups if worst in g.forms and g.node not in floats]
            if not candidates:
                report.unmet = sorted(misses)
                break
            fresh = worst not in measured  # gains measured with the float set as it is
            if fresh:
                measured.add(worst)
                report.costs += self._costs(worst, scores[worst], floats)
                gains = {c.group.node: c.float_gain for c in report.costs if c.form == worst}
            chosen, gain = self._best(worst, floats, candidates, scores[worst], gains, fresh)
            floats = floats | {chosen}
            report.float_groups.append(chosen)
            report.gains[chosen] = gain
            logger.info("INT8 budget: %s stays float (+%.2f mIoU in %s)", chosen, gain, worst)
            scores = {form: self.score(form, floats) for form in self.forms.variants}
        report.final_miou = {form: _points(s) for form, s in scores.items()}
        report.class_change = {form: self._class_change(s) for form, s in scores.items()}
        return report

    def _costs(self, form: str, current: Scores, floats: frozenset[str]) -> list[GroupCost]:
        """Each of ``form``'s groups quantized alone, and left float besides ``floats``
        (``current``: the form with ``floats`` float; a group already float gains 0)."""
        groups = [g for g in self.groups if form in g.forms]
        every = frozenset(g.node for g in groups)
        costs = []
        for group in with_progress(groups, len(groups), "group", f"sensitivity ({form})", logger):
            alone = self.score(form, every - {group.node})
            kept = current if group.node in floats else self.score(form, floats | {group.node})
            costs.append(
                GroupCost(
                    group,
                    form,
                    _points(self.fp32) - _points(alone),
                    _points(kept) - _points(current),
                    self._class_change(alone),
                )
            )
        return costs

    def _best(
        self,
        form: str,
        floats: frozenset[str],
        candidates: list[str],
        current: Scores,
        gains: dict[str, float],
        fresh: bool,
    ) -> tuple[str, float]:
        """The candidate whose float gains most now. Where the ``gains`` are ``fresh``, the
        sensitivity pass measured exactly that; else candidates are re-measured with
        ``floats`` float, ``RECHECKED`` at a time in order of their last gain, until one
        gains."""
        ranked = sorted(candidates, key=lambda node: (-gains.get(node, 0.0), node))
        if fresh:
            return ranked[0], gains[ranked[0]]
        checked: list[str] = []
        for start in range(0, len(ranked), RECHECKED):
            for node in ranked[start : start + RECHECKED]:
                gains[node] = _points(self.score(form, floats | {node})) - _points(current)
                checked.append(node)
            if max(gains[node] for node in checked) > 0:
                break
        best = min(checked, key=lambda node: (-gains[node], node))
        return best, gains[best]

    def _class_change(self, scores: Scores) -> dict[str, float]:
        """IoU points each class lost against FP32, the ``WORST_CLASSES`` that lost most."""
        change = 100 * (scores.iou() - self.fp32.iou())
        names = _class_names(self.fp32)
        order = [i for i in np.argsort(change) if np.isfinite(change[i])][:WORST_CLASSES]
        return {names[i]: float(change[i]) for i in order}


def _class_names(scores: Scores) -> list[str]:
    from fanet.core.labels import TRAIN_CLASSES

    count = scores.confusion.shape[0]
    names = [label.name for label in TRAIN_CLASSES]
    return names if count == len(names) else [f"class {i}" for i in range(count)]


def report_table(report: dict) -> str:
    """``BudgetReport.to_json()`` as the text ``fanet-export`` prints."""
    lines = [
        f"INT8 budget {report['budget']:g} (mIoU points), judged on {report['images']} images from "
        f"{report['origin']} against {report['reference']}: FP32 {report['fp32_miou']:.2f} mIoU",
        f"  {'form':<18}{'all INT8':>9}{'final':>9}{'drop':>8}",
    ]
    for form, final in report["final_miou"].items():
        lines.append(
            f"  {form:<18}{report['plain_miou'][form]:9.2f}{final:9.2f}"
            f"{report['fp32_miou'] - final:8.2f}"
        )
    floats = report["float_groups"]
    lines.append(
        f"groups kept float: {len(floats)} ({100 * report['int8_conv_fraction']:.0f} % of the "
        "Convs stay INT8)"
    )
    lines += [_float_line(group, report["groups"]) for group in floats]
    if report["unmet"]:
        lines.append(
            f"NOT within budget: {', '.join(report['unmet'])}: no group left in float saves it"
        )
    if report["groups"]:
        width = max(len(row["node"]) for row in report["groups"]) + 2
        lines.append(f"  {'group (ONNX node)':<{width}}{'form':<18}{'INT8 alone':>11}{'float':>8}")
        costs = sorted(report["groups"], key=lambda row: -row["quantized_alone"])
        lines += [
            f"  {row['node']:<{width}}{row['form']:<18}{-row['quantized_alone']:+11.2f}"
            f"{row['float_gain']:+8.2f}"
            for row in costs
        ]
        lines.append(
            "  (INT8 alone: mIoU change against FP32 with only the group INT8; float: against "
            "the form as measured, with the group float too)"
        )
    for form, change in report["class_change"].items():
        lines.append(f"IoU change, classes losing most ({form}): {_classes(change)}")
    return "\n".join(lines)


def _float_line(group: dict, rows: list[dict]) -> str:
    """A float group, its gain, and the classes it costs most when INT8 alone."""
    line = f"  {group['node']}: gained {group['gain']:+.2f} mIoU"
    costs = [row for row in rows if row["node"] == group["node"]]
    if costs:
        worst = max(costs, key=lambda row: row["quantized_alone"])
        line += f"; INT8 alone ({worst['form']}): {_classes(worst['class_change'])}"
    return line


def _classes(change: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:+.1f}" for name, value in change.items())
