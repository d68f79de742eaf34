"""`dmft compile` and the notice a first run prints while numba compiles."""

from __future__ import annotations

import io
import time

from click.testing import CliRunner

from dmft.cli import main
from dmft.warmup import CompileNotice, all_variants, variants


def test_notice_appears_only_when_the_run_shows_no_progress_in_time():
    """A notice printed on every run would teach users to ignore it; one never printed is useless."""
    slow, fast = io.StringIO(), io.StringIO()
    waiting = CompileNotice(after=0.05, stream=slow)
    moving = CompileNotice(after=0.5, stream=fast)
    moving.progressed()  # the first step arrives before the deadline
    time.sleep(0.3)
    waiting.progressed()
    assert waiting.shown and "compiling kernels, first run only" in slow.getvalue()
    assert not moving.shown and fast.getvalue() == ""
    assert CompileNotice(after=0.0, stream=fast, enabled=False).shown is False  # --quiet or not a terminal


def test_variants_cover_both_kernel_paths_of_each_option():
    """Threaded and serial kernels are compiled separately: a warm-up missing one leaves a first run waiting."""
    default = variants()
    assert {(v.replicas, v.threaded) for v in default} == {(1, False), (1, True), (2, False), (2, True)}
    every = all_variants()
    assert {v.precision for v in every} == {"single", "double", "compact"}
    assert {v.response for v in every} == {"probe", "exact"}
    assert not any(v.replicas == 2 and v.response == "exact" for v in every)  # two replicas take probes only


def test_compile_command_runs_every_default_variant():
    result = CliRunner().invoke(main, ["compile"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    timed = [line for line in lines if line.startswith("  ") and line.endswith(" s")]
    assert len(timed) == len(variants()) + 1  # one line per variant and the simulator
    assert lines[-1].startswith("done in")


def test_compile_command_shares_the_variants_among_processes():
    # Each variant reported once, whichever process compiled it.
    result = CliRunner().invoke(main, ["compile", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    timed = sorted(line.rsplit(None, 2)[0].strip() for line in result.output.splitlines()
                   if line.startswith("  ") and line.endswith(" s"))
    assert timed == sorted([v.describe().strip() for v in variants()] + ["finite-d simulator"])
