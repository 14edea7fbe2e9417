"""fanet-eval: Cityscapes mIoU of checkpoints, ONNX graphs and engines, side by side
(Python 3.6 compatible: on a Jetson it evaluates engines with numpy, OpenCV and TensorRT
alone).

Each model runs through the runtime at its own input size, labels at the image's size;
the table lists per-class IoU in the paper's Table IV order, one column per model, then
mIoU, pixel accuracy and each model's pixel agreement with the first; under it, what each
INT8 graph's export kept float to meet its accuracy budget, and what it measured then.
"""

import argparse
import contextlib
import logging
import os
from typing import Any, List, Optional

from fanet.cli.common import DEVICE_HELP, new_parser, positive_int, run_command
from fanet.core import strict_json
from fanet.core.errors import ConfigError
from fanet.core.int8_budget_record import Int8Budget
from fanet.core.progress import with_progress

PROG = "fanet-eval"
logger = logging.getLogger("fanet.cli.device.eval")


def build_parser() -> argparse.ArgumentParser:
    from fanet.evaluation.scoring import LABEL_KINDS
    from fanet.runtime.registry import BACKEND_NAMES

    parser = new_parser(
        PROG,
        "Evaluate FANet models on labelled images: per-class IoU, mIoU and pixel accuracy "
        "(the official Cityscapes definitions and label table), one column per model, and "
        "each model's pixel agreement with the first (FP32 / FP16 / INT8 side by side).",
        [
            "fanet-eval --model fanet18.pth --cityscapes /data/cityscapes",
            "fanet-eval --model out/fanet18_512x1024.onnx --model out/fanet18_512x1024_fp16.onnx "
            "--model out/fanet18_512x1024_int8_onnxruntime.onnx --cityscapes D --limit 100",
            "fanet-eval --model fanet18_fp16.engine --cityscapes D --json > miou.json",
            "fanet-eval --model fanet18.pth --images scenes/img --labels scenes/gt",
        ],
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="PATH",
        help="checkpoint (.pth), ONNX or engine; repeatable (the first is the reference)",
    )
    data = parser.add_argument_group("data (a Cityscapes root, or two folders)")
    data.add_argument("--cityscapes", metavar="ROOT", help="holds leftImg8bit/ and gtFine/")
    data.add_argument("--split", default="val", help="Cityscapes split (default val)")
    data.add_argument("--images", metavar="DIR", help="images (instead of --cityscapes)")
    data.add_argument("--labels", metavar="DIR", help="label PNGs named as the images")
    data.add_argument(
        "--label-kind",
        choices=LABEL_KINDS,
        help="label PNG values (default: label_ids for Cityscapes, train_ids for folders)",
    )
    data.add_argument("--limit", type=positive_int, help="evaluate the first N images")
    run = parser.add_argument_group("how to run the models")
    run.add_argument("--backend", default="auto", choices=BACKEND_NAMES)
    run.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--json", action="store_true", help="print JSON (a miou per model)")
    return parser


def _main(args: argparse.Namespace) -> int:
    from fanet.evaluation.datasets import LabelledData, find_pairs
    from fanet.evaluation.scoring import as_json, as_table, evaluate, label_table, predictor
    from fanet.runtime.segmenter import Segmenter

    data = LabelledData(args.cityscapes, args.split, args.images, args.labels, args.label_kind)
    pairs, kind = find_pairs(data)
    table = label_table(kind)
    names = column_names(args.model)
    with contextlib.ExitStack() as stack:
        predictors = []
        budgets = []
        for path in args.model:
            segmenter = stack.enter_context(Segmenter.from_file(path, args.backend, args.device))
            if segmenter.sidecar.num_classes != 19:
                raise ConfigError(
                    "{} predicts {} classes; Cityscapes evaluation needs the 19 train IDs".format(
                        path, segmenter.sidecar.num_classes
                    )
                )
            predictors.append(predictor(segmenter, stack))
            budgets.append(Int8Budget.of(segmenter.sidecar, path))
        report = evaluate(predictors, pairs, table, limit=args.limit, progress=_progress)
    if args.json:
        result = as_json(report, names)
        for entry, budget in zip(result["models"], budgets):
            entry["int8_budget"] = budget.to_json() if budget else None
        print(strict_json.dumps(result, indent=2, sort_keys=True))
    else:
        print(as_table(report, names) + budgets_text(names, budgets, report), end="")
    return 0


def budgets_text(names: List[str], budgets: List[Optional[Int8Budget]], report: Any) -> str:
    """A line per INT8 model: its export's budget and float groups, the mIoU it measured
    then, and how far below the first model it scores here."""
    lines = []
    for index, (name, budget) in enumerate(zip(names, budgets)):
        if budget is None:
            continue
        line = "{}: {}".format(name, budget.summary())
        if index:
            drop = 100 * (report.scores[0].miou() - report.scores[index].miou())
            line += "; here {:.2f} points below {}".format(drop, names[0])
        lines.append(line)
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def column_names(paths: List[str]) -> List[str]:
    """A distinct column name per model: its file's stem, with as many of its folders as
    tell it from the others (``a/last`` and ``b/last``), else a count."""
    parts = [os.path.normpath(os.path.splitext(path)[0]).split(os.sep) for path in paths]
    names = [part[-1] for part in parts]
    for depth in range(2, max(len(part) for part in parts) + 1):
        repeated = {name for name in names if names.count(name) > 1}
        if not repeated:
            break
        names = [
            "/".join(part[-depth:]) if name in repeated else name
            for part, name in zip(parts, names)
        ]
    return [
        name if names.count(name) == 1 else "{} #{}".format(name, names[: index + 1].count(name))
        for index, name in enumerate(names)
    ]


def _progress(items: Any, total: int) -> Any:
    return with_progress(items, total, "image", PROG, logger)


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
