"""Commands that run on the workstation: fanet-export, fanet-info (PyTorch, onnx)."""
