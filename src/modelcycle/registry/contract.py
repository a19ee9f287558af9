"""What training records on a registered version and serving relies on: names only, no imports.

Kept free of MLflow so the API can start from its cache without importing it.
"""

ONNX_ARTIFACT = "model.onnx"
SHA256_TAG = "modelcycle.onnx_sha256"
INPUT_NAME = "features"
SCORE_OUTPUT = "score"
FEATURES_METADATA_KEY = "modelcycle.features"
TRAINED_AT_TAG = "modelcycle.trained_at"  # ISO-8601 UTC; when training finished, by its clock
