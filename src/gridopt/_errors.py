"""Exception and warning types raised by gridopt.

Every public entry point validates its input once and raises a subclass of
:class:`GridoptError`; messages say what was found and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "GridoptError",
    "GridoptWarning",
    "InfeasibleError",
    "InputError",
    "RepairWarning",
    "SolverError",
]


class GridoptError(Exception):
    """Base class of every error gridopt raises on purpose."""


class InputError(GridoptError, ValueError):
    """The data handed in is unusable: the message names the rows or values and the fix."""


class InfeasibleError(GridoptError):
    """The rules cannot all hold for this data; carries the numbers that make it so.

    Parameters
    ----------
    message
        Human-readable explanation.
    **numbers
        The figures that make the problem infeasible, kept on ``self.numbers``.
    """

    def __init__(self, message: str, **numbers: float) -> None:
        super().__init__(message)
        self.numbers = dict(numbers)


class SolverError(GridoptError):
    """A solver failed in a way that is not the user's input (a bug or a crash)."""


class GridoptWarning(UserWarning):
    """Base class of gridopt's warnings."""


class RepairWarning(GridoptWarning):
    """Input was repaired (geometry fixed, CRS reprojected, ...); the data says what changed."""
