/* tls_plugin.c: a library loaded with dlopen that keeps a block in its own dynamic TLS. The
 * 16 KiB of TLS is more than glibc's static TLS surplus, so the loader allocates the block of
 * this library's TLS on first use (a DTV entry), rather than placing it in static TLS. */
#include <stdlib.h>

static __thread char too_big_for_static_tls[16384];
static __thread void *kept_in_dynamic_tls;

void *tls_plugin_keep(size_t size) {
    too_big_for_static_tls[0] = 1;
    kept_in_dynamic_tls = malloc(size);
    return kept_in_dynamic_tls;
}
