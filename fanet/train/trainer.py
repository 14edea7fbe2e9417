"""``fanet-train`` as a library call: the released code's recipe, on one process or many
(host side).

SGD with momentum 0.9 and weight decay 5e-4, learning rate 1e-2 decayed as
(1 - iteration / iterations)^0.9, a batch of 16; random flip, scale 0.75-2, crop and colour
jitter; OHEM cross-entropy on the head's logits plus the two auxiliary heads at 0.5;
optional ImageNet initialisation of the encoder; mixed precision on CUDA. Under
``torchrun`` the batch is split over the processes (DistributedDataParallel, a sampler
that gives each its share, rank 0 logging, validating and checkpointing), optionally with
synchronised BatchNorm (CUDA). Checkpoints resume the same loss curve.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fanet.core import strict_json
from fanet.core.cpus import usable_cpus
from fanet.core.errors import ConfigError
from fanet.core.files import check_writable_folder, remove_stale_parts, write_failure
from fanet.core.postprocess import upsampled_argmax
from fanet.core.preprocess import preprocess
from fanet.core.progress import progress_bar
from fanet.evaluation.datasets import LabelledData, Pairs, find_pairs
from fanet.evaluation.scoring import Report, evaluate, label_table
from fanet.model import create_model, load_imagenet_backbone, model_from_checkpoint
from fanet.model.fanet import FANet
from fanet.model.temporal import TemporalFANet, check_window
from fanet.train import state
from fanet.train.augment import Augmentation
from fanet.train.data import SegmentationDataset, largest_image, training_samples
from fanet.train.distributed import World, join, leave
from fanet.train.losses import LOSSES, OhemCrossEntropy, upsampled
from fanet.train.network import AUX_WEIGHT, TrainingFANet

logger = logging.getLogger(__name__)

LAST = "last.pth"
BEST = "best.pth"
LOG = "log.jsonl"


@dataclass
class TrainConfig:
    """Everything ``fanet-train`` can be asked for (see ``fanet-train --help``)."""

    arch: str = "fanet18"
    num_classes: int = 19
    cityscapes: str | None = None
    split: str = "train"
    images: str | None = None
    labels: str | None = None
    val_split: str | None = "val"  # of --cityscapes; None: no validation
    val_images: str | None = None
    val_labels: str | None = None
    crop: tuple[int, int] = (1024, 1024)
    batch: int = 16  # over all processes
    iters: int = 80_000
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    power: float = 0.9
    scale: tuple[float, float] = (0.75, 2.0)
    jitter: float = 0.5
    flip: bool = True
    loss: str = "ohem"
    aux_weight: float = AUX_WEIGHT
    backbone: str | None = None  # torchvision ImageNet ResNet state dict
    weights: str | None = None  # start from a FANet checkpoint instead
    output_dir: str = "runs/fanet"
    resume: bool = False
    force: bool = False  # start again in a folder that holds a run's checkpoint
    stop_after: int | None = None  # iterations in this run, then save and stop
    amp: bool = True  # mixed precision where the device is CUDA
    sync_bn: bool = False
    freeze_bn: bool = False
    val_every: int = 1000
    val_limit: int | None = None
    save_every: int = 1000
    log_every: int = 20
    workers: int = field(default_factory=lambda: min(4, usable_cpus()))
    seed: int = 0
    device: str | None = None
    temporal: int = 1
    temporal_reduce: str = "mean"


@dataclass
class TrainResult:
    """What a run did: its losses (rank 0's, per iteration), validations and checkpoint."""

    iteration: int
    losses: list[float] = field(default_factory=list)
    validations: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: str | None = None
    skipped: list[str] = field(default_factory=list)  # samples that did not decode


def _check(config: TrainConfig) -> None:
    check_window(config.temporal, config.temporal_reduce)
    for name in ("batch", "iters", "val_every", "save_every", "log_every"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if config.loss not in LOSSES:
        raise ConfigError(f"unknown --loss {config.loss!r}; choose {' or '.join(LOSSES)}")
    if min(config.crop) < 8 or config.scale[0] <= 0 or config.scale[0] > config.scale[1]:
        raise ConfigError(
            "--crop sides must be >= 8 and --scale a range MIN MAX with 0 < MIN <= MAX"
        )
    if config.backbone and config.weights:
        raise ConfigError("--backbone and --weights exclude each other")
    if config.cityscapes and (config.images or config.labels):
        raise ConfigError("give --cityscapes, or --images and --labels, not both")


def train(config: TrainConfig) -> TrainResult:
    """Train as ``config`` asks, resuming where asked; returns rank 0's record."""
    _check(config)
    world = join(config.device)
    try:
        return _Run(config, world).run()
    finally:
        leave(world)


class _Run:
    def __init__(self, config: TrainConfig, world: World) -> None:
        self.config, self.world = config, world
        if config.batch % world.size:
            raise ConfigError(f"--batch {config.batch} does not split over {world.size} processes")
        if config.sync_bn and world.size > 1 and world.device.type != "cuda":
            raise ConfigError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only)")
        created = not os.path.exists(config.output_dir)
        try:
            self._start(config, world)
        except BaseException:
            if created and world.main:  # a failed start leaves no empty folder behind
                with contextlib.suppress(OSError):
                    os.rmdir(config.output_dir)
            raise

    def _start(self, config: TrainConfig, world: World) -> None:
        if world.main:
            _prepare_folder(config)
        self.settings = _settings(config)
        data = LabelledData(config.cityscapes, config.split, config.images, config.labels)
        pairs, kind = find_pairs(data, "training data")
        self.table = label_table(kind)
        samples = training_samples(pairs, config.temporal, config.cityscapes)
        _check_crop(config.crop, samples)
        augmentation = Augmentation(config.crop, config.scale, config.flip, config.jitter)
        self.dataset = SegmentationDataset(samples, self.table, augmentation, config.seed)
        self.batches_per_epoch = len(samples) // config.batch
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"{len(samples)} training images cannot fill a --batch of {config.batch}"
            )
        self.validation = _validation_pairs(config) if world.main else None
        torch.manual_seed(config.seed)  # the same initial weights in every process
        self.network = TrainingFANet(
            _initial_model(config), config.temporal, config.temporal_reduce
        )
        if config.sync_bn and world.size > 1:
            self.network = nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
        self.network.to(world.device)
        self.amp = config.amp and world.device.type == "cuda"
        self.optimizer = torch.optim.SGD(
            self.network.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: max(0.0, 1 - step / config.iters) ** config.power
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.criterion = OhemCrossEntropy(0.7 if config.loss == "ohem" else None)
        self.best: float | None = None
        self.start = 0
        if config.resume:
            self.start = self._resume()
        self.parallel: nn.Module = self.network
        if world.size > 1:
            ids = [world.device.index] if world.device.type == "cuda" else None
            self.parallel = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)

    def _resume(self) -> int:
        path = os.path.join(self.config.output_dir, LAST)
        saved = state.load(path)
        state.check_resumable(saved, self.settings, path)
        self.best = saved.get("best_iou")
        iteration = state.restore(saved, self.network, self.optimizer, self.scheduler, self.scaler)
        if self.world.main:
            logger.info("resuming %s after iteration %d of %d", path, iteration, self.config.iters)
        return iteration

    def run(self) -> TrainResult:
        config, world = self.config, self.world
        result = TrainResult(self.start)
        end = (
            config.iters
            if config.stop_after is None
            else min(config.iters, self.start + config.stop_after)
        )
        progress = progress_bar(config.iters, "it", "fanet-train", logger, self.start, world.main)
        batches = self._batches(self.start)
        started = time.monotonic()
        try:
            for iteration in range(self.start + 1, end + 1):
                frames, labels, unknown, skipped = next(batches)
                self._skipped(result, skipped)
                loss = self._step(frames.to(world.device), labels.to(world.device))
                result.iteration = iteration
                self._record(result, iteration, loss, int(unknown.sum()), progress, started)
                if iteration % config.val_every == 0 or iteration == config.iters:
                    self._validate_now(result, iteration)
                if iteration % config.save_every == 0 or iteration == end:
                    result.checkpoint = self._save(iteration)
        except KeyboardInterrupt:
            if world.main and result.iteration > self.start:
                logger.warning("interrupted: saving after iteration %d", result.iteration)
                result.checkpoint = self._save(result.iteration)
            raise
        finally:
            progress.close()
        if result.skipped and world.main:
            logger.warning(
                "%d training samples could not be decoded and were skipped, each replaced by "
                "the next one that decodes: %s",
                len(result.skipped),
                ", ".join(result.skipped),
            )
        return result

    def _skipped(self, result: TrainResult, reasons: list[str]) -> None:
        """Count and report, once each, the samples of a batch that did not decode."""
        for reason in reasons:
            if reason and reason not in result.skipped:
                result.skipped.append(reason)
                if self.world.main:
                    logger.warning("%s: skipped", reason)

    def _batches(
        self, done: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]]:
        """Batches from iteration ``done`` on: epoch by epoch, each process its share."""
        epoch, skip = divmod(done, self.batches_per_epoch)
        while True:
            self.dataset.set_epoch(epoch)
            sampler = _EpochShare(len(self.dataset), self.config, self.world, epoch, skip)
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=self.config.batch // self.world.size,
                sampler=sampler,
                num_workers=self.config.workers,
                pin_memory=self.world.device.type == "cuda",
                drop_last=True,
            )
            yield from loader
            epoch, skip = epoch + 1, 0

    def _step(self, frames: torch.Tensor, labels: torch.Tensor) -> float:
        self.parallel.train()
        if self.config.freeze_bn:
            for module in self.parallel.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        size = labels.shape[-2:]
        with torch.autocast("cuda", torch.float16, enabled=self.amp):
            logits, aux_64, aux_32 = self.parallel(frames)
            loss = self.criterion(upsampled(logits, size), labels)
            auxiliary = self.criterion(upsampled(aux_64, size), labels)
            auxiliary = auxiliary + self.criterion(upsampled(aux_32, size), labels)
            loss = loss + self.config.aux_weight * auxiliary
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ConfigError(f"the loss is {value}: lower --lr, or check the labels")
        return value

    def _record(
        self,
        result: TrainResult,
        iteration: int,
        loss: float,
        unknown: int,
        progress: Any,
        started: float,
    ) -> None:
        loss = self.world.mean(loss)
        if not self.world.main:
            return
        result.losses.append(loss)
        lr = self.optimizer.param_groups[0]["lr"]
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        _log_line(
            self.config,
            {"iteration": iteration, "loss": loss, "lr": lr, "unknown_label_pixels": unknown},
        )
        if iteration % self.config.log_every == 0:
            rate = (iteration - self.start) / max(time.monotonic() - started, 1e-9)
            logger.info(
                "iteration %d/%d loss %.4f lr %.2e (%.2f it/s)",
                iteration,
                self.config.iters,
                loss,
                lr,
                rate,
            )
        if unknown:
            logger.warning(
                "iteration %d: %d pixels of label IDs outside the table, ignored",
                iteration,
                unknown,
            )

    def _validate_now(self, result: TrainResult, iteration: int) -> None:
        if self.world.main and self.validation is not None:
            report = _evaluate(self.network, self.validation, self.config, self.world.device)
            miou = report.scores[0].miou()
            result.validations.append((iteration, miou))
            _log_line(
                self.config, {"iteration": iteration, "val_miou": miou, "val_images": report.images}
            )
            logger.info(
                "iteration %d: validation mIoU %.2f %% on %d images",
                iteration,
                100 * miou,
                report.images,
            )
            if self.best is None or miou > self.best:
                self.best = miou
                self._write(os.path.join(self.config.output_dir, BEST), iteration)
        self.world.barrier()

    def _save(self, iteration: int) -> str:
        path = os.path.join(self.config.output_dir, LAST)
        if self.world.main:
            self._write(path, iteration)
        self.world.barrier()
        return path

    def _write(self, path: str, iteration: int) -> None:
        optimisation = state.Optimisation(self.optimizer, self.scheduler, self.scaler)
        state.save(path, self.network, optimisation, iteration, self.settings, self.best)


class _EpochShare(torch.utils.data.Sampler):
    """This process's share of an epoch: one permutation drawn from (seed, epoch) in every
    process, positions rank, rank + size, ...; a whole number of batches; the first
    ``skip`` batches left out (a resumed run)."""

    def __init__(self, size: int, config: TrainConfig, world: World, epoch: int, skip: int) -> None:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(size, generator=generator).tolist()
        per_process = config.batch // world.size
        usable = (len(order) // config.batch) * config.batch
        self.indices = order[world.rank : usable : world.size][skip * per_process :]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _check_crop(crop: tuple[int, int], samples: list[Any]) -> None:
    """Refuse a crop larger than every training image (padding it would only waste
    memory)."""
    height, width = largest_image(samples)
    if crop[0] > height or crop[1] > width:
        raise ConfigError(
            f"--crop {crop[0]}x{crop[1]} is larger than the training images (at most "
            f"{height}x{width}): pass --crop {min(crop[0], height)}x{min(crop[1], width)} or "
            "smaller"
        )


def _prepare_folder(config: TrainConfig) -> None:
    """The output folder, writable; a new run there needs --force over an earlier one's
    checkpoint, and starts a new log."""
    check_writable_folder(config.output_dir)
    remove_stale_parts(config.output_dir)  # a killed run's half-written checkpoints
    last = os.path.join(config.output_dir, LAST)
    if config.resume:
        return
    if os.path.exists(last) and not config.force:
        raise ConfigError(
            f"{config.output_dir} holds a run's checkpoint ({LAST}): pass --resume to continue "
            "it, --force to start again there, or another -o"
        )
    log = os.path.join(config.output_dir, LOG)
    try:
        os.remove(log)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a folder in its place, a protected file
        raise write_failure(exc, log) from None


def _settings(config: TrainConfig) -> dict[str, Any]:
    settings = asdict(config)
    settings["crop"], settings["scale"] = list(config.crop), list(config.scale)
    return settings


def _initial_model(config: TrainConfig) -> FANet:
    if config.weights:
        return model_from_checkpoint(config.weights, config.arch, config.num_classes)
    model = create_model(config.arch, config.num_classes)
    if config.backbone:
        load_imagenet_backbone(model, config.backbone)
    return model


def _validation_pairs(config: TrainConfig) -> tuple[Pairs, str] | None:
    if config.val_images and config.val_labels:
        return find_pairs(LabelledData(images=config.val_images, labels=config.val_labels))
    if config.cityscapes and config.val_split:
        return find_pairs(LabelledData(config.cityscapes, config.val_split))
    return None


@torch.no_grad()
def _evaluate(
    network: TrainingFANet, validation: tuple[Pairs, str], config: TrainConfig, device: torch.device
) -> Report:
    """The network's mIoU on the validation pairs, each image at its own size (a temporal
    model sees each as a frame of its own)."""
    pairs, kind = validation
    network.eval()
    temporal = TemporalFANet(network.model, config.temporal, config.temporal_reduce)

    def predict(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(preprocess(image)).to(device)
        logits, *_ = temporal(x, *temporal.initial_state(x))
        return upsampled_argmax(logits[0].float().cpu().numpy(), image.shape[:2])

    try:
        return evaluate([predict], pairs, label_table(kind), config.num_classes, config.val_limit)
    finally:
        network.train()


def _log_line(config: TrainConfig, record: dict[str, Any]) -> None:
    path = os.path.join(config.output_dir, LOG)
    try:
        with open(path, "a") as stream:
            stream.write(strict_json.dumps(record) + "\n")
    except OSError as exc:  # a full disk: one line naming the log
        raise write_failure(exc, path) from None
