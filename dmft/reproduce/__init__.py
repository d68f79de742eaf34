"""The papers' claims, reproduced: DMFT against simulation, figure by figure, with verdicts.

``run(name, output, quick)`` reproduces one claim (or one of its figures) into the
directory ``output``: its PNG figures, the CSV tables behind them and ``claims.json``,
which gives for each statistical test the measured quantity with its Monte Carlo error,
the DMFT and simulation values side by side where both exist, and a verdict (``holds``,
``does not hold`` or ``inconclusive`` at this precision) with the reason. The claim's
``verdict`` combines the tests that weigh on the paper's statement; ``checks`` combines
those that compare the DMFT with the simulation (``verdicts.Test.role``). ``names()``
lists what ``run`` accepts; ``quick=True`` runs a reduced size (seconds, for the tests).

The claims (``dmft reproduce --list``):

1. ``learning-curves`` (2020): learning curves of GD, SGD and persistent SGD agree with
   simulations; the batch fraction and the persistence time change them.
2. ``fdt-line`` (2022): in the under-parametrized regime SGD and persistent SGD become
   stationary and chi against Delta C is a line: T_eff is well defined.
3. ``teff-parameters`` (2022): T_eff against b, tau, the step eta and alpha.
4. ``replica-distance`` (2022): in the over-parametrized regime the distance between two
   replicas behaves like T_eff as a function of the same parameters.
5. ``gap-width`` (2022): noisier algorithms end training with wider decision boundaries.

Beyond the papers (issue 26):

6. ``momentum``: heavy-ball momentum beta rescales time by 1/(1 - beta) (Langevin at
   T/(1 - beta); persistent SGD's T_eff equals that of its counterpart without momentum).
7. ``teacher-student``: learning curves of the teacher-student perceptron with and without
   label noise, DMFT against simulation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from . import fdt_line, gap_width, learning_curves, momentum, replica_distance, teacher_student, teff_parameters
from .contract import Claim, Outcome, settings_dict
from .output import read_claims, write_claims
from .runs import LOG
from .verdicts import ROLE_CHECK, ROLE_CLAIM, combine

CLAIMS: tuple[Claim, ...] = (learning_curves.CLAIM, fdt_line.CLAIM, teff_parameters.CLAIM, replica_distance.CLAIM,
                             gap_width.CLAIM, momentum.CLAIM, teacher_student.CLAIM)
ALL = "all"


def _targets() -> dict[str, tuple[Claim, tuple[str, ...]]]:
    """name -> (claim, the figures it draws): every claim, and every figure of a claim with several."""
    targets: dict[str, tuple[Claim, tuple[str, ...]]] = {}
    for claim in CLAIMS:
        targets[claim.name] = (claim, tuple(claim.figures))
        if len(claim.figures) > 1:
            for figure in claim.figures:
                targets[figure] = (claim, (figure,))
    return targets


def names() -> list[str]:
    """Every name ``run`` accepts, claims first, each followed by its figures; and ``all``."""
    return list(_targets()) + [ALL]


def listing() -> str:
    """The text of ``dmft reproduce --list``."""
    lines = []
    for claim in CLAIMS:
        lines.append(f"{claim.name:<18} claim {claim.number} ({claim.paper}): {claim.statement}")
        if len(claim.figures) > 1:
            for figure, what in claim.figures.items():
                lines.append(f"  {figure:<16} figure: {what}")
    lines.append(f"{ALL:<18} every claim above, each into its own subdirectory")
    return "\n".join(lines)


def _threads() -> dict[str, Any]:
    """The thread counts the wall time was measured with (numba's, and the BLAS limit if set)."""
    import numba

    return {"numba": numba.config.NUMBA_NUM_THREADS,
            "blas": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"}


def run(name: str, output: str | os.PathLike, quick: bool = False) -> dict[str, Any]:
    """Reproduce ``name`` (a claim or one of its figures) into the directory ``output``.

    Returns the claims.json document (for ``all``: a mapping claim name -> document).
    """
    output = Path(output)
    if name == ALL:
        return {claim.name: run(claim.name, output / claim.name, quick) for claim in CLAIMS}
    targets = _targets()
    if name not in targets:
        raise ParameterError("name", f"unknown reproduction {name!r}; known: {', '.join(names())}")
    claim, figures = targets[name]
    output.mkdir(parents=True, exist_ok=True)
    settings = claim.settings(quick)
    start = time.perf_counter()
    outcome: Outcome = claim.runner(settings, output, figures)
    wall_time = time.perf_counter() - start
    verdict, reason = combine([test for test in outcome.tests if test.role == ROLE_CLAIM])
    checks = [test for test in outcome.tests if test.role == ROLE_CHECK]
    check_verdict, check_reason = combine(checks) if checks else (None, "no separate check")
    document = {
        "name": name, "claim": claim.number, "claim_name": claim.name, "paper": claim.paper,
        "statement": claim.statement, "figures_drawn": list(figures), "quick": quick,
        "settings": settings_dict(settings), "verdict": verdict, "reason": reason,
        "checks": {"verdict": check_verdict, "reason": check_reason},
        "tests": [test.to_dict() for test in outcome.tests], "findings": outcome.findings,
        "notes": list(outcome.notes), "figures": list(outcome.figures), "tables": list(outcome.tables),
        "wall_time_seconds": round(wall_time, 1), "threads": _threads(),
    }
    write_claims(output / "claims.json", document)
    return read_claims(output / "claims.json")


__all__ = ["ALL", "CLAIMS", "LOG", "Claim", "Outcome", "listing", "names", "run"]
