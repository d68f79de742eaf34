"""What a reproduction writes: CSV tables and claims.json, each naming the code and parameters.

Every CSV starts with comment lines (``# key: value``) giving the dmft version, the source
digest of the code that ran (``dmft._version.source_digest``) and the parameters as JSON;
``claims.json`` carries the same provenance. Numbers are written with 10 significant
digits, so that the same seed gives the same files; the wall time is kept apart from the
numbers, in claims.json only.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__, source_digest
from .verdicts import jsonable

SCHEMA = "dmft-reproduce/1"


def provenance() -> dict[str, str]:
    """The version and the digest of the code that ran."""
    return {"dmft_version": __version__, "source_digest": source_digest()}


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.10g}"
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return "" if value is None else value


def write_table(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], parameters: Mapping[str, Any],
                description: str) -> Path:
    """A CSV of ``rows`` (one dict each, same keys) under a commented provenance header."""
    path = Path(path)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    with open(path, "w", newline="") as handle:
        handle.write(f"# {description}\n")
        for key, value in provenance().items():
            handle.write(f"# {key}: {value}\n")
        handle.write(f"# parameters: {json.dumps(jsonable(dict(parameters)), sort_keys=True)}\n")
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})
    return path


def read_table(path: str | os.PathLike) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(header comments as key -> text, rows) of a table written by ``write_table``."""
    header: dict[str, str] = {}
    lines = []
    with open(path, newline="") as handle:
        for line in handle:
            if line.startswith("# "):
                key, _, value = line[2:].rstrip("\n").partition(": ")
                header[key if value else "description"] = value or key
            else:
                lines.append(line)
    return header, list(csv.DictReader(lines))


def write_claims(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """claims.json: ``document`` with the schema and provenance added, in plain JSON types."""
    path = Path(path)
    body = {"schema": SCHEMA, **provenance(), **jsonable(dict(document))}
    path.write_text(json.dumps(body, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return path


def read_claims(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON document of a claims.json file."""
    return json.loads(Path(path).read_text())
