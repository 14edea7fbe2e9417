"""fanet-eval: the official Cityscapes mIoU (to 1e-6 against cityscapesscripts' own
evaluation of the same predictions), models side by side, folders, and bad data."""

import json
import shutil
import sys

import cv2
import numpy as np
import pytest

from fanet.cli.device import eval as fanet_eval
from fanet.cli.device import segment

from support.commands import captured


def _eval_json(capsys, *args):
    assert fanet_eval.main([*args, "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def test_miou_equals_cityscapesscripts_on_the_same_predictions(
    synthetic_cityscapes, exported_trained, tmp_path, capsys
):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    root = synthetic_cityscapes
    report = _eval_json(capsys, "--model", str(exported_trained), "--cityscapes", str(root))
    predictions = tmp_path / "pred"
    images = sorted((root / "leftImg8bit" / "val").rglob("*_leftImg8bit.png"))
    for image in images:  # the benchmark server's input: label-ID PNGs
        args = [str(image), "--onnx", str(exported_trained), "--label-ids", "-o", str(predictions)]
        assert segment.main([*args, "-q"]) == 0
    truths = [
        str(p).replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit", "_gtFine_labelIds")
        for p in images
    ]
    predicted = [
        str(predictions / (image.name.replace(".png", "_labelIds.png"))) for image in images
    ]
    settings = official.CArgs()
    settings.__dict__.update(vars(official.args))
    settings.evalInstLevelScore, settings.quiet, settings.JSONOutput = False, True, False
    result = official.evaluateImgLists(predicted, truths, settings)
    (model,) = report["models"]
    official_miou = result["averageScoreClasses"]
    print(f"fanet-eval mIoU {model['miou']:.8f}, cityscapesscripts {official_miou:.8f}")
    assert report["images"] == len(images) == 8
    assert abs(model["miou"] - official_miou) <= 1e-6
    for name, iou in model["iou"].items():
        official_iou = result["classScores"][name]
        assert (iou is None and np.isnan(official_iou)) or abs(iou - official_iou) <= 1e-6, name


@pytest.mark.host
def test_models_side_by_side_with_their_agreement(
    synthetic_cityscapes, trained_checkpoint, exported_trained, capsys
):
    args = ["--model", str(trained_checkpoint), "--model", str(exported_trained)]
    assert (
        fanet_eval.main([*args, "--cityscapes", str(synthetic_cityscapes), "--limit", "3", "-q"])
        == 0
    )
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split() == ["class", "last", "fanet18_128x256"]
    assert [line.split()[0] for line in lines[2:21]][:3] == ["road", "sidewalk", "building"]
    miou = next(line for line in lines if line.startswith("mIoU")).split()[1:]
    agreement = next(line for line in lines if line.startswith("agreement")).split()[-2:]
    assert len(miou) == 2 and abs(float(miou[0]) - float(miou[1])) <= 0.5  # PyTorch vs ONNX
    assert float(agreement[0]) == 100.0 and float(agreement[1]) > 99.0
    assert "3 images" in table


def _folder(tmp_path, synthetic_cityscapes, count=3):
    """Images and train-ID label PNGs, as a user's own scenes come."""
    from fanet.evaluation.scoring import label_table

    images, labels = tmp_path / "img", tmp_path / "gt"
    images.mkdir(), labels.mkdir()
    sources = sorted((synthetic_cityscapes / "leftImg8bit" / "val").rglob("*.png"))[:count]
    for index, source in enumerate(sources):
        shutil.copy(
            source, images / f"scene{index}.jpg" if index == 0 else images / f"scene{index}.png"
        )
        ids = cv2.imread(
            str(source)
            .replace("leftImg8bit", "gtFine", 1)
            .replace("_leftImg8bit", "_gtFine_labelIds"),
            -1,
        )
        cv2.imwrite(
            str(labels / f"scene{index}_trainIds.png"), label_table("label_ids").lookup[ids]
        )
    return images, labels


def test_a_folder_of_images_and_train_id_labels(
    synthetic_cityscapes, exported_trained, tmp_path, capsys
):
    images, labels = _folder(tmp_path, synthetic_cityscapes)
    report = _eval_json(
        capsys, "--model", str(exported_trained), "--images", str(images), "--labels", str(labels)
    )
    assert report["images"] == 3 and report["models"][0]["miou"] > 0.6


def test_label_ids_read_as_train_ids_are_named_with_the_flag_that_reads_them(
    synthetic_cityscapes, exported_trained, tmp_path, capsys, caplog
):
    images, labels = _folder(tmp_path, synthetic_cityscapes, count=2)
    sources = sorted((synthetic_cityscapes / "leftImg8bit" / "val").rglob("*.png"))[:2]
    for index, source in enumerate(sources):  # the raw label IDs, where train IDs were
        label = str(source).replace("leftImg8bit", "gtFine", 1)
        shutil.copy(
            label.replace("_leftImg8bit", "_gtFine_labelIds"), labels / f"scene{index}_trainIds.png"
        )
    args = ["--model", str(exported_trained), "--images", str(images), "--labels", str(labels)]
    _eval_json(capsys, *args)
    assert (
        "counted as ignored (Cityscapes label IDs read as train IDs? pass --label-kind "
        "label_ids)" in caplog.text
    )
    caplog.clear()
    report = _eval_json(capsys, *args, "--label-kind", "label_ids")
    assert report["unknown_label_pixels"] == 0 and "--label-kind" not in caplog.text


def test_bad_data_is_skipped_and_counted(
    synthetic_cityscapes, exported_trained, tmp_path, capsys, caplog
):
    images, labels = _folder(tmp_path, synthetic_cityscapes, count=4)
    (labels / "scene1_trainIds.png").unlink()  # an image without a label
    small = cv2.imread(str(labels / "scene2_trainIds.png"), -1)
    cv2.imwrite(str(labels / "scene2_trainIds.png"), small[:10, :10])  # another size
    wrong = cv2.imread(str(labels / "scene3_trainIds.png"), -1)
    wrong[:4, :4] = 77  # not a train ID
    cv2.imwrite(str(labels / "scene3_trainIds.png"), wrong)
    report = _eval_json(
        capsys, "--model", str(exported_trained), "--images", str(images), "--labels", str(labels)
    )
    assert report["images"] == 2
    assert report["skipped"] == {
        "without a label": 1,
        "label of another size or not one channel": 1,
    }
    assert report["unknown_label_pixels"] == 16
    assert "16 pixels hold label IDs outside" in caplog.text


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--cityscapes", "ROOT", "--split", "test"],
            "has no leftImg8bit/test folder (splits found: train, val)",
        ),
        (["--cityscapes", "EMPTY"], "has no leftImg8bit/val folder"),
        (["--images", "EMPTY", "--labels", "EMPTY"], "no images in"),
        ([], "no data: pass --cityscapes ROOT"),
    ],
)
def test_bad_requests_are_one_line(synthetic_cityscapes, exported_trained, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [
        a.replace("ROOT", str(synthetic_cityscapes)).replace("EMPTY", str(tmp_path / "empty"))
        for a in args
    ]
    command = [
        sys.executable,
        "-m",
        "fanet.cli.device.eval",
        "--model",
        str(exported_trained),
        *args,
    ]
    result = captured(
        command,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_labels_that_are_all_ignored_are_an_error_not_a_dash(
    synthetic_cityscapes, exported_trained, tmp_path, capsys
):
    images, labels = _folder(tmp_path, synthetic_cityscapes)
    for path in labels.iterdir():
        cv2.imwrite(str(path), np.full((128, 256), 255, np.uint8))  # void everywhere
    args = ["--model", str(exported_trained), "--images", str(images), "--labels", str(labels)]
    assert fanet_eval.main([*args, "-q"]) == 1
    error = capsys.readouterr().err
    assert "no label pixel of the 3 images is one of the 19 classes" in error
    assert "pass --label-kind label_ids" in error and error.count("\n") == 1


def test_two_models_of_the_same_file_name_get_distinct_columns(
    synthetic_cityscapes, exported_trained, tmp_path, capsys
):
    copies = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for suffix in (".onnx", ".json"):
            shutil.copy(exported_trained.with_suffix(suffix), tmp_path / folder / ("m" + suffix))
        copies += ["--model", str(tmp_path / folder / "m.onnx")]
    args = [*copies, "--cityscapes", str(synthetic_cityscapes), "--limit", "1", "-q"]
    assert fanet_eval.main(args) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["class", "a/m", "b/m"]
