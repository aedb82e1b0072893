"""Short-form scoring's worked examples (prefixes, first positions, reply scores with and
without the sequence score, the passage choice) and the long-form segment cut."""

import doctest

from stages.selfrag import long_form, short_form


def test_doctests():
    assert doctest.testmod(short_form).failed == 0
    assert doctest.testmod(long_form).failed == 0
