"""The base of vlcp's own errors: a message that says what went wrong and what to do.

A stage's command line reports these as one line (``vlcp.cli.run``); any other exception is a
defect or a library's failure and keeps its traceback.
"""


class VlcpError(Exception):
    """An expected failure (bad input file, missing model, wrong setting) with a message for the user."""
