"""A Python interpreter with modules imported and data built, computing in
steps. Each step's line depends on every step before it, so a restored run
must print exactly what an uninterrupted one prints.

argv[1]: steps to run; argv[2]: seconds between steps.
"""
import collections
import decimal
import hashlib
import json
import os
import sys
import time

try:
    os.setsid()
except PermissionError:
    pass  # a session leader already (rckpt run)
steps = int(sys.argv[1])
pause = float(sys.argv[2])
data = {i: hashlib.sha256(str(i).encode()).hexdigest() for i in range(50000)}
counts = collections.Counter(v[0] for v in data.values())
state = hashlib.sha256(json.dumps(counts, sort_keys=True).encode()).hexdigest()
print("READY", os.getpid(), flush=True)
for step in range(1, steps + 1):
    state = hashlib.sha256((state + data[step % 50000]).encode()).hexdigest()
    print(f"STEP {step} {state[:16]} {decimal.Decimal(step) / 7:.5f} {len(data)}", flush=True)
    time.sleep(pause)
print("DONE", flush=True)
