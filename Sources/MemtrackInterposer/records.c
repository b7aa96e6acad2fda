/* records.c: block records and bad-free records: formatting them, writing and removing them,
 * and the one reader of block records. Layer: records, on files, stacks and sources.
 *
 * A block record (format 2) is a symlink named 0xADDRESS.mem whose target holds its fields;
 * its stack is interned in the stacks file (stacks.c) and its memtrack.h location in the
 * sources file (sources.c). A bad free is a `bad-SEQ.free` file and one line on stderr.
 */
#include "records.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "names.h"
#include "sources.h"
#include "stacks.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

// ---- Block files -------------------------------------------------------------------------
static char *put_block_name(char *out, const char *end, uintptr_t address) {
    out = memtrack_put_hex(out, end, address);
    return memtrack_put_text(out, end, ".mem");
}

/* The fields every block and bad-free line has, in the order the catalog's Record format gives. */
static char *put_event_fields(char *out, const char *end, uint64_t sequence, int32_t thread,
                              uint32_t milliseconds, int via, const struct memtrack_stack *stack) {
    out = memtrack_put_event_fields(out, end, sequence, thread, milliseconds, memtrack_via_name(via));
    out = memtrack_put_text(out, end, " stack=");
    return memtrack_put_stack(out, end, stack);
}

// ---- Block records, version 2: one symlink each ------------------------------------------
/* The letter a block record's v= field gives each entry point, by via number (the catalog's Record format, record
 * format 2). free and cfree never allocate a block. */
static const char via_letters[] = "mcrapAMvP??nNbB";

/* `2 s=SIZE q=SEQ t=THREAD m=MS v=LETTER k=STACKID`, then ` f=n` / ` f=a` for a block of new or
 * new[], ` l=SOURCE:LINE` for one with a memtrack.h location: about 35 bytes, at most 110.
 * Targets up to 127 bytes live inside a tmpfs inode, up to 59 inside an ext4 one: no data page. */
static size_t format_target(char *target, const char *end, const struct memtrack_record *record) {
    char *out = target;
    out = memtrack_put_text(out, end, "2 s=");
    out = memtrack_put_decimal(out, end, record->size);
    out = memtrack_put_text(out, end, " q=");
    out = memtrack_put_decimal(out, end, record->sequence);
    out = memtrack_put_text(out, end, " t=");
    out = memtrack_put_decimal(out, end, (uint64_t)record->thread);
    out = memtrack_put_text(out, end, " m=");
    out = memtrack_put_decimal(out, end, record->milliseconds);
    out = memtrack_put_text(out, end, " v=");
    if (out < end) *out++ = via_letters[record->via < sizeof via_letters - 1 ? record->via : 0];
    out = memtrack_put_text(out, end, " k=");
    out = memtrack_put_decimal(out, end, record->stack_id);
    if (record->family == MEMTRACK_FAMILY_NEW) out = memtrack_put_text(out, end, " f=n");
    if (record->family == MEMTRACK_FAMILY_ARRAY) out = memtrack_put_text(out, end, " f=a");
    if (record->source) {
        out = memtrack_put_text(out, end, " l=");
        out = memtrack_put_decimal(out, end, record->source);
        out = memtrack_put_text(out, end, ":");
        out = memtrack_put_decimal(out, end, record->source_line);
    }
    *out = 0;
    return (size_t)(out - target);
}

/* Writes the symlink: from a tracker thread in its own table, from a program thread through
 * the file thread (files.c). */
int memtrack_write_record(const struct memtrack_record *record) {
    char name[32], target[128];
    *put_block_name(name, name + sizeof name - 1, record->address) = 0;
    size_t length = format_target(target, target + sizeof target - 1, record);
    int error = memtrack_symlink_record_file(name, target, length);
    if (error) memtrack_note_failure("writing a block record", error, &memtrack_unrecorded_blocks);
    return error;
}

void memtrack_make_record(struct memtrack_record *record, const struct memtrack_block *block, uint32_t stack_id) {
    record->address = block->address;
    record->size = block->size;
    record->sequence = block->sequence;
    record->milliseconds = block->milliseconds;
    record->thread = block->thread;
    record->via = block->via;
    record->family = block->family;
    record->stack_id = stack_id;
    memtrack_record_set_source(record, block->source, block->source_line);
}

void memtrack_record_set_source(struct memtrack_record *record, uint32_t source, uint32_t line) {
    /* A location whose line cannot be written is left out: the block keeps its stack. */
    record->source = source && memtrack_publish_source(source) == 0 ? source : 0;
    record->source_line = line;
}

int memtrack_write_block(const struct memtrack_block *block) {
    int error;
    uint32_t stack_id = memtrack_stack_id(&block->stack, &error);
    if (!stack_id) {
        memtrack_note_failure("writing a stack", error ? error : EIO, &memtrack_unrecorded_blocks);
        return error ? error : EIO;
    }
    struct memtrack_record record;
    memtrack_make_record(&record, block, stack_id);
    return memtrack_write_record(&record);
}

/* A format-2 target's size and stack id (0 when it has none). Returns 1 if the size was there. */
static int parse_target(const char *text, uint64_t *size, uint32_t *stack_id) {
    int found = 0;
    const char *field = strstr(text, " s=");
    if (field) { field += 3; *size = memtrack_parse_decimal(&field); found = 1; }
    field = strstr(text, " k=");
    if (field) { field += 3; *stack_id = (uint32_t)memtrack_parse_decimal(&field); }
    return found;
}

/* The one reader of block records, for a mismatch report on a settled block and for the leak
 * check. Either format: the requested size, the stack's id (format 2) and first frame, and the
 * whole stack if `stack` is not NULL (format 2: a read of the stacks file, which the leak
 * check, with the world stopped, does without). Returns 1 if the record was found with its
 * size; leaves everything alone otherwise. */
int memtrack_read_block_record(uintptr_t address, struct memtrack_record_fields *fields, struct memtrack_stack *stack) {
    int directory = memtrack_record_directory();
    if (directory < 0) return 0;
    char name[32], text[256 + MEMTRACK_MAX_DEPTH * 20 + 2100];
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    ssize_t length = -1;
    int fd = memtrack_sys_openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd >= 0) {
        length = memtrack_sys_read(fd, text, sizeof text - 1);
        memtrack_sys_close(fd);
    } else if (errno == ELOOP) {   /* format 2: a symlink */
        length = memtrack_sys_readlinkat(directory, name, text, sizeof text - 1);
    }
    if (length <= 0) { memtrack_record_directory_done(directory); return 0; }
    text[length] = 0;
    struct memtrack_record_fields read = {0, 0, 0};
    int found = 0;
    if (text[0] == '2' && text[1] == ' ') {
        found = parse_target(text, &read.size, &read.stack_id);
        if (read.stack_id) {
            read.first_frame = memtrack_stack_first_frame(read.stack_id);
            if (found && stack) memtrack_stacks_read_line(directory, read.stack_id, stack);
        }
    } else {
        const char *field = strstr(text, " size=");
        if (field) { field += 6; read.size = memtrack_parse_decimal(&field); found = 1; }
        field = strstr(text, " stack=");
        struct memtrack_stack parsed;
        if (field) {
            memtrack_parse_stack(field + 7, &parsed);
            read.first_frame = parsed.depth ? parsed.frames[0] : 0;
            if (found && stack) memtrack_copy_stack(stack, &parsed);
        }
    }
    memtrack_record_directory_done(directory);
    if (found) *fields = read;
    return found;
}

/* For a block whose record waits in the writer's backlog (pending.c): its stack by id. */
int memtrack_read_stack(uint32_t id, struct memtrack_stack *stack) {
    int directory = memtrack_record_directory();
    if (directory < 0) return 0;
    int found = memtrack_stacks_read_line(directory, id, stack);
    memtrack_record_directory_done(directory);
    return found;
}

void memtrack_remove_block_file(uintptr_t address) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    char name[32];
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    /* ENOENT is expected and harmless: a block inherited across fork (its file is in the
     * parent's record) or one whose record could not be written. The shadow index, not the
     * file, decides whether a free is legitimate. */
    int error = memtrack_remove_record_file(name);
    if (error && error != ENOENT) memtrack_note_failure("removing a block record", error, &memtrack_unremoved_records);
}

/* The writer's removal (pending.c): one readlinkat first, so that a later double free of the
 * block can still say its size and allocation stack. Returns 1 if the record gave its size. */
int memtrack_remove_block_file_noting(uintptr_t address, uint64_t *size, uint32_t *stack_id) {
    int found = 0;
    *size = 0;
    *stack_id = 0;
    char name[32], text[128];   /* a target is at most 110 bytes (format_target) */
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    int saved_errno = errno;
    ssize_t length = memtrack_read_record_link(name, text, sizeof text - 1);
    errno = saved_errno;
    if (length > 2 && text[0] == '2' && text[1] == ' ') {
        text[length] = 0;
        found = parse_target(text, size, stack_id);
    }
    memtrack_remove_block_file(address);
    return found;
}

// ---- Bad frees ---------------------------------------------------------------------------
void memtrack_write_bad_free(const struct memtrack_bad_free *event) {
    char line[256 + 3 * MEMTRACK_MAX_DEPTH * 20];
    char *out = line, *end = line + sizeof line - 1;
    const char *kind = event->kind ? event->kind : event->double_free ? "double-free" : "invalid-free";
    out = memtrack_put_text(out, end, "memtrack/1 ");
    out = memtrack_put_text(out, end, kind);
    out = memtrack_put_text(out, end, " address=");
    out = memtrack_put_hex(out, end, event->address);
    out = put_event_fields(out, end, event->sequence, event->thread, event->milliseconds, event->via, &event->stack);
    if (event->size) {
        out = memtrack_put_text(out, end, " size=");
        out = memtrack_put_decimal(out, end, event->size);
    }
    if (event->alloc_stack.depth) {
        out = memtrack_put_text(out, end, " alloc-stack=");
        out = memtrack_put_stack(out, end, &event->alloc_stack);
    }
    if (event->free_stack.depth) {
        out = memtrack_put_text(out, end, " free-stack=");
        out = memtrack_put_stack(out, end, &event->free_stack);
    }
    if (event->kind) {   /* the mismatches: what allocated the block, what the delete was told */
        out = memtrack_put_text(out, end, " family=");
        out = memtrack_put_text(out, end, memtrack_family_name(event->family));
        if (event->freed_size) {
            out = memtrack_put_text(out, end, " freed-size=");
            out = memtrack_put_decimal(out, end, event->freed_size);
        }
    }
    *out++ = '\n';

    char name[48];
    char *n = name, *name_end = name + sizeof name - 1;
    n = memtrack_put_text(n, name_end, "bad-");
    n = memtrack_put_decimal(n, name_end, event->sequence);
    n = memtrack_put_text(n, name_end, ".free");
    *n = 0;
    int error = memtrack_write_record_file(name, line, (size_t)(out - line));
    if (error) memtrack_note_failure("writing a bad-free record", error, &memtrack_unrecorded_events);

    /* The one line on stderr that says what happened and where to look. */
    char message[256];
    char *m = message, *message_end = message + sizeof message - 1;
    m = memtrack_put_text(m, message_end, "memtrack: ");
    m = memtrack_put_text(m, message_end, event->kind ? event->kind : event->double_free ? "double free" : "invalid free");
    m = memtrack_put_text(m, message_end, " of ");
    m = memtrack_put_hex(m, message_end, event->address);
    if (event->kind) {
        m = memtrack_put_text(m, message_end, " (");
        m = memtrack_put_text(m, message_end, memtrack_family_name(event->family));
        m = memtrack_put_text(m, message_end, " block, ");
        m = memtrack_put_text(m, message_end, memtrack_via_name(event->via));
        m = memtrack_put_text(m, message_end, ")");
    }
    m = memtrack_put_text(m, message_end, " from ");
    m = memtrack_put_hex(m, message_end, event->stack.depth ? event->stack.frames[0] : 0);
    m = memtrack_put_text(m, message_end, event->kind ? " (freed as usual; recorded as " : " (not passed to free; recorded as ");
    m = memtrack_put_text(m, message_end, memtrack_run_name);
    m = memtrack_put_text(m, message_end, "/");
    m = memtrack_put_text(m, message_end, name);
    m = memtrack_put_text(m, message_end, ")\n");
    *m = 0;
    memtrack_say(message);
}
