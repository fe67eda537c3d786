"""Model packaging: ONNX export with a parity check, an ONNX Runtime backend, slim bundled checkpoints."""
