"""A python-socketio client that opts in to recovery offsets (README "Which clients get offsets").

It connects with auth {"offsets": True}, broadcasts one chat message and checks that its handler
gets the payload and, as the extra last argument, a string offset. Prints one JSON line.

usage: opt_in_client.py URL
"""
import json
import sys
import threading

import socketio

got = []
ok = False
arrived = threading.Event()
sio = socketio.Client(reconnection=False)


@sio.on("chat message")
def on_chat(*args):  # a client that opts in takes the offset as the last argument
    got.append(list(args))
    arrived.set()


sio.connect(sys.argv[1], transports=["websocket"], auth={"offsets": True}, wait_timeout=10)
try:
    sio.emit("chat message", {"text": "with an offset"})
    ok = arrived.wait(10) and len(got[0]) == 2 and got[0][0] == {"text": "with an offset"} and isinstance(got[0][1], str)
    print(json.dumps({"ok": bool(ok), "got": got}))
finally:
    sio.disconnect()
sys.exit(0 if ok else 1)
