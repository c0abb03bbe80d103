"""The one error type of ``assay load``'s input: scenario files, flags and thresholds."""

from __future__ import annotations


class LoadInputError(ValueError):
    """Input the user wrote is wrong (a bad threshold, template, check or scenario field).

    The message is ONE line saying what is wrong with the value, quoting it. The caller
    adds the context it knows (file and line, or the flag) and maps the error to exit
    status 2: a user's mistake, not a harness bug and not a finding about the server.
    """
