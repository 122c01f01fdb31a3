"""The one exception type a user can cause; the CLI prints its message as one line, exit code 2."""


class RegistryError(Exception):
    """Bad input or state a user can fix: bad path, malformed file, bad SQL, locked catalog."""
