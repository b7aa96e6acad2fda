/* format.h: formatting into a caller's buffer and parsing back, never allocating (format.c).
 * Layer: format. */
#ifndef MEMTRACK_FORMAT_H
#define MEMTRACK_FORMAT_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Each returns the new end of the text; output stops at `end`. */
char *memtrack_put_text(char *out, const char *end, const char *text);
char *memtrack_put_decimal(char *out, const char *end, uint64_t value);
char *memtrack_put_hex(char *out, const char *end, uintptr_t value);
char *memtrack_put_stack(char *out, const char *end, const struct memtrack_stack *stack);
/* Escapes a value that runs to the end of its line (the catalog's Record format: \\ \n \t \xHH). */
char *memtrack_put_escaped(char *out, const char *end, const char *text);
char *memtrack_put_escaped_length(char *out, const char *end, const char *text, size_t length);

/* ` seq=N thread=N ms=N via=TEXT`: the fields every event line has. */
char *memtrack_put_event_fields(char *out, const char *end, uint64_t sequence, int32_t thread, uint32_t milliseconds,
                                const char *via);

/* Decimal digits at *text, which is moved past them. */
uint64_t memtrack_parse_decimal(const char **text);
/* `0xFRAME,0xFRAME...` up to the end of the text or a space or newline. */
void memtrack_parse_stack(const char *field, struct memtrack_stack *stack);

#pragma GCC visibility pop

#endif
