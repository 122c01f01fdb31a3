"""The stacked ensemble RNN, its parameterizations, regularizers, optimiser and sweeps."""
