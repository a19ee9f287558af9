"""The prediction API: verified ONNX models behind a registry alias, swapped without a restart."""
