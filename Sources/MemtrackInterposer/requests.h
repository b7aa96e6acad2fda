/* requests.h: memdir's check requests, served by the writer thread (requests.c). Layer: requests. */
#ifndef MEMTRACK_REQUESTS_H
#define MEMTRACK_REQUESTS_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* 1 when a check was requested (the request is consumed). */
int memtrack_requests_take(void);
/* Runs the requested check, which writes its answer. */
void memtrack_requests_answer(void);
/* Takes a sequence number for an on-demand check, so that its answer's name is new. */
void memtrack_unique_check_sequence(void);

#pragma GCC visibility pop

#endif
