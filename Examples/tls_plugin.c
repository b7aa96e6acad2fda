/* tls_plugin.c: a library loaded with dlopen that keeps a block in its own (dynamic) TLS. */
#include <stdlib.h>

static __thread void *kept_in_dynamic_tls;

void *tls_plugin_keep(size_t size) {
    kept_in_dynamic_tls = malloc(size);
    return kept_in_dynamic_tls;
}
