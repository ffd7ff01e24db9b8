"""An expensive environment to warm up: computes an index for WARM seconds
(default 10; the work is CPU, the result some tens of MB, like a warmed cache
or a built project), then serves: on SIGUSR2 it answers with the index's size
and checksum, and goes on serving."""
import hashlib
import os
import signal
import sys
import time

warm = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
t0 = time.monotonic()
index = {}
i = 0
h = b"seed"
while time.monotonic() - t0 < warm:
    for _ in range(50):
        for _ in range(200):
            h = hashlib.sha256(h).digest()
        index[i] = h * 8
        i += 1
digest = hashlib.sha256(b"".join(index[k] for k in range(0, i, 997))).hexdigest()
print(f"WARM {time.monotonic() - t0:.2f} s, {len(index)} entries, {digest[:16]}", flush=True)


def answer(signum, frame):
    check = hashlib.sha256(b"".join(index[k] for k in range(0, len(index), 997))).hexdigest()
    print(f"ANSWER {len(index)} {check[:16]}", flush=True)


signal.signal(signal.SIGUSR2, answer)
print("READY", os.getpid(), flush=True)
while True:
    signal.pause()
