"""`flask --app app …` commands, one module per subject: users, API keys, demo data, job runs and the worker."""
from __future__ import annotations

from flask import Flask

from commands import adjustments, alerts, api_keys, demo_data, jobs, readings, users, worker


def register_commands(app: Flask) -> None:
    """Add every command to the app's CLI."""
    for module in (users, api_keys, demo_data, jobs, adjustments, alerts, worker, readings):
        for command in module.COMMANDS:
            app.cli.add_command(command)
