"""The one exception type a user can cause; the CLI prints its message as one line, exit code 2."""


class RegistryError(Exception):
    """Bad input or state a user can fix: bad path, malformed file, bad SQL, locked catalog."""


class PendingWrite(RegistryError):
    """Networks were written to data/ and journaled in pending/, but the catalog could not be
    opened to register them (another process held it): nothing is lost; the next write or
    `degeneracy check --repair` registers them. `summary`: the `WriteSummary` of what waits."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary
