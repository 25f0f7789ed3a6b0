"""lwstool: host tools for microlws (CPython)."""
from .errors import LwsToolError

__version__ = "0.1.0"
__all__ = ["LwsToolError"]
