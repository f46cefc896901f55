"""gridopt: grid-management plans from building footprints.

Re-exports only; the work lives in one module per stage of the data flow
(see :mod:`gridopt.pipeline`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gridopt._errors import (
    GridoptError,
    GridoptWarning,
    InfeasibleError,
    InputError,
    RepairWarning,
    SolverError,
)

try:
    __version__ = version("gridopt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "GridoptError",
    "GridoptWarning",
    "InfeasibleError",
    "InputError",
    "RepairWarning",
    "SolverError",
    "__version__",
]
