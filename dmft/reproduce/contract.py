"""What a claim module provides, and what its run returns.

A claim module defines a ``Claim``: its name, the paper's statement, the figures it draws
(each figure can be reproduced on its own under its name), a frozen settings object for
the full run and one for the quick run, and a run function

    run(settings, output_dir, figures) -> Outcome

that solves and simulates what the chosen ``figures`` need, writes their PNGs and CSVs
into ``output_dir`` and returns the statistical tests (``verdicts.Test``) with the
numbers behind them. ``dmft.reproduce.run`` adds the verdict, the provenance and the
wall time and writes claims.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from .verdicts import Test


@dataclass(frozen=True)
class Outcome:
    """What one run of a claim measured and wrote (file names relative to the output directory)."""

    tests: tuple[Test, ...]
    figures: tuple[str, ...]
    tables: tuple[str, ...]
    findings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


Runner = Callable[[Any, Path, tuple[str, ...]], Outcome]


@dataclass(frozen=True)
class Claim:
    """One of the papers' claims: how to reproduce it at full and at quick size.

    ``figures`` maps each figure's name (a name ``dmft reproduce`` accepts) to what it
    shows; ``paper`` cites the source; ``statement`` is the claim in the papers' words as
    this project reads them.
    """

    name: str
    number: int
    paper: str
    statement: str
    figures: Mapping[str, str]
    full: Any
    quick: Any
    runner: Runner

    def __post_init__(self) -> None:
        for settings in (self.full, self.quick):
            if not (is_dataclass(settings) and settings.__dataclass_params__.frozen):  # type: ignore[attr-defined]
                raise TypeError(f"{self.name}: settings must be frozen dataclasses")

    def settings(self, quick: bool) -> Any:
        return self.quick if quick else self.full


def settings_dict(settings: Any) -> dict[str, Any]:
    """A claim's settings as plain data, for claims.json and the CSV headers."""
    return asdict(settings)
