"""Whether a command line that a deployment file runs is a real `modelcycle` command."""

from __future__ import annotations

from typing import Any

from modelcycle.cli.main import _command


def unknown_modelcycle_command(argv: list[str]) -> str | None:
    """None when `argv` (`modelcycle ...`) names a command and its options parse; else why not.

    Parsed by the CLI's own click app in this process, without running anything.
    """
    if not argv or argv[0] != "modelcycle":
        return f"{argv!r} does not start with the image's entry point `modelcycle`"
    command: Any = _command()
    args = argv[1:]
    path = ["modelcycle"]
    while hasattr(command, "commands"):
        if not args or args[0] not in command.commands:
            return f"`{' '.join(path)}` has no command {args[0] if args else '(none)'!r}"
        path.append(args[0])
        command, args = command.commands[args[0]], args[1:]
    try:
        command.make_context(" ".join(path), list(args))
    except Exception as error:  # typer vendors click: its exceptions are not click's
        if not hasattr(error, "format_message"):
            raise
        return f"`{' '.join(argv)}`: {error.format_message()}"
    return None
