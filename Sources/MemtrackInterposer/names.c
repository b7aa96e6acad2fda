/* names.c: the names records and look-ups use, each listed once (names.h). Layer: format. */
#include "names.h"

static const char *const via_names[] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "free", "cfree",
    "new", "new[]", "new-aligned", "new[]-aligned", "delete", "delete[]",
};
const char *memtrack_via_name(int via) { return via_names[via]; }

static const char *const family_names[] = { "malloc", "new", "new[]" };
const char *memtrack_family_name(int family) { return family_names[family >= 0 && family <= 2 ? family : 0]; }

const char *const memtrack_allocation_names[MEMTRACK_ALLOCATION_FUNCTIONS] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "cfree",
};

const char *const memtrack_operator_names[MEMTRACK_OPERATOR_COUNT] = {
    "_Znwm", "_ZnwmRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_Znam", "_ZnamRKSt9nothrow_t", "_ZnamSt11align_val_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdlPvRKSt9nothrow_t", "_ZdlPvm", "_ZdlPvSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdlPvmSt11align_val_t",
    "_ZdaPv", "_ZdaPvRKSt9nothrow_t", "_ZdaPvm", "_ZdaPvSt11align_val_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvmSt11align_val_t",
};
