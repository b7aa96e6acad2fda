/* state.c: the settings and the process-wide variables every layer reads (base.h). Layer: base.
 * bootstrap.c reads the settings from the environment; process.c sets the pid. */
#include "base.h"

struct memtrack_config memtrack_config = {
    .settle_ms = 50,   /* tens of ms: most blocks die sooner, a person reading `ls` never notices */
    .depth = 12,       /* gets past operator new, std::allocator and a vector's growth into user code */
    .freeres = 1,      /* as valgrind: libc's own buffers are not the program's leaks */
    .leak_check = 1,   /* classify live blocks at exit, as valgrind's --leak-check=full */
    .counters = 1,     /* the counters file (memdir stats, watch) */
    .quarantine_bytes = 8u << 20,  /* catches stale frees a few thousand blocks back; see the catalog's Configuration */
    .backlog_bytes = 128u << 20,   /* records and removals waiting for the writer: about 3M; see the catalog's Configuration */
    .settle_backlog_ms = 5000,     /* the longest a block waits while the writer is behind: see writer.c */
};
struct memtrack_next_allocator memtrack_next;
MEMTRACK_THREAD_LOCAL int memtrack_busy;
atomic_int memtrack_ready;
pid_t memtrack_pid;
uint64_t memtrack_start_milliseconds;
atomic_uint_fast64_t memtrack_sequence;
MEMTRACK_THREAD_LOCAL int memtrack_private_files;
