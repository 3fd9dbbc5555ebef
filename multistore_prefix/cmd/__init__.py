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

"""The ``multistore-prefix`` command line: what its commands share.

Exit codes and the errors an operator can fix.  They live
here rather than in :mod:`multistore_prefix.cmd.main` because
``python -m multistore_prefix.cmd.main`` runs that module as ``__main__``:
a class defined there would exist twice, once for the application and once
for the commands that import it.
"""

import contextlib

from oslo_config import cfg

from multistore_prefix import misconfiguration
from multistore_prefix import urls

#: The command did what was asked (``resolve``: every URL got an answer,
#: an empty store being an answer).
EXIT_OK = 0
#: An unexpected failure (cliff's own code for a command that raised).
EXIT_FAILURE = 1
#: The configuration, the command line or the command's input is wrong;
#: nothing was done.  argparse uses 2 for usage errors too.
EXIT_CONFIG = 2
#: ``resolve --strict``: at least one URL has no store.
EXIT_UNRESOLVED = 3
#: Interrupted (Ctrl-C; for backfill and demo SIGTERM too, once the batch
#: in flight is committed); cliff's own code for Ctrl-C.
EXIT_INTERRUPTED = 130
#: ``filter check``: at least one check failed.
EXIT_CHECK_FAILED = 4


class CommandError(Exception):
    """An error the operator can fix, said in one line.

    :ivar exit_code: the process exit code it maps to.
    """

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigurationError(CommandError):
    """The configuration is missing, unreadable or wrong."""


class InputError(CommandError):
    """The command's own input (a ``--from-file``) cannot be read."""


def exit_code_for(exc: BaseException | None, default: int) -> int:
    """The exit code for a command that failed with ``exc``."""
    if isinstance(exc, CommandError):
        return exc.exit_code
    if isinstance(exc, misconfiguration.ERRORS):
        return EXIT_CONFIG
    return default


@contextlib.contextmanager
def config_errors(conf: cfg.ConfigOpts | None = None):
    """Turn configuration errors raised inside into ConfigurationError.

    Commands that read options themselves (``conf.database.connection``)
    wrap the read in it, so the operator gets one line naming the option.
    """
    try:
        yield
    except CommandError:
        raise
    except misconfiguration.ERRORS as exc:
        raise ConfigurationError(
            urls.mask_text(misconfiguration.describe(exc, conf))) from exc
