"""Signals during training are held until a batch ends, then stop the stage like Ctrl-C."""

import os
import signal

import pytest

from fmnist.utils import errors


@pytest.fixture
def handler():
    old = signal.signal(signal.SIGTERM, errors._interrupt)
    yield
    signal.signal(signal.SIGTERM, old)


def test_a_signal_outside_training_interrupts_at_once(handler):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_during_training_waits_for_the_next_check(handler):
    with errors.deferred_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)  # held: no exception here
        with pytest.raises(KeyboardInterrupt):
            errors.check_interrupt()
        errors.check_interrupt()  # handled once


def test_a_second_signal_does_not_wait(handler):
    with errors.deferred_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_held_to_the_end_of_training_still_stops(handler):
    with pytest.raises(KeyboardInterrupt), errors.deferred_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)


def test_nothing_pending_means_no_interrupt(handler):
    with errors.deferred_interrupts():
        errors.check_interrupt()
