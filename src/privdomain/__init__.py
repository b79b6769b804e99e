"""privdomain: private-domain (私域) operations analytics for the WeChat ecosystem.

A journey simulator that knows the truth it simulated, and the analytics of
Tencent's Youshu boards and beyond, as pure functions over tidy frames.

>>> import privdomain
>>> privdomain.schema.PURCHASE
'pay'
"""

from . import backend, io, schema
from .io import open_dataset, read_dataset, write_dataset
from .validate import ValidationError, validate

__version__ = "0.1.0"

__all__ = [
    "backend",
    "io",
    "schema",
    "open_dataset",
    "read_dataset",
    "write_dataset",
    "validate",
    "ValidationError",
    "__version__",
]
