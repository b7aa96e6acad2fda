/* failure.c: what the tracker could not do: one warning per process, on stderr, and the counts
 * of blocks and events missing from the record (the status record carries them). Layer: format. */
#include "failure.h"
#include "format.h"
#include "sys.h"

#include <fcntl.h>
#include <string.h>

atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records, memtrack_unrecorded_events;

/* The writer's descriptor 2 is not the program's stderr (its table is its own): it reaches the
 * program's through /proc/self/fd/2, which names the thread group leader's table. */
void memtrack_say(const char *text) {
    if (!memtrack_private_files) { memtrack_sys_write_all(2, text, strlen(text)); return; }
    int fd = memtrack_sys_openat(AT_FDCWD, "/proc/self/fd/2", O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC, 0);
    if (fd < 0) return;
    memtrack_sys_write_all(fd, text, strlen(text));
    memtrack_sys_close(fd);
}

static atomic_int warned;
static char first_error[160];

void memtrack_note_failure(const char *operation, int error_number, atomic_uint_fast64_t *counter) {
    /* A record of another kind that could not be written (leak-check, process, modules, status)
     * leaves the record incomplete too: it counts as an unrecorded event, so that `status` says
     * so (memdir reads incompleteness from these counters). */
    atomic_fetch_add(counter ? counter : &memtrack_unrecorded_events, 1);
    if (atomic_exchange(&warned, 1)) return;
    const char *description = strerrordesc_np(error_number);   /* static text: no allocation */
    char *out = first_error, *end = first_error + sizeof first_error - 1;
    out = memtrack_put_text(out, end, operation);
    out = memtrack_put_text(out, end, ": ");
    out = memtrack_put_text(out, end, description ? description : "unknown error");
    *out = 0;
    char line[4400];
    out = line;
    end = line + sizeof line - 1;
    out = memtrack_put_text(out, end, "memtrack: warning: ");
    out = memtrack_put_text(out, end, operation);
    out = memtrack_put_text(out, end, ": ");
    out = memtrack_put_text(out, end, description ? description : "unknown error");
    out = memtrack_put_text(out, end, "; the leak record is incomplete from here on\n");
    *out = 0;
    memtrack_say(line);
}

/* The first failure's text ("operation: description"), or NULL when nothing failed. */
const char *memtrack_first_error(void) { return atomic_load(&warned) && first_error[0] ? first_error : NULL; }
