"""The paper's table as cells: one sweep spec per cell and scale, plus what each cell measures.

A cell is one row of the paper's table on one task (DESIGN.md, "The paper's findings"): a factor
swept over levels with everything else fixed. Its spec is a plain sweep TOML
(`specs/<scale>/<cell>.toml`, usable with `degeneracy sweep` as is); the scales differ only in
seeds, widths, thresholds and budgets (tested). Settings are fixed here, before any run, from the
paper and docs/FIDELITY.md; nothing is tuned to make a cell agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from degeneracy.registry.errors import RegistryError
from degeneracy.training.sweep import Job, parse_spec

SCALES = ("tiny", "small", "paper")


@dataclass(frozen=True)
class Cell:
    name: str
    task: str
    factor: str  # a networks column or a `factors` path ("task_params.delay_max")
    row: str  # the paper's table row the cell measures (report.PAPER key)
    title: str


CELLS: dict[str, Cell] = {
    c.name: c
    for c in (
        Cell("flipflop_complexity", "flipflop", "complexity", "complexity", "flip-flop: channels"),
        Cell(
            "delayed_discrimination_complexity",
            "delayed_discrimination",
            "complexity",
            "complexity",
            "delayed discrimination: channels",
        ),
        Cell("sine_complexity", "sine", "complexity", "complexity", "sine generation: channels"),
        Cell(
            "path_integration_dims",
            "path_integration",
            "complexity",
            "complexity",
            "path integration: 2-D vs 3-D",
        ),
        Cell(
            "delayed_discrimination_delay",
            "delayed_discrimination",
            "task_params.delay_max",
            "complexity",
            "delayed discrimination: memory demand (longest delay)",
        ),
        Cell(
            "delayed_discrimination_aux",
            "delayed_discrimination",
            "task_params.aux_output",
            "complexity",
            "delayed discrimination: auxiliary output",
        ),
        Cell("flipflop_gamma", "flipflop", "gamma", "gamma", "flip-flop: feature learning γ (µP)"),
        Cell(
            "delayed_discrimination_gamma",
            "delayed_discrimination",
            "gamma",
            "gamma",
            "delayed discrimination: feature learning γ (µP)",
        ),
        Cell("flipflop_width", "flipflop", "hidden_size", "hidden_size", "flip-flop: width"),
        Cell(
            "delayed_discrimination_l1",
            "delayed_discrimination",
            "l1",
            "l1",
            "delayed discrimination: L1 penalty",
        ),
        Cell(
            "delayed_discrimination_nuclear",
            "delayed_discrimination",
            "nuclear",
            "nuclear",
            "delayed discrimination: nuclear-norm penalty",
        ),
    )
}


def spec_text(scale: str, cell: str) -> str:
    if scale not in SCALES:
        raise RegistryError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    path = resources.files("degeneracy.reproduce") / "specs" / scale / f"{cell}.toml"
    return path.read_text()


def select(only: list[str] | None) -> list[Cell]:
    """The cells named in `only` (each a cell name or a prefix such as "flipflop"), else all."""
    if not only:
        return list(CELLS.values())
    out = []
    for name in only:
        hits = [c for c in CELLS.values() if c.name == name or c.name.startswith(name)]
        if not hits:
            raise RegistryError(f"--only: no cell {name!r} (cells: {', '.join(CELLS)})")
        out += [c for c in hits if c not in out]
    return out


@dataclass(frozen=True)
class Seeds:
    """Which seeds every condition trains: `count` from `first` (None: the scale's count).

    The default sample is seeds 0 .. count-1; `first=16` draws an independent sample (new
    initializations and data) of the same conditions, `count=32` a larger one that contains
    the default sample."""

    first: int = 0
    count: int | None = None

    def __post_init__(self):
        if self.first < 0 or (self.count is not None and self.count < 1):
            raise RegistryError(
                "the first seed (--first-seed) must be >= 0 and the seed count (--seeds) >= 1; "
                f"got {self.first} and {self.count}"
            )

    @property
    def default(self) -> bool:
        return self.first == 0 and self.count is None

    def apply(self, text: str, source: str) -> str:
        """The spec text with its `seeds = N` line replaced by this sample's explicit list (the
        registered sweep then records exactly the seeds trained)."""
        if self.default:
            return text
        line = re.search(r"^seeds = (\d+)$", text, re.MULTILINE)
        if line is None:
            raise RegistryError(f"{source}: no 'seeds = N' line to replace")
        count = self.count if self.count is not None else int(line.group(1))
        seeds = list(range(self.first, self.first + count))
        return text[: line.start()] + f"seeds = {seeds}" + text[line.end() :]

    def label(self, count: int) -> str:
        """'16' for the default sample, '16 (seeds 16-31)' otherwise."""
        if self.default:
            return str(count)
        return f"{count} (seeds {self.first}-{self.first + count - 1})"

    def suffix(self, count: int) -> str:
        """The output folder's suffix: '' for the default sample, '-seeds16-31' otherwise."""
        return "" if self.default else f"-seeds{self.first}-{self.first + count - 1}"


def load(scale: str, cell: Cell, seeds: Seeds | None = None) -> tuple[str, str, list[Job]]:
    """(spec text, sweep name, jobs) of one cell at one scale (`seeds`: another sample)."""
    source = f"reproduce/{scale}/{cell.name}.toml"
    text = (seeds or Seeds()).apply(spec_text(scale, cell.name), source)
    name, jobs = parse_spec(text, source)
    return text, name, jobs
