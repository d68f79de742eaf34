"""Mutation check of the physics tests: would they notice a small error in the physics?

Run on demand, from the repository (it is not a test module: pytest collects only
``test_*.py`` files, and this one defines no test functions)::

    python tests/mutants.py                 # the control, then every mutant
    python tests/mutants.py --list          # the mutants, and whether each still applies
    python tests/mutants.py --only ridge sim_step --keep
    python tests/mutants.py --markdown      # the table as Markdown, for docs/validation.md
    python tests/mutants.py --only ridge -- tests/test_weight_side_identity.py   # some tests only
    python tests/mutants.py --only A B & python tests/mutants.py --skip-control --only C D   # split in two

Each mutant is one deliberate error of about 5% on a factor, or of one step in a time
index, made by replacing a text that must occur exactly once in its file. The script
takes one snapshot of the work tree (without .git, caches and build outputs), copies it
into a scratch directory per mutant, applies the mutant there, and runs
``python -m pytest -m physics -x`` in that copy, in one process, with ``PYTHONPATH`` and
``NUMBA_CACHE_DIR`` pointing into it: the copy's ``dmft`` is imported
(checked each time), never the editable install, and numba compiles the mutated kernels
afresh. The first failing test kills the mutant; a mutant that passes every test
SURVIVED. An unmutated copy runs first, as a control, and must pass.

Every mutant's text is checked before anything runs: when code moves and a text no
longer occurs exactly once, the script stops and names the mutant to update.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """Replace ``old`` (which must occur exactly once in ``path``) by ``new``."""

    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    models: str  # the physics error it stands for


MUTANTS = (
    # The closure (docs/theory.md §2.2): the kernel rows as the population estimates them.
    Mutant("gamma_c", "dmft/solvers/population.py",
           "gamma=gamma,", "gamma=1.05 * gamma,",
           "Gamma_C = alpha Delta E[f f] 5% too large (the noise covariance of the weights)"),
    Mutant("kernel_k", "dmft/solvers/population.py",
           "response=response,", "response=1.05 * response,",
           "the whole kernel K 5% too large (the weights' linear reaction)"),
    Mutant("mu_hat", "dmft/solvers/population.py",
           "mu_hat=self.problem.dataset.alpha * obs[OBS_MU_HAT],",
           "mu_hat=1.05 * self.problem.dataset.alpha * obs[OBS_MU_HAT],",
           "mu_hat = alpha E[c f] 5% too large (the mean pull along the centre)"),
    Mutant("curvature", "dmft/solvers/kernels/columns.py",
           "acc_response[ch, k] += weight * total", "acc_response[ch, k] += 1.05 * weight * total",
           "the diagonal K[k,k] = alpha Delta E[Lambda_k] 5% too large (the curvature term, probe kernels)"),
    Mutant("probe_response", "dmft/solvers/kernels/paths.py",
           "rows[p, s] = weight_scale * lam_k[s] * deviation / n_probes",
           "rows[p, s] = 1.05 * weight_scale * lam_k[s] * deviation / n_probes",
           "the random-probe estimator of K[k,j], j < k, 5% too large (docs/theory.md §3.3)"),
    Mutant("memory_shift", "dmft/solvers/kernels/past.py",
           "memory[s] += r_kj * F[j, s]", "memory[s] += r_kj * F[j - 1, s]",
           "the memory sum pairs R[k,j] with f_{j-1} instead of f_j (one step of shift)"),
    Mutant("gamma_minus_closure", "dmft/solvers/kernels/population.py",
           "acc_gamma_minus[ch, j] += 0.5 * gamma_minus", "acc_gamma_minus[ch, j] += 0.525 * gamma_minus",
           "Gamma_C - Gamma_ab 5% too large where the two-replica population estimates it"),
    # The weight side (docs/theory.md §2.3, §7).
    Mutant("ridge", "dmft/solvers/weights.py",
           "1.0 - problem.dt * problem.ridge", "1.0 - 1.05 * problem.dt * problem.ridge",
           "the ridge 5% too strong in the DMFT's decay factor 1 - dt lambda"),
    Mutant("langevin_noise", "dmft/solvers/weights.py",
           "2.0 * problem.algorithm.temperature * problem.dt", "2.1 * problem.algorithm.temperature * problem.dt",
           "the Langevin noise variance 2 T dt 5% too large in the DMFT"),
    Mutant("response_row_lag", "dmft/solvers/kernels/weight_side.py",
           "weights = -dt * K[k, : k + 1]", "weights = -dt * K[k - 1, : k + 1]",
           "the recursion of R reads kernel row k-1 instead of k (one step of shift)"),
    Mutant("init_variance", "dmft/solvers/kernels/weight_side.py",
           "C[k + 1, jp] = init_variance * A[k + 1] * A[jp]", "C[k + 1, jp] = 1.05 * init_variance * A[k + 1] * A[jp]",
           "the sigma0^2 A A term of the closed form of C 5% too large"),
    Mutant("gamma_minus_weight_side", "dmft/solvers/kernels/weight_side.py",
           "value = langevin * r[i] + dt2 * (dots[which, i]",
           "value = langevin * r[i] + dt2 * (1.0 + 0.05 * which) * (dots[which, i]",
           "Gamma_C - Gamma_ab 5% too large where it enters C - C_ab on the weight side"),
    # The algorithms (docs/theory.md §1): shared by the DMFT and the simulator.
    Mutant("sgd_selection", "dmft/algorithms.py",
           "return self.effective_batch_fraction, 1.0 - b, b",
           "return self.effective_batch_fraction, 1.0 - b, 1.05 * b",
           "SGD's join probability 5% too large (batch fraction 0.310 instead of 0.3)"),
    Mutant("persistent_selection", "dmft/algorithms.py",
           "dt * (1 - b) / (b * tau), dt / tau", "1.05 * dt * (1 - b) / (b * tau), dt / tau",
           "persistent SGD's leave probability 5% too large (batch fraction 0.290 instead of 0.3)"),
    Mutant("batch_divisor", "dmft/algorithms.py",
           "return self.effective_batch_fraction if self.batch_average else 1.0",
           "return 1.05 * self.effective_batch_fraction if self.batch_average else 1.0",
           "the divisor B of a batch-averaged gradient 5% too large (1.05 b)"),
    # Observables (docs/theory.md §5), shared by the DMFT and the simulator.
    Mutant("test_error", "dmft/datasets.py",
           "sigma = np.sqrt(self.delta * np.maximum(", "sigma = np.sqrt(1.05 * self.delta * np.maximum(",
           "the variance of a fresh preactivation 5% too large in the test error"),
    # The finite-d simulator alone (dmft/simulate.py).
    Mutant("sim_noise", "dmft/simulate.py",
           "noise_scale = math.sqrt(2.0 * algorithm.temperature * dt)",
           "noise_scale = math.sqrt(2.1 * algorithm.temperature * dt)",
           "the simulator's Langevin noise variance 5% too large"),
    Mutant("sim_step", "dmft/simulate.py",
           "active -= dt * (X.T @ Fa)", "active -= 1.05 * dt * (X.T @ Fa)",
           "the simulator's gradient step 5% too long (ridge and noise unchanged)"),
)

# Not copied into a scratch tree: version control, caches, build and documentation outputs.
SKIPPED_AT_ROOT = {".git", ".hypothesis", ".pytest_cache", ".ruff_cache", "site", "build", "dist"}
SKIPPED_ANYWHERE = ("__pycache__", "*.egg-info", "*.pyc", "*.nbi", "*.nbc")
# Seconds a mutant's tests may take before they are stopped (a mutant may hang).
DEFAULT_TIMEOUT = 3 * 3600


class MutantError(Exception):
    """A mutant that no longer applies to the code: its list must be updated."""


@dataclass(frozen=True)
class Outcome:
    """What the tests made of one tree: pytest's exit status, the first failing test
    (None if none), the wall time in seconds, and the end of pytest's output."""

    returncode: int | None  # None: stopped at the timeout
    first_failure: str | None
    seconds: float
    output_tail: str

    @property
    def killed(self) -> bool:
        """A test failed (status 1; 2 when pytest stopped at the failure in another way)."""
        return self.returncode == 1 or (self.returncode == 2 and self.first_failure is not None)

    @property
    def verdict(self) -> str:
        if self.returncode is None:
            return "TIMEOUT"
        if self.returncode == 0:
            return "SURVIVED"
        if self.killed:
            return self.first_failure or "killed (no failing test named: see the output)"
        return f"pytest exit status {self.returncode} (inconclusive)"


def check(mutant: Mutant, root: Path = ROOT) -> None:
    """Raise ``MutantError`` unless the mutant's old text occurs exactly once in its file."""
    path = root / mutant.path
    if not path.is_file():
        raise MutantError(f"{mutant.name}: {mutant.path} does not exist")
    count = path.read_text().count(mutant.old)
    if count != 1:
        raise MutantError(f"{mutant.name}: its old text occurs {count} times in {mutant.path}, not once: "
                          f"update the mutant ({mutant.old!r})")


def apply(mutant: Mutant, tree: Path) -> None:
    """Make the mutant in the copy ``tree``; refuse a replacement that is not valid Python
    (a syntax error would fail every test and count as a kill)."""
    check(mutant, tree)
    path = tree / mutant.path
    text = path.read_text().replace(mutant.old, mutant.new)
    compile(text, str(path), "exec")
    path.write_text(text)


def copy_tree(source: Path, destination: Path) -> None:
    """``source`` as it is now (edits not yet committed included), without its caches."""
    skip_anywhere = shutil.ignore_patterns(*SKIPPED_ANYWHERE)
    top = source.resolve()

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(skip_anywhere(directory, names))
        if Path(directory).resolve() == top:
            skipped |= {name for name in names if name in SKIPPED_AT_ROOT or name.startswith("out")}
        return skipped

    shutil.copytree(source, destination, ignore=ignore, symlinks=True)


def child_environment(tree: Path) -> dict[str, str]:
    """Imports from the copy (PYTHONPATH comes before the editable install's finder) and
    numba caches inside it, so that nothing compiled from another tree is loaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["NUMBA_CACHE_DIR"] = str(tree / ".numba_cache")
    env["MPLBACKEND"] = "Agg"
    return env


def imported_package(tree: Path) -> Path:
    """Where ``import dmft`` resolves in the copy's environment; it must be inside the copy."""
    found = subprocess.run([sys.executable, "-c", "import dmft; print(dmft.__file__)"], cwd=tree,
                           env=child_environment(tree), capture_output=True, text=True, check=True)
    location = Path(found.stdout.strip()).resolve()
    if not location.is_relative_to(tree.resolve()):
        raise SystemExit(f"import dmft resolves to {location}, not to the scratch copy {tree}: aborting")
    return location


FAILURE_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
# One test process, whatever pytest's options say (pytest-xdist's --numprocesses): the
# mutants share the machine, and the first failing test is then that of the file order.
SERIAL = ("--numprocesses=0",) if importlib.util.find_spec("xdist") else ()


def run_tests(tree: Path, marker: str, extra: list[str], niceness: int, timeout: float) -> Outcome:
    """``python -m pytest -m MARKER -x`` in ``tree`` under ``nice``; its output is kept in
    ``tree/pytest.log``."""
    command = ["nice", "-n", str(niceness), sys.executable, "-m", "pytest", "-m", marker, "-x", "-q",
               "-p", "no:cacheprovider", *SERIAL, *extra]
    start = time.perf_counter()
    # A session of its own, so that a timeout stops the tests' own subprocesses too.
    process = subprocess.Popen(command, cwd=tree, env=child_environment(tree), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _stop(process)
        output, _ = process.communicate()
        returncode = None
    except BaseException:  # interrupted: stop the tests, which run in a session of their own
        _stop(process)
        process.wait()
        raise
    seconds = time.perf_counter() - start
    (tree / "pytest.log").write_text(output)
    failure = FAILURE_LINE.search(output)
    tail = "\n".join(output.rstrip().splitlines()[-25:])
    return Outcome(returncode, failure.group(1) if failure else None, seconds, tail)


def _stop(process: subprocess.Popen) -> None:
    """Kill the test process and its children (its session's process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_tree(base: Path, label: str, mutant: Mutant | None, args: argparse.Namespace) -> Outcome:
    """Copy the snapshot ``base``, apply ``mutant`` (None: the control), run the tests in the copy."""
    tree = base.parent / label
    try:
        copy_tree(base, tree / "repo")
        repo = tree / "repo"
        if mutant is not None:
            apply(mutant, repo)
        location = imported_package(repo)
        if mutant is None:
            print(f"control: import dmft -> {location}", flush=True)
        return run_tests(repo, args.tests, args.pytest_args, args.nice, args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(tree, ignore_errors=True)


def table(rows: list[tuple[Mutant, Outcome]], markdown: bool) -> str:
    """mutant -> the first failing test or SURVIVED, with the time each took."""
    if markdown:
        lines = ["| mutant | file | killed by | time (s) |", "|---|---|---|---|"]
        lines += [f"| `{m.name}` | `{m.path}` | {_markdown_verdict(o)} | {o.seconds:.0f} |" for m, o in rows]
        return "\n".join(lines)
    width = max(len(m.name) for m, _ in rows)
    return "\n".join(f"{m.name:<{width}}  {o.seconds:7.0f} s  {o.verdict}" for m, o in rows)


def _markdown_verdict(outcome: Outcome) -> str:
    verdict = outcome.verdict
    return f"`{verdict}`" if outcome.killed and outcome.first_failure else f"**{verdict}**"


def list_mutants() -> int:
    """Print every mutant and whether it still applies; 1 if any does not."""
    invalid = 0
    for mutant in MUTANTS:
        try:
            check(mutant)
            status = "ok"
        except MutantError as error:
            status, invalid = f"DOES NOT APPLY: {error}", invalid + 1
        print(f"{mutant.name:<24} {mutant.path:<38} {status}\n{'':<24} {mutant.models}")
    return 1 if invalid else 0


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Apply each mutant to a scratch copy of the repository and run the physics tests on it.",
        epilog="Arguments after -- are passed to pytest (files, -k ...).")
    parser.add_argument("--list", action="store_true", help="list the mutants and check that each applies")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (with pytest.log)")
    parser.add_argument("--markdown", action="store_true", help="print the final table as Markdown")
    parser.add_argument("--tests", default="physics", metavar="EXPR",
                        help="pytest marker expression selecting the tests (default: physics)")
    parser.add_argument("--scratch", default=None, metavar="DIR", help="where to make the copies (default: TMPDIR)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the test processes (default: 10)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per tree (default: 3 h)")
    parser.add_argument("--skip-control", action="store_true",
                        help="no control run (when another run of the same commit has its control: split runs)")
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.pytest_args = argv[cut + 1:]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    if args.list:
        return list_mutants()
    names = [mutant.name for mutant in MUTANTS]
    if len(set(names)) != len(names):
        raise SystemExit("two mutants share a name")
    try:
        for mutant in MUTANTS:  # all of them, so that the list stays valid as code moves
            check(mutant)
    except MutantError as error:
        raise SystemExit(f"mutant list out of date: {error}") from None
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        raise SystemExit(f"unknown mutants: {', '.join(unknown)} (see --list)")
    chosen = [mutant for mutant in MUTANTS if args.only is None or mutant.name in args.only]

    # One snapshot of the work tree for the control and every mutant: the work tree may
    # change while they run (other edits), and they must all judge the same code.
    session = Path(tempfile.mkdtemp(prefix="dmft-mutants-", dir=args.scratch))
    try:
        base = session / "base"
        copy_tree(ROOT, base)
        print(f"snapshot of {ROOT} at {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
        return run_all(base, chosen, args)
    finally:
        if args.keep:
            print(f"kept {session}", flush=True)
        else:
            shutil.rmtree(session, ignore_errors=True)


def run_all(base: Path, chosen: list[Mutant], args: argparse.Namespace) -> int:
    """The control, then each chosen mutant, in copies of ``base``; print the table."""
    for mutant in chosen:
        check(mutant, base)
    control = None if args.skip_control else run_tree(base, "control", None, args)
    if control is not None:
        print(f"control (unmutated)  {control.seconds:.0f} s  "
              f"{'passed' if control.returncode == 0 else control.verdict}", flush=True)
        if control.returncode != 0:
            print(control.output_tail)
            raise SystemExit("the unmutated tree does not pass its tests: no mutant can be judged")
    rows = []
    for mutant in chosen:
        outcome = run_tree(base, mutant.name, mutant, args)
        rows.append((mutant, outcome))
        print(f"{mutant.name}  {outcome.seconds:.0f} s  {outcome.verdict}", flush=True)
        if outcome.returncode != 0 and not outcome.killed:
            print(outcome.output_tail, flush=True)
    killed = sum(outcome.killed for _, outcome in rows)
    print()
    print(table(rows, args.markdown))
    control_note = "no control (--skip-control)" if control is None else f"control {control.seconds:.0f} s"
    print(f"\n{killed} of {len(rows)} mutants killed; {control_note} "
          f"(python -m pytest -m {args.tests!r} -x{' ' + ' '.join(args.pytest_args) if args.pytest_args else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
