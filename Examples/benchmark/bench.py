#!/usr/bin/env python3
"""The memdir benchmark driver (Python 3 standard library only); `run` is the entry point.

It builds the package in release, compiles the C workloads in workloads/, generates the input
data once, then times every (workload, tool) pair side by side: the program alone, under
libmemtrack.so in several configurations, under heaptrack and under valgrind memcheck, plus
the two plain C loops that are the floors memtrack and `memdir list` are measured against.

The runs of a workload are made in rounds: each round runs every tool once, in an order
rotated by one each round, so that a slow or busy stretch of the machine falls on every tool
alike. For each pair it reports the median wall time, its ratio to the plain program, to
heaptrack and (where there is one) to the C loop with the goal, the medians over rounds of the
per-round ratios to plain and heaptrack, the median peak RSS of the largest process of the
command's tree and, for memtrack, how many .mem files each run left. With --filesystems the
workloads run again with MEM_DIR on loop-device filesystems (ext4, xfs, btrfs). The table goes
to stdout and, with every individual run, to results/<date>-<host>.md and .json.
"""

import argparse
import datetime
import fnmatch
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent               # the Swift package
BUILD = HERE / "build"                  # compiled workloads (ignored by git)
RESULTS = HERE / "results"
WORKLOAD_SOURCES = HERE / "workloads"
HARNESS_SOURCES = HERE / "harness"      # launch.c

# Sizes. FULL is the real benchmark; QUICK is a smoke test that finishes in under a minute.
FULL = dict(churn_pairs=2_000_000, longlived_blocks=100_000, sort_mb=20, json_items=60_000,
            perl_keys=250_000, records=1_000_000, stacks=300, threaded_rounds=200,
            python_dicts=300_000, live_blocks=1_000_000, leakcheck_blocks=1_048_576,
            instruction_pairs=200_000, git_commits=2_135, find_root="/usr", gcc_lines=20_000)
QUICK = dict(churn_pairs=100_000, longlived_blocks=5_000, sort_mb=1, json_items=5_000,
             perl_keys=10_000, records=5_000, stacks=50, threaded_rounds=10,
             python_dicts=10_000, live_blocks=20_000, leakcheck_blocks=20_000,
             instruction_pairs=20_000, git_commits=100, find_root="/usr/include", gcc_lines=1_000)

SLOW_RUN_S = 10.0      # a pair whose first run takes longer gets at most 3 runs
VERY_SLOW_RUN_S = 90.0 # ... and one whose first run takes longer than this, 1 run only
DEFAULT_TIMEOUT_S = 120 # a single run taking longer is killed and reported (--timeout)
DEPTHS = (1, 4, 12, 24)
WORKLOAD_NAMES = ("churn", "longlived", "sort", "python-json", "perl-hash", "python-dicts",
                  "python-malloc", "threaded", "threaded-sized", "git-log", "find-sort", "gcc",
                  "live-1m", "memdir-list", "leakcheck-heap")
LOOP_FILESYSTEMS = ("ext4", "xfs", "btrfs")   # --filesystems: made on a loop device
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_PAGER": "cat"}
GOALS = {"longlived": 1.3, "memdir-list": 1.5}   # memtrack / memdir vs the C loop


# ---------------------------------------------------------------------------------------------
# Tools and workloads

@dataclass
class Tool:
    """How to run a program: a command prefix, environment additions and what it needs."""
    name: str
    kind: str                          # plain | memtrack | heaptrack | valgrind | loop | memdir
    env: dict = field(default_factory=dict)
    only: tuple = ()                   # workloads this tool is limited to (empty: all programs)
    lib: str = None                    # memtrack: this libmemtrack.so instead of the one built


def all_tools(libraries=()):
    """Every tool, in table order; libraries: (name, path) pairs from --library."""
    tools = [Tool("plain", "plain"),
             Tool("memtrack", "memtrack")]
    tools += [Tool(f"memtrack {name}", "memtrack", lib=path) for name, path in libraries]
    tools += [Tool("memtrack sync", "memtrack", {"MEM_SETTLE_MS": "0"}),
              Tool("memtrack no-quarantine", "memtrack", {"MEM_QUARANTINE": "0"}),
              Tool("memtrack no-leak-check", "memtrack", {"MEM_LEAK_CHECK": "0"}),
              Tool("memtrack no-counters", "memtrack", {"MEM_COUNTERS": "0"}, only=("churn",))]
    tools += [Tool(f"memtrack depth={d}", "memtrack", {"MEM_DEPTH": str(d)}, only=("churn",))
              for d in DEPTHS]
    tools += [Tool("heaptrack", "heaptrack"), Tool("valgrind", "valgrind"),
              Tool("C loop", "loop"), Tool("memdir list", "memdir")]
    return tools


def memtrack_library(tool, ctx):
    """The libmemtrack.so a memtrack tool preloads: its own (--library) or the one built."""
    return tool.lib or ctx.lib


def tool_key(tool):
    """The name --tools matches against: lower case, spaces as dashes (memtrack-depth=4)."""
    return tool.name.lower().replace(" ", "-")


class Pipeline(list):
    """A shell pipeline of argvs: every tool wraps each stage (heaptrack and valgrind trace
    each program of it, not the shell), run by /bin/sh -c."""


@dataclass
class Workload:
    name: str
    argv: list                          # the program (or a Pipeline); "{scratch}" is replaced by a fresh dir
    note: str = ""
    loop_argv: list = None              # the C loop measured next to it (the goal's floor)
    loop_note: str = ""
    expect_files: int = None            # .mem files a memtrack run must leave (None: any)
    leak_argv: list = None              # untimed check: memtrack must leave leak_files files
    leak_files: int = 0
    memdir_only: bool = False           # timed with `memdir list` and its loop only
    env: dict = field(default_factory=dict)   # added to every tool's environment
    filesystem: str = ""                # a loop filesystem MEM_DIR is on ("": --mem-root)

    @property
    def label(self):
        """The name in the table: perl-hash, or perl-hash@ext4 on a loop filesystem."""
        return f"{self.name}@{self.filesystem}" if self.filesystem else self.name


def workloads(sizes, bins, data):
    """The workloads, in table order, given the sizes, compiled binaries and generated data."""
    json_code = ("import json\n"
                 f"data = [{{'id': i, 'name': 'item-%d' % i, 'tags': ['x', 'y', str(i % 97)], "
                 f"'score': i * 0.25, 'ok': i % 3 == 0, 'child': {{'n': i, 's': 'v' * (i % 17)}}}} "
                 f"for i in range({sizes['json_items']})]\n"
                 "back = json.loads(json.dumps(data))\n"
                 "assert back == data\n")
    perl_code = (f'my %h; $h{{"key-$_"}} = [$_, "value-$_"] for 1..{sizes["perl_keys"]}; '
                 'my $n = keys %h; print "$n\\n";')
    python_dicts_code = (f"data = [{{'id': i, 'name': 'n%d' % i}} for i in range({sizes['python_dicts']})]\n"
                         "print(len(data))\n")
    blocks = sizes["longlived_blocks"]
    return [
        Workload("churn", [bins["churn"], str(sizes["churn_pairs"]), "1024"],
                 note=f"{sizes['churn_pairs']:,} malloc/free pairs of 16-527 B, 1,024 live",
                 expect_files=0),
        Workload("longlived", [bins["longlived"], str(blocks), "100"],
                 note=f"{blocks:,} blocks held 100 ms (past the settle time: every one becomes a file), then freed",
                 loop_argv=[bins["fileloop"], "{scratch}", str(blocks)],
                 loop_note=f"fileloop.c: {blocks:,} x openat+write+close, then unlinkat",
                 expect_files=0,
                 leak_argv=[bins["longlived"], str(blocks), "100", "leak"], leak_files=blocks),
        Workload("sort", ["/usr/bin/sort", "-o", "/dev/null", str(data["sort"])],
                 note=f"GNU sort of {sizes['sort_mb']} MB of random lines (LC_ALL=C.UTF-8)"),
        Workload("python-json", ["/usr/bin/python3", "-c", json_code],
                 note=f"json dumps+loads of {sizes['json_items']:,} dicts"),
        Workload("perl-hash", ["/usr/bin/perl", "-e", perl_code],
                 note=f"hash of {sizes['perl_keys']:,} keys"),
        Workload("python-dicts", ["/usr/bin/python3", "-c", python_dicts_code],
                 note=f"default allocator (pymalloc), {sizes['python_dicts']:,} small dicts built and kept"),
        Workload("python-malloc", ["/usr/bin/python3", "-c", python_dicts_code],
                 note=f"PYTHONMALLOC=malloc, {sizes['python_dicts']:,} small dicts built and kept",
                 env={"PYTHONMALLOC": "malloc"}),
        Workload("threaded", [bins["threaded"], "4", str(sizes["threaded_rounds"]), "500", "20000"],
                 note=f"threaded.cpp: 4 producer threads x {sizes['threaded_rounds']} batches of 500 "
                      "blocks freed by a consumer thread, 80,000 blocks live throughout",
                 expect_files=0),
        Workload("threaded-sized", [bins["threaded"], "4", str(sizes["threaded_rounds"]), "500",
                                    "20000", "sized"],
                 note="threaded with every free a sized operator delete(void *, size_t)",
                 expect_files=0),
        Workload("git-log", ["/usr/bin/git", "--git-dir", str(data["git"]), "log", "-p",
                             "--no-color", "main"],
                 note=f"git log -p of a generated repository of {sizes['git_commits']:,} commits "
                      "(git fast-import, fixed seed)",
                 env=GIT_ENV),
        Workload("find-sort", Pipeline([["/usr/bin/find", sizes["find_root"]], ["/usr/bin/sort"]]),
                 note=f"find {sizes['find_root']} | sort, both traced"),
        Workload("gcc", [data["cc1"], "-quiet", "-O2", str(data["gcc"]), "-o", "/dev/null"],
                 note=f"cc1 -O2 (gcc's compiler proper) on a generated C file of "
                      f"{sizes['gcc_lines']:,} lines"),
        Workload("live-1m", [bins["livemany"], str(sizes["live_blocks"])],
                 note=f"livemany.c: {sizes['live_blocks']:,} blocks of 16-79 B live at exit",
                 loop_argv=[bins["symlinkloop"], "{scratch}", str(sizes["live_blocks"]), "2"],
                 loop_note=f"symlinkloop.c: {sizes['live_blocks']:,} x symlinkat in one directory, 2 threads",
                 expect_files=sizes["live_blocks"]),
        Workload("memdir-list", [bins["memdir"], "list", str(data["records"])],
                 note=f"{sizes['records']:,} block records, {sizes['stacks']} stacks, warm cache",
                 loop_argv=[bins["readdirloop"], str(data["records"])],
                 loop_note="readdirloop.c: readdir + openat/read/close each file",
                 memdir_only=True),
        # The leak check at exit (issue 8): its own time is `duration-us` in each run's leak-check.
        Workload("leakcheck-heap", [bins["leakcheck_heap"], str(sizes["leakcheck_blocks"]), "256"],
                 note=f"{sizes['leakcheck_blocks']:,} blocks of 256 B alive at exit, 1% lost; "
                      "leak-check's duration-us is the classification"),
    ]


def rows_for(workload, tools):
    """The (tool, argv) pairs timed for a workload."""
    rows = []
    for tool in tools:
        if tool.only and workload.name not in tool.only:
            continue
        if tool.kind == "loop":
            if workload.loop_argv:
                rows.append((tool, workload.loop_argv))
        elif tool.kind == "memdir":
            if workload.memdir_only:
                rows.append((tool, workload.argv))
        elif not workload.memdir_only:
            rows.append((tool, workload.argv))
    return rows


# ---------------------------------------------------------------------------------------------
# Running one program

@dataclass
class Run:
    seconds: float
    maxrss_kib: int
    exit: str                           # "0", "1", "SIGSEGV"...
    stderr_tail: str
    mem_files: int = None               # memtrack: .mem files left in MEM_DIR
    tmpfs_kib: int = None               # memtrack: data blocks the records take (st_blocks)
    kernel_kib: int = None              # memtrack: SUnreclaim + Shmem growth while it ran
    program_records: int = 0            # memtrack: records the program's threads wrote
    writer_records: int = 0             # memtrack: records the writer (and exit flush) wrote
    free_files: int = 0                 # memtrack: bad-free files
    run_dirs: int = 0
    status_problems: list = field(default_factory=list)
    round: int = None                   # the round it ran in (per-round ratios pair runs by it)
    command_maxrss_kib: int = None      # wait4's ru_maxrss of the command alone (see launch.c)
    leftovers: int = 0                  # processes still running after the command, killed


def base_environment():
    """The environment every run starts from: no preload, no MEM_* settings, a fixed locale."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("MEM_")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def spawn_and_wait(argv, env, stderr_path, ctx):
    """Runs argv through harness/launch.c in its own session, stdout to /dev/null.

    Returns (seconds, tree maxrss_kib, wait status, command maxrss_kib, leftovers) as
    measured by the launcher around fork and wait4 of argv (see launch.c for why Python cannot
    measure the peak RSS itself, and what the tree is). A watchdog
    kills the session after ctx.timeout (the status is then None); afterwards whatever is left of the session is killed so
    that nothing (heaptrack's interpreter) runs into the next measurement.
    """
    result_path = stderr_path.with_suffix(".result")
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, str(stderr_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                0o600)]
    launcher = [ctx.launch, str(result_path)] + argv
    pid = os.posix_spawn(launcher[0], launcher, env, file_actions=actions, setsid=True)
    expired = threading.Event()
    watchdog = threading.Timer(ctx.timeout, lambda: (expired.set(), kill_session(pid)))
    watchdog.start()
    try:
        _, launcher_status, _ = os.wait4(pid, 0)
    except BaseException:            # the driver is ending (SIGTERM, ^C): end the run too
        kill_session(pid)
        os.waitpid(pid, 0)
        raise
    finally:
        watchdog.cancel()
    kill_session(pid)
    if expired.is_set():
        result_path.unlink(missing_ok=True)
        return float(ctx.timeout), 0, None, 0, 0
    try:
        seconds, maxrss, status, tree_maxrss, leftovers = result_path.read_text().split()
        return float(seconds), int(tree_maxrss), int(status), int(maxrss), int(leftovers)
    except (OSError, ValueError):
        raise SystemExit(f"launch failed for {argv}: {describe_exit(launcher_status)}, "
                         f"{tail(stderr_path)}")
    finally:
        result_path.unlink(missing_ok=True)


def kill_session(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(status):
    if status is None:
        return "timeout"
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return str(os.waitstatus_to_exitcode(status))


def tail(path, lines=6):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def command_for(tool, argv, scratch, ctx, extra_env=None):
    """The full command line and environment for running argv under tool."""
    env = base_environment()
    env.update(extra_env or {})
    env.update(tool.env)
    if isinstance(argv, Pipeline):
        return pipeline_command(tool, argv, scratch, ctx, env)
    argv = [a.replace("{scratch}", str(scratch)) for a in argv]
    if tool.kind == "memtrack":
        env["BENCH_LD_PRELOAD"] = str(memtrack_library(tool, ctx))    # LD_PRELOAD for argv, not launch.c
        env["MEM_DIR"] = str(scratch)
        return argv, env
    if tool.kind == "heaptrack":
        return [ctx.heaptrack, "-o", str(scratch / "heaptrack.out")] + argv, env
    if tool.kind == "valgrind":
        return [ctx.valgrind, "--tool=memcheck", "--leak-check=full", "-q"] + argv, env
    return argv, env


def pipeline_command(tool, stages, scratch, ctx, env):
    """sh -c 'STAGE | STAGE' with each stage under the tool. heaptrack's own messages go to
    its stdout, so a few lines of them reach the next stage: they change nothing that counts."""
    parts = []
    for number, stage in enumerate(stages):
        prefix = []
        if tool.kind == "memtrack":
            env["MEM_DIR"] = str(scratch)
            prefix = ["/usr/bin/env", f"LD_PRELOAD={memtrack_library(tool, ctx)}"]   # the stages, not the shell
        elif tool.kind == "heaptrack":
            prefix = [ctx.heaptrack, "-o", str(scratch / f"heaptrack-{number}.out")]
        elif tool.kind == "valgrind":
            prefix = [ctx.valgrind, "--tool=memcheck", "--leak-check=full", "-q"]
        parts.append(shlex.join(prefix + stage))
    return ["/bin/sh", "-c", " | ".join(parts)], env


def inspect_mem_dir(mem_dir, run):
    """Counts the records memtrack left and collects any status that is not a clean exit."""
    run.mem_files = 0
    run.tmpfs_kib = 0
    for run_dir in sorted(p for p in mem_dir.iterdir() if p.is_dir()):
        run.run_dirs += 1
        names = os.listdir(run_dir)
        run.mem_files += sum(1 for n in names if n.endswith(".mem"))
        run.free_files += sum(1 for n in names if n.endswith(".free"))
        for name in names:   # symlinks whose target fits in the inode have 0 blocks
            if name.endswith(".mem"):
                run.tmpfs_kib += os.lstat(run_dir / name).st_blocks // 2
        counters = status_counters(run_dir / "status")
        run.program_records += counters.get("program-records", 0)
        run.writer_records += counters.get("writer-records", 0)
        problem = status_problem(run_dir / "status")
        if problem:
            run.status_problems.append(f"{run_dir.name}: {problem}")


def status_counters(path):
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    pairs = (line.split(" ", 1) for line in lines[1:] if " " in line)
    return {k: int(v) for k, v in pairs if v.isdigit()}


def kernel_memory_kib():
    """SUnreclaim + Shmem from /proc/meminfo: where tmpfs inodes, dentries and pages live."""
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("SUnreclaim", "Shmem", "SReclaimable"):
            values[key] = int(rest.split()[0])
    return sum(values.values())


def status_problem(path):
    """None for a status file saying 'state exit', 'code 0' and zero counters, else why not."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"no status file ({error.strerror})"
    pairs = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    bad = []
    if pairs.get("state") != "exit":
        bad.append(f"state {pairs.get('state')}")
    for key in ("unrecorded-blocks", "unremoved-records", "unrecorded-events"):
        if pairs.get(key, "0") != "0":
            bad.append(f"{key} {pairs[key]}")
    if "error" in pairs:
        bad.append(f"error {pairs['error']}")
    return ", ".join(bad) or None


def run_once(tool, argv, ctx, extra_env=None):
    """One timed run in a fresh scratch directory (MEM_DIR, loop dir or heaptrack output),
    which is inspected and deleted afterwards, outside the timing."""
    scratch = Path(tempfile.mkdtemp(prefix="memdir-bench-", dir=ctx.mem_root))
    stderr_path = Path(tempfile.mkstemp(prefix="memdir-bench-stderr-")[1])
    try:
        full_argv, env = command_for(tool, argv, scratch, ctx, extra_env)
        kernel_before = kernel_memory_kib()
        seconds, maxrss, status, command_maxrss, leftovers = spawn_and_wait(full_argv, env,
                                                                            stderr_path, ctx)
        run = Run(seconds, maxrss, describe_exit(status), tail(stderr_path),
                  command_maxrss_kib=command_maxrss, leftovers=leftovers)
        if tool.kind == "memtrack":
            run.kernel_kib = kernel_memory_kib() - kernel_before
            inspect_mem_dir(scratch, run)
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        stderr_path.unlink(missing_ok=True)
        if ctx.sync_after_run:       # a disk: write back this run's data before the next starts
            os.sync()


# ---------------------------------------------------------------------------------------------
# Measuring a (workload, tool) pair

@dataclass
class Row:
    workload: str
    tool: str
    kind: str
    runs: list = field(default_factory=list)
    skipped: str = ""                   # why it was not run
    notes: list = field(default_factory=list)

    @property
    def ok_runs(self):
        return [r for r in self.runs if r.exit == "0"]

    @property
    def median_s(self):
        ok = self.ok_runs
        return statistics.median(r.seconds for r in ok) if ok else None

    @property
    def median_rss_mib(self):
        ok = self.ok_runs
        return statistics.median(r.maxrss_kib for r in ok) / 1024 if ok else None


def unavailable(tool, ctx):
    """Why tool cannot run here, or None."""
    if tool.kind == "memtrack" and not memtrack_library(tool, ctx):
        return "libmemtrack.so not built"
    if tool.kind == "memdir" and not ctx.memdir:
        return "memdir not built"
    if tool.kind == "heaptrack" and not ctx.heaptrack:
        return "heaptrack not installed"
    if tool.kind == "valgrind" and not ctx.valgrind:
        return "valgrind not installed"
    return None


def measure_rounds(workload, pairs, ctx):
    """Times every (tool, argv) of a workload in rounds: each round runs every tool once, in
    the order of the previous round rotated by one (round r starts with the r-th tool), so that
    a change in the machine's load falls on all of them. A tool makes ctx.runs runs (at most 3
    when its first run takes more than SLOW_RUN_S, 1 over VERY_SLOW_RUN_S) and stops at its
    first failure or timeout; the rounds go on while any tool wants more. Returns the rows."""
    rows = [Row(workload.label, tool.name, tool.kind) for tool, _ in pairs]
    wanted = []
    for row, (tool, _) in zip(rows, pairs):
        row.skipped = unavailable(tool, ctx) or ""
        wanted.append(0 if row.skipped else ctx.runs)
    if workload.memdir_only:
        for (tool, argv), count in zip(pairs, wanted):
            if count:
                run_once(tool, argv, ctx, workload.env)   # warm the cache, untimed
    number = 0
    while any(len(row.runs) < count for row, count in zip(rows, wanted)):
        shift = number % len(pairs)
        for i in [*range(shift, len(pairs)), *range(shift)]:
            row, (tool, argv) = rows[i], pairs[i]
            if len(row.runs) >= wanted[i]:
                continue
            run = run_once(tool, argv, ctx, workload.env)
            run.round = number
            row.runs.append(run)
            progress(row, run)
            if run.exit == "timeout":
                row.notes.append(f"run {len(row.runs)} killed after the {ctx.timeout} s timeout")
                wanted[i] = len(row.runs)
            elif run.exit != "0":
                row.notes.append(f"run {len(row.runs)} exited {run.exit}: {one_line(run.stderr_tail)}")
                wanted[i] = len(row.runs)
            elif len(row.runs) == 1 and run.seconds > VERY_SLOW_RUN_S and wanted[i] > 1:
                wanted[i] = 1
                row.notes.append(f"1 run only: slower than {VERY_SLOW_RUN_S:.0f} s")
            elif len(row.runs) == 1 and run.seconds > SLOW_RUN_S:
                wanted[i] = min(wanted[i], 3)
        number += 1
    for row, (tool, _) in zip(rows, pairs):
        check_memtrack(row, workload, tool, ctx)
        check_tree(row)
    return rows


def check_tree(row):
    """Notes processes the command left running, and a largest process nobody waited for."""
    left = sum(r.leftovers for r in row.runs)
    if left:
        row.notes.append(f"{left} processes still running after the command were killed")
    hidden = [r.maxrss_kib for r in row.ok_runs
              if r.command_maxrss_kib is not None and r.maxrss_kib > r.command_maxrss_kib]
    if hidden:
        row.notes.append(f"largest process not waited for by the command: up to "
                         f"{max(hidden) / 1024:.1f} MiB")


def check_memtrack(row, workload, tool, ctx):
    """Notes wrong .mem counts, unclean status files and bad-free records of memtrack runs."""
    if tool.kind != "memtrack" or not row.ok_runs:
        return
    counts = sorted({r.mem_files for r in row.ok_runs})
    if workload.expect_files is not None and counts != [workload.expect_files]:
        row.notes.append(f"WRONG: expected {workload.expect_files} .mem files left, got {counts}")
    problems = sorted({p for r in row.ok_runs for p in r.status_problems})
    if problems:
        row.notes.append("status: " + "; ".join(problems[:3]))
    frees = sorted({r.free_files for r in row.ok_runs})
    if frees != [0]:
        row.notes.append(f"bad-free files: {frees}")
    if not any(r.run_dirs for r in row.ok_runs):
        row.notes.append("WRONG: no run directory was created")
    if workload.leak_argv:
        leak = run_once(tool, workload.leak_argv, ctx, workload.env)
        verdict = "ok" if leak.exit == "0" and leak.mem_files >= workload.leak_files else "WRONG"
        row.notes.append(f"leak check {verdict}: {leak.mem_files}/{workload.leak_files} files"
                         + (f", exit {leak.exit}" if leak.exit != "0" else ""))


def one_line(text, width=160):
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= width else text[:width - 3] + "..."


def progress(row, run):
    extra = f", {run.mem_files} .mem left" if run.mem_files is not None else ""
    print(f"  {row.workload:16} {row.tool:24} round {run.round + 1}: {run.seconds:8.3f} s, "
          f"{run.maxrss_kib / 1024:7.1f} MiB, exit {run.exit}{extra}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Preparation: tools, build, workloads, data

class Context:
    """Everything measure() needs: paths of the tools and products, the run count."""
    def __init__(self, args):
        self.runs = args.runs
        self.timeout = args.timeout
        self.mem_root = args.mem_root
        self.heaptrack = shutil.which("heaptrack")
        self.valgrind = shutil.which("valgrind")
        self.lib = None
        self.memdir = None
        self.launch = None                 # harness/launch.c, compiled
        self.sync_after_run = False        # MEM_DIR on a loop filesystem: sync after each run


def build_package(args, ctx):
    """swift build -c release [--scratch-path DIR]; finds libmemtrack.so and memdir."""
    command = ["swift", "build", "-c", "release"]
    if args.scratch_path:
        command += ["--scratch-path", args.scratch_path]
    if not args.no_build:
        print("$ " + " ".join(command), file=sys.stderr, flush=True)
        result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            print(f"note: swift build failed (exit {result.returncode}); memtrack and memdir "
                  f"rows are skipped:\n{tail_text(result.stdout, 15)}", file=sys.stderr)
    bin_dir = Path(args.scratch_path or ROOT / ".build")
    bin_dir = (bin_dir if bin_dir.is_absolute() else ROOT / bin_dir) / "release"
    lib, memdir = bin_dir / "libmemtrack.so", bin_dir / "memdir"
    ctx.lib = lib if lib.is_file() else None
    ctx.memdir = memdir if memdir.is_file() else None
    return {"memdir": str(memdir)}


def tail_text(text, lines):
    return "\n".join(text.strip().splitlines()[-lines:])


def compile_workloads():
    """cc -O2 -g each workloads/*.c and harness/*.c (c++ for *.cpp) into build/, when the
    source is newer than the binary."""
    BUILD.mkdir(exist_ok=True)
    bins = {}
    for source in sorted([*WORKLOAD_SOURCES.glob("*.c"), *WORKLOAD_SOURCES.glob("*.cpp"),
                          *HARNESS_SOURCES.glob("*.c")]):
        binary = BUILD / source.stem
        if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
            # -fsized-deallocation: gcc's default from C++14 on, said so that it stays so
            compiler = (["c++", "-pthread", "-fsized-deallocation"] if source.suffix == ".cpp"
                        else ["cc", "-pthread"])
            subprocess.run(compiler + ["-O2", "-g", "-Wall", "-o", str(binary), str(source)],
                           check=True)
        bins[source.stem] = str(binary)
    return bins


def generate_data(sizes, bins, data_dir, wanted):
    """The sort input and the record directory, generated once per size and then reused
    (each only when its workload is among the wanted ones)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    sort_file = data_dir / f"sort-{sizes['sort_mb']}mb.txt"
    if "sort" in wanted and not sort_file.exists():
        write_sort_input(sort_file, sizes["sort_mb"] * 1024 * 1024)
    records = data_dir / f"records-v2-{sizes['records']}-{sizes['stacks']}"
    run_dir = records / "4242"
    if "memdir-list" in wanted and not run_dir.exists():
        print(f"generating {sizes['records']:,} records in {run_dir} (once)...",
              file=sys.stderr, flush=True)
        shutil.rmtree(records, ignore_errors=True)
        partial = data_dir / (records.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        subprocess.run([bins["genrecords"], str(partial / "4242"), str(sizes["records"]),
                        str(sizes["stacks"])], check=True)
        partial.rename(records)             # only a complete directory is ever reused
    git_repo = data_dir / f"git-{sizes['git_commits']}.git"
    if "git-log" in wanted and not git_repo.exists():
        make_git_repository(git_repo, sizes["git_commits"])
    gcc_source = data_dir / f"gcc-{sizes['gcc_lines']}.c"
    if "gcc" in wanted and not gcc_source.exists():
        write_c_source(gcc_source, sizes["gcc_lines"])
    cc1 = subprocess.run(["gcc", "-print-prog-name=cc1"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip() if shutil.which("gcc") else ""
    return {"sort": sort_file, "records": run_dir, "git": git_repo, "gcc": gcc_source,
            "cc1": cc1 or "cc1"}


def write_sort_input(path, size):
    """Random lines of 8-120 characters, from a fixed seed: the same file on every machine."""
    rng = random.Random(20251125)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    lines, total = [], 0
    while total < size:
        line = "".join(rng.choices(alphabet, k=rng.randint(8, 120)))
        lines.append(line)
        total += len(line) + 1
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.rename(path)


def make_git_repository(path, commits):
    """A bare repository of `commits` commits made by git fast-import from a fixed seed: 40
    text files of 300 lines to start, each commit changing 1-4 of them by a few lines. The
    same history (and hashes) on every machine, independent of this repository's."""
    print(f"generating a git repository of {commits:,} commits in {path} (once)...",
          file=sys.stderr, flush=True)
    rng = random.Random(20261207)
    words = ["alloc", "free", "block", "record", "stack", "leak", "heap", "thread", "writer",
             "backlog", "settle", "probe", "table", "entry", "chunk", "size", "page", "inode"]
    line = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(3, 10)))
    files = {f"src/file{n:02}.txt": [line() for _ in range(300)] for n in range(40)}
    stream = []
    for number in range(1, commits + 1):
        changed = rng.sample(sorted(files), rng.randint(1, 4))
        for name in changed:
            lines = files[name]
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(len(lines))
                action = rng.random()
                if action < 0.5:
                    lines[at] = line()
                elif action < 0.8 or len(lines) < 100:
                    lines.insert(at, line())
                else:
                    del lines[at]
        message = f"commit {number}: change {', '.join(changed)}\n".encode()
        stamp = 1700000000 + number * 3600
        stream.append(f"commit refs/heads/main\nmark :{number}\n"
                      f"author Bench <bench@example.com> {stamp} +0000\n"
                      f"committer Bench <bench@example.com> {stamp} +0000\n"
                      f"data {len(message)}\n".encode() + message)
        if number > 1:
            stream.append(f"from :{number - 1}\n".encode())
        for name in (changed if number > 1 else sorted(files)):
            content = ("\n".join(files[name]) + "\n").encode()
            stream.append(f"M 100644 inline {name}\ndata {len(content)}\n".encode() + content + b"\n")
        stream.append(b"\n")
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = dict(base_environment(), **GIT_ENV)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(partial)], check=True, env=env)
    subprocess.run(["git", "--git-dir", str(partial), "fast-import", "--quiet"],
                   input=b"".join(stream), check=True, env=env)
    partial.rename(path)


def write_c_source(path, lines):
    """A C file of about `lines` lines from a fixed seed: functions that walk a list, do
    arithmetic, switch and call the previous function, for cc1 -O2 to optimise (about 9 s of
    CPU for 20,000 lines with gcc 12)."""
    rng = random.Random(20261207)
    ops = ["+", "-", "^", "|", "&", "*"]
    out = ["/* generated by Examples/benchmark/bench.py: the cc1 -O2 workload */",
           "struct item { int key; int value; struct item *next; };", ""]
    number = 0
    while len(out) < lines:
        body = [f"int f{number}(struct item *list, int k) {{", "    int s = k, c = 0;",
                "    for (struct item *p = list; p; p = p->next) {",
                f"        if (p->key {rng.choice(['<', '>', '=='])} {rng.randint(0, 99)}) "
                f"s {rng.choice(ops)}= p->value;",
                "        c++;", "    }"]
        for _ in range(rng.randint(4, 12)):
            body.append(f"    s = (s {rng.choice(ops)} {rng.randint(1, 999)}) {rng.choice(ops)} "
                        f"(c >> {rng.randint(1, 5)});")
        body.append("    switch (s & 7) {")
        for case in range(8):
            body.append(f"    case {case}: s {rng.choice(ops)}= {rng.randint(1, 9999)}; break;")
        body.append("    }")
        if number:
            body.append(f"    if (s & 1) s += f{number - 1}(list ? list->next : 0, s & 15);")
        body += ["    return s + c;", "}", ""]
        out += body
        number += 1
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(out) + "\n")
    partial.rename(path)


# ---------------------------------------------------------------------------------------------
# Report

def machine_info():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "cpu": cpu,
        "kernel": platform.release(),
        "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
        "commit": git_describe(),
        "heaptrack": first_line([shutil.which("heaptrack") or "heaptrack", "--version"]),
        "valgrind": first_line([shutil.which("valgrind") or "valgrind", "--version"]),
    }


def first_line(command):
    try:
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout
        return out.strip().splitlines()[0] if out.strip() else ""
    except OSError:
        return "not installed"


def git_describe():
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


COLUMNS = ("workload", "tool", "runs", "median s", "spread", "x plain", "x heaptrack",
           "x plain/round", "x heaptrack/round", "x heaptrack range", "x C loop", "peak RSS MiB", "RSS x heaptrack",
           ".mem left", "tmpfs KiB", "kernel B/record", "program wrote", "notes")


def references(rows):
    """The plain, heaptrack and C loop row of each workload, by (workload, kind)."""
    return {(r.workload, r.kind if r.kind in ("plain", "heaptrack", "loop") else r.tool): r
            for r in rows}


def table_rows(rows):
    """The table as lists of strings, one per row, in COLUMNS order."""
    by_key = references(rows)
    out = []
    for row in rows:
        plain = by_key.get((row.workload, "plain"))
        heaptrack = by_key.get((row.workload, "heaptrack"))
        median = row.median_s
        if median is None and row.runs and row.runs[-1].exit == "timeout":
            limit = row.runs[-1].seconds
            out.append([row.workload, row.tool, "0", f">{limit:.0f}", "-",
                        ratio(limit, plain, ">"), ratio(limit, heaptrack, ">"),
                        "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "; ".join(row.notes)])
            continue
        if median is None:
            why = row.skipped or "failed"
            out.append([row.workload, row.tool, str(len(row.runs))] + ["-"] * 14
                       + ["; ".join([why] + row.notes)])
            continue
        times = [r.seconds for r in row.ok_runs]
        spread = f"{(max(times) - min(times)) / median * 100:.0f}%" if len(times) > 1 else "-"
        out.append([row.workload, row.tool, str(len(row.ok_runs)), f"{median:.3f}", spread,
                    ratio(median, plain), ratio(median, heaptrack),
                    format_ratio(round_ratio(row, plain)), format_ratio(round_ratio(row, heaptrack)),
                    format_range(round_ratios(row, heaptrack)),
                    loop_ratio(row, median, by_key.get((row.workload, "loop"))),
                    f"{row.median_rss_mib:.1f}", rss_ratio(row, heaptrack),
                    mem_left(row), *memory_cells(row), "; ".join(row.notes)])
    return out


def ratio(median, reference, prefix=""):
    if reference is None or reference.median_s in (None, 0):
        return "-"
    return f"{prefix}{median / reference.median_s:.2f}"


def round_ratios(row, reference):
    """This row's time over the reference's time in each round where both ran successfully."""
    if reference is None:
        return []
    theirs = {r.round: r.seconds for r in reference.ok_runs if r.seconds > 0}
    return [r.seconds / theirs[r.round] for r in row.ok_runs if r.round in theirs]


def round_ratio(row, reference):
    """The median over rounds of this row's time over the reference's time in the same round
    (both runs successful), or None when they share no round."""
    ratios = round_ratios(row, reference)
    return statistics.median(ratios) if ratios else None


def library_comparison(rows, libraries):
    """With two or more --library: each later library's time over the first's in the same round,
    per workload (the median over rounds, and the lowest and highest). The A/B's own measure:
    two ratios to heaptrack put heaptrack's noise into both sides."""
    if len(libraries) < 2:
        return ""
    first = libraries[0][0]
    by_tool = {(r.workload, r.tool): r for r in rows}
    lines = [f"Libraries: time over memtrack {first}'s in the same round (median over rounds)", "",
             f"| workload | library | x {first}/round | range | rounds |", "| --- | --- | ---: | ---: | ---: |"]
    for workload in dict.fromkeys(r.workload for r in rows):
        reference = by_tool.get((workload, f"memtrack {first}"))
        for name, _ in libraries[1:]:
            row = by_tool.get((workload, f"memtrack {name}"))
            ratios = round_ratios(row, reference) if row and reference else []
            if ratios:
                lines.append(f"| {workload} | {name} | {statistics.median(ratios):.3f} | "
                             f"{format_range(ratios)} | {len(ratios)} |")
    return "\n".join(lines) if len(lines) > 4 else ""


def format_range(ratios):
    """The lowest and highest per-round ratio: how far one run's median can be trusted."""
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "-"


def format_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def rss_ratio(row, heaptrack):
    if heaptrack is None or not heaptrack.median_rss_mib:
        return "-"
    return f"{row.median_rss_mib / heaptrack.median_rss_mib:.2f}"


def loop_ratio(row, median, loop):
    """Ratio to the C loop, with the goal verdict for memtrack (longlived) and memdir rows."""
    if row.kind not in ("memtrack", "memdir", "loop") or loop is None or not loop.median_s:
        return "-"
    value = median / loop.median_s
    goal = GOALS.get(row.workload)
    if row.kind == "loop" or goal is None:
        return f"{value:.2f}"
    return f"{value:.2f} {'ok' if value <= goal else 'MISS'} (goal {goal})"


def memory_cells(row):
    """tmpfs KiB the records take, kernel bytes per record left, share the program wrote."""
    runs = [r for r in row.ok_runs if r.tmpfs_kib is not None]
    if not runs:
        return ["-", "-", "-"]
    tmpfs = statistics.median(r.tmpfs_kib for r in runs)
    per_record = [r.kernel_kib * 1024 / r.mem_files for r in runs if r.mem_files >= 1000]
    kernel = f"{statistics.median(per_record):.0f}" if per_record else "-"
    shares = [r.program_records / (r.program_records + r.writer_records)
              for r in runs if r.program_records + r.writer_records]
    program = f"{statistics.median(shares) * 100:.1f}%" if shares else "-"
    return [f"{tmpfs:.0f}", kernel, program]


def mem_left(row):
    counts = sorted({r.mem_files for r in row.ok_runs if r.mem_files is not None})
    if not counts:
        return "-"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}..{counts[-1]}"


def render_text(cells):
    widths = [max(len(str(x[i])) for x in [COLUMNS] + cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate([list(COLUMNS)] + cells):
        lines.append("  ".join(c.ljust(w) if i < 2 or i == len(COLUMNS) - 1 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(cells):
    escape = lambda c: c.replace("|", "\\|")
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join(" --- " if i < 2 or i == len(COLUMNS) - 1 else " ---: "
                            for i in range(len(COLUMNS))) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in line) + " |" for line in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Instructions: what the counters cost, measured without the noise of wall time

INSTRUCTION_VARIANTS = (("memtrack", {}), ("memtrack no-counters", {"MEM_COUNTERS": "0"}))


def count_instructions(ctx, bins, pairs):
    """churn under callgrind with each variant: the instructions executed, deterministic to a
    few hundred. The library is stripped first: callgrind cannot read its debug information."""
    if not ctx.valgrind or not shutil.which("strip"):
        return []
    scratch = Path(tempfile.mkdtemp(prefix="memdir-bench-instructions-", dir=ctx.mem_root))
    try:
        lib = scratch / "libmemtrack.so"
        subprocess.run(["strip", "-g", ctx.lib, "-o", str(lib)], check=True)
        results = []
        for name, extra in INSTRUCTION_VARIANTS:
            mem_dir = scratch / name.replace(" ", "-")
            mem_dir.mkdir()
            env = dict(base_environment(), LD_PRELOAD=str(lib), MEM_DIR=str(mem_dir), **extra)
            done = subprocess.run([ctx.valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                   bins["churn"], str(pairs), "1024"],
                                  env=env, capture_output=True, text=True, timeout=ctx.timeout)
            found = re.search(r"Collected : (\d+)", done.stderr)
            results.append((name, int(found.group(1)) if found else None))
            print(f"  churn {pairs} under callgrind, {name}: "
                  f"{results[-1][1] if found else 'failed'} instructions", file=sys.stderr, flush=True)
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def render_instructions(results, pairs):
    if not results:
        return ""
    base = dict(results).get("memtrack no-counters")
    lines = [f"Instructions: churn {pairs:,} pairs under callgrind (deterministic; counters: "
             "memtrack over memtrack no-counters, MEM_COUNTERS=0)", "",
             "| tool | instructions | per pair | x no-counters |", "| --- | ---: | ---: | ---: |"]
    for name, count in results:
        if count is None:
            lines.append(f"| {name} | failed | | |")
            continue
        versus = f"{count / base:.4f}" if base else "-"
        lines.append(f"| {name} | {count:,} | {count / pairs:.0f} | {versus} |")
    return "\n".join(lines)


def header_lines(machine, args, sizes, workload_list):
    lines = [f"machine: {machine['host']}, {machine['nproc']} CPUs, {machine['cpu']}",
             f"kernel {machine['kernel']}, {machine['glibc']}, {machine['heaptrack']}, "
             f"{machine['valgrind']}",
             f"load average at start {machine['load']}",
             f"memdir commit {machine['commit']}, {machine['date']}, rounds {args.runs} "
             f"(tool order rotated each round){' (quick)' if args.quick else ''}, "
             f"MEM_DIR and scratch under {args.mem_root} ({filesystem_type(args.mem_root)})",
             "filesystems: " + ", ".join(args.filesystem_list)
             + (f" (loop images of {args.fs_size} under {args.fs_image_dir}, "
                f"{filesystem_type(args.fs_image_dir)})"
                if any(f in LOOP_FILESYSTEMS for f in args.filesystem_list) else ""),
             "workloads:"]
    for w in workload_list:
        lines.append(f"  {w.name:15} {w.note}" + (f"; C loop = {w.loop_note}" if w.loop_note else ""))
    return lines


def save_results(machine, args, sizes, header, cells, rows, instructions, compared):
    RESULTS.mkdir(exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{machine['host']}" + ("-quick" if args.quick else "")
    # A second run the same day gets -2, -3, ...: an earlier run's results are never overwritten.
    base, number = stem, 1
    while (RESULTS / f"{stem}.md").exists() or (RESULTS / f"{stem}.json").exists():
        number += 1
        stem = f"{base}-{number}"
    md = RESULTS / f"{stem}.md"
    counted = render_instructions(instructions, sizes["instruction_pairs"])
    md.write_text("# memdir benchmark\n\n```\n" + "\n".join(header) + "\n```\n\n"
                  + render_markdown(cells) + "\n\n" + (compared + "\n\n" if compared else "")
                  + (counted + "\n\n" if counted else "") + LEGEND + "\n")
    js = RESULTS / f"{stem}.json"
    by_key = references(rows)
    js.write_text(json.dumps({
        "machine": machine, "sizes": sizes, "runs": args.runs, "quick": args.quick,
        "filesystems": args.filesystem_list,
        "instructions": [{"tool": name, "churn_pairs": sizes["instruction_pairs"], "instructions": count}
                         for name, count in instructions],
        "rows": [{"workload": r.workload, "tool": r.tool, "kind": r.kind,
                  "median_s": r.median_s, "median_rss_mib": r.median_rss_mib,
                  "round_x_plain": round_ratio(r, by_key.get((r.workload, "plain"))),
                  "round_x_heaptrack": round_ratio(r, by_key.get((r.workload, "heaptrack"))),
                  "round_x_heaptrack_each": round_ratios(r, by_key.get((r.workload, "heaptrack"))),
                  "skipped": r.skipped, "notes": r.notes,
                  "runs": [vars(run) for run in r.runs]} for r in rows],
    }, indent=1) + "\n")
    return md, js


LEGEND = """\
Rounds: each round runs every tool of a workload once, in an order rotated by one each round.
median s: median wall time of the successful runs; spread: (max - min) / median.
x plain, x heaptrack, x C loop: median over the median of that row of the same workload.
x plain/round, x heaptrack/round: the median over rounds of (this row's time / that row's
time in the same round): the measure the goals are stated in, robust to load that changes
between rounds. x heaptrack range: the lowest and the highest of those per-round ratios.
C loop: fileloop.c for longlived (the file operations memtrack must do, done directly),
symlinkloop.c for live-1m (its 1,000,000 symlinkat calls in one directory from 2 threads, as
memtrack's exit makes them), readdirloop.c for memdir-list. Goals: memtrack on longlived within 1.3x of fileloop (longlived
holds its blocks 100 ms, past the settle time, so every mode writes every block; those 100 ms
count against memtrack), `memdir list` within 1.5x of readdirloop.
peak RSS: median of the largest ru_maxrss in the command's process tree (harness/launch.c, a
child subreaper: getrusage(RUSAGE_CHILDREN) after reaping every descendant): for heaptrack
(a shell script) the larger of the program and heaptrack_interpret, for valgrind valgrind's
own process, which holds the program, for a pipeline its largest stage. RSS x heaptrack:
that median over heaptrack's.
Workloads suffixed @ext4, @xfs, @btrfs ran with MEM_DIR (and heaptrack's output, and the C
loop's directory) on that filesystem, made fresh on a loop device; the ratios compare rows of
the same filesystem.
.mem left: .mem files in MEM_DIR after each run (churn and longlived free everything: 0).
tmpfs KiB: data blocks the block records take at the end (st_blocks; a symlink record whose
target fits in the inode takes 0). kernel B/record: growth of SUnreclaim + SReclaimable + Shmem
(/proc/meminfo) over the run, divided by the records left (only with 1,000 or more left; other
processes on the machine add noise). program wrote: records the program's own threads wrote
because the backlog budget (MEM_BACKLOG) was spent, as a share of all records written.
leak check: one untimed run of `longlived ... leak`, which must leave one file per block."""


# ---------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description="Benchmark memtrack against heaptrack, "
                                     "valgrind and plain runs.")
    parser.add_argument("--runs", "--rounds", dest="runs", type=int,
                        help="rounds: runs per pair (default 5; 2 with --quick)")
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOAD_NAMES))
    parser.add_argument("--tools", help="comma-separated tool patterns (fnmatch), e.g. "
                        "'plain,memtrack*,heaptrack'; names: " +
                        ", ".join(tool_key(t) for t in all_tools()))
    parser.add_argument("--library", action="append", default=[], metavar="NAME=PATH",
                        help="another libmemtrack.so, run as the tool 'memtrack NAME' in the same "
                        "rotated rounds (an A/B of two builds); repeatable")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds before a run is killed (default {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds: a smoke test")
    parser.add_argument("--scratch-path", help="swift build --scratch-path (default: .build)")
    parser.add_argument("--no-build", action="store_true", help="use the products as built")
    # tmpfs by default: on these VMs ext4 file creation costs 170-900 us and swings with the
    # load, which would measure the disk, not the tracker. --mem-root /tmp measures the disk.
    parser.add_argument("--mem-root", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir(),
                        help="where each run's fresh MEM_DIR is made (default: /dev/shm when "
                        "writable, else the temp directory)")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(),
                        "memdir-bench-data"), help="generated inputs, kept between runs")
    parser.add_argument("--filesystems", default="tmpfs",
                        help="comma-separated: where MEM_DIR is, one series of rows each: tmpfs "
                        "(--mem-root, unsuffixed rows) and " + ", ".join(LOOP_FILESYSTEMS) +
                        " (made on a loop device, rows suffixed @ext4...; needs root); "
                        "default tmpfs")
    parser.add_argument("--fs-only", help="comma-separated workloads run on the loop "
                        "filesystems (default: all the selected ones but memdir-list)")
    parser.add_argument("--fs-image-dir", help="where the loop images are made (default: "
                        "--data-dir, which should be on the machine's disk)")
    parser.add_argument("--fs-size", default="32G", help="size of each sparse loop image "
                        "(default 32G; ext4 gets an inode per 8 KiB)")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    args.fs_image_dir = args.fs_image_dir or args.data_dir
    libraries = []
    for spec in args.library:
        name, _, path = spec.partition("=")
        if not name or not path or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            parser.error(f"--library {spec!r}: expected NAME=PATH, NAME of letters, digits, '.', '_' or '-'")
        if not os.path.isfile(path):
            parser.error(f"--library {spec!r}: no such file {path}")
        libraries.append((name, os.path.abspath(path)))
    args.library = libraries
    args.filesystem_list = [f.strip().lower() for f in args.filesystems.split(",") if f.strip()]
    for name in args.filesystem_list:
        if name != "tmpfs" and name not in LOOP_FILESYSTEMS:
            parser.error(f"--filesystems: unknown filesystem {name!r} "
                         f"(tmpfs, {', '.join(LOOP_FILESYSTEMS)})")
    return args


def select(items, patterns, key):
    if not patterns:
        return items
    wanted = [p.strip().lower() for p in patterns.split(",") if p.strip()]
    return [i for i in items if any(fnmatch.fnmatch(key(i), p) for p in wanted)]


def filesystem_type(path):
    """The type of the filesystem path is on (tmpfs, ext4...), from /proc/self/mounts."""
    try:
        real = os.path.realpath(path)
        best, kind = "", "unknown"
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, fields[2]
        return kind
    except OSError:
        return "unknown"


class LoopFilesystemError(Exception):
    pass


class LoopFilesystem:
    """A fresh filesystem of one kind on a loop device over a sparse image file, mounted
    under a temporary directory; close() unmounts it, detaches the device and deletes the
    image, whatever state setup got to. Needs root (losetup, mount)."""

    def __init__(self, kind, image_dir, size):
        self.kind, self.device, self.mounted = kind, None, False
        Path(image_dir).mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"memdir-bench-{kind}-", dir=image_dir))
        self.mount_point = self.dir / "mnt"
        try:
            self._setup(size)
        except BaseException:
            self.close()
            raise

    def _setup(self, size):
        image = self.dir / "image"
        self._run(["truncate", "-s", size, str(image)])
        self.device = self._run(["losetup", "-f", "--show", str(image)]).strip()
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-F", "-i", "8192",
                         # no lazy init: the kernel would zero inode tables during the runs
                         "-E", "lazy_itable_init=0,lazy_journal_init=0"],
                "xfs": ["mkfs.xfs", "-q", "-f"],
                "btrfs": ["mkfs.btrfs", "-q", "-f"]}[self.kind]
        self._run(mkfs + [self.device])
        self.mount_point.mkdir()
        self._run(["mount", self.device, str(self.mount_point)])
        self.mounted = True

    def _run(self, command):
        if not shutil.which(command[0]):
            raise LoopFilesystemError(f"{command[0]} not found")
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise LoopFilesystemError(f"{shlex.join(command)} failed: "
                                      f"{one_line(done.stderr) or done.returncode}")
        return done.stdout

    def close(self):
        if self.mounted:
            if subprocess.run(["umount", str(self.mount_point)], stderr=subprocess.DEVNULL).returncode:
                subprocess.run(["umount", "-l", str(self.mount_point)], stderr=subprocess.DEVNULL)
            self.mounted = False
        if self.device:
            subprocess.run(["losetup", "-d", self.device], stderr=subprocess.DEVNULL)
            self.device = None
        shutil.rmtree(self.dir, ignore_errors=True)


def exit_on_signal(number, frame):
    """SIGTERM and SIGHUP end the driver through SystemExit, so that the finally blocks
    unmount and detach the loop filesystems."""
    raise SystemExit(128 + number)


def main():
    args = parse_args()
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, exit_on_signal)
    sizes = QUICK if args.quick else FULL
    ctx = Context(args)
    machine = machine_info()
    tools = select(all_tools(args.library), args.tools, tool_key)
    products = build_package(args, ctx)
    bins = compile_workloads()
    bins["memdir"] = products["memdir"]
    ctx.launch = bins["launch"]
    wanted = set(select(WORKLOAD_NAMES, args.only, lambda name: name))
    data = generate_data(sizes, bins, Path(args.data_dir), wanted)
    workload_list = [w for w in workloads(sizes, bins, data) if w.name in wanted]
    on_disk = set(select([w.name for w in workload_list], args.fs_only, lambda name: name))
    header = header_lines(machine, args, sizes, workload_list)
    print("\n".join(header), flush=True)
    for tool in tools:
        if unavailable(tool, ctx):
            print(f"note: {tool.name}: {unavailable(tool, ctx)}", flush=True)

    rows = []
    for name in args.filesystem_list:
        if name == "tmpfs":
            ctx.mem_root, ctx.sync_after_run = args.mem_root, False
            for workload in workload_list:
                rows += measure_rounds(workload, rows_for(workload, tools), ctx)
            continue
        series = [replace(w, filesystem=name) for w in workload_list
                  if w.name in on_disk and not w.memdir_only]
        if not series:
            continue
        try:
            mounted = LoopFilesystem(name, args.fs_image_dir, args.fs_size)
        except LoopFilesystemError as error:
            print(f"note: {name} skipped: no loop filesystem ({error})", flush=True)
            continue
        try:
            print(f"{name}: {mounted.device} mounted on {mounted.mount_point}", file=sys.stderr,
                  flush=True)
            ctx.mem_root, ctx.sync_after_run = str(mounted.mount_point), True
            for workload in series:
                rows += measure_rounds(workload, rows_for(workload, tools), ctx)
        finally:
            mounted.close()
            ctx.mem_root, ctx.sync_after_run = args.mem_root, False

    instructions = []
    if "churn" in wanted and any(t.kind == "memtrack" for t in tools):
        instructions = count_instructions(ctx, bins, sizes["instruction_pairs"])

    cells = table_rows(rows)
    print()
    print(render_text(cells))
    compared = library_comparison(rows, args.library)
    if compared:
        print("\n" + compared)
    counted = render_instructions(instructions, sizes["instruction_pairs"])
    if counted:
        print("\n" + counted)
    md, js = save_results(machine, args, sizes, header, cells, rows, instructions, compared)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"saved {md.relative_to(ROOT)} and {js.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
