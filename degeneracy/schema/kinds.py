"""Names of the stored array kinds (kept free of heavy imports so the CLI starts fast)."""

ARRAY_KINDS = ("weights", "trajectories", "outputs", "curves")
