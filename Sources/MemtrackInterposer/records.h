/* records.h: block records and bad-free records (records.c). Layer: records. */
#ifndef MEMTRACK_RECORDS_H
#define MEMTRACK_RECORDS_H

#include "base.h"

#pragma GCC visibility push(hidden)

struct memtrack_bad_free {
    uintptr_t address;
    int double_free;            /* 1: allocated and already freed; 0: never allocated */
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint8_t via;
    struct memtrack_stack stack;
    uint64_t size;              /* 0 when unknown */
    struct memtrack_stack alloc_stack;  /* depth 0 when unknown */
    struct memtrack_stack free_stack;   /* depth 0 when unknown */
    const char *kind;           /* NULL: double-free or invalid-free; else mismatched-free/-size */
    uint8_t family;             /* mismatches: the family that allocated the block */
    uint64_t freed_size;        /* mismatched-size: the size the sized delete was given */
};

/* A block as its record holds it: the stack interned (stacks.c). 48 bytes. */
struct memtrack_record {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint32_t stack_id;
    uint8_t via;
    uint8_t family;                 /* enum memtrack_family */
    uint32_t source, source_line;   /* as in memtrack_block */
};


/* Interns the stack (if need be) and writes the block's symlink record. */
int memtrack_write_block(const struct memtrack_block *block);
int memtrack_write_record(const struct memtrack_record *record);
void memtrack_make_record(struct memtrack_record *record, const struct memtrack_block *block, uint32_t stack_id);
/* Sets the record's memtrack.h location (source 0: none), its sources line written first. */
void memtrack_record_set_source(struct memtrack_record *record, uint32_t source, uint32_t line);
void memtrack_remove_block_file(uintptr_t address);
/* The same, reading the record's size and stack id first. Returns 1 if they were read. */
int memtrack_remove_block_file_noting(uintptr_t address, uint64_t *size, uint32_t *stack_id);
/* What a block record says (memtrack_read_block_record, the one reader of block records). */
struct memtrack_record_fields {
    uint64_t size;
    uint32_t stack_id;       /* format 2; 0 in format 1 */
    uintptr_t first_frame;   /* the allocation stack's innermost frame; 0 when unknown */
};
/* Either record format; the whole stack too when `stack` is not NULL (format 2: read from the
 * stacks file). Returns 1 if the record was found with its size. */
int memtrack_read_block_record(uintptr_t address, struct memtrack_record_fields *fields, struct memtrack_stack *stack);
/* Stack `id` from the run directory's stacks file. Returns 1 if found. */
int memtrack_read_stack(uint32_t id, struct memtrack_stack *stack);
void memtrack_write_bad_free(const struct memtrack_bad_free *event);

#pragma GCC visibility pop

#endif
