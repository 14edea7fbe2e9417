"""fanet-train: train or fine-tune FANet with the released code's recipe, on the CPU, one
GPU or many (``torchrun``).

PyTorch is imported inside the functions ``run_command`` calls, so a signal while it loads
ends the command cleanly too. Ctrl-C saves the last completed iteration (``--resume``
continues it).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from fanet.cli.common import (
    frame_window,
    new_parser,
    non_negative_float,
    non_negative_int,
    parse_resolution,
    positive_float,
    positive_int,
    run_command,
)
from fanet.core import strict_json

if TYPE_CHECKING:
    from fanet.train.trainer import TrainConfig

PROG = "fanet-train"


def build_parser() -> argparse.ArgumentParser:
    from fanet.train.trainer import TrainConfig

    defaults = TrainConfig()
    parser = new_parser(
        PROG,
        "Train FANet with the released code's recipe: SGD (momentum 0.9, weight decay 5e-4), "
        "lr 1e-2 with poly 0.9 decay, random flip, scale, crop and colour jitter, OHEM "
        "cross-entropy with two auxiliary heads at 0.5; ImageNet initialisation, mixed "
        "precision on CUDA, validation mIoU, resumable checkpoints fanet-export reads.",
        [
            "fanet-train --arch fanet18 --cityscapes /data/cityscapes --crop 1024x1024 "
            "--batch 16 --iters 80000 --backbone resnet18-f37072fd.pth -o runs/fanet18",
            "torchrun --nproc-per-node 4 -m fanet.cli.host.train --cityscapes D --batch 16 "
            "--sync-bn -o runs/ddp        # 4 GPUs, 4 images each",
            "fanet-train --cityscapes D -o runs/fanet18 --resume       # continue a run",
            "fanet-train --weights fanet18.pth --images mine/img --labels mine/gt --crop 512x512 "
            "--batch 8 --iters 2000 --lr 2e-3 -o runs/finetune      # fine-tune on your scenes",
            "fanet-train --cityscapes D --temporal 2 -o runs/temporal   # FANet+Temp on sequences",
        ],
    )
    _model_arguments(parser.add_argument_group("model"), defaults)
    _data_arguments(parser.add_argument_group("data"), defaults)
    _recipe_arguments(parser.add_argument_group("recipe (the paper's defaults)"), defaults)
    _run_arguments(parser.add_argument_group("run"), defaults)
    parser.add_argument("--json", action="store_true", help="print the run's record as JSON")
    return parser


def _model_arguments(model: Any, defaults: TrainConfig) -> None:
    from fanet.model import list_models

    model.add_argument("--arch", choices=list_models(), default=defaults.arch)
    model.add_argument("--num-classes", type=positive_int, default=defaults.num_classes)
    start = model.add_mutually_exclusive_group()
    start.add_argument(
        "--backbone", metavar="PTH", help="torchvision ImageNet ResNet-18/34 weights"
    )
    start.add_argument("--weights", metavar="PTH", help="start from a FANet checkpoint (fine-tune)")
    model.add_argument(
        "--temporal",
        type=frame_window,
        default=1,
        metavar="T",
        help="attention over T frames (default 1)",
    )
    model.add_argument("--temporal-reduce", choices=("mean", "sum"), default="mean")


def _data_arguments(data: Any, defaults: TrainConfig) -> None:
    data.add_argument("--cityscapes", metavar="ROOT", help="leftImg8bit/, gtFine/ (and _sequence)")
    data.add_argument("--split", default=defaults.split, help="training split (default train)")
    data.add_argument("--images", metavar="DIR", help="training images (instead of --cityscapes)")
    data.add_argument("--labels", metavar="DIR", help="their train-ID label PNGs")
    data.add_argument("--val-split", default=defaults.val_split, help="Cityscapes validation split")
    data.add_argument("--val-images", metavar="DIR")
    data.add_argument("--val-labels", metavar="DIR")
    data.add_argument("--no-val", action="store_true", help="no validation")


def _recipe_arguments(recipe: Any, defaults: TrainConfig) -> None:
    from fanet.train.losses import LOSSES

    recipe.add_argument(
        "--crop",
        type=parse_resolution,
        default=defaults.crop,
        metavar="HxW",
        help="random crop per image (default {}x{}; at most the images' size)".format(
            *defaults.crop
        ),
    )
    recipe.add_argument(
        "--batch",
        type=positive_int,
        default=defaults.batch,
        help="images per step, all processes (default {})".format(defaults.batch),
    )
    recipe.add_argument(
        "--iters",
        type=positive_int,
        default=defaults.iters,
        help="steps in all (default {})".format(defaults.iters),
    )
    recipe.add_argument("--lr", type=positive_float, default=defaults.lr)
    recipe.add_argument("--momentum", type=non_negative_float, default=defaults.momentum)
    recipe.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay)
    recipe.add_argument(
        "--power", type=positive_float, default=defaults.power, help="poly decay power"
    )
    recipe.add_argument(
        "--scale", type=float, nargs=2, default=defaults.scale, metavar=("MIN", "MAX")
    )
    recipe.add_argument(
        "--jitter", type=non_negative_float, default=defaults.jitter, help="colour jitter"
    )
    recipe.add_argument("--no-flip", action="store_true")
    recipe.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    recipe.add_argument("--aux-weight", type=non_negative_float, default=defaults.aux_weight)


def _run_arguments(run: Any, defaults: TrainConfig) -> None:
    run.add_argument("-o", "--output-dir", default=defaults.output_dir)
    run.add_argument("--resume", action="store_true", help="continue from -o's last.pth")
    run.add_argument("--force", action="store_true", help="start again over a run in -o")
    run.add_argument("--stop-after", type=positive_int, metavar="N", help="N iterations, then save")
    run.add_argument("--device", help="cpu or cuda (default: CUDA where PyTorch sees a GPU)")
    run.add_argument("--no-amp", action="store_true", help="FP32 on CUDA too")
    run.add_argument("--sync-bn", action="store_true", help="synchronised BatchNorm (CUDA)")
    run.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm statistics")
    run.add_argument("--val-every", type=positive_int, default=defaults.val_every)
    run.add_argument("--val-limit", type=positive_int, metavar="N")
    run.add_argument("--save-every", type=positive_int, default=defaults.save_every)
    run.add_argument("--log-every", type=positive_int, default=defaults.log_every)
    run.add_argument(
        "--workers",
        type=non_negative_int,
        default=defaults.workers,
        help="data loader processes (default {}: at most 4, at most this machine's CPUs)".format(
            defaults.workers
        ),
    )
    run.add_argument("--seed", type=int, default=defaults.seed)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The flags as a ``TrainConfig``: same names, bar the negated and the validation ones."""
    from dataclasses import fields

    from fanet.train.trainer import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    given.update(scale=tuple(args.scale), flip=not args.no_flip, amp=not args.no_amp)
    if args.no_val:
        given.update(val_split=None, val_images=None, val_labels=None)
    return TrainConfig(**given)


def _main(args: argparse.Namespace) -> int:
    from fanet.train.trainer import train

    result = train(config_from_args(args))
    if args.json:
        record = {
            "iteration": result.iteration,
            "checkpoint": result.checkpoint,
            "final_loss": result.losses[-1] if result.losses else None,
            "validations": [{"iteration": i, "miou": m} for i, m in result.validations],
            "skipped": result.skipped,
        }
        print(strict_json.dumps(record, indent=2))
    elif result.checkpoint:
        print(
            f"{result.checkpoint} after iteration {result.iteration}: "
            f"fanet-export --weights {result.checkpoint}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
