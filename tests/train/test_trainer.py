"""fanet-train's machinery: 2 processes (gloo, torchrun) step as one with the combined
batch; a resumed run continues the same loss curve; video training on sequences; bad
input is one clear line."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fanet.cli.host import train
from fanet.core.synthetic import write_cityscapes

from support.scenes import write_sequences
from support.small_disk import exit_code_and_names, run_on_small_disk, small_disk_available

SMALL = ["--crop", "64x128", "--workers", "0", "--no-val", "-q"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    write_cityscapes(str(root), "train", 8, seed=1, size=(96, 192))
    write_cityscapes(str(root), "val", 2, seed=2, size=(96, 192))
    return root


def _losses(folder):
    lines = (Path(folder) / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def _weights(folder):
    return torch.load(Path(folder) / "last.pth", weights_only=True)["model_state"]


def test_two_processes_step_as_one_with_the_combined_batch(scenes, tmp_path):
    """Frozen BatchNorm statistics and plain cross-entropy: what two processes average is
    then exactly the one-process gradient of the combined batch (up to float sums)."""
    args = ["--cityscapes", str(scenes), "--batch", "4", "--iters", "3", *SMALL]
    args += ["--freeze-bn", "--loss", "ce"]
    assert train.main([*args, "-o", str(tmp_path / "one")]) == 0
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    command += ["-m", "fanet.cli.host.train", *args, "-o", str(tmp_path / "two")]
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    worst = max(float((one[k].float() - two[k].float()).abs().max()) for k in one)
    moved = max(float((one[k].float() - _weights_at_start()[k].float()).abs().max()) for k in one)
    print(f"largest weight difference one vs two processes {worst:.2e} (largest step {moved:.2e})")
    assert worst <= 1e-5 < moved  # tolerance: float32 sums in another order
    assert _losses(tmp_path / "one") == pytest.approx(_losses(tmp_path / "two"), rel=1e-5)


def _weights_at_start():
    from fanet.model import create_model

    torch.manual_seed(0)
    return create_model("fanet18").state_dict()


def test_a_resumed_run_continues_the_same_loss_curve(scenes, tmp_path):
    args = ["--cityscapes", str(scenes), "--batch", "4", "--iters", "6", *SMALL]
    assert train.main([*args, "-o", str(tmp_path / "whole")]) == 0
    halves = [*args, "-o", str(tmp_path / "halves")]
    assert train.main([*halves, "--stop-after", "3"]) == 0
    assert len(_losses(tmp_path / "halves")) == 3
    assert train.main([*halves, "--resume"]) == 0  # epoch 2 of 4 images each, mid-way
    whole, halves_losses = _losses(tmp_path / "whole"), _losses(tmp_path / "halves")
    print("whole run", whole, "\nresumed  ", halves_losses)
    assert halves_losses == pytest.approx(whole, rel=1e-6)
    saved = torch.load(tmp_path / "halves" / "last.pth", weights_only=True)
    assert saved["iteration"] == 6 and set(saved["aux_state"]) >= {"clslayer_32.conv_out.weight"}


def test_video_training_reads_the_frame_before_each_labelled_one(tmp_path):
    root = tmp_path / "sequences"
    write_sequences(str(root), "train", 6, seed=1, size=(64, 128), before=1)
    args = ["--cityscapes", str(root), "--temporal", "2", "--batch", "2", "--iters", "3", *SMALL]
    assert train.main([*args, "-o", str(tmp_path / "run")]) == 0
    assert len(_losses(tmp_path / "run")) == 3
    settings = torch.load(tmp_path / "run" / "last.pth", weights_only=True)["settings"]
    assert settings["temporal"] == 2
    (root / "leftImg8bit_sequence" / "train" / "synthcity").rename(root / "elsewhere")
    code, stderr = _run(*args, "-o", str(tmp_path / "run2"))
    assert code == 1 and "none of the 6 labelled images can be used" in stderr


def _one_step(root, out):
    """fanet-train's arguments for one iteration on ``root``, written to ``out``."""
    return ["--cityscapes", str(root), "--batch", "4", "--iters", "1", *SMALL, "-o", str(out)]


def _run(*args):
    command = [sys.executable, "-m", "fanet.cli.host.train", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--split", "test"], "has no leftImg8bit/test folder"),
        (["--batch", "16"], "8 training images cannot fill a --batch of 16"),
        (["--backbone", "BACKBONE"], "does not fit the fanet18 encoder"),
        (["--resume"], "no checkpoint to resume from"),
        (["--images", "IMAGES", "--labels", "IMAGES"], "give --cityscapes, or --images"),
    ],
)
def test_bad_input_is_one_line(scenes, tmp_path, extra, message):
    backbone = tmp_path / "resnet50.pth"
    torch.save(
        {"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv3.weight": torch.zeros(1)},
        backbone,
    )
    extra = [e.replace("BACKBONE", str(backbone)).replace("IMAGES", str(scenes)) for e in extra]
    code, stderr = _run(*_one_step(scenes, tmp_path / "run"), *extra)
    assert code == 1 and "Traceback" not in stderr, stderr
    assert message in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty -o folder


def test_a_crop_larger_than_the_images_is_refused(scenes, tmp_path):
    code, stderr = _run(*_one_step(scenes, tmp_path / "run"), "--crop", "512x1024")
    assert code == 1 and stderr.strip().splitlines()[-1] == (
        "fanet-train: error: --crop 512x1024 is larger than the training images (at most "
        "96x192): pass --crop 96x192 or smaller"
    )


def test_help_gives_the_recipes_defaults_and_workers_fit_the_machine(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default 1024x1024;" in text and "(default 16)" in text and "(default 80000)" in text
    assert train.build_parser().parse_args([]).workers == min(4, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--temporal", "0"], "the temporal window must be a whole number of frames >= 1, got 0"),
        (["--lr", "nan"], "argument --lr: expected a finite number > 0, got nan"),
        (["--lr", "-0.01"], "argument --lr: expected a finite number > 0, got -0.01"),
        (["--workers", "-1"], "argument --workers: expected a number >= 0, got -1"),
        (["--weight-decay", "inf"], "expected a finite number >= 0, got inf"),
    ],
)
def test_absurd_numbers_are_usage_errors(scenes, tmp_path, extra, message):
    code, stderr = _run(*_one_step(scenes, tmp_path / "run"), *extra)
    assert code == 2 and message in stderr.strip().splitlines()[-1], stderr
    assert not (tmp_path / "run").exists()


def test_images_without_labels_are_skipped_and_counted(scenes, tmp_path, caplog):
    root = tmp_path / "partial"
    write_cityscapes(str(root), "train", 5, seed=1, size=(96, 192))
    next((root / "gtFine" / "train").rglob("*.png")).unlink()
    args = _one_step(root, tmp_path / "run")
    assert train.main([a for a in args if a != "-q"]) == 0
    assert "skipped 1 images without a label" in caplog.text


def test_a_folder_with_a_run_needs_resume_or_force(scenes, tmp_path):
    args = _one_step(scenes, tmp_path / "run")
    assert train.main(args) == 0
    code, stderr = _run(*args)
    assert code == 1 and "pass --resume to continue it, --force to start again" in stderr
    assert train.main([*args, "--force"]) == 0


def test_a_truncated_image_in_a_worker_is_skipped_and_counted(tmp_path):
    """A worker process cannot decode one image: the run goes on with the next sample,
    names the image once, counts it in its record, and saves its checkpoint."""
    root = tmp_path / "data"
    write_cityscapes(str(root), "train", 4, seed=1, size=(96, 192))
    broken = sorted((root / "leftImg8bit" / "train").rglob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:300])  # a header, then nothing
    out = tmp_path / "run"
    args = ["--cityscapes", str(root), "--batch", "4", "--iters", "2", "--crop", "64x128"]
    args += ["--workers", "1", "--no-val", "--json", "-o", str(out)]
    command = [sys.executable, "-m", "fanet.cli.host.train", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    record = json.loads(result.stdout)
    assert record["skipped"] == [f"cannot decode {broken}"] and record["iteration"] == 2
    assert f"cannot decode {broken}: skipped" in result.stderr
    assert "1 training samples could not be decoded and were skipped" in result.stderr
    assert (out / "last.pth").is_file()


def test_an_empty_checkpoint_to_resume_says_it_is_empty(scenes, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pth").write_bytes(b"")
    code, stderr = _run(*_one_step(scenes, tmp_path / "run"), "--resume")
    assert code == 1 and stderr.strip().splitlines()[-1].endswith(
        f"cannot read training checkpoint {tmp_path / 'run' / 'last.pth'}: it is empty"
    )


def test_a_log_that_cannot_be_written_is_one_line_naming_it(scenes, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").mkdir()  # as unwritable as a full disk, and portable
    code, stderr = _run(*_one_step(scenes, tmp_path / "run"), "--force")
    assert code == 1 and "Traceback" not in stderr, stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"fanet-train: error: cannot write {tmp_path / 'run' / 'log.jsonl'}: Is a directory"
        )
    )


@pytest.mark.skipif(not small_disk_available(), reason="cannot mount a small tmpfs here")
def test_a_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_temporary(scenes, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    command = [sys.executable, "-m", "fanet.cli.host.train", *_one_step(scenes, out)]
    result = run_on_small_disk(str(out), 8, command)
    code, left = exit_code_and_names(result)
    assert code == 1 and "Traceback" not in result.stderr, result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"fanet-train: error: cannot write {out / 'last.pth'}: ")
    )
    assert "MB free in" in result.stderr and left == ["log.jsonl"]


def test_a_killed_runs_half_written_checkpoint_is_removed_by_the_next_run(scenes, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    left = out / ".last.pth.ab12cd34.part"
    left.write_bytes(b"cut short")
    hours_ago = time.time() - 2 * 3600
    os.utime(str(left), (hours_ago, hours_ago))
    code, stderr = _run(*_one_step(scenes, out))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["last.pth", "log.jsonl"]
