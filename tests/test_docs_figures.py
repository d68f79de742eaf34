"""The documentation's figures and numbers outside the gallery.

Each figure in docs/figures/*.png is made by docs/figures/make_grid_figures.py, which runs
here at a reduced size, and each, with the CSV beside it, names the code that made it.
Every number quoted with an error bar in the README and the guides is one of the gallery's.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path

from PIL import Image

from dmft.reproduce.output import provenance, read_table

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
SOFTWARE = re.compile(r"dmft \S+ \(source sha256 ([0-9a-f]{64})\)")


def load_script():
    spec = importlib.util.spec_from_file_location("make_grid_figures", FIGURES / "make_grid_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_digest(path: Path) -> str:
    match = SOFTWARE.fullmatch(Image.open(path).text.get("Software", ""))
    assert match, f"{path.name}: no dmft Software chunk with a source digest"
    return match.group(1)


def test_the_script_runs_at_a_reduced_size_and_records_the_digest(tmp_path):
    script = load_script()
    written = script.make(tmp_path, quick=True, workers=1)
    names = {script.BATCH_FIGURE, script.PHASE_FIGURE}
    assert sorted(path.name for path in written) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "csv"))
    configs = script.configurations(quick=True)
    digest = provenance()["source_digest"]
    for name in names:
        assert png_digest(tmp_path / f"{name}.png") == digest
        header, rows = read_table(tmp_path / f"{name}.csv")
        assert header["source_digest"] == digest and "(--quick)" in header["description"]
        axes = configs[name]["grid"]
        assert len(rows) == len(list(itertools.product(*axes.values())))
        assert all(float(row["test_error_stderr"]) > 0 for row in rows)


def test_every_figure_is_the_scripts_and_names_its_code():
    script = load_script()
    names = {script.BATCH_FIGURE, script.PHASE_FIGURE}
    assert {path.stem for path in FIGURES.glob("*.png")} == names, "a figure no tested script makes"
    assert {path.stem for path in FIGURES.glob("*.csv")} == names
    assert {path.name for path in FIGURES.glob("*.py")} == {"make_grid_figures.py"}, "a script no test runs"
    for name in names:
        header, rows = read_table(FIGURES / f"{name}.csv")
        assert rows and "(--quick)" not in header["description"]
        assert png_digest(FIGURES / f"{name}.png") == header["source_digest"], \
            f"{name}: PNG and CSV from different code"


# Pages whose physics numbers are quoted from the gallery (docs/gallery.md, itself checked
# against the reproductions' claims.json by tests/test_gallery.py).
QUOTING = ["README.md", "docs/index.md", "docs/getting-started.md", "docs/solver.md", "docs/file-format.md",
           "docs/cli.md", "docs/guides/compare.md", "docs/guides/effective-temperature.md", "docs/guides/grids.md",
           "docs/guides/overparametrized.md", "docs/guides/precision.md", "docs/guides/troubleshooting.md"]
NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"
ESTIMATE = re.compile(rf"{NUMBER} ± {NUMBER}")


def test_every_number_with_an_error_is_the_gallerys():
    root = FIGURES.parents[1]
    gallery = " ".join((root / "docs" / "gallery.md").read_text().split())
    quoted = {page: ESTIMATE.findall(" ".join((root / page).read_text().split())) for page in QUOTING}
    missing = {page: [n for n in numbers if n not in gallery] for page, numbers in quoted.items()}
    assert not any(missing.values()), f"numbers not in docs/gallery.md: {missing}"
    assert sum(map(len, quoted.values())) >= 10  # the guides do quote the gallery
