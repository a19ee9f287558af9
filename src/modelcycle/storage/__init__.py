"""One filesystem layer for local paths, `s3://` and `gs://`, built on fsspec.

fsspec because DuckDB (`register_filesystem`), polars, pandas and pyarrow all accept its
filesystems, and s3fs/gcsfs are the adapters the Python data stack already trusts for S3 and GCS.
Every write here is atomic: a local file is written aside and renamed; an object is uploaded whole
(a single PUT or a completed multipart upload), so readers never see half of it.
"""

from modelcycle.storage.object_store import ObjectStore, open_store

__all__ = ["ObjectStore", "open_store"]
