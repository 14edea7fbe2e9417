"""Commands that run on the workstation (PyTorch, onnx): fanet-export, fanet-info,
fanet-train."""
