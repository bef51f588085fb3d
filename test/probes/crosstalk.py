"""crosstalk: proves a sandbox's files are its own while many run at once.

Reads a token on stdin, writes it to /tmp and /box, waits long enough for
every other sandbox of the batch to do the same, reads both back and prints
them with what else it can see in those directories:
    tmp: <token read back from /tmp/token>
    box: <token read back from /box/token>
    ls /tmp: <names>
    ls /box: <names>
"""
import os
import sys
import time

SETTLE_S = 0.3

token = sys.stdin.read().strip()
for path in ("/tmp/token", "/box/token"):
    with open(path, "w") as f:
        f.write(token)
time.sleep(SETTLE_S)
for name, path in (("tmp", "/tmp/token"), ("box", "/box/token")):
    with open(path) as f:
        print(f"{name}: {f.read()}")
for directory in ("/tmp", "/box"):
    print(f"ls {directory}: {' '.join(sorted(os.listdir(directory)))}")
