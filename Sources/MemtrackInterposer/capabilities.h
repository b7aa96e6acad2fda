/* capabilities.h: the tracker's threads take the program's capabilities before a set*id call
 * (capabilities.c). Layer: lock. */
#ifndef MEMTRACK_CAPABILITIES_H
#define MEMTRACK_CAPABILITIES_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Called by the tracker's threads when woken (the writer, the file thread). */
void memtrack_credentials_follow(void);
/* Called before a set*id call: publish the caller's capabilities, then wait for the threads. */
int memtrack_credentials_publish(void);
void memtrack_credentials_wait(int threads);

#pragma GCC visibility pop

#endif
