"""Arrow schemas of the array kinds stored as Parquet: weights, trajectories, outputs, curves.

Every array is a flat float32 Arrow list (`values`) beside its explicit row-major `shape`, so
DuckDB, Polars and pyarrow read the files with no project code: reshape `values` by `shape`.
"""

from __future__ import annotations

import pyarrow as pa

from degeneracy.schema.kinds import ARRAY_KINDS

#: Columns that identify the network a row belongs to (present in every array kind).
KEY_FIELDS = [
    pa.field("network_id", pa.string(), nullable=False),
    pa.field("ensemble_id", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
]

ARRAY_FIELDS = [
    pa.field("shape", pa.list_(pa.int32()), nullable=False),
    pa.field("values", pa.list_(pa.float32()), nullable=False),
]

WEIGHTS = pa.schema(
    KEY_FIELDS
    + [
        # "init" (before training) or "final" (at the end of training)
        pa.field("stage", pa.string(), nullable=False),
        # parameter name, e.g. W_h (recurrent), W_x (input), b, W_out, b_out
        pa.field("name", pa.string(), nullable=False),
    ]
    + ARRAY_FIELDS
)

TRAJECTORIES = pa.schema(
    KEY_FIELDS
    # probe set: "id" (in distribution) or "ood"; shape = (trials, time, units)
    + [pa.field("probe", pa.string(), nullable=False)]
    + ARRAY_FIELDS
)

OUTPUTS = pa.schema(
    KEY_FIELDS
    # probe set: "id" or "ood"; shape = (trials, time, outputs)
    + [pa.field("probe", pa.string(), nullable=False)]
    + ARRAY_FIELDS
)

CURVES = pa.schema(
    KEY_FIELDS
    + [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("loss", pa.float32(), nullable=False),
        pa.field("lr", pa.float32(), nullable=False),
    ]
)

ARRAY_SCHEMAS: dict[str, pa.Schema] = {
    "weights": WEIGHTS,
    "trajectories": TRAJECTORIES,
    "outputs": OUTPUTS,
    "curves": CURVES,
}
assert tuple(ARRAY_SCHEMAS) == ARRAY_KINDS
