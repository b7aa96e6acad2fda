/* status.h: the process, status and modules records (status.c). Layer: state. */
#ifndef MEMTRACK_STATUS_H
#define MEMTRACK_STATUS_H

#include "base.h"

#pragma GCC visibility push(hidden)

void memtrack_write_process_file(const char *parent_run_name);
/* state: running, exit (value: the code), signal (value: the number), exec (exec_path). */
void memtrack_write_status(const char *state, int value, const char *exec_path);
/* The status as it would read with one more lost event, with why (credentials.c). */
int memtrack_write_status_mark(const char *why);
/* Brings the modules file up to date; in_signal: do not wait for a lock this thread holds. */
void memtrack_write_modules(int force_rewrite, int in_signal);
/* The same, made by the writer and waited for at most 2 s; 0 when it did not end in time. */
int memtrack_refresh_modules_bounded(const char *what);
void memtrack_modules_fork_refresh(void);
void memtrack_modules_fork_prepare(void);
void memtrack_modules_fork_parent(void);
void memtrack_modules_fork_child(void);
void memtrack_modules_fork_child_unprepared(void);

#pragma GCC visibility pop

#endif
