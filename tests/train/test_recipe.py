"""fanet-train's recipe, wired end to end: synthetic street scenes learnt to >= 80 % mIoU
on held-out scenes; the checkpoint exports, and PyTorch, ONNX Runtime FP32, FP16 and INT8
are evaluated side by side."""

import json

from fanet.cli.device import eval as fanet_eval
from fanet.cli.host import export


def test_training_reaches_80_percent_miou_on_held_out_scenes(trained_run):
    out = trained_run
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    (validation,) = [r for r in records if "val_miou" in r]
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; validation mIoU {validation['val_miou']:.4f}")
    assert len(losses) == 200 and losses[-1] < 0.5 * losses[0]
    assert validation["iteration"] == 200 and validation["val_miou"] >= 0.80
    assert (out / "best.pth").is_file() and (out / "last.pth").is_file()


def test_the_checkpoint_exports_and_every_precision_is_evaluated(
    synthetic_cityscapes, trained_run, tmp_path, capsys
):
    root, out = synthetic_cityscapes, trained_run
    exported = tmp_path / "exported"
    args = ["--weights", str(out / "last.pth"), "--res", "128x256", "--fp16", "--int8"]
    args += ["--calib-data", str(root), "--calib-count", "16", "-o", str(exported), "-q"]
    assert export.main(args) == 0
    capsys.readouterr()
    models = [
        out / "last.pth",
        exported / "fanet18_128x256.onnx",
        exported / "fanet18_128x256_fp16.onnx",
        exported / "fanet18_128x256_int8_onnxruntime.onnx",
    ]
    command = [arg for model in models for arg in ("--model", str(model))]
    command += ["--cityscapes", str(root), "-q"]
    assert fanet_eval.main(command) == 0
    table = capsys.readouterr().out
    with capsys.disabled():  # the table, in the test log: per class, a column per precision
        print("\n" + table)
    assert fanet_eval.main([*command, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    pytorch, fp32, fp16, int8 = (m["miou"] for m in report["models"])
    assert abs(pytorch - fp32) <= 0.005  # 0.5 mIoU points
    assert fp32 >= 0.8 and fp16 >= fp32 - 0.01 and int8 >= fp32 - 0.05
