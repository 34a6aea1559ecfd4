"""Utterance-level feature tables (CSV) joined to a corpus as one modality's global vector.

Published ERC work often shares features as a table: one row per utterance, an id column, then
numbers (acoustic functionals, facial action units). :func:`read_feature_tables` reads such
files and :func:`join_feature_tables` adds them to a :class:`Dataset` as a modality with a global
vector only (one position: there is no local sequence to find hotspots in, and the dataset's
description says so).

Reading (each problem is a :class:`DataFormatError` naming the file, the row and the column):

* the first row is the header; the first column holds the utterance id, every other column a
  feature; a cell is a number, or empty for a value that was not measured (``nan`` and ``inf``
  are refused: a table that means "not measured" leaves the cell empty);
* files with the same header are one *group* (per-split files stacked); groups with different
  headers are joined column by column (``signal.csv`` + ``prosody.csv``); a column name may not
  appear in two groups, an id not twice in one file.

Joining:

* a row's id names the utterance whose ``uid`` it is, or, failing that, ``<file stem>_<id>``
  (MELD's per-split files ``dev.csv`` key clips as ``dia0_utt0``; the corpus names that utterance
  ``dev_dia0_utt0``); an id that two files of a group share and that names an utterance directly
  is ambiguous, an error. Ids that match no utterance are counted and reported, not an error;
* an utterance with no row in any group lacks the modality (masked, as any missing modality);
* a value not measured (an empty cell, or every cell of a group the utterance has no row in) is
  imputed with the column's mean over the training split's measured values, and a flag column
  ``<column>_missing`` (1 = imputed) is appended for every column that has such a value, so the
  model is told which values were imputed;
* values go through the sign-preserving log ``sign(x) log(1 + |x|)``: such tables mix scales
  (an autocorrelation peak of 38 beside a silence share of 0.4) and have heavy tails; the model
  then standardises them with training-split statistics as it does all measured features.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import (
    DataFormatError,
    Dataset,
    FeatureSpec,
    ModalityFeatures,
    ModalitySpec,
)

EXTRACTOR_PREFIX = "table-"


@dataclass
class TableRow:
    key: str
    values: np.ndarray  # one float per column of its group, NaN where not measured
    path: Path
    where: str  # "<file>: row N", for messages


@dataclass
class FeatureTable:
    """One modality's table files: groups of rows with the same columns (module docstring)."""

    modality: str
    groups: list[tuple[tuple[str, ...], list[TableRow]]]
    digest: str

    @property
    def columns(self) -> list[str]:
        return [name for names, _ in self.groups for name in names]


@dataclass
class JoinReport:
    matched: int
    unmatched_ids: list[str]
    utterances_without_row: int
    imputed_values: int

    def summary(self, modality: str) -> str:
        line = (f"{modality} table: {self.matched} utterances joined; "
                f"{self.utterances_without_row} without a row ({modality} missing there); "
                f"{self.imputed_values} values not measured, imputed with the training mean and "
                "flagged")
        if self.unmatched_ids:
            shown = ", ".join(self.unmatched_ids[:3])
            line += f"; {len(self.unmatched_ids)} rows match no utterance (e.g. {shown})"
        return line


def read_feature_tables(modality: str, paths: Sequence[str | os.PathLike]) -> FeatureTable:
    """One modality's table files, read and checked (module docstring) and grouped by header."""
    if not paths:
        raise ValueError(f"feature table for {modality}: no file given")
    groups: dict[tuple[str, ...], list[TableRow]] = {}
    digest = hashlib.sha256()
    for path in map(Path, paths):
        header, rows = _read_csv(path)
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        groups.setdefault(header, []).extend(rows)
    seen: set[str] = set()
    for header in groups:
        repeated = sorted(seen & set(header))
        if repeated:
            raise DataFormatError(f"{paths[0]}: columns {repeated} appear in two tables with "
                                  "different headers; each feature must come from one table")
        seen |= set(header)
    return FeatureTable(modality, list(groups.items()), digest.hexdigest()[:12])


def _read_csv(path: Path) -> tuple[tuple[str, ...], list[TableRow]]:
    """The feature column names and the rows of one file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{path}: empty file; expected a header row (id, features...)"
                              ) from None
    except csv.Error as error:
        raise DataFormatError(f"{path}: row 1: not CSV ({error})") from None
    names = tuple(name.strip() for name in header[1:])
    if not names:
        raise DataFormatError(f"{path}: row 1: expected an id column and at least one feature "
                              "column")
    if len(set(names)) != len(names) or not all(names):
        raise DataFormatError(f"{path}: row 1: feature column names must be non-empty and "
                              "distinct")
    rows: dict[str, TableRow] = {}
    try:
        for number, cells in enumerate(reader, start=2):
            where = f"{path}: row {number}"
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise DataFormatError(f"{where}: {len(cells)} cells, expected {len(header)} as "
                                      "in the header")
            key = cells[0].strip()
            if not key:
                raise DataFormatError(f"{where}: column {header[0]!r}: empty utterance id")
            if key in rows:
                raise DataFormatError(f"{where}: utterance id {key!r} appears again (first at "
                                      f"{rows[key].where.rsplit(': ', 1)[1]})")
            values = np.array([_number(cell, where, name)
                               for cell, name in zip(cells[1:], names, strict=True)])
            rows[key] = TableRow(key, values, path, where)
    except csv.Error as error:
        raise DataFormatError(f"{path}: row {reader.line_num}: not CSV ({error})") from None
    return names, list(rows.values())


def _number(cell: str, where: str, column: str) -> float:
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(f"{where}: column {column!r}: {cell[:40]!r} is not a number (leave "
                              "the cell empty for a value that was not measured)") from None
    if not math.isfinite(value):
        raise DataFormatError(f"{where}: column {column!r}: {cell!r} is not a finite number "
                              "(leave the cell empty for a value that was not measured)")
    return value


def join_feature_tables(dataset: Dataset, tables: Mapping[str, FeatureTable]
                        ) -> tuple[Dataset, dict[str, JoinReport]]:
    """A copy of ``dataset`` with each table's modality added (module docstring), and what the
    join found per modality."""
    dialogues = copy.deepcopy(dataset.dialogues)
    specs = dict(dataset.feature_spec.modalities)
    uids = [(dialogue.did, utterance.uid) for dialogue in dialogues
            for utterance in dialogue.utterances]
    train_ids = set(dataset.splits.get("train", []))
    reports, notes = {}, []
    for modality, table in tables.items():
        if modality in specs:
            raise ValueError(f"dataset {dataset.name} already has {modality} features "
                             f"({specs[modality].extractor}); a table cannot replace them")
        rows, used = _joined_rows(table, [uid for _, uid in uids])
        present = [(did, uid) for did, uid in uids if uid in rows]
        train_rows = [rows[uid] for did, uid in present if did in train_ids]
        if not train_rows:
            raise ValueError(f"{modality} table: no row matches an utterance of the training "
                             f"split of {dataset.name}; check the ids (the first row's is "
                             f"{table.groups[0][1][0].key if table.groups[0][1] else '?'!r})")
        means = np.nanmean(np.stack(train_rows), axis=0)
        means = np.where(np.isnan(means), 0.0, means)  # a column never measured in training
        flagged = np.flatnonzero(np.isnan(np.stack([rows[uid] for _, uid in present])).any(0))
        imputed = 0
        for dialogue in dialogues:
            for utterance in dialogue.utterances:
                values = rows.get(utterance.uid)
                if values is None:
                    continue
                missing = np.isnan(values)
                imputed += int(missing.sum())
                vector = np.concatenate([_signed_log(np.where(missing, means, values)),
                                         missing[flagged].astype(np.float64)])
                utterance.features[modality] = ModalityFeatures(
                    global_vector=vector.astype(np.float32))
        dim = len(table.columns) + len(flagged)
        specs[modality] = ModalitySpec(
            f"{EXTRACTOR_PREFIX}{modality}", f"csv-{table.digest}", dim, dim,
            recipe={"files": sorted({row.path.name for _, group in table.groups
                                     for row in group}),
                    "sha256": table.digest, "columns": table.columns,
                    "missing_flags": [table.columns[i] for i in flagged],
                    "imputation": "training-split mean", "transform": "sign(x) log(1 + |x|)"})
        unmatched = [row.key for _, group in table.groups for row in group if id(row) not in used]
        reports[modality] = JoinReport(matched=len(present), unmatched_ids=unmatched,
                                       utterances_without_row=len(uids) - len(present),
                                       imputed_values=imputed)
        notes.append(f"{modality} from a table of {len(table.columns)} utterance-level features "
                     f"(+{len(flagged)} missing-value flags): one position, no hotspots to "
                     "localise")
    description = dataset.description + (" " + "; ".join(notes) + "." if notes else "")
    return (Dataset(dataset.name, dialogues, list(dataset.label_names), dict(dataset.splits),
                    FeatureSpec(specs), description), reports)


def _joined_rows(table: FeatureTable, uids: list[str]) -> tuple[dict[str, np.ndarray], set[int]]:
    """``{uid: values over all columns, NaN where not measured}`` for every utterance that has a
    row in at least one group, and the ``id()`` of every row used."""
    joined: dict[str, np.ndarray] = {}
    used: set[int] = set()
    offset, width = 0, len(table.columns)
    for columns, group in table.groups:
        exact: dict[str, list[TableRow]] = {}
        prefixed: dict[str, TableRow] = {}
        for row in group:
            exact.setdefault(row.key, []).append(row)
            prefixed[f"{row.path.stem}_{row.key}"] = row
        for uid in uids:
            candidates = exact.get(uid)
            if candidates and len(candidates) > 1:
                raise DataFormatError(f"{candidates[1].where}: utterance id {uid!r} is also in "
                                      f"{candidates[0].path}; it is ambiguous")
            row = candidates[0] if candidates else prefixed.get(uid)
            if row is None:
                continue
            used.add(id(row))
            values = joined.setdefault(uid, np.full(width, np.nan))
            values[offset:offset + len(columns)] = row.values
        offset += len(columns)
    return joined, used


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))
