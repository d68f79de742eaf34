"""Helpers shared by the grid tests (test_grid.py, test_faults.py): tiny configurations and
exact comparisons of grid files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import h5py
import numpy as np

from dmft.grid import GridSpec

# Tiny points: each solves in milliseconds once numba's cache is warm.
TINY = """
seed = 7
[problem]
steps = 10
dt = 0.1
[solver]
samples = 400
subpopulations = 2
"""


def write_config(tmp_path: Path, grid: str, base: str = TINY, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(base) + "\n[grid]\n" + textwrap.dedent(grid))
    return path


def small_spec(tmp_path: Path) -> GridSpec:
    return GridSpec.from_toml(write_config(tmp_path, """
        algorithm = ["sgd", "persistent-sgd"]
        batch_fraction = [0.3, 0.6]
    """))


def point_arrays(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every dataset of every point group, for exact comparisons."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as handle:
        for name, group in handle["points"].items():
            arrays: dict[str, np.ndarray] = {}
            group.visititems(lambda key, obj: arrays.__setitem__(key, obj[()]) if isinstance(obj, h5py.Dataset)
                             else None)
            out[name] = arrays
    return out


def assert_same_points(a: Path, b: Path) -> None:
    left, right = point_arrays(a), point_arrays(b)
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].keys() == right[name].keys()
        for key in left[name]:
            np.testing.assert_array_equal(left[name][key], right[name][key], err_msg=f"{name}/{key}")


def raw_bytes(path: Path, groups: list[str]) -> dict[str, bytes]:
    """The bytes on disk of every dataset of the given point groups (chunk by chunk), and
    their attributes: equal values mean the point was not rewritten."""
    blobs: dict[str, bytes] = {}
    with h5py.File(path, "r") as handle, open(path, "rb") as raw:
        def read(offset: int, size: int) -> bytes:
            raw.seek(offset)
            return raw.read(size)

        for name in groups:
            group = handle["points"][name]
            blobs[f"{name}@attrs"] = json.dumps({k: str(v) for k, v in group.attrs.items()}, sort_keys=True).encode()

            def visit(key: str, obj: object, name: str = name) -> None:
                if not isinstance(obj, h5py.Dataset):
                    return
                if obj.chunks is None:
                    offset = obj.id.get_offset()
                    blobs[f"{name}/{key}"] = read(offset, obj.id.get_storage_size()) if offset is not None else b""
                else:
                    parts = []
                    for i in range(obj.id.get_num_chunks()):
                        info = obj.id.get_chunk_info(i)
                        parts.append(read(info.byte_offset, info.size))
                    blobs[f"{name}/{key}"] = b"".join(parts)

            group.visititems(visit)
    return blobs


# Point attributes that record when, where and how fast a point was computed: they differ
# between two runs with equal numbers.
RUN_ATTRIBUTES = frozenset({"created", "wall_time", "grid_wall_time", "computed_by"})


def point_attributes(path: Path) -> dict[str, dict[str, str]]:
    """Every attribute of every point group but RUN_ATTRIBUTES, as text (NaN == NaN)."""
    with h5py.File(path, "r") as handle:
        return {name: {key: str(value) for key, value in group.attrs.items() if key not in RUN_ATTRIBUTES}
                for name, group in handle["points"].items()}


def assert_same_grid(a: Path, b: Path) -> None:
    """``a`` holds the grid ``b`` holds: every dataset of every point bit for bit, the same point
    attributes (but RUN_ATTRIBUTES) and the same summary table (but the wall_time column)."""
    from dmft.grid import load_summary

    assert_same_points(a, b)
    assert point_attributes(a) == point_attributes(b)
    left, right = load_summary(a), load_summary(b)
    assert left.dtype.names == right.dtype.names
    for name in left.dtype.names:
        if name != "wall_time":
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"summary column {name}")
