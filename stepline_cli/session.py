"""What every command gets: the API client, the console and the output mode."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from stepline_cli.client import Client


@dataclass
class Session:
    client: Client
    console: Console
    as_json: bool

    def emit(self, data: Any, renderable: Any = None) -> None:
        """JSON for scripts, else the rich rendering."""
        if self.as_json or renderable is None:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            self.console.print(renderable)


pass_session = click.make_pass_decorator(Session)
