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

"""The console's log lines: one line per fault, no traceback, no secret."""

import logging
import sys

from multistore_prefix.cmd import logs


def record(name, level, msg, error=None):
    exc_info = None
    if error is not None:
        try:
            raise error
        except type(error):
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


LOST = ConnectionError("(2013, 'Lost connection to MySQL server')\nmore")


def test_without_tracebacks_the_error_closes_the_line():
    formatter = logs.MaskingFormatter('%(message)s', level_prefix=True,
                                      tracebacks=False)
    line = formatter.format(record(
        'x', logging.ERROR, 'copying mysql://u:s3cret@db/glance failed',
        LOST))
    assert line == ("ERROR: copying mysql://u:***@db/glance failed "
                    "(ConnectionError: (2013, 'Lost connection to MySQL "
                    "server'))")


def test_with_tracebacks_the_traceback_is_kept_and_masked():
    formatter = logs.MaskingFormatter('%(message)s')
    line = formatter.format(record(
        'x', logging.ERROR, 'failed', ValueError('mysql://u:s3cret@db/g')))
    assert 'Traceback (most recent call last)' in line
    assert 's3cret' not in line and 'mysql://u:***@db/g' in line


def test_the_pools_errors_on_a_lost_connection_are_left_out():
    chatter = logs.LibraryChatter()
    for message in ('Exception during reset or similar',
                    'Exception closing connection %r'):
        assert not chatter.filter(record('sqlalchemy.pool.impl.QueuePool',
                                         logging.ERROR, message, LOST))
    # Its other errors, and ours, are shown.
    assert chatter.filter(record('sqlalchemy.pool.impl.QueuePool',
                                 logging.ERROR, 'Something else'))
    assert chatter.filter(record('multistore_prefix.db.retry',
                                 logging.WARNING, 'trying again'))
