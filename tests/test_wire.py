import msgpack
import pytest

from protocols import wire


def test_round_trip_every_message_type():
    messages = [
        wire.Hello(1, 0, 123, "host"),
        wire.Plan("run", {"target": "http://x/", "walkers": {"0": [[0, "markov"]]}}),
        wire.Ready(1, 0, "run", 4),
        wire.Start("run", 1.5, 31.5),
        wire.Stop("run", "deadline"),
        wire.TallyReport(1, 0, 7, True, {"markov.requests": 3}, {"markov.latency": b"HIST"},
                         {"markov.x": {"a": 1}}),
        wire.Violation(1, 0, 3, "adv.desync", 12.5, {"sent": b"\x00GET"}),
        wire.ActorFailed(1, 0, "boom"),
        wire.Bye(1, 0),
    ]
    for message in messages:
        assert wire.decode(wire.encode(message)) == message


@pytest.mark.parametrize(
    "frame, fragment",
    [
        (b"\xc1", "not msgpack"),
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb({"v": 99, "t": "bye", "actor_id": 1, "incarnation": 0}), "version"),
        (msgpack.packb({"v": 1, "t": "nope"}), "unknown message type"),
        (msgpack.packb({"v": 1, "t": "bye", "actor_id": 1}), "missing field"),
        (msgpack.packb({"v": 1, "t": "bye", "actor_id": "1", "incarnation": 0}), "type"),
        (msgpack.packb({"v": 1, "t": "tally", "actor_id": 1, "incarnation": 0, "seq": 1,
                        "final": False, "counters": {"a": "x"}, "histograms": {}}), "counters"),
    ],
)
def test_malformed_frames_raise_wire_error(frame, fragment):
    with pytest.raises(wire.WireError, match=fragment):
        wire.decode(frame)


def test_bool_is_not_an_int():
    frame = msgpack.packb({"v": 1, "t": "bye", "actor_id": True, "incarnation": 0})
    with pytest.raises(wire.WireError):
        wire.decode(frame)


def test_random_bytes_never_escape_as_other_exceptions():
    import random

    rng = random.Random(7)
    for _ in range(2000):
        frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        try:
            wire.decode(frame)
        except wire.WireError:
            pass
