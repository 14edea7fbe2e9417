"""Send frames to FANet served by Triton Inference Server and get labels back (gRPC).

    fanet-triton --onnx out/fanet18_512x1024.onnx -o models/
    tritonserver --model-repository models/
    python examples/triton_client.py drive.mp4 --model fanet18_512x1024 --url localhost:8001
    python examples/triton_client.py 0 --model fanet18_512x1024_t2 --sequence 7  # a temporal model

The model's config (written by fanet-triton) tells the input size, normalisation and output
kind (its ``fanet.*`` parameters). A temporal model keeps each stream's attention state on
the server: all frames of one stream carry the same sequence ID, the first one
``sequence_start``, the last ``sequence_end``. Frames of many clients without state can be
batched by Triton (``--max-batch`` exports); a temporal stream must stay one sequence.
"""

import argparse
import json
import sys

import numpy as np
import tritonclient.grpc as triton

from fanet.core.postprocess import upsampled_argmax
from fanet.core.preprocess import preprocess
from fanet.media.sources import open_frames


class ModelInfo:
    """What the client needs from the model's config: tensor names, size, normalisation."""

    def __init__(self, config: dict) -> None:
        parameters = {
            k: json.loads(v["string_value"]) for k, v in config.get("parameters", {}).items()
        }
        self.input, self.output = config["input"][0], config["output"][0]
        self.batched = int(config.get("max_batch_size", 0)) > 0
        dims = [int(d) for d in self.input["dims"]]
        height, width = dims[-2:]
        self.size = (height, width) if height > 0 and width > 0 else None
        self.mean = parameters.get("fanet.mean", [0.485, 0.456, 0.406])
        self.std = parameters.get("fanet.std", [0.229, 0.224, 0.225])
        self.logits = parameters.get("fanet.output", "logits") == "logits"
        self.temporal = int(parameters.get("fanet.temporal", 1)) > 1


def request_for(image: np.ndarray, model: ModelInfo) -> triton.InferInput:
    """The model's input for one BGR uint8 frame (resized to the model's size, if fixed)."""
    batch = preprocess(image, size=model.size, mean=model.mean, std=model.std)
    dtype = model.input["data_type"].replace("TYPE_", "")
    batch = batch.astype(np.float16 if dtype == "FP16" else np.float32)
    request = triton.InferInput(model.input["name"], list(batch.shape), dtype)
    request.set_data_from_numpy(batch)
    return request


def labels_from(result: triton.InferResult, model: ModelInfo, size: tuple) -> np.ndarray:
    """H x W train IDs at the frame's ``size`` from the model's answer."""
    output = result.as_numpy(model.output["name"])[0]
    if model.logits:
        return upsampled_argmax(output.astype(np.float32), size)
    import cv2

    return cv2.resize(output.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="image, folder, video, camera index or stream URL")
    parser.add_argument("--model", required=True, help="the model's name in the repository")
    parser.add_argument("--url", default="localhost:8001", help="Triton's gRPC address")
    parser.add_argument("--sequence", type=int, default=1, help="sequence ID (temporal models)")
    parser.add_argument("--frames", type=int, help="stop after N frames")
    args = parser.parse_args(argv)

    client = triton.InferenceServerClient(args.url)
    model = ModelInfo(client.get_model_config(args.model, as_json=True)["config"])
    frames = list(open_frames(args.source)) if model.temporal else open_frames(args.source)
    count = min(len(frames), args.frames or len(frames)) if model.temporal else None
    for index, frame in enumerate(frames):
        if args.frames and index >= args.frames:
            break
        options = {}
        if model.temporal:  # one stream, one sequence: the server keeps its state
            options = dict(
                sequence_id=args.sequence,
                sequence_start=index == 0,
                sequence_end=index + 1 == count,
            )
        result = client.infer(args.model, [request_for(frame.image, model)], **options)
        labels = labels_from(result, model, frame.image.shape[:2])
        print(f"{frame.name}: {len(np.unique(labels))} classes, road {np.mean(labels == 0):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
