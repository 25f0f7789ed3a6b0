class LwsToolError(Exception):
    """The one error type the CLI prints as 'lwstool: <message>'."""
