"""Default verification tolerances (a module of its own so the CLI's help can show them without
importing numpy/onnx): an output agrees when max|keras - onnxruntime| <= atol + rtol * max(1, max|ref|)."""
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 0.0
