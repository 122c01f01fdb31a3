"""Names of the stored array kinds (kept free of heavy imports so the CLI starts fast)."""

ARRAY_KINDS = ("weights", "trajectories", "outputs", "curves")
#: the second in-distribution probe set every trained network is run on (same size and input
#: distribution as "id", independent draws): the noise floor of a trajectory metric compares them
REPLICA_PROBE = "id_b"

#: a network's trained parameters, as stored in `weights` (the model builds them in this order)
PARAM_NAMES = ("W_h", "W_x", "b", "W_out", "b_out")
