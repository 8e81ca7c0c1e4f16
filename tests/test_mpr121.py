"""The MPR121 driver against the simulated chips, and KeyScanner's rules with an injected clock."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.mpr121 import (
    AFE1,
    AFE2,
    BASELINE_FILTER,
    BASELINE_FILTER_VALUES,
    ECR,
    MPR121,
    SOFT_RESET,
    TOUCH_STATUS,
    TOUCH_THRESHOLD,
    MPR121Error,
    TouchPanel,
    TouchSettings,
    layout_from_config,
)
from hw.sim_mpr121 import SimTouchBus
from hw.touch_keys import KeyEvent, KeyScanner

LAYOUT = {
    0x5A: ["1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "0", "ok"],
    0x5B: ["home", "bell"],
}


@pytest.fixture
def touch_file(tmp_path):
    return tmp_path / "sim-touch.json"


def write_state(path, chips):
    path.write_text(json.dumps({"chips": chips}))


# -- the driver and the simulated chip -------------------------------------------------------


def test_start_resets_configures_every_electrode_and_runs():
    bus = SimTouchBus()
    sim = bus.chip(0x5A)
    sim.registers[TOUCH_THRESHOLD] = 99  # left over from before: the reset must clear it
    settings = TouchSettings(touch_threshold=20, release_threshold=9, sample_interval_ms=16)
    MPR121(bus, 0x5A, 12, settings).start()
    for electrode in range(12):
        assert sim.registers[TOUCH_THRESHOLD + 2 * electrode] == 20
        assert sim.registers[TOUCH_THRESHOLD + 2 * electrode + 1] == 9
    filters = sim.registers[BASELINE_FILTER : BASELINE_FILTER + len(BASELINE_FILTER_VALUES)]
    assert tuple(filters) == BASELINE_FILTER_VALUES
    assert sim.registers[AFE1] == 16  # 16 µA
    assert sim.registers[AFE2] == 0b001_00_100  # 0.5 µs, 4 samples, 16 ms
    assert sim.registers[ECR] == 0x80 | 12


def test_the_second_chip_runs_only_the_electrodes_it_has_keys_for():
    bus = SimTouchBus()
    MPR121(bus, 0x5B, 2).start()
    sim = bus.chip(0x5B)
    assert sim.registers[ECR] == 0x80 | 2
    assert sim.registers[TOUCH_THRESHOLD + 2 * 2] == 0  # ELE2 left alone
    sim.touch(1)
    sim.touch(5)  # not enabled: the chip does not sense it
    assert MPR121(bus, 0x5B, 2).touched() == {1}


def test_touches_come_back_through_the_registers_from_memory_and_file(touch_file):
    bus = SimTouchBus(touch_file)
    panel = TouchPanel(bus, LAYOUT)
    panel.start()
    assert panel.touched() == frozenset()
    bus.chip(0x5A).touch(4)
    write_state(touch_file, {"0x5b": {"touched": [1]}, "0x5a": {"touched": [10]}})
    assert panel.touched() == {"5", "0", "bell"}
    bus.chip(0x5A).release(4)
    touch_file.unlink()
    assert panel.touched() == frozenset()


def test_the_simulated_chip_senses_only_in_run_mode_and_soft_reset_clears_it():
    bus = SimTouchBus()
    sim = bus.chip(0x5A)
    sim.touch(0)
    assert bus.read_i2c_block_data(0x5A, TOUCH_STATUS, 2) == [0, 0]  # stop mode after power-on
    chip = MPR121(bus, 0x5A)
    chip.start()
    assert bus.read_i2c_block_data(0x5A, TOUCH_STATUS, 2) == [1, 0]
    bus.write_byte_data(0x5A, TOUCH_THRESHOLD, 77)  # configuration is refused while running
    assert sim.registers[TOUCH_THRESHOLD] == 12
    bus.write_byte_data(0x5A, SOFT_RESET, 0x63)
    assert sim.registers[ECR] == 0 and sim.registers[TOUCH_THRESHOLD] == 0
    assert bus.read_byte_data(0x5A, AFE2) == 0x24
    with pytest.raises(MPR121Error, match="not sensing"):
        chip.touched()  # a reset chip reads "no touch": the driver must not believe it
    chip.start()
    assert chip.touched() == {0}


def test_configure_stops_a_running_chip_first_so_new_thresholds_take():
    bus = SimTouchBus()
    MPR121(bus, 0x5A).start()
    MPR121(bus, 0x5A, settings=TouchSettings(touch_threshold=30, release_threshold=15)).configure()
    assert bus.chip(0x5A).registers[TOUCH_THRESHOLD : TOUCH_THRESHOLD + 2] == bytes([30, 15])
    assert bus.chip(0x5A).registers[ECR] == 0x80 | 12


def test_noise_flickers_one_read_at_a_time():
    bus = SimTouchBus(seed=7)
    chip = MPR121(bus, 0x5A)
    chip.start()
    bus.chip(0x5A).fault = "noisy"
    bus.chip(0x5A).touch(2)
    reads = [chip.touched() for _ in range(2000)]
    wrong = [read ^ {2} for read in reads]
    assert sum(bool(w) for w in wrong) > 100
    assert all(not (a & b) for a, b in zip(wrong, wrong[1:]))


def test_an_unplugged_panel_is_a_clear_error_and_recovers_after_a_restart(touch_file):
    bus = SimTouchBus(touch_file)
    panel = TouchPanel(bus, LAYOUT)
    panel.start()
    write_state(touch_file, {"0x5b": {"fault": "unplugged"}})
    with pytest.raises(MPR121Error, match="no answer from the touch controller at 0x5b"):
        panel.touched()
    with pytest.raises(MPR121Error, match="no answer"):
        panel.start()
    write_state(touch_file, {"0x5b": {"touched": [0]}})
    with pytest.raises(MPR121Error, match="not sensing"):
        panel.touched()  # it lost power while unplugged, so it came back in stop mode
    panel.start()
    assert panel.touched() == {"home"}


def test_over_current_stops_the_chip_and_is_reported():
    bus = SimTouchBus()
    sim = bus.chip(0x5A)
    chip = MPR121(bus, 0x5A)
    chip.start()
    sim.fault = "overcurrent"
    with pytest.raises(MPR121Error, match="over-current"):
        chip.touched()
    assert sim.registers[ECR] & 0x3F == 0  # the chip fell to stop mode, as the datasheet says
    with pytest.raises(MPR121Error, match="over-current"):
        chip.start()  # still shorted: it trips again the moment it senses
    sim.fault = None
    chip.start()
    sim.touch(7)
    assert chip.touched() == {7}


def test_status_bits_beyond_the_configured_electrodes_are_refused():
    bus = SimTouchBus()
    MPR121(bus, 0x5A, 12).start()  # the chip runs 12 electrodes, the driver believes 2
    bus.chip(0x5A).touch(11)
    with pytest.raises(MPR121Error, match="implausible touch status 0x800"):
        MPR121(bus, 0x5A, 2).touched()


class Registers:
    """A bus on which one device answers from a fixed register map and ignores writes."""

    def __init__(self, registers, block=None):
        self.registers, self.block = registers, block

    def write_byte_data(self, addr, register, value):
        pass

    def read_byte_data(self, addr, register):
        return self.registers.get(register, 0)

    def read_i2c_block_data(self, addr, register, length):
        if self.block is not None:
            return self.block(register, length)
        return [self.registers.get(register + i, 0) for i in range(length)]


def test_garbage_answers_are_refused():
    with pytest.raises(MPR121Error, match="not an MPR121"):
        MPR121(Registers({})).start()
    after_reset = {AFE1: 0x10, AFE2: 0x24}
    with pytest.raises(MPR121Error, match="ignored its setup"):
        MPR121(Registers(after_reset)).start()
    with pytest.raises(MPR121Error, match="short or garbled"):
        MPR121(Registers({}, block=lambda r, n: [0])).status()
    with pytest.raises(MPR121Error, match="short or garbled"):
        MPR121(Registers({}, block=lambda r, n: [0, 256])).status()
    with pytest.raises(MPR121Error, match="implausible"):
        MPR121(Registers({TOUCH_STATUS + 1: 0x10})).status()  # proximity, never enabled


def test_layout_from_config_and_its_mistakes():
    assert layout_from_config([0x5A, 0x5B], [LAYOUT[0x5A], LAYOUT[0x5B]]) == LAYOUT
    with pytest.raises(ValueError):
        layout_from_config([0x5A, 0x5A], [["1"], ["2"]])
    with pytest.raises(ValueError):
        layout_from_config([0x5A], [["1"], ["2"]])
    with pytest.raises(ValueError, match="two electrodes"):
        TouchPanel(SimTouchBus(), {0x5A: ["1", "1"]})
    with pytest.raises(ValueError):
        MPR121(SimTouchBus(), 0x5A, 13)


def test_a_noisy_panel_bounces_but_the_scanner_sees_one_clean_press(touch_file):
    period = 0.01
    bus = SimTouchBus(touch_file, seed=3)
    panel = TouchPanel(bus, LAYOUT)
    panel.start()
    write_state(touch_file, {"0x5a": {"fault": "noisy"}, "0x5b": {"fault": "noisy"}})
    scanner = KeyScanner(debounce_s=0.03)
    # a wake contact first, so presses show as presses
    play(scanner, steady({"9"}, 0, 0.1) + steady((), 0.1, 0.2))
    reads, events = [], []
    for i in range(300):
        now = 1.0 + i * period
        if i == 100:
            write_state(touch_file, {"0x5a": {"fault": "noisy", "touched": [4]}})
        if i == 200:
            write_state(touch_file, {"0x5a": {"fault": "noisy"}})
        reads.append(panel.touched())
        events += scanner.feed(now, reads[-1])
    truth = [frozenset({"5"}) if 100 <= i < 200 else frozenset() for i in range(300)]
    assert sum(r != t for r, t in zip(reads, truth)) > 20  # it did bounce
    assert [(e.kind, e.key) for e in events] == [("press", "5"), ("release", "5")]


# -- KeyScanner: examples --------------------------------------------------------------------


def play(scanner, samples):
    events = []
    for now, keys in samples:
        events += scanner.feed(now, frozenset(keys))
    return events


def steady(keys, start, stop, period=0.01):
    """Samples of the same keys from start up to (not including) stop."""
    count = round((stop - start) / period)
    return [(start + i * period, keys) for i in range(count)]


def kinds(events):
    return [(e.kind, e.input or e.key) for e in events]


def awake_scanner(**kwargs):
    scanner = KeyScanner(**kwargs)
    play(scanner, steady({"9"}, 0, 0.1) + steady((), 0.1, 0.2))
    return scanner


def test_the_first_contact_only_wakes_and_so_does_one_after_idle_or_sleep():
    scanner = KeyScanner(debounce_s=0.03, idle_s=5.0)
    events = play(scanner, steady({"5"}, 0, 0.1) + steady((), 0.1, 0.2))
    assert kinds(events) == [("touch", "touch"), ("release", "5")]
    events = play(scanner, steady({"5"}, 0.2, 0.3) + steady((), 0.3, 0.4))
    assert kinds(events) == [("press", "5"), ("release", "5")]
    events = play(scanner, steady({"5"}, 4.0, 4.1) + steady((), 4.1, 4.2))
    assert kinds(events) == [("press", "5"), ("release", "5")]
    events = play(scanner, steady({"5"}, 6.0, 6.1) + steady((), 6.1, 6.2))
    assert kinds(events) == [("press", "5"), ("release", "5")]  # idle counts from 4.13
    events = play(scanner, steady({"5"}, 11.4, 11.5) + steady((), 11.5, 11.6))
    assert kinds(events) == [("touch", "touch"), ("release", "5")]  # 5 s idle
    scanner.sleep()
    events = play(scanner, steady({"5"}, 11.6, 11.7) + steady((), 11.7, 11.8))
    assert kinds(events) == [("touch", "touch"), ("release", "5")]


def test_a_digit_answers_on_touch_and_a_hold_key_on_release_or_hold():
    scanner = awake_scanner(debounce_s=0.03, hold_s=3.0)
    events = play(scanner, steady({"5"}, 1.0, 1.5))
    assert kinds(events) == [("press", "5")]  # while the finger is still down
    play(scanner, steady((), 1.5, 2.0))
    events = play(scanner, steady({"0"}, 2.0, 4.0))
    assert events == []  # a press or a hold: not known yet
    events = play(scanner, steady((), 4.0, 4.1))
    assert kinds(events) == [("press", "0"), ("release", "0")]
    assert events[0].at == events[1].at
    events = play(scanner, steady({"0"}, 5.0, 9.0) + steady((), 9.0, 9.1))
    assert kinds(events) == [("hold", "hold-0"), ("release", "0")]


def test_holding_zero_on_a_sleeping_panel_wakes_it_and_still_holds():
    events = play(KeyScanner(), steady({"0"}, 0, 3.5) + steady((), 3.5, 3.6))
    assert kinds(events) == [("touch", "touch"), ("hold", "hold-0"), ("release", "0")]


def test_a_palm_emits_nothing_and_blocks_until_the_panel_is_clear():
    scanner = awake_scanner()
    assert play(scanner, steady({"1", "5"}, 1.0, 1.5) + steady({"5"}, 1.5, 2.0)) == []
    assert kinds(play(scanner, steady((), 2.0, 2.1) + steady({"5"}, 2.1, 2.2))) == [("press", "5")]
    events = play(scanner, steady({"5", "6"}, 2.2, 2.3) + steady((), 2.3, 2.4))
    assert kinds(events) == [("release", "5")]  # ends at the palm, released once
    events = play(scanner, steady({"0"}, 3.0, 3.5) + steady({"0", "1"}, 3.5, 5.0))
    events += play(scanner, steady((), 5.0, 5.1))
    assert events == []  # a hold key under a palm: neither press nor hold


def test_rolling_from_key_to_key_is_two_presses():
    scanner = awake_scanner()
    samples = steady({"1"}, 1.0, 1.1) + steady({"1", "2"}, 1.1, 1.12) + steady({"2"}, 1.12, 1.2)
    events = play(scanner, samples + steady((), 1.2, 1.3))
    assert kinds(events) == [("press", "1"), ("release", "1"), ("press", "2"), ("release", "2")]


def test_samples_out_of_order_are_refused():
    scanner = KeyScanner()
    scanner.feed(1.0, frozenset())
    with pytest.raises(ValueError):
        scanner.feed(0.5, frozenset())


def test_the_default_latencies_at_a_10_ms_poll():
    period = 0.01
    scanner = awake_scanner()
    press = play(scanner, steady({"5"}, 1.0, 1.2, period))[0]
    release = play(scanner, steady((), 1.2, 1.4, period))[0]
    hold = play(scanner, steady({"0"}, 2.0, 5.5, period))[0]
    assert 0.03 - 1e-9 <= press.at - 1.0 < 0.03 + period
    assert 0.03 - 1e-9 <= release.at - 1.2 < 0.03 + period
    assert hold.input == "hold-0" and 3.0 - 1e-9 <= hold.at - 2.0 < 3.0 + period


# -- KeyScanner: properties ------------------------------------------------------------------
# Times are whole ticks of 1/1024 s, exact in binary floating point, so "shorter than the
# debounce" means exactly that and no rounding decides a test.

TICK = 1 / 1024
KEYS = ("0", "1", "5")  # "0" has a hold meaning, the others do not


@st.composite
def timing(draw):
    period = draw(st.integers(1, 16))
    debounce = draw(st.integers(period + 1, 8 * period))
    hold = draw(st.integers(debounce + 1, 60 * period))
    return period, debounce, hold


def scanner_for(period, debounce, hold, idle_samples=1000):
    return KeyScanner(debounce * TICK, hold * TICK, idle_s=idle_samples * period * TICK)


def samples_of(runs, period):
    """Runs of (keys, count) as timed samples, one period apart."""
    samples, i = [], 0
    for keys, count in runs:
        for _ in range(count):
            samples.append((i * period * TICK, frozenset(keys)))
            i += 1
    return samples


def quiet_tail(debounce, period):
    return [((), debounce // period + 2)]


key_sets = st.sets(st.sampled_from(KEYS), max_size=2)


@given(timing(), st.data())
@settings(max_examples=200, deadline=None)
def test_contacts_shorter_than_the_debounce_never_emit(times, data):
    period, debounce, hold = times
    longest = (debounce - 1) // period + 1  # (count - 1) * period < debounce
    bounces = data.draw(
        st.lists(
            st.tuples(
                st.sets(st.sampled_from(KEYS), min_size=1, max_size=2),
                st.integers(1, longest),
                st.integers(1, 200),
            ),
            max_size=30,
        )
    )
    runs = [((), 1)]
    for keys, count, gap in bounces:
        runs += [(keys, count), ((), gap)]
    events = play(scanner_for(period, debounce, hold), samples_of(runs, period))
    assert events == []


def check_contacts(events: list[KeyEvent]) -> None:
    """One contact at a time; each: touch, press or hold first, at most one hold, one release."""
    opened: list[KeyEvent] = []
    for event in events:
        if event.kind == "release":
            assert opened and all(e.key == event.key for e in opened)
            shape = [e.kind for e in opened]
            assert shape in (["press"], ["touch"], ["touch", "hold"], ["hold"])
            if shape == ["press"] and event.key in ("0",):
                assert opened[0].at == event.at  # a hold key's press comes with its release
            opened = []
        else:
            assert not opened or (event.kind == "hold" and opened[-1].key == event.key)
            opened.append(event)
    assert not opened, "a contact was never released"


@given(timing(), st.lists(st.tuples(key_sets, st.integers(1, 80)), max_size=25))
@settings(max_examples=300, deadline=None)
def test_every_contact_is_released_once_and_held_at_most_once_in_time_order(times, runs):
    period, debounce, hold = times
    samples = samples_of(runs + quiet_tail(debounce, period), period)
    scanner = scanner_for(period, debounce, hold, idle_samples=40)
    events = []
    for now, keys in samples:
        produced = scanner.feed(now, keys)
        assert all(e.at == now for e in produced)  # stamped with the sample that made them
        events += produced
    assert [e.at for e in events] == sorted(e.at for e in events)
    check_contacts(events)
    assert all(e.key in KEYS for e in events)
    assert all(e.input == "hold-0" for e in events if e.kind == "hold")


def settling(debounce, period):
    """The fewest samples whose span reaches the debounce."""
    return -(-debounce // period) + 1


@given(timing(), st.integers(1, 100), st.data())
@settings(max_examples=200, deadline=None)
def test_a_hold_comes_once_at_hold_s_even_through_bounces(times, longer, data):
    period, debounce, hold = times
    longest_bounce = (debounce - 1) // period + 1
    first = settling(debounce, period) + data.draw(st.integers(0, 30))
    bounces = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from([(), ("1",), ("0", "1")]),
                st.integers(1, longest_bounce),
                st.integers(1, 30),
            ),
            max_size=4,
        )
    )
    runs = [((), 1), (("0",), first)]
    for keys, count, touched_again in bounces:
        runs += [(keys, count), (("0",), touched_again)]
    runs += [(("0",), hold // period + longer)] + quiet_tail(debounce, period)
    events = play(scanner_for(period, debounce, hold), samples_of(runs, period))
    holds = [e for e in events if e.kind == "hold"]
    assert len(holds) == 1 and "press" not in [e.kind for e in events]
    started = period * TICK  # the contact's first sample
    assert hold * TICK <= holds[0].at - started < (hold + period) * TICK
    assert kinds(events) == [("touch", "touch"), ("hold", "hold-0"), ("release", "0")]


@given(timing(), st.integers(0, 200), st.sampled_from(KEYS))
@settings(max_examples=200, deadline=None)
def test_debounce_latency_is_the_debounce_within_one_sample(times, extra, key):
    period, debounce, hold = times
    settle = settling(debounce, period)
    length = settle + extra
    wake = [({"9"}, settle), ((), settle)]
    runs = wake + [({key}, length)] + quiet_tail(debounce, period)
    first = sum(count for _, count in wake) * period * TICK
    gone = first + length * period * TICK  # the first sample without the key
    scanner = scanner_for(period, debounce, hold)
    events = [e for e in play(scanner, samples_of(runs, period)) if e.key == key]
    release = events[-1]
    assert release.kind == "release"
    assert debounce * TICK <= release.at - gone < (debounce + period) * TICK
    if key == "0" and (length + 1) * period + debounce < hold:
        assert kinds(events) == [("press", "0"), ("release", "0")]  # on release, not touch
        assert events[0].at == release.at
    elif key != "0":
        assert kinds(events) == [("press", key), ("release", key)]
        assert debounce * TICK <= events[0].at - first < (debounce + period) * TICK
