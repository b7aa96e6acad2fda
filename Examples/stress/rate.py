#!/usr/bin/env python3
"""stress/rate.py: how often a timing-dependent fault happens (the catalog's Reliability).

    rate.py LIB RUNS TIMEOUT COMMAND...

Runs COMMAND RUNS times with LD_PRELOAD=LIB (`none`: untraced) and a fresh MEM_DIR under /dev/shm,
kills a run (its whole process group) after TIMEOUT seconds and counts the outcomes: `exit N` or
`hang`. With CHECK=/path/to/memdir, a run that exited 0 is followed by `memdir list` on its
record and the outcome gets `list N` (5: a malformed record).
"""
import os, subprocess, sys, time, signal, shutil, tempfile
lib, n, timeout, cmd = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
outcomes = {}
t0 = time.time()
for i in range(n):
    d = tempfile.mkdtemp(prefix="memdir-rate-", dir="/dev/shm")
    env = dict(os.environ)
    if lib != "none":
        env["LD_PRELOAD"] = lib
    env["MEM_DIR"] = d + "/m"
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
        key = "exit %d" % p.returncode
        if os.environ.get("CHECK") and p.returncode == 0:
            r = subprocess.run([os.environ["CHECK"], "list", d + "/m"], capture_output=True)
            key += " list %d" % r.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); p.communicate()
        key = "hang"
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    outcomes[key] = outcomes.get(key, 0) + 1
    shutil.rmtree(d, ignore_errors=True)
print(outcomes, "%.1fs" % (time.time() - t0))
