"""numba's caches are cleared when any numba source changes, not only the kernel's own file."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import dmft
from dmft._numba_cache import NUMBA_SOURCES, STAMP_NAME, clear_stale_caches, numba_cache_dirs
from dmft.solvers.kernels.cholesky import cholesky_row, diagonal_blocks
from dmft.solvers.kernels.triangles import packed_size

SOURCES = ("helpers.py", "inner/kernels.py")


def fake_package(root: Path) -> Path:
    for name in SOURCES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    return root


def add_caches(root: Path) -> list[Path]:
    caches = []
    for name in SOURCES:
        cache_dir = (root / name).parent / "__pycache__"
        cache_dir.mkdir(exist_ok=True)
        for suffix in ("nbi", "1.nbc"):
            caches.append(cache_dir / f"{Path(name).stem}.f-10.py311.{suffix}")
            caches[-1].write_bytes(b"compiled")
        (cache_dir / f"{Path(name).stem}.cpython-311.pyc").write_bytes(b"bytecode")  # not numba's: kept
    return caches


def test_caches_are_deleted_when_a_helper_changes_and_kept_otherwise(tmp_path):
    root = fake_package(tmp_path)
    caches = add_caches(root)
    assert clear_stale_caches(root, SOURCES)  # no stamp on record: cleared
    assert not any(path.exists() for path in caches)
    assert (root / "__pycache__" / STAMP_NAME).exists()

    caches = add_caches(root)
    assert not clear_stale_caches(root, SOURCES)  # nothing changed
    assert all(path.exists() for path in caches)

    (root / "helpers.py").write_text("# helpers.py, edited\n")  # not the kernels' own file
    assert clear_stale_caches(root, SOURCES)
    assert not any(path.exists() for path in caches)
    assert len(list(root.rglob("*.pyc"))) == len(SOURCES)
    assert not clear_stale_caches(root, SOURCES)


def test_a_cache_directory_elsewhere_keeps_its_own_record(tmp_path):
    # NUMBA_CACHE_DIR, or numba's per-user fallback for read-only sources: the record of the
    # digest lives beside those caches, so a package directory that cannot be written to
    # does not make every import clear them again.
    root = fake_package(tmp_path / "package")
    elsewhere = tmp_path / "cache" / "inner_0123"
    elsewhere.mkdir(parents=True)
    caches = [elsewhere / "kernels.f-10.py311.nbi", elsewhere / "kernels.f-10.py311.1.nbc"]
    for path in caches:
        path.write_bytes(b"compiled")
    assert clear_stale_caches(root, SOURCES, cache_dirs=[elsewhere])
    assert not any(path.exists() for path in caches) and (elsewhere / STAMP_NAME).exists()
    for path in caches:
        path.write_bytes(b"compiled")
    (root / "__pycache__" / STAMP_NAME).unlink()  # as if the package's own record could not be written
    clear_stale_caches(root, SOURCES, cache_dirs=[elsewhere])
    assert all(path.exists() for path in caches)  # its own record still matches
    (root / "helpers.py").write_text("# helpers.py, edited\n")
    assert clear_stale_caches(root, SOURCES, cache_dirs=[elsewhere])
    assert not any(path.exists() for path in caches)


def test_only_the_package_own_functions_name_its_cache_dirs(tmp_path, monkeypatch):
    # A module of the package may import another package's cached functions (here dmft's):
    # their caches are not the package's to clear.
    package = tmp_path / "otherpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kern.py").write_text("import numba\nfrom dmft.solvers.kernels.triangles import packed_row\n\n"
                                     "@numba.njit(cache=True)\ndef own(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert numba_cache_dirs("otherpkg", ("kern.py",)) == {package / "__pycache__"}


def test_a_numba_cache_dir_of_the_user_is_found_and_cleared(tmp_path):
    # numba's dispatchers say where they cache: under NUMBA_CACHE_DIR when it is set. A
    # stale record there makes the next import delete the caches in it.
    code = """
import sys
from pathlib import Path
import numpy as np
import dmft
from dmft._numba_cache import STAMP_NAME, numba_cache_dirs
from dmft.solvers.kernels.triangles import packed_row
root = Path(sys.argv[1])
dirs = numba_cache_dirs("dmft")
assert dirs and all(root in path.parents for path in dirs), dirs
if sys.argv[2] == "compile":
    packed_row(np.zeros(10), 2)
    found = [path for path in root.rglob("*.nbi") if path.parent in dirs]
    assert found, list(root.rglob("*"))
    for path in dirs:
        (path / STAMP_NAME).write_text("0" * 64)  # as if written for other sources
else:
    assert not list(root.rglob("*.nb[ic]")), list(root.rglob("*.nb[ic]"))
    assert all((path / STAMP_NAME).read_text() != "0" * 64 for path in dirs)
print("ok")
"""
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for stage in ("compile", "check"):
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path), stage], capture_output=True, text=True,
                                env=environment)
        assert result.returncode == 0 and result.stdout.strip() == "ok", (stage, result.stderr[-2000:])


def test_the_package_clears_the_directories_numba_caches_its_kernels_in():
    package = Path(dmft.__file__).parent
    cholesky_row(np.eye(3), np.zeros(packed_size(3)), diagonal_blocks(3), 1, 1e-7)
    cache_dirs = {(package / name).parent / "__pycache__" for name in NUMBA_SOURCES}
    assert any(path.parent in cache_dirs for path in package.rglob("cholesky.cholesky_row-*.nbi"))
    assert numba_cache_dirs("dmft") <= cache_dirs  # what the dispatchers say: beside the sources here


def test_every_module_with_numba_functions_is_a_numba_source():
    # The kernels are split over the modules of a package and inline each other's helpers:
    # every module defining a numba function (cached or inlined) must be hashed, and the
    # package's own module too, or an edit there would leave stale caches.
    package = Path(dmft.__file__).parent
    with_numba = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        if "numba.njit" in text or "@njit" in text:
            with_numba.add(path.relative_to(package).as_posix())
    assert with_numba <= set(NUMBA_SOURCES), sorted(with_numba - set(NUMBA_SOURCES))
    kernels = {path.relative_to(package).as_posix() for path in (package / "solvers" / "kernels").glob("*.py")}
    assert kernels <= set(NUMBA_SOURCES) and "solvers/kernels/__init__.py" in kernels


def test_importing_the_package_compiles_and_loads_no_numba_function():
    # So the check at import runs before numba reads any cache: importing the modules that
    # hold kernels (which clear stale caches) must not load or compile any of them.
    code = """
import numba, dmft, sys
import dmft.solvers, dmft.simulate, dmft.loss_kernels
from numba.core.registry import CPUDispatcher
loaded = [name for module in list(sys.modules.values()) if getattr(module, "__name__", "").startswith("dmft")
          for name, value in vars(module).items() if isinstance(value, CPUDispatcher) and value.signatures]
assert not loaded, loaded
print("ok")
"""
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "ok"


def test_caches_it_may_not_delete_do_not_fail_the_import_and_are_retried(tmp_path, monkeypatch):
    root = fake_package(tmp_path)
    caches = add_caches(root)

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", refuse)
        assert clear_stale_caches(root, SOURCES)
    assert all(path.exists() for path in caches)
    assert not (root / "__pycache__" / STAMP_NAME).exists()  # so the next import tries again
    assert clear_stale_caches(root, SOURCES)
    assert not any(path.exists() for path in caches)
