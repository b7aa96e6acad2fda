/* credentials.h: set*id calls (credentials.c). Layer: process. */
#ifndef MEMTRACK_CREDENTIALS_H
#define MEMTRACK_CREDENTIALS_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Finds the next set*id functions (at start-up: dlsym is not safe in a signal handler). */
void memtrack_credentials_start(void);

#pragma GCC visibility pop

#endif
