"""A python-socketio client of the chat app, driven by test/python-client.test.ts.

Two clients, with the one-argument handlers people write (a client that is handed an extra
offset argument raises TypeError in them and loses the event), exchange chat and room messages,
binary included, and use acknowledgements. Prints one JSON line with the outcome; exit status 0
only when every check passed.

usage: chat_client.py URL TRANSPORTS   (TRANSPORTS: comma-separated, e.g. "polling,websocket")
"""
import json
import sys
import threading
import time

import socketio

URL, TRANSPORTS = sys.argv[1], sys.argv[2].split(",")
WAIT_S = 10

received = {"a": [], "b": []}
changed = threading.Condition()


def client(tag):
    sio = socketio.Client(reconnection=False)

    def record(kind):
        def handler(data):  # one argument, as usual
            with changed:
                received[tag].append((kind, data))
                changed.notify_all()
        return handler

    for event in ("chat message", "room message", "presence"):
        sio.on(event, record(event))
    sio.connect(URL, transports=TRANSPORTS, wait_timeout=WAIT_S)
    return sio


def wait_for(tag, kind, data):
    deadline = time.monotonic() + WAIT_S
    with changed:
        while (kind, data) not in received[tag]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{tag} never got {kind} {data!r}; got {received[tag]!r}")
            changed.wait(left)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    a, b = client("a"), client("b")
    try:
        who = [a.call("whoami", timeout=WAIT_S), b.call("whoami", timeout=WAIT_S)]
        check(a.call("set name", "py-a", timeout=WAIT_S) is True, "set name acknowledged")
        bad = a.call("set name", "x" * 33, timeout=WAIT_S)
        check(isinstance(bad, dict) and "error" in bad, f"an over-long name is refused: {bad!r}")

        a.emit("chat message", {"text": "hello"})
        for tag in ("a", "b"):
            wait_for(tag, "chat message", {"text": "hello", "from": "py-a"})
        b.emit("chat message", "a plain string")
        wait_for("a", "chat message", "a plain string")

        check(a.call("join", "py-room", timeout=WAIT_S) is True, "a joins")
        check(b.call("join", "py-room", timeout=WAIT_S) is True, "b joins")
        wait_for("a", "presence", {"room": "py-room", "joined": {"id": b.get_sid(), "name": None}})
        members = a.call("members", "py-room", timeout=WAIT_S)
        check(sorted(m["name"] or "" for m in members) == ["", "py-a"], f"members across workers: {members!r}")
        check(a.call("room message", {"room": "py-room", "text": "in the room"}, timeout=WAIT_S) is True, "room message acknowledged")
        for tag in ("a", "b"):
            wait_for(tag, "room message", {"room": "py-room", "text": "in the room", "from": "py-a"})

        # python-socketio 5.7 decodes each Engine.IO message in a thread of its own, so a binary
        # packet's attachment can overtake its header in the receiving client (ValueError in its
        # thread, the event lost): a few distinct blobs, of which one must arrive intact.
        blobs = [bytes([0, 1, 2, 254, 255, attempt]) for attempt in range(3)]
        for blob in blobs:
            b.emit("chat message", blob)
        deadline = time.monotonic() + WAIT_S
        with changed:
            while not any(("chat message", blob) in received["a"] for blob in blobs):
                check(time.monotonic() < deadline, f"a never got a binary message; got {received['a']!r}")
                changed.wait(0.1)
        print(json.dumps({"ok": True, "pids": [w["pid"] for w in who], "received": {t: len(r) for t, r in received.items()}}))
        return 0
    except Exception as err:  # the outcome goes to the test as JSON
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}))
        return 1
    finally:
        a.disconnect()
        b.disconnect()


if __name__ == "__main__":
    sys.exit(main())
