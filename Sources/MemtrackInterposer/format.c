/* format.c: numbers, stacks and text into a caller's buffer, and back: never allocates, never
 * fails (output stops at the buffer's end). Layer: format. */
#include "format.h"

char *memtrack_put_text(char *out, const char *end, const char *text) {
    while (*text && out < end) *out++ = *text++;
    return out;
}

char *memtrack_put_decimal(char *out, const char *end, uint64_t value) {
    char digits[20];
    int count = 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (count && out < end) *out++ = digits[--count];
    return out;
}

char *memtrack_put_hex(char *out, const char *end, uintptr_t value) {
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    int count = 0;
    do { digits[count++] = hex[value & 15]; value >>= 4; } while (value);
    out = memtrack_put_text(out, end, "0x");
    while (count && out < end) *out++ = digits[--count];
    return out;
}

char *memtrack_put_stack(char *out, const char *end, const struct memtrack_stack *stack) {
    for (uint32_t i = 0; i < stack->depth; i++) {
        if (i) out = memtrack_put_text(out, end, ",");
        out = memtrack_put_hex(out, end, stack->frames[i]);
    }
    return out;
}

/* Escapes a value that runs to the end of its line (the catalog's Record format: \\ \n \t \xHH). */
char *memtrack_put_escaped_length(char *out, const char *end, const char *text, size_t length) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < length && out + 4 < end; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\') { *out++ = '\\'; *out++ = '\\'; }
        else if (c == '\n') { *out++ = '\\'; *out++ = 'n'; }
        else if (c == '\t') { *out++ = '\\'; *out++ = 't'; }
        else if (c < 0x20 || c == 0x7f) { *out++ = '\\'; *out++ = 'x'; *out++ = hex[c >> 4]; *out++ = hex[c & 15]; }
        else *out++ = (char)c;
    }
    return out;
}

uint64_t memtrack_parse_decimal(const char **text) {
    uint64_t value = 0;
    for (; **text >= '0' && **text <= '9'; (*text)++) value = value * 10 + (uint64_t)(**text - '0');
    return value;
}

/* `0xFRAME,0xFRAME...` up to the end of the text or a space or newline. */
void memtrack_parse_stack(const char *field, struct memtrack_stack *stack) {
    uint32_t depth = 0;
    while (depth < MEMTRACK_MAX_DEPTH && field[0] == '0' && field[1] == 'x') {
        uintptr_t value = 0;
        for (field += 2;; field++) {
            char c = *field;
            int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (digit < 0) break;
            value = value * 16 + (uintptr_t)digit;
        }
        stack->frames[depth++] = value;
        if (*field != ',') break;
        field++;
    }
    stack->depth = depth;
}

/* The fields every event line has, in the order the catalog's Record format gives (block, bad-free and shm records). */
char *memtrack_put_event_fields(char *out, const char *end, uint64_t sequence, int32_t thread, uint32_t milliseconds,
                                const char *via) {
    out = memtrack_put_text(out, end, " seq=");
    out = memtrack_put_decimal(out, end, sequence);
    out = memtrack_put_text(out, end, " thread=");
    out = memtrack_put_decimal(out, end, (uint64_t)thread);
    out = memtrack_put_text(out, end, " ms=");
    out = memtrack_put_decimal(out, end, milliseconds);
    out = memtrack_put_text(out, end, " via=");
    return memtrack_put_text(out, end, via);
}

char *memtrack_put_escaped(char *out, const char *end, const char *text) {
    return memtrack_put_escaped_length(out, end, text, __builtin_strlen(text));
}
