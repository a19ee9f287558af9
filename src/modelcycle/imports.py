"""One lock for the imports done on first use in worker threads.

The API imports MLflow, SQLAlchemy and the store when a poller first needs them (its start stays
fast). Two threads importing the same package at once can be handed a partially initialised
module when that package imports itself in a circle (CPython accepts one to avoid a deadlock):
SQLAlchemy then fails with "cannot import name … from partially initialized module". Every such
import in a thread runs under this lock; once imported, taking it costs next to nothing.
"""

import threading

FIRST_USE_IMPORTS = threading.RLock()
