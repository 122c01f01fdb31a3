"""Names of the stored array kinds (kept free of heavy imports so the CLI starts fast)."""

ARRAY_KINDS = ("weights", "trajectories", "outputs", "curves")
#: the second in-distribution probe set every trained network is run on (same size and input
#: distribution as "id", independent draws): the noise floor of a trajectory metric compares them
REPLICA_PROBE = "id_b"

#: sane upper bounds on sizes, checked before any work (a bigger value is one clear error, not
#: an out-of-memory traceback or an hour-long hang): hidden units, a task's complexity knob,
#: and any other integer task parameter (steps, delays)
MAX_HIDDEN = 4096
MAX_COMPLEXITY = 16
MAX_TASK_INT = 10_000

#: a network's trained parameters, as stored in `weights` (the model builds them in this order)
PARAM_NAMES = ("W_h", "W_x", "b", "W_out", "b_out")
