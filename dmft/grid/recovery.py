"""Resuming a grid file: find the finished points, clear the incomplete ones, salvage a damaged file.

A grid killed at any moment and started again with the same configuration empties
incomplete groups, recomputes only the points not finished, and leaves the others
untouched. Should the file's shared structures be damaged nonetheless, every readable
point is copied into a fresh file and the damaged one is kept beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py

from ..errors import DmftError
from ..io import KIND_GRID, FileFormatError, atomic_h5, attribute_value, open_h5
from .spec import GridSpec
from .store import (STATUS_DONE, STATUS_FAILED, STATUS_PENDING, clear_group, fsync, grid_format, initialize,
                    point_status, row_from_group, write_summary_row)


def _check_compatible(handle: h5py.File, path: Path, spec: GridSpec) -> None:
    """Refuse a file that is not a grid, has a format this dmft cannot resume, or holds another grid."""
    kind = attribute_value(handle.attrs.get("kind"))
    if kind != KIND_GRID:
        raise FileFormatError(f"{path} is not a dmft grid file (kind = {kind!r}); "
                              "choose another --output or pass --overwrite")
    grid_format(handle, path, resume=True)
    stored = json.loads(attribute_value(handle.attrs["config"]))
    wanted = json.loads(json.dumps(spec.identity(), sort_keys=True))
    if stored != wanted:
        raise DmftError(f"{path} holds a different grid ({_differences(stored, wanted)}); "
                        "use another --output, or --overwrite to discard it")


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """What differs between two grid identities, for the refusal message."""
    diffs = []
    if stored.get("seed") != wanted.get("seed"):
        diffs.append(f"seed {stored.get('seed')} in the file, {wanted.get('seed')} now")
    if stored.get("axes") != wanted.get("axes"):
        old, new = dict(stored.get("axes", [])), dict(wanted.get("axes", []))
        keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
        if not keys:
            keys = ["order of the axes"]
        diffs.append("grid " + ", ".join(f"{k}: {old.get(k)} in the file, {new.get(k)} now" if k in old or k in new
                                         else k for k in keys))
    old, new = stored.get("fixed", {}), wanted.get("fixed", {})
    keys = [k for k in sorted({**old, **new}) if old.get(k) != new.get(k)]
    if keys:
        diffs.append(", ".join(f"{k} = {old.get(k)!r} in the file, {new.get(k)!r} now" for k in keys[:5]))
    return "; ".join(diffs) or "configuration differs"


# What a finished `done` group must hold (write_result's layout) to be trusted on resume.
_REQUIRED = ("time", "m", "C", "R", "A", "train_loss", "train_error", "test_error", "kernels")


_INCOMPLETE = "incomplete"


def _inspect(points: h5py.Group, name: str) -> str:
    """The state of a point group: done, failed, pending (empty) or incomplete (anything else).

    A kill during a write leaves the group without its status, possibly half filled;
    as HDF5 is not crash-consistent, some object in it may also be unreadable. Both are
    incomplete: cleared and recomputed. The check opens every object a done group must
    hold but reads no data, so that a restart stays cheap for large grids.
    """
    try:
        group = points[name]
        status = point_status(group)
        if status == STATUS_DONE:
            for item in _REQUIRED:
                group[item].id  # noqa: B018 - opening the object header is the check
        if status is None:
            return STATUS_PENDING if len(group) == 0 and len(group.attrs) == 0 else _INCOMPLETE
        return status
    except Exception:
        return _INCOMPLETE


class Damaged(Exception):
    """The grid file's shared structures are unreadable: salvage what can be salvaged."""


def scan(path: Path, spec: GridSpec) -> tuple[dict[int, str], list[int], list[int]]:
    """Finished points (index -> status); incomplete points; points whose summary row lags.

    Raises ``Damaged`` when the file opens but its points or summary cannot be read.
    """
    try:
        handle = open_h5(path, "r")
    except OSError as error:
        raise FileFormatError(f"{path}: cannot open it as HDF5 ({error}); it may have been damaged by a "
                              "kill during a write: move it away (or pass --overwrite) and start again") from None
    with handle:
        try:
            _check_compatible(handle, path, spec)
        except DmftError:
            raise
        except Exception as error:
            raise FileFormatError(f"{path}: its root attributes are unreadable ({type(error).__name__}: {error}); "
                                  "move it away (or pass --overwrite) and start again") from None
        try:
            points = handle["points"]
            finished: dict[int, str] = {}
            incomplete: list[int] = []
            for point in spec.points:
                name = spec.group_name(point.index)
                if name not in points:
                    raise Damaged(f"points/{name} is missing")
                status = _inspect(points, name)
                if status == _INCOMPLETE:
                    incomplete.append(point.index)
                elif status != STATUS_PENDING:
                    finished[point.index] = status
            summary_status = [attribute_value(v) for v in handle["summary/status"][()]]
            lagging = [index for index, status in finished.items() if summary_status[index] != status]
        except Damaged:
            raise
        except Exception as error:
            raise Damaged(f"{type(error).__name__}: {error}") from None
    return finished, incomplete, lagging


def repair(path: Path, spec: GridSpec, incomplete: Sequence[int], lagging: Sequence[int]) -> None:
    """Empty incomplete point groups and bring lagging summary rows up to date (in place)."""
    with open_h5(path, "a") as handle:
        points = handle["points"]
        for index in incomplete:
            clear_group(points[spec.group_name(index)])
            write_summary_row(handle, index, {"status": STATUS_PENDING, "error": ""})
        for index in lagging:
            write_summary_row(handle, index, row_from_group(points[spec.group_name(index)]))
        handle.flush()
    fsync(path)


def salvage(path: Path, spec: GridSpec) -> tuple[int, Path]:
    """Copy every readable finished point of a damaged file into a fresh one, atomically.

    The damaged file is kept beside it (``<name>.damaged-<time>``) for inspection.
    Returns (points kept, damaged file).
    """
    damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.link(path, damaged)  # a second name for the same bytes, before the swap below
    except OSError:
        import shutil

        shutil.copy2(path, damaged)
    kept = 0
    with h5py.File(damaged, "r") as source, atomic_h5(path, overwrite=True) as target:
        initialize(target, spec)
        try:
            source_points = source["points"]
        except Exception:
            source_points = None
        for point in spec.points:
            name = spec.group_name(point.index)
            try:
                if source_points is None or _inspect(source_points, name) not in (STATUS_DONE, STATUS_FAILED):
                    continue
                del target["points"][name]  # the fresh file is not yet visible: no care needed here
                source.copy(source_points[name], target["points"], name=name)
                write_summary_row(target, point.index, row_from_group(target["points"][name]))
                kept += 1
            except Exception:
                with contextlib.suppress(Exception):
                    if name in target["points"]:
                        del target["points"][name]
                    target["points"].create_group(name)
                write_summary_row(target, point.index, {"status": STATUS_PENDING, "error": ""})
    fsync(path)
    return kept, damaged
