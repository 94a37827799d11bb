#!/usr/bin/env python3
"""Check an rntk TensorBoard event file with the real `tensorboard` package.

Usage: check_events.py EVENT_FILE EXPECTED_JSON

EXPECTED_JSON: {"scalars": {"<tag>": [[step, value], ...], ...}} with values already
rounded to float32. The check reads every record with TensorBoard's own record reader
(which verifies both masked CRC32Cs of each record and raises on corruption), requires
the first event to carry file_version "brain.Event:2", then loads the file with
EventAccumulator and requires exactly the expected scalar tags, steps and values.
Exit 0 and print "check_events: OK ..." on success; a non-zero exit otherwise.
"""

import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow


def raw_events(path):
    """Every Event in the file, read by TensorBoard's CRC-checking record reader."""
    reader = pywrap_tensorflow.PyRecordReader_New(path)
    events = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return events
        # DataLossError (bad CRC, truncated record) propagates: the check fails.
        event = event_pb2.Event()
        event.ParseFromString(reader.record())
        events.append(event)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)["scalars"]

    events = raw_events(path)
    assert events, "no events in %s" % path
    assert events[0].file_version == "brain.Event:2", events[0]
    assert all(e.wall_time > 0 for e in events), "an event has no wall_time"

    acc = EventAccumulator(path, size_guidance={"scalars": 0})
    acc.Reload()
    assert acc.file_version == 2.0, acc.file_version
    tags = sorted(acc.Tags()["scalars"])
    assert tags == sorted(expected), "tags %s, expected %s" % (tags, sorted(expected))
    count = 0
    for tag, want in expected.items():
        got = [[s.step, s.value] for s in acc.Scalars(tag)]
        assert got == want, "%s: got %s, expected %s" % (tag, got, want)
        count += len(got)
    print("check_events: OK %d scalars in %d tags, %d records" % (count, len(tags), len(events)))


if __name__ == "__main__":
    main()
