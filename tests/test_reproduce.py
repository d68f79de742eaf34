"""`dmft reproduce`: the papers' claims at quick size, their verdicts and their files.

The quick runs are small (seconds each), so most of their tests cannot decide; these
tests assert the verdicts the quick size does decide (a large effect, the regimes, the
agreement of the gap distributions), that nothing comes out "does not hold", and the
contract of the files: claims.json with every test's estimates and verdict, CSV tables
naming the code and the parameters, the figures.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from dmft import reproduce
from dmft._version import source_digest
from dmft.cli import main
from dmft.reproduce.output import read_table
from dmft.reproduce.runs import DmftSize
from dmft.reproduce.verdicts import (FAILS, HOLDS, INCONCLUSIVE, VERDICTS, Estimate, agreement, change, combine,
                                     jsonable, ordering, positive_association, rank_correlation)

CLAIM_NAMES = [claim.name for claim in reproduce.CLAIMS]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Every claim reproduced at quick size through the command line: name -> (directory, claims.json)."""
    runs = {}
    for name in CLAIM_NAMES:
        directory = tmp_path_factory.mktemp(name)
        result = CliRunner().invoke(main, ["reproduce", name, "--output", str(directory), "--quick"])
        assert result.exit_code == 0, result.output
        assert f"({name})" in result.output
        runs[name] = directory, json.loads((directory / "claims.json").read_text())
    return runs


def verdicts(document):
    return {test["quantity"]: test["verdict"] for test in document["tests"]}


def test_list_names_every_claim_and_figure():
    result = CliRunner().invoke(main, ["reproduce", "--list"])
    assert result.exit_code == 0
    for claim in reproduce.CLAIMS:
        assert claim.name in result.output and f"claim {claim.number}" in result.output
        for figure in claim.figures:
            assert figure in result.output
    assert sorted(claim.number for claim in reproduce.CLAIMS) == [1, 2, 3, 4, 5, 6, 7]


def test_unknown_names_and_missing_output_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "no-such-claim", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "unknown reproduction" in result.output
    result = CliRunner().invoke(main, ["reproduce", "fdt-line"])
    assert result.exit_code == 2 and "--output" in result.output


@pytest.mark.parametrize("name", CLAIM_NAMES)
def test_claims_json_has_every_test_with_its_errors_and_provenance(quick, name):
    directory, document = quick[name]
    claim = next(c for c in reproduce.CLAIMS if c.name == name)
    assert document["claim"] == claim.number and document["quick"] is True
    assert document["dmft_version"] == dmft.__version__ and document["source_digest"] == source_digest()
    assert document["settings"] and document["statement"] == claim.statement
    assert document["verdict"] in VERDICTS and document["reason"]
    assert document["wall_time_seconds"] > 0
    assert document["tests"]
    for test in document["tests"]:
        assert test["verdict"] in VERDICTS and test["reason"], test
        for side in ("dmft", "simulation"):
            if test[side] is not None:
                assert set(test[side]) == {"value", "stderr", "runs", "source"}
    # The claim's verdict is the combination of its claim tests', the checks' of the others.
    for key, role in (("verdict", "claim"), ("checks", "check")):
        kinds = {test["verdict"] for test in document["tests"] if test["role"] == role}
        verdict = document[key] if key == "verdict" else document[key]["verdict"]
        if kinds:
            assert verdict == (FAILS if FAILS in kinds else INCONCLUSIVE if INCONCLUSIVE in kinds else HOLDS)
        else:
            assert verdict is None
    for figure in document["figures"]:
        assert (directory / figure).stat().st_size > 10_000
    for table in document["tables"]:
        header, rows = read_table(directory / table)
        assert header["source_digest"] == source_digest() and header["dmft_version"] == dmft.__version__
        assert json.loads(header["parameters"])["model"]
        assert rows


@pytest.mark.parametrize("name", CLAIM_NAMES)
def test_nothing_is_contradicted_at_quick_size(quick, name):
    # With few runs the thresholds are wide: a "does not hold" here would be a real contradiction.
    assert FAILS not in verdicts(quick[name][1]).values(), quick[name][1]["reason"]


def test_learning_curves_resolve_the_effect_of_the_batch_fraction(quick):
    tests = verdicts(quick["learning-curves"][1])
    assert tests["test error, gd"] == HOLDS  # DMFT and simulation agree
    assert tests["final test error changes (SGD, b = 0.1 against b = 0.7)"] == HOLDS
    assert tests["final training loss changes (SGD, b = 0.1 against b = 0.7)"] == HOLDS
    assert tests["half-decay time of the training loss changes (SGD, b = 0.1 against b = 0.7)"] == HOLDS


def test_label_noise_raises_the_teacher_students_errors(quick):
    tests = verdicts(quick["teacher-student"][1])
    for algorithm in ("GD", "SGD"):
        assert tests[f"label noise ε = 0.2 raises the final test error ({algorithm})"] == HOLDS
        assert tests[f"label noise ε = 0.2 raises the final training loss ({algorithm})"] == HOLDS


def test_momentum_claim_measures_every_momentum_on_both_sides(quick):
    directory, document = quick["momentum"]
    findings = document["findings"]
    # Without momentum there is no counterpart to run; with it, the counterpart is there.
    assert set(findings["0"]) == {"DMFT", "simulation"}
    assert set(findings["0.5"]) == {"DMFT", "simulation", "counterpart", "paired_difference"}
    # The paired difference shares the runs' noise: smaller than the unpaired combined error.
    paired, sides = findings["0.5"]["paired_difference"], findings["0.5"]
    assert paired["stderr"] < math.hypot(sides["DMFT"]["T_eff_stderr"], sides["counterpart"]["T_eff_stderr"])
    langevin = {t["quantity"]: t for t in document["tests"] if t["quantity"].startswith("Langevin")}
    assert len(langevin) == 2 and all(t["role"] == "check" for t in langevin.values())
    header, rows = read_table(directory / "momentum.csv")
    assert {row["side"] for row in rows} >= {"DMFT", "simulation", "counterpart"}


def test_fdt_windows_are_stationary_and_teff_is_resolved(quick):
    tests = verdicts(quick["fdt-line"][1])
    for algorithm in ("sgd", "persistent-sgd"):
        assert tests[f"stationary window ({algorithm}, simulation)"] == HOLDS
        for side in ("DMFT", "simulation"):
            assert tests[f"T_eff resolved ({algorithm}, {side})"] == HOLDS
    assert tests["stationary window (persistent-sgd, DMFT)"] == HOLDS
    # At t = 24 SGD's DMFT self-overlap still drifts: said, not hidden.
    assert tests["stationary window (sgd, DMFT)"] == INCONCLUSIVE


def test_teff_depends_on_the_persistence_time(quick):
    directory, document = quick["teff-parameters"]
    assert verdicts(document)["T_eff depends on persistence_time (persistent-sgd)"] == HOLDS
    assert document["figures"] == ["teff-vs-b.png", "teff-vs-tau.png"]


def test_distance_and_teff_rank_the_persistence_times_alike(quick):
    directory, document = quick["replica-distance"]
    tests = verdicts(document)
    assert tests["T_eff and D rank the values of persistence_time alike (persistent-sgd)"] == HOLDS
    assert tests["training error above 0.05 at every point at alpha = 4"] == HOLDS
    assert document["findings"]["memory_window"]["used"] in (True, False)
    assert "memory window" in document["notes"][0]


def test_gap_width_says_when_training_has_not_ended(quick):
    document = quick["gap-width"][1]
    tests = verdicts(document)
    # At t = 40 persistent SGD still pushes samples: the comparison is not at the end of training,
    # so even a large difference of the gaps decides nothing.
    assert tests["training loss below 0.0001 at t = 40 (persistent-sgd)"] == INCONCLUSIVE
    orderings = [t for t in document["tests"] if "vs GD" in t["quantity"]]
    assert orderings and all(t["verdict"] == INCONCLUSIVE and t["reason"].startswith("not at the end of training")
                             for t in orderings)
    for key in ("gd", "persistent-sgd"):
        assert tests[f"gap distribution, DMFT against simulation ({key})"] == HOLDS
    assert {t["role"] for t in document["tests"]} == {"claim", "check"}
    # The pile-up at the margin with probe and with exact responses (same draws), against the simulation.
    diagnostic = document["findings"]["responses_at_the_margin"]
    assert diagnostic["size"] == {"samples": 800, "runs": 4, "seed": 2022}
    for side in ("DMFT, probe responses", "DMFT, exact responses", "simulation"):
        assert set(diagnostic[side]["gap - kappa quantile 0.2"]) == {"value", "stderr", "runs", "source"}
    assert document["checks"]["verdict"] in VERDICTS


def test_a_figure_alone_draws_only_that_figure(tmp_path):
    document = reproduce.run("teff-vs-tau", tmp_path, quick=True)
    assert document["figures"] == ["teff-vs-tau.png"] and document["name"] == "teff-vs-tau"
    assert all("persistence_time" in test["quantity"] for test in document["tests"])


def test_same_seed_same_numbers(tmp_path):
    again = reproduce.run("teff-vs-tau", tmp_path, quick=True)
    first = reproduce.run("teff-vs-tau", tmp_path / "second", quick=True)
    for document in (again, first):
        document.pop("wall_time_seconds")
    assert again == first
    assert (tmp_path / "teff-parameters.csv").read_bytes() == (tmp_path / "second" / "teff-parameters.csv").read_bytes()


# ----------------------------------------------------------------------------- the verdict rules


def test_agreement_holds_fails_or_cannot_decide():
    a, b = Estimate(1.0, 0.01, 16), Estimate(1.01, 0.01, 16)
    assert agreement("x", a, b, 1, relevance=0.2).verdict == HOLDS
    assert agreement("x", a, Estimate(1.5, 0.01, 16), 1, relevance=0.2).verdict == FAILS
    assert agreement("x", Estimate(1.0, 0.5, 16), b, 1, relevance=0.2).verdict == INCONCLUSIVE


def test_ordering_and_change_follow_their_threshold():
    large, small = Estimate(2.0, 0.1, 10), Estimate(1.0, 0.1, 10)
    assert ordering("x", large, small, 1, "").verdict == HOLDS
    assert ordering("x", small, large, 1, "").verdict == FAILS
    assert ordering("x", large, Estimate(1.9, 0.1, 10), 1, "").verdict == INCONCLUSIVE
    assert change("x", large, small, 1, relevance=0.1, what="").verdict == HOLDS
    # A difference bounded well below the relevance is "no change"; a loose bound cannot decide.
    assert change("x", large, Estimate(2.0, 0.001, 10), 1, relevance=2.0, what="").verdict == FAILS
    assert change("x", large, Estimate(2.0, 0.1, 10), 1, relevance=0.1, what="").verdict == INCONCLUSIVE
    # Bonferroni: more comparisons, a higher threshold.
    assert ordering("x", large, small, 1, "").threshold < ordering("x", large, small, 100, "").threshold


def test_combine_lets_a_contradiction_win():
    holds = agreement("a", Estimate(1, 0.01, 9), Estimate(1, 0.01, 9), 1, 1.0)
    open_ = agreement("b", Estimate(1, 1, 9), Estimate(1, 1, 9), 1, 0.1)
    fails = ordering("c", Estimate(0, 0.01, 9), Estimate(1, 0.01, 9), 1, "")
    assert combine([holds])[0] == HOLDS
    assert combine([holds, open_])[0] == INCONCLUSIVE
    assert combine([holds, open_, fails])[0] == FAILS and "c" in combine([holds, open_, fails])[1]
    assert combine([])[0] == INCONCLUSIVE


def test_rank_correlation_and_its_bootstrap():
    values = [Estimate(float(v), 0.01, 8) for v in range(5)]
    alike = rank_correlation(values, [Estimate(2.0 * v.value, 0.01, 8) for v in values], seed=1)
    assert alike.rho == 1.0 and alike.p_nonpositive == 0.0
    assert positive_association("x", alike, 1).verdict == HOLDS
    reversed_ = rank_correlation(values, [Estimate(-v.value, 0.01, 8) for v in values], seed=1)
    assert reversed_.rho == -1.0 and positive_association("x", reversed_, 1).verdict == FAILS
    noisy = rank_correlation(values, [Estimate(0.0, 1.0, 8) for _ in values], seed=1)
    assert positive_association("x", noisy, 1).verdict == INCONCLUSIVE
    assert math.isclose(noisy.stderr, rank_correlation(values, [Estimate(0.0, 1.0, 8) for _ in values],
                                                      seed=1).stderr)
    assert np.isfinite(noisy.rho)


def test_jsonable_writes_plain_json():
    document = {"size": DmftSize(samples=10, runs=2, seed=1), "nan": float("nan"), "array": np.arange(2),
                "estimate": Estimate(1.0, math.inf, 3)}
    assert json.loads(json.dumps(jsonable(document), allow_nan=False)) == {
        "size": {"samples": 10, "runs": 2, "seed": 1}, "nan": None, "array": [0, 1],
        "estimate": {"value": 1.0, "stderr": None, "runs": 3, "source": ""}}
