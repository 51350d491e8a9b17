"""The client commands of `reelscribe`: they talk to a running server with a token.

They are defined by concern, each with `@command()` from `cli.remote`, which
records it in `COMMANDS`; `cli.main` adds every one of them to the group:

    cli.job_commands      submit, watch, job, jobs, cancel, delete, deliveries
    cli.result_commands   transcript, summary, highlights, speakers
    cli.library_commands  upload, delete-media, search, ask, usage, costs
    cli.model_commands    models

To add a command, define it in the module of its concern with `@command()` and
`@address_option`, and reach the server through `run` (which turns failed calls
into CLI errors). Commands that follow a job exit 0 when it SUCCEEDED,
`EXIT_FAILED` (3) when it FAILED and `EXIT_CANCELLED` (4) when it was CANCELLED.
"""

from __future__ import annotations

from cli import job_commands, library_commands, model_commands, result_commands
from cli.job_commands import submit_and_show
from cli.remote import COMMANDS, EXIT_CANCELLED, EXIT_FAILED

# Importing a module defines (and records) its commands.
_MODULES = (job_commands, result_commands, library_commands, model_commands)

__all__ = ["COMMANDS", "EXIT_CANCELLED", "EXIT_FAILED", "submit_and_show"]
