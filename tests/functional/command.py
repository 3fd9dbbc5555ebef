#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Run the ``multistore-prefix`` command line, in this process or a new one.

:func:`run` calls :func:`multistore_prefix.cmd.main.main` here, with the
streams, working directory and environment a subprocess would get, and
puts back afterwards what a run changes for the whole process (the root
logger's handlers and every logger's level, oslo.log's excepthook and
log-config cache, warning filters, signal handlers), so that no call sees
the one before.  :func:`run_process` starts the installed console script,
for the tests of what only a process has (the entry point, signals, a
terminal, import-time warnings).  Both return a
:class:`subprocess.CompletedProcess` with text ``stdout`` and ``stderr``.
"""

import contextlib
import io
import logging
import os
import pathlib
import signal
import subprocess
import sys
import traceback
import warnings

from oslo_log import log as oslo_log
from oslo_log import rate_limit

from multistore_prefix.cmd import main as cmd_main

REPO = pathlib.Path(__file__).resolve().parents[2]

#: Variables of the test's environment that the command never sees.
FOREIGN_ENV = ('OS_', 'PYTHONWARNINGS', 'CLIFF_')

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Where the console script is installed (beside the interpreter).
SCRIPT = str(pathlib.Path(sys.executable).with_name('multistore-prefix'))


def script() -> list[str]:
    """The installed console script (``python -m`` if there is none)."""
    if os.path.exists(SCRIPT):
        return [SCRIPT]
    return [sys.executable, '-m', 'multistore_prefix.cmd.main']


def environment(env: dict | None = None) -> dict:
    """The test's environment without :data:`FOREIGN_ENV`, plus ``env``."""
    return {**{k: v for k, v in os.environ.items()
               if not k.startswith(FOREIGN_ENV)}, **(env or {})}


def run_process(*args, cwd=REPO, stdin=None, env=None, module=False,
                timeout=120) -> subprocess.CompletedProcess:
    """The console script (or ``python -m``, if ``module``) to its end."""
    command = ([sys.executable, '-m', 'multistore_prefix.cmd.main']
               if module else script())
    return subprocess.run(
        command + [str(a) for a in args], cwd=cwd, input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, env=environment(env),
        timeout=timeout)


def run(*args, cwd=REPO, stdin=None, env=None) -> subprocess.CompletedProcess:
    """``multistore-prefix ARGS`` in this process.

    :param cwd: the working directory during the call.
    :param stdin: the text on standard input (none: an empty input, as
        from /dev/null).
    :param env: variables set on top of :func:`environment`.
    """
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with _isolated(cwd, environment(env)), \
            _streams(io.StringIO(stdin or ''), out, err):
        try:
            code = cmd_main.main(argv)
        except SystemExit as exc:  # argparse's --version, usage errors
            code = exc.code
            if code is not None and not isinstance(code, int):
                err.write(f'{code}\n')
                code = 1
        except Exception:  # what the interpreter would print, exit 1
            traceback.print_exc(file=err)
            code = 1
    return subprocess.CompletedProcess(['multistore-prefix', *argv],
                                       code or 0, out.getvalue(),
                                       err.getvalue())


@contextlib.contextmanager
def _streams(stdin, stdout, stderr):
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def _isolated(cwd, env):
    """Put back what one run of the command changes for the process."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_hook = sys.excepthook
    saved_signals = {s: signal.getsignal(s) for s in _SIGNALS}
    saved_logging = _logging_state()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        _restore_logging(saved_logging)
        rate_limit.uninstall_filter()
        # oslo.log rereads a log_config_append only when its mtime differs
        # from the last file's: another test's file may share it.
        if hasattr(oslo_log._load_log_config, 'old_time'):
            del oslo_log._load_log_config.old_time
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)
        sys.excepthook = saved_hook
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _loggers():
    yield logging.getLogger()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield logger


def _logging_state():
    return (logging.root.manager.disable, logging.getLoggerClass(),
            {logger: (logger.level, list(logger.handlers),
                      list(logger.filters), logger.propagate,
                      logger.disabled) for logger in _loggers()})


def _restore_logging(state):
    disable, logger_class, loggers = state
    logging.disable(disable)
    logging.setLoggerClass(logger_class)
    kept = {id(h) for saved in loggers.values() for h in saved[1]}
    for logger in list(_loggers()):
        level, handlers, filters, propagate, disabled = loggers.get(
            logger, (logging.NOTSET, [], [], True, False))
        for handler in logger.handlers:
            if id(handler) not in kept:
                handler.close()
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.propagate = propagate
        logger.disabled = disabled
