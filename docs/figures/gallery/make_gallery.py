"""Write docs/gallery.md from the full reproductions' claims.json files in this directory.

    dmft reproduce all --output docs/figures/gallery      # the full runs (see docs/gallery.md for times)
    python docs/figures/gallery/make_gallery.py            # this page

Every number on the page is read from a claims.json here; the prose around the numbers
(what the paper says, what we find) is in ``FINDINGS`` below and cites them by name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent.parent / "gallery.md"
ORDER = ("learning-curves", "fdt-line", "teff-parameters", "replica-distance", "gap-width", "momentum",
         "teacher-student")
TITLES = {"learning-curves": "Learning curves, DMFT against simulation",
          "fdt-line": "A stationary state where χ against ΔC is a line",
          "teff-parameters": "T_eff against the problem parameters",
          "replica-distance": "The replica distance behaves like T_eff",
          "gap-width": "Noisier algorithms, wider decision boundaries",
          "momentum": "Momentum rescales time",
          "teacher-student": "The teacher-student perceptron, with and without label noise"}
MARK = {"holds": "✅ holds", "does not hold": "❌ does not hold", "inconclusive": "❔ inconclusive",
        None: "—"}


def number(value: float | None, error: float | None = None) -> str:
    """'0.0123 ± 0.0004', with the value rounded to the error's second significant digit."""
    if value is None:
        return "—"
    if error is None or not math.isfinite(error) or error == 0:
        return f"{value:.4g}"
    digits = max(0, 1 - int(math.floor(math.log10(abs(error)))))
    if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3 and digits > 6):
        return f"{value:.3g} ± {error:.2g}"
    return f"{value:.{digits}f} ± {error:.{digits}f}".replace("-0.000", "0.000")


def estimate(entry: dict[str, Any] | None) -> str:
    return "" if entry is None else number(entry["value"], entry["stderr"])


def tests_table(tests: list[dict[str, Any]], indent: str = "") -> str:
    lines = ["| test | DMFT | simulation | statistic / threshold | verdict |", "|---|---|---|---|---|"]
    for test in tests:
        statistic = test["statistic"]
        threshold = test["threshold"]
        stat = "" if statistic is None else f"{statistic:.3g} / {threshold:.3g}" if threshold is not None \
            else f"{statistic:.3g}"
        role = " (check)" if test["role"] == "check" else ""
        lines.append(f"| {test['quantity']}{role} | {estimate(test['dmft'])} | {estimate(test['simulation'])} | "
                     f"{stat} | {MARK[test['verdict']]} |")
    return "\n".join(indent + line for line in lines)


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name / "claims.json").read_text())


def test_named(document: dict[str, Any], quantity: str) -> dict[str, Any]:
    return next(t for t in document["tests"] if t["quantity"] == quantity)


def section(document: dict[str, Any]) -> str:
    name = document["name"]
    parts = [f"## {document['claim']}. {TITLES[name]} {{#{name}}}", "",
             f"> **{document['paper']}.** {document['statement']}", "",
             f"**Verdict: {MARK[document['verdict']]}.** {document['reason']}."]
    checks = document["checks"]
    if checks["verdict"] is not None:
        parts.append(f"DMFT against simulation: {MARK[checks['verdict']]} ({checks['reason']}).")
    parts.append("")
    parts += [FINDINGS[name](document), ""]
    for figure in document["figures"]:
        parts += [f"![{name}: {figure}](figures/gallery/{name}/{figure})", ""]
    key = [t for t in document["tests"] if KEY_TESTS[name](t)]
    if key:
        parts += [tests_table(key), ""]
    parts += [f'??? note "All {len(document["tests"])} tests of claim {document["claim"]}"', "",
              tests_table(document["tests"], "    "), ""]
    files = ", ".join(f"[`{t}`](figures/gallery/{name}/{t})" for t in document["tables"])
    threads = document["threads"]
    parts += [f"Numbers: {files}, [`claims.json`](figures/gallery/{name}/claims.json). "
              f"`dmft reproduce {name} --output DIR` took {document['wall_time_seconds']:.0f} s "
              f"(numba threads: {threads['numba']}, BLAS threads: {threads['blas']}; a shared 2-core machine). "
              f"Source digest `{document['source_digest'][:12]}`.", ""]
    for note in document["notes"]:
        parts.append(f"- {note}")
    return "\n".join(parts).rstrip() + "\n"


# ----------------------------------------------------------------------------- per claim: the key tests and the prose


KEY_TESTS = {
    "learning-curves": lambda t: "changes" in t["quantity"],
    "fdt-line": lambda t: True,
    "teff-parameters": lambda t: True,
    "replica-distance": lambda t: True,
    "gap-width": lambda t: t["role"] == "claim",
    "momentum": lambda t: True,
    "teacher-student": lambda t: t["role"] == "claim",
}


def value(entry: dict[str, Any]) -> str:
    return number(entry["value"], entry["stderr"])


def claim_tests(d: dict[str, Any], *words: str) -> list[dict[str, Any]]:
    return [t for t in d["tests"] if all(word in t["quantity"] for word in words)]


def findings_learning_curves(d: dict[str, Any]) -> str:
    s = d["settings"]
    f = d["findings"]
    agreements = [t for t in d["tests"] if "changes" not in t["quantity"]]
    worst = max(agreements, key=lambda t: t["statistic"])
    low, high = min(s["sgd_batch_fractions"]), max(s["sgd_batch_fractions"])
    short, long = min(s["persistence_times"]), max(s["persistence_times"])
    b = s["persistent_batch_fraction"]
    sgd_low, sgd_high = f[f"sgd b={low:g}"], f[f"sgd b={high:g}"]
    p_short, p_long = f[f"persistent-sgd b={b:g} tau={short:g}"], f[f"persistent-sgd b={b:g} tau={long:g}"]
    half = "half-decay time of the training loss"
    offsets = [f[k]["final test error"]["simulation"]["value"] - f[k]["final test error"]["dmft"]["value"] for k in f]
    return f"""**Setup.** The two-cluster mixture of the 2020 paper (gmm2, α = 2, Δ = 0.5, ρ = 0.5,
logistic loss, ridge λ = 0.1, σ₀² = 1, partial-sum minibatch gradient), step η = {s['dt']:g}, run to t =
{s['time']:g}: GD, SGD at b = {', '.join(f'{v:g}' for v in s['sgd_batch_fractions'])}, persistent SGD at
b = {b:g} and τ = {', '.join(f'{v:g}' for v in s['persistence_times'])}. DMFT: {s['dmft']['samples']:,} effective
samples in {s['dmft']['runs']} independent runs; simulations at d = {s['simulation']['dimension']} (n = 2000),
{s['simulation']['seeds']} seeds. The curves are compared at every unit of time, {worst['details']['points']}
points per curve.

**What we find.** Every test-error and training-loss curve agrees with its simulation: the
largest of the {len(agreements)} curves' largest z-scores is {worst['statistic']:.1f} ({worst['quantity']}),
against a threshold of {worst['threshold']:.1f} for {len(agreements) * worst['details']['points']} compared
points, and each test could have seen a difference of a tenth of its curve's range. The
simulations' final test errors sit {min(offsets):.4f} to {max(offsets):.4f} above the DMFT's, inside
their errors (a finite-d correction of order 1/d would look like this). In the partial-sum convention a
batch fraction b scales the step of every sample by b, so smaller batches descend more slowly and
settle higher: SGD's training loss halves its way down at t = {value(sgd_low[half]['dmft'])} for b = {low:g}
against {value(sgd_high[half]['dmft'])} for b = {high:g}, and ends at {value(sgd_low['final training loss']['dmft'])}
against {value(sgd_high['final training loss']['dmft'])}; the final test error is, by contrast, slightly
*lower* for the smaller batch ({value(sgd_low['final test error']['dmft'])} against
{value(sgd_high['final test error']['dmft'])}). Longer persistence changes where persistent SGD
settles (final test error {value(p_short['final test error']['dmft'])} at τ = {short:g},
{value(p_long['final test error']['dmft'])} at τ = {long:g}; training loss
{value(p_short['final training loss']['dmft'])} and {value(p_long['final training loss']['dmft'])}), but
not measurably how fast: the half-decay times {value(p_short[half]['dmft'])} and
{value(p_long[half]['dmft'])} are not resolved apart, which is the one inconclusive test of this claim.
The simulations give the same numbers (table below and the CSV)."""


def findings_fdt_line(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]

    def halves(algorithm: str, side: str) -> str:
        h = f[algorithm][side]["halves"]
        return (f"{h['T_first']:.3f} on s ∈ [{h['first_half'][0]:g}, {h['first_half'][1]:g}] and "
                f"{h['T_second']:.3f} on [{h['second_half'][0]:g}, {h['second_half'][1]:g}] "
                f"(difference {number(h['difference'], h['difference_stderr'])})")

    def teff(algorithm: str, side: str) -> str:
        return number(f[algorithm][side]["T_eff"], f[algorithm][side]["T_eff_stderr"])

    line = {t["quantity"]: t for t in d["tests"] if "line" in t["quantity"]}
    bend = line["chi against Delta C is a line (persistent-sgd, DMFT)"]
    return f"""**Setup.** The perceptron storing random labels with the square hinge at margin κ = 1 and
no ridge (the constraint satisfaction problem of the 2022 paper) at α = {s['alpha']:g}, above its
capacity 0.52, so the training error stays positive; η = {s['dt']:g}, b = {s['batch_fraction']:g},
τ = {s['persistence_time']:g}, run to t = {s['time']:g}. T_eff is the inverse slope of χ against
the connected ΔC fitted by `dmft.fdt` over the lags s from three noise correlation times to
{s['s_max']:g}, on the curves averaged over the last {s['average_over']:g} time units (DMFT: over final
times; simulation: over reference times {', '.join(f'{t:g}' for t in s['reference_times'])}), with
jackknife errors over {s['dmft']['runs']} independent DMFT runs ({s['dmft']['samples']:,} samples in all)
or {s['simulation']['seeds']} simulation seeds at d = {s['simulation']['dimension']}. The line is tested by
fitting the two halves of the lag window separately.

**What we find.** Both algorithms reach a state that passes the stationarity check on both
sides, and T_eff is resolved and agrees between DMFT and simulation: SGD {teff('sgd', 'DMFT')}
(DMFT) against {teff('sgd', 'simulation')} (simulation), persistent SGD {teff('persistent-sgd', 'DMFT')}
against {teff('persistent-sgd', 'simulation')}. But χ against ΔC is **not one straight line** over
the window: its inverse slope falls from the short to the long lags, for persistent SGD
{halves('persistent-sgd', 'DMFT')} in the DMFT, {bend['statistic']:.1f} standard errors (threshold
{bend['threshold']:.1f}), and {halves('persistent-sgd', 'simulation')} in the simulations; SGD bends the
same way ({halves('sgd', 'DMFT')} in the DMFT, {halves('sgd', 'simulation')} in the simulations), not
yet resolved. So the part of the claim that fails here is the single line: the effective
temperature of this model depends on the time scale over which it is read, by about a
third between lags of a few and of ten time units, and the T_eff of claims 3 and 4 is the
slope over the whole window. The paper's statement is about its own model and windows; we
have not found the window or the parameters where the curve straightens, and we did not
tune ours to find one."""


def findings_teff_parameters(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]
    tests = {t["quantity"]: t for t in d["tests"]}

    def series(key: str) -> str:
        entry = f[key]
        return ", ".join(f"{v:g}: {value(e)}" if e["value"] is not None else f"{v:g}: no fit"
                         for v, e in zip(entry["values"], entry["T_eff"]))

    def rho(key: str) -> str:
        correlation = f[key].get("rank_correlation_with_the_parameter")
        return "—" if correlation is None else number(correlation["rho"], correlation["stderr"])

    def z(quantity: str) -> str:
        t = tests[quantity]
        return f"{t['statistic']:.1f} standard errors against a threshold of {t['threshold']:.1f}"

    sweeps = ", ".join(f"{sweep['parameter'].replace('_', ' ')} ∈ {{{', '.join(f'{v:g}' for v in sweep['values'])}}}"
                       for sweep in s["sweeps"])
    return f"""**Setup.** The under-parametrized perceptron of claim 2 (α = {s['alpha']:g}, square hinge κ = 1,
λ = 0), run to t = {s['time']:g} so that every window is stationary, with one parameter varied at a time
around b = {s['batch_fraction']:g}, τ = {s['persistence_time']:g}, η = {s['dt']:g}, α = {s['alpha']:g}:
{sweeps}. Each point is {s['dmft']['samples']:,} DMFT samples in {s['dmft']['runs']} independent runs (no
simulations: claim 2 checks the DMFT's T_eff against them at the central point). The tests ask
whether T_eff is defined at every value and whether it resolves a dependence on the parameter (the
most significant pair of values, Bonferroni over every pair of every sweep); the direction is reported
as Spearman's ρ of T_eff against the parameter.

**What we find.** T_eff measures the noise and follows the parameters where its errors allow.
Persistent SGD's grows with the persistence time, roughly in proportion ({series('persistent-sgd vs persistence_time')};
{z('T_eff depends on persistence_time (persistent-sgd)')}), and with α for both algorithms (persistent
SGD {series('persistent-sgd vs alpha')}; SGD {series('sgd vs alpha')}). In the partial-sum convention
persistent SGD's T_eff also grows with b ({series('persistent-sgd vs batch_fraction')}); at b = 0.9 its
window starts at 3bτ = 5.4, where χ has reached its plateau, and no slope can be fitted. SGD's T_eff grows
with the step η ({series('sgd vs dt')}, ρ = {rho('sgd vs dt')}), a trend not yet significant
({z('T_eff depends on dt (sgd)')}), while persistent SGD's does not move with η within its errors
({series('persistent-sgd vs dt')}): the telegraph noise of persistent SGD has a finite limit as η → 0,
SGD's vanishes with η. SGD's T_eff against b ({series('sgd vs batch_fraction')}) is small and its errors grow
with b: only b = 0.1 against 0.3 comes near a resolved difference. The claim is inconclusive at this precision
for those three dependences, and holds for the others."""


def findings_replica_distance(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]
    under = s["under"]
    rho = {t["quantity"]: t for t in d["tests"] if "rank" in t["quantity"]}
    pooled = next(t for k, t in rho.items() if "pooled" in k)
    pooled_rho = pooled["details"]["rank_correlation"]

    def r(algorithm: str, parameter: str) -> str:
        correlation = f[f"{algorithm} vs {parameter}"]["rank_correlation"]
        return number(correlation["rho"], correlation["stderr"])

    def series(algorithm: str, parameter: str, measure: str) -> str:
        entry = f[f"{algorithm} vs {parameter}"]
        return ", ".join(f"{value(e)}" if e["value"] is not None else "no fit"
                         for e in entry[measure])

    sim = {t["quantity"]: t for t in d["tests"] if t["role"] == "check"}
    psgd_sim = sim["final distance D, DMFT against simulation (persistent-sgd)"]
    sgd_sim = sim["final distance D, DMFT against simulation (sgd)"]
    return f"""**Setup.** The same perceptron at two values of α: α = {under['alpha']:g} (under-parametrized, T_eff
as in claim 3, t = {under['time']:g}, {under['dmft']['samples']:,} samples in {under['dmft']['runs']} runs per point)
and α = {s['alpha']:g} (over-parametrized: below the capacity 0.52 the training error vanishes and the
dynamics stops). There two replicas start from the same weights on the same data with independent
minibatches, and their distance D = |wᵃ − wᵇ|²/d is read at t = {s['time']:g}
({s['dmft']['samples']:,} samples in {s['dmft']['runs']} runs per point; simulations at d =
{s['simulation']['dimension']}, {s['simulation']['seeds']} seeds, at the central point). The same values of b, τ
and η are swept on both sides around b = {under['batch_fraction']:g}, τ = {under['persistence_time']:g},
η = {under['dt']:g}.

**What we find.** The two noise measures rank the {pooled['details']['rank_correlation']['points']} settings
alike: Spearman's ρ = {number(pooled_rho['rho'], pooled_rho['stderr'])}
between T_eff and D over all of them (the error from redrawing both sides within their Monte Carlo
errors). Parameter by parameter: the persistence time drives both the same way (ρ =
{r('persistent-sgd', 'persistence_time')}; D = {series('persistent-sgd', 'persistence_time', 'D')} for
τ = 0.5 … 8), and so does SGD's step (ρ = {r('sgd', 'dt')}). For persistent SGD against b, T_eff keeps
growing up to b = 0.7 while D peaks at b = 0.5 (ρ = {r('persistent-sgd', 'batch_fraction')}; at b = 0.9 the
FDT window of persistent SGD sits on the plateau of χ and no T_eff can be fitted). Two dependences are
not resolved: SGD against b, where D falls steadily ({series('sgd', 'batch_fraction', 'D')}) but T_eff is
within its errors of flat beyond b = 0.3 (ρ = {r('sgd', 'batch_fraction')}), and persistent SGD against η,
where neither measure moves by more than its errors (ρ = {r('persistent-sgd', 'dt')}). The DMFT distance
agrees with two-replica simulations at the central point ({value(psgd_sim['dmft'])} against
{value(psgd_sim['simulation'])} for persistent SGD, {value(sgd_sim['dmft'])} against
{value(sgd_sim['simulation'])} for SGD, the latter below the test's resolution). At b = 0.1, τ = 2 and
η = 0.2 persistent SGD is SGD (bτ = η: the selection forgets at every step), so the two share that
point."""


def findings_gap_width(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]
    tests = {t["quantity"]: t for t in d["tests"]}
    eps = s["epsilons"]

    def measure(key: str, side: str, name: str) -> str:
        return value(f[key]["measures"][side][name])

    def tally(key: str) -> str:
        mine = [t for q, t in tests.items() if f"({key} vs GD," in q]
        held = sum(t["verdict"] == "holds" for t in mine)
        failed = sum(t["verdict"] == "does not hold" for t in mine)
        return f"{held} of {len(mine)} comparisons hold" + (f", {failed} contradict it" if failed else "")

    within = f"within {eps[1]:g} of the margin"
    losses = ", ".join(f"{key} {value(f[key]['train_loss']['DMFT'])} "
                       f"(simulation {value(f[key]['train_loss']['simulation'])})"
                       for key in (v["key"] for v in s["variants"]))
    r = f["responses_at_the_margin"]
    distances = load("replica-distance")["findings"]["persistent-sgd vs persistence_time"]
    ratio = distances["D"][distances["values"].index(8.0)]["value"] / \
        distances["D"][distances["values"].index(2.0)]["value"]
    q = "gap - kappa quantile 0.2"
    near = f"within {eps[0]:g} of the margin"
    return f"""**Setup.** The over-parametrized perceptron of the issue: random labels, α = {s['alpha']:g}, square
hinge κ = 1, λ = 0, η = {s['dt']:g}; GD, SGD (b = 0.3) and persistent SGD (b = 0.3, τ = 2) run to t = 200, and a
noisier persistent SGD (τ = 8) run to t = 400, each to where its training loss is below
{s['loss_threshold']:g} (the threshold of the end of training; the training losses at the end are {losses}).
DMFT: {s['dmft']['samples']:,} samples in {s['dmft']['runs']} independent runs; simulations at d =
{s['simulation']['dimension']} (n = 300 training samples), {s['simulation']['seeds']} seeds. The width of the boundary
is measured in each run and each seed: the fractions of samples within ε = {', '.join(f'{e:g}' for e in eps)} of
the margin (|gap − κ| < ε), the fraction deeper than κ + {s['deep']:g}, the mean and quantiles of the gap,
the fraction violating the margin by more than {s['violation']:g}, and the smallest gap among 300 samples.

**What we find.** At the issue's point the claim cannot be decided: SGD with b = 0.3 ends with a
gap distribution indistinguishable from GD's on both sides ({tally('sgd')}; within {eps[1]:g} of the
margin: GD {measure('gd', 'simulation', within)}, SGD {measure('sgd', 'simulation', within)} in the
simulations), and persistent SGD with τ = 2 moves in the claimed direction but resolves it only in part
({tally('persistent-sgd')}; within {eps[1]:g}: {measure('persistent-sgd', 'simulation', within)}). The noisier
persistent SGD (τ = 8), whose replicas end {ratio:.1f} times further apart than τ = 2's (claim 4), shows the
claimed effect clearly ({tally('persistent-sgd tau=8')}): within {eps[1]:g} of the margin
{measure('persistent-sgd tau=8', 'simulation', within)} against GD's {measure('gd', 'simulation', within)}, a
mean gap of {measure('persistent-sgd tau=8', 'simulation', 'mean gap')} against
{measure('gd', 'simulation', 'mean gap')} (simulations; the DMFT agrees, table below). So noise widens the
boundary when there is enough of it; at b = 0.3, τ = 2 and η = 0.2 there is too little to see at this
precision, and at t = 40 (the previous example) the comparison was not at the end of training at all.

**Where DMFT and simulation differ.** Away from the margin every width measure agrees. At the
margin they do not: GD's simulations pin a pile of samples onto κ to round-off, while the DMFT spreads
that pile over gaps up to about 0.01 above κ, so the fraction {near}, the low quantiles and the
studentised CDF test at κ fail for every algorithm (the *check* rows). The cause is the random-probe
estimate of the response (docs/theory.md §3), unbiased but noisy, whose noise reaches the gaps of the
samples held at the margin. A small diagnostic run shows it: GD at t = {r['time']:g}, {r['size']['samples']:,}
DMFT samples in {r['size']['runs']} runs solved twice on the same draws. With exact responses the DMFT
pins the samples like the simulations (20% quantile of gap − κ {value(r['DMFT, exact responses'][q])}
against {value(r['simulation'][q])}; fraction {near} {value(r['DMFT, exact responses'][near])} against
{value(r['simulation'][near])}); with probe responses the same population spreads them
({value(r['DMFT, probe responses'][q])}; {value(r['DMFT, probe responses'][near])}). Exact responses cost
too much for the full population at these run lengths, so the DMFT's ε = {eps[0]:g} rows and low
quantiles carry this smearing; the simulations' do not,
and from ε = {eps[1]:g} on both sides agree."""


def tally(tests: list[dict[str, Any]]) -> str:
    """'3 hold, 1 inconclusive' for a list of tests."""
    counts = {kind: sum(t["verdict"] == kind for t in tests) for kind in ("holds", "inconclusive", "does not hold")}
    words = {"holds": "hold", "inconclusive": "inconclusive", "does not hold": "do not hold"}
    return ", ".join(f"{n} {words[kind]}" for kind, n in counts.items() if n)


def findings_momentum(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]
    tests = {t["quantity"]: t for t in d["tests"]}
    momenta = s["momenta"]
    with_momentum = [b for b in momenta if b > 0]

    def teff(beta: float, side: str) -> str:
        entry = f[f"{beta:g}"][side]
        return number(entry["T_eff"], entry["T_eff_stderr"])

    def verdict(quantity: str) -> str:
        return tests[quantity]["verdict"]

    series = ", ".join(f"β = {b:g}: {teff(b, 'DMFT')}" for b in momenta)
    pairs = "; ".join(f"β = {b:g}: {teff(b, 'DMFT')} against {teff(b, 'counterpart')}, paired difference "
                      f"{value(f[f'{b:g}']['paired_difference'])} "
                      f"({verdict(f'T_eff with momentum β = {b:g} against the counterpart without momentum')})"
                      for b in with_momentum)
    checks = [tests[f"T_eff of persistent SGD, DMFT against simulation (β = {b:g})"] for b in momenta]
    agree = f"{tally(checks)} (largest |z| {max(t['statistic'] for t in checks):.1f})"
    langevin = [t for q, t in tests.items() if q.startswith("Langevin")]
    extrapolated = ", ".join(f"{estimate(t['dmft'])} at β = {t['quantity'].split('β = ')[1].split(' ')[0]}"
                             for t in langevin)
    twins = [verdict(f"T_eff with momentum β = {b:g} against the counterpart without momentum")
             for b in with_momentum]
    if all(v == "holds" for v in twins):
        reading = ("They agree: at this step heavy ball is the plain dynamics with time stretched by 1/(1 − β), "
                   "within the resolution of the tests.")
    elif "does not hold" in twins:
        shares = ", ".join(f"{100 * entry['paired_difference']['value'] / entry['counterpart']['T_eff']:.1f}%"
                           for entry in (f[f"{b:g}"] for b in with_momentum))
        times = ", ".join(f"{s['dt'] / (1 - b):.2g}" for b in with_momentum)
        reading = (f"The paired differences, {shares} of T_eff at β = {', '.join(f'{b:g}' for b in with_momentum)}, "
                   f"grow with the momentum time η/(1 − β) = {times}: the rescaling is exact only as η → 0, and "
                   "where the difference is resolved the claim, read at this step, does not hold. (That the "
                   "difference is O(η/(1 − β)) is our reading; these runs do not vary η.)")
    else:
        reading = "The errors do not resolve a difference of a tenth of T_eff at every momentum."
    coarse, fine = s["langevin_dts"]
    return f"""**Setup.** Two models. Langevin GD with momentum (gmm2, α = 2, Δ = 0.5, logistic, λ = 0.5, T =
{s['temperature']:g}) at β = {', '.join(f'{b:g}' for b in momenta)}, solved at the steps (1 − β) η for η = {coarse:g}
and {fine:g}, to t = (1 − β) {s['langevin_time']:g}, so that every momentum has the same effective step η
({s['langevin_dmft']['samples']:,} DMFT samples in {s['langevin_dmft']['runs']} runs); its FDT temperature is the
slope of ΔC against χ through the origin on lags (1 − β) {s['langevin_lags'][0]:g} to
(1 − β) {s['langevin_lags'][1]:g}, extrapolated to η → 0 (Richardson: the error is O(η), docs/theory.md §2.8). And
persistent SGD (b = {s['batch_fraction']:g}, τ = {s['persistence_time']:g}, η = {s['dt']:g}) on the
under-parametrized perceptron of claim 2 (α = {s['alpha']:g}), run to t = {s['time']:g} at the same momenta, with
T_eff fitted on the stationary window of claim 2's method (lags up to {s['s_max']:g}, averaged over the last
{s['average_over']:g}); DMFT {s['dmft']['samples']:,} samples in {s['dmft']['runs']} runs, simulations at d =
{s['simulation']['dimension']}, {s['simulation']['seeds']} seeds. Each momentum run has a *counterpart* without
momentum: step η/(1 − β), persistence time τ/(1 − β), the same number of steps, its lags and averaging
stretched by 1/(1 − β). If heavy ball only rescales time, the two have the same T_eff. With the same seed
the two share their selections and innovations (the switching probabilities per step are the same), so
their difference is estimated run by run, with a paired jackknife.

**What we find.** Langevin dynamics with momentum samples at T/(1 − β): T_FDT (1 − β)/T extrapolated to
η → 0 is {extrapolated} (checks). Persistent SGD's T_eff against the momentum is {series} (DMFT); of the
{len(momenta)} comparisons of the DMFT's T_eff with the simulations', {agree}. Against the counterparts without
momentum: {pairs}. {reading}"""


def findings_teacher_student(d: dict[str, Any]) -> str:
    s, f = d["settings"], d["findings"]
    agreements = [t for t in d["tests"] if "label noise" not in t["quantity"]]
    worst = max(agreements, key=lambda t: t["statistic"])
    eps = s["label_noise"]

    def final(key: str, name: str) -> str:
        return value(f[key][name])

    return f"""**Setup.** The teacher-student perceptron (docs/theory.md §2.7): α = {s['alpha']:g}, logistic loss,
λ = 0.01, η = {s['dt']:g}, run to t = {s['time']:g}; GD and SGD (b = {s['batch_fraction']:g}) with clean labels and
with a fraction ε = {eps:g} flipped, and SGD with ε = {eps:g} and momentum β = {s['momentum']:g}. DMFT:
{s['dmft']['samples']:,} samples in {s['dmft']['runs']} independent runs; simulations at d =
{s['simulation']['dimension']} (n = {round(s['alpha'] * s['simulation']['dimension'])}), {s['simulation']['seeds']}
seeds; the test error is measured against the clean teacher.

**What we find.** Of the {len(agreements)} comparisons of a curve with its simulation (test error,
training loss and overlap m of five runs, each required to resolve a tenth of the curve's range),
{tally(agreements)}; the largest z-score is
{worst['statistic']:.1f} ({worst['quantity']}), against a threshold of {worst['threshold']:.1f}. Label noise
raises the final test error, from {final('gd eps=0', 'test_error')} to {final(f'gd eps={eps:g}', 'test_error')}
for GD and from {final('sgd eps=0', 'test_error')} to {final(f'sgd eps={eps:g}', 'test_error')} for SGD, and the
final training loss, from {final('gd eps=0', 'train_loss')} to {final(f'gd eps={eps:g}', 'train_loss')} (GD)
(DMFT values; the table below gives the tests)."""


FINDINGS = {"learning-curves": findings_learning_curves, "fdt-line": findings_fdt_line,
            "teff-parameters": findings_teff_parameters, "replica-distance": findings_replica_distance,
            "gap-width": findings_gap_width, "momentum": findings_momentum,
            "teacher-student": findings_teacher_student}

INTRO = """# Gallery: the papers' claims, reproduced

The two papers this tool implements make five claims (1-5); two more (6-7) are ours, about
the extensions beyond the papers, heavy-ball momentum and the teacher-student perceptron
([guide](guides/momentum-teacher-student.md)). Each is reproduced here by one
command, `dmft reproduce NAME --output DIR`, which solves the DMFT and simulates the same
problem at finite dimension, draws the figure, writes the numbers behind it (CSV, headed
by the source digest and the parameters) and a `claims.json` with a verdict per
statistical test. This page is written from those files
(`python docs/figures/gallery/make_gallery.py`); `dmft reproduce --list` names the
claims and their figures.

**How a verdict is reached.** Every measured number carries a Monte Carlo standard
error: from independent DMFT runs (populations solved on their own, docs/theory.md §8)
or from independent simulation seeds, never from the spread of correlated points. A test
compares a z-score with a two-sided Student-t quantile for the number of runs,
Bonferroni-corrected over the tests of the claim, so that noise alone makes any of a
claim's tests fire with probability at most 1%. A test **holds** when the data support
the statement beyond that threshold, **does not hold** when they contradict it beyond the
threshold, and is **inconclusive** when the errors are too large to decide (for an
agreement or a "no change", when they could hide a difference of a relevance stated in
advance in the claim's settings). A claim holds when all its tests hold and does not
hold when any does not; tests marked *check* compare the DMFT with the simulation and
are reported apart from the claim's verdict. Thresholds, relevances and sizes are fixed in
the code (`dmft/reproduce/`) before a run, and recorded in its claims.json.

**Quick versions.** `dmft reproduce NAME --quick` runs the same code at a size that takes
seconds; `tests/test_reproduce.py` runs all seven and asserts the verdicts that size can
decide and the structure of the files.

**Memory window.** Long runs use the memory window of docs/theory.md §9 only where the
memory it drops is below the Monte Carlo error; where it is not used, the note under the
claim says why, with the window's tail diagnostic.
"""


def render() -> str:
    """The text of docs/gallery.md, from the claims.json files beside this script."""
    documents = [load(name) for name in ORDER]
    rows = ["| claim | name | verdict | DMFT against simulation | wall time |", "|---|---|---|---|---|"]
    for d in documents:
        rows.append(f"| {d['claim']}. [{TITLES[d['name']]}](#{d['name']}) | `{d['name']}` | {MARK[d['verdict']]} | "
                    f"{MARK[d['checks']['verdict']]} | {d['wall_time_seconds']:.0f} s |")
    total = sum(d["wall_time_seconds"] for d in documents)
    page = [INTRO, "\n".join(rows), "",
            f"All {len(documents)} full reproductions took {total / 60:.0f} minutes in all "
            f"(`dmft reproduce all`).", ""]
    page += [section(d) for d in documents]
    return "\n".join(page)


def main() -> None:
    PAGE.write_text(render())
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
