"""Exceptions raised by dmft. The command line turns each into one line and exit status 2."""

from __future__ import annotations


class DmftError(Exception):
    """Base class of every error dmft raises on purpose."""


class ParameterError(DmftError, ValueError):
    """A parameter is out of its allowed range; ``parameter`` names it (option spelling)."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class DivergenceError(DmftError, ArithmeticError):
    """The dynamics produced NaN/inf or blew up at ``step``; nothing misleading is written."""

    def __init__(self, step: int, message: str):
        self.step = step
        super().__init__(f"step {step}: {message}")
