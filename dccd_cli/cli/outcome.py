"""How a command ends: its exit code, its one line on stderr, and with ``--json`` its one
object on stdout — for every way it can end.

=====  ==========================================================  ========================
code   how                                                         stderr
=====  ==========================================================  ========================
0, 1   the command's result (1: some data could not be fetched)    the summary's own lines
2      bad usage or input (a UsageError, or the option parser's)   ``dccd: error: ...``
75     another sync holds the dataset (DatasetLockedError)          ``dccd: error: ...``
130    Ctrl-C                                                      ``dccd: interrupted; ...``
143    SIGTERM (``dccd_cli.cli.signals``)                              ``dccd: terminated; ...``
=====  ==========================================================  ========================

``run_app`` is the program: it makes stdout and stderr tolerant of a reader that went
away (``dccd_cli.cli.streams``), handles SIGTERM, runs the typer app without its own exit
handling, and prints a ``--json`` object for a run that ended before printing one.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, cast

import typer

from dccd_cli.cli import signals
from dccd_cli.cli.jsonout import failure, print_json, printed
from dccd_cli.cli.streams import guard_std_streams
from dccd_cli.errors import DccdError
from dccd_cli.run.download import ProgressSink
from dccd_cli.run.results import SeriesResult

EXIT_INTERRUPTED = 130
STOPPED = {
    EXIT_INTERRUPTED: "interrupted; what was written is valid and the next run resumes",
    signals.EXIT_TERMINATED: "terminated; what was written is valid and the next run resumes",
}


class _Recorder:
    """A progress sink's proxy that also keeps every finished series."""

    def __init__(self, inner: ProgressSink) -> None:
        self._inner = inner
        self.finished: list[SeriesResult] = []

    def finish(self, task: int, result: SeriesResult) -> None:
        self.finished.append(result)
        self._inner.finish(task, result)

    def __getattr__(self, name: str) -> Any:  # every other call, as the sink has it
        return getattr(self._inner, name)


def recording(sink: ProgressSink) -> tuple[ProgressSink, list[SeriesResult]]:
    """``sink``, and the list of series it sees finish (filled as they do): so that a run
    stopped midway can still say, in its JSON object, what it finished."""
    recorder = _Recorder(sink)
    return cast(ProgressSink, recorder), recorder.finished


def _as_json(done: dict[str, Any]) -> dict[str, Any]:
    return {k: [s.to_json() if isinstance(s, SeriesResult) else s for s in v] if isinstance(v, list) else v
            for k, v in done.items()}


def fail(exc: DccdError, command: str | None, json_mode: bool, done: dict[str, Any] | None = None) -> NoReturn:
    """End with a dccd error: one line per problem (a sync file may have several), each
    saying it is an error; its exit code; and with ``--json`` the failure object."""
    for line in str(exc).splitlines() or [""]:
        sys.stderr.write(f"dccd: error: {line}\n")
    if json_mode:
        print_json(failure(command, exc.exit_code, str(exc), **_as_json(done or {})))
    raise typer.Exit(exc.exit_code)


_said_stopped = False


def _say_stopped(code: int) -> None:
    global _said_stopped
    if not _said_stopped:
        sys.stderr.write(f"dccd: {STOPPED[code]}\n")
        _said_stopped = True


def stopped(code: int, command: str | None, json_mode: bool, done: dict[str, Any] | None = None) -> NoReturn:
    """End an interrupted (130) or terminated (143) command: its one line, its object."""
    _say_stopped(code)
    if json_mode:
        print_json(failure(command, code, STOPPED[code].split(";")[0], **_as_json(done or {})))
    raise typer.Exit(code)


@contextmanager
def reported(command: str, json_mode: bool, **done: Any) -> Iterator[dict[str, Any]]:
    """Run a command's work; a dccd error, Ctrl-C or SIGTERM ends it as the table above
    says. The yielded dict is what the command did so far, for the failure object: ``out``
    once known, ``series`` the list ``recording`` fills as series finish."""
    try:
        yield done
    except KeyboardInterrupt:  # Terminated (SIGTERM) included
        stopped(signals.EXIT_TERMINATED if signals.received() else EXIT_INTERRUPTED,
                command, json_mode, done)
    except DccdError as exc:
        fail(exc, command, json_mode, done)


def _wants_json(args: list[str]) -> bool:
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def _show_usage_error(exc: typer.TyperException, command: str | None) -> None:
    """The option parser's message as dccd's one line (not typer's boxed usage screen),
    pointing at the help that lists what would be right."""
    where = f"dccd {command} --help" if command else "dccd --help"
    sys.stderr.write(f"dccd: error: {exc.format_message().rstrip('.')}; see '{where}'\n")


def _show_warnings() -> None:
    """The program shows dccd's warnings on stderr, as lines of their own, where the library
    (``dccd_cli.api``) keeps them quiet: Python's last-resort handler, attached when nothing
    else shows them (``dccd sync`` then sets its own format, ``render.configure_logging``)."""
    logger = logging.getLogger("dccd")
    if logging.lastResort is not None and not logging.getLogger().handlers \
            and logging.lastResort not in logger.handlers:
        logger.addHandler(logging.lastResort)


def run_app(app: typer.Typer, args: list[str] | None = None) -> NoReturn:
    """The whole program: run ``app`` on ``args`` and exit with its code."""
    guard_std_streams()
    signals.install()
    _show_warnings()
    args = sys.argv[1:] if args is None else args
    command = args[0] if args and not args[0].startswith("-") else None
    error: str | None = None
    try:
        returned = app(args=args, prog_name="dccd", standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except typer.TyperException as exc:  # the option parser's (typer's own click)
        names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
        _show_usage_error(exc, command if command in names else None)
        code, error = exc.exit_code, exc.format_message()
    except typer.Abort:
        code, error = 1, "aborted"
    except KeyboardInterrupt:  # one that came outside a command's own handling
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug: its traceback, and still one JSON object
        traceback.print_exc()
        code, error = 1, f"internal error: {type(exc).__name__}: {exc}"
    if code == EXIT_INTERRUPTED and signals.received():
        code = signals.EXIT_TERMINATED  # typer ends an escaped KeyboardInterrupt as 130
    if code in STOPPED:
        _say_stopped(code)  # when the signal came before or after a command's own handling
    if _wants_json(args) and not printed():
        print_json(failure(command, code, error or STOPPED.get(code, f"exit {code}").split(";")[0]))
    sys.stdout.flush()
    sys.exit(code)
