"""fanet-info: parameters and multiply-accumulates of FANet, and the paper's Table I.

PyTorch is imported inside the functions ``run_command`` calls, so that a Ctrl-C or
SIGTERM while it loads ends the command cleanly too.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fanet.cli.common import new_parser, parse_resolution, positive_int, run_command
from fanet.core import strict_json

if TYPE_CHECKING:
    from fanet.model.fanet import FANet

PROG = "fanet-info"

DEFAULT_RESOLUTIONS = [(512, 1024), (1024, 2048)]
GIGA = 1e9


def build_parser() -> argparse.ArgumentParser:
    from fanet.model import list_models

    parser = new_parser(
        PROG,
        "Print FANet's parameter count and GMAC (multiply-accumulates of convolutions and "
        "attention matmuls) per input resolution, or the paper's Table I for one attention "
        "module.",
        [
            "fanet-info --arch fanet18 --res 1024x2048",
            "fanet-info --arch fanet34 --res 512x1024 --res 1024x2048 --json",
            "fanet-info --weights fanet18.pth",
            "fanet-info --table-i",
        ],
    )
    parser.add_argument(
        "--weights", metavar="PATH", help="checkpoint: architecture and classes are read from it"
    )
    parser.add_argument("--arch", choices=list_models(), help="architecture (default fanet18)")
    parser.add_argument("--num-classes", type=positive_int, help="classes (default 19)")
    parser.add_argument(
        "--res",
        action="append",
        type=parse_resolution,
        metavar="HxW",
        help="input resolution, repeatable (default 512x1024 and 1024x2048)",
    )
    parser.add_argument(
        "--table-i", action="store_true", help="self vs fast attention GMAC (paper Table I)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def model_report(model: FANet, resolutions: list[tuple[int, int]]) -> dict:
    from fanet.model import count_macs, count_parameters

    rows = [
        {
            "resolution": f"{h}x{w}",
            "gmac": count_macs(model, (h, w)) / GIGA,
            "gmac_deployed": count_macs(model, (h, w), as_released=False) / GIGA,
        }
        for h, w in resolutions
    ]
    return {
        "arch": model.arch,
        "num_classes": model.num_classes,
        "parameters": count_parameters(model),
        "resolutions": rows,
    }


def table_i_report() -> dict:
    from fanet.model import PAPER_TABLE_I, attention_macs
    from fanet.model.macs import TABLE_I_SIZE

    height, width = TABLE_I_SIZE
    rows = []
    for kind, paper in PAPER_TABLE_I.items():
        for channels, paper_gmac in paper.items():
            ours = attention_macs(kind, channels, height, width) / GIGA
            rows.append(
                {
                    "kind": kind,
                    "channels": channels,
                    "gmac": ours,
                    "paper_gmac": paper_gmac,
                    "difference": ours - paper_gmac,
                }
            )
    return {"map": f"Cx{height}x{width}", "key_channels": 32, "rows": rows}


def print_model_report(report: dict) -> None:
    print(f"{report['arch']}: {report['parameters']:,} parameters, {report['num_classes']} classes")
    print(f"{'resolution':>12}  {'GMAC':>8}  {'GMAC deployed':>13}")
    for row in report["resolutions"]:
        print(f"{row['resolution']:>12}  {row['gmac']:8.2f}  {row['gmac_deployed']:13.2f}")
    print(
        "GMAC: as the released code computes (the paper's figures); deployed: without the "
        "discarded fam_32.smooth branch, as exported."
    )


def print_table_i(report: dict) -> None:
    print(
        f"One attention module on a {report['map']} map (q/k/v 1x1 convs, attention, "
        "C->C output conv), GMAC"
    )
    print(f"{'kind':>5} {'C':>5}  {'ours':>9}  {'paper':>7}  {'ours - paper':>12}")
    for row in report["rows"]:
        print(
            f"{row['kind']:>5} {row['channels']:>5}  {row['gmac']:9.3f}  "
            f"{row['paper_gmac']:7g}  {row['difference']:+12.3f}"
        )


def _main(args: argparse.Namespace) -> int:
    if args.table_i:
        report = table_i_report()
        printer = print_table_i
    else:
        from fanet.model import create_model, model_from_checkpoint

        if args.weights:
            model = model_from_checkpoint(args.weights, args.arch, args.num_classes)
        else:
            model = create_model(args.arch or "fanet18", args.num_classes or 19)
        report = model_report(model, args.res or DEFAULT_RESOLUTIONS)
        printer = print_model_report
    if args.json:
        print(strict_json.dumps(report, indent=2))
    else:
        printer(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
