/* files.h: the run directory and the file operations in it, through the file thread (files.c).
 * Layer: files. */
#ifndef MEMTRACK_FILES_H
#define MEMTRACK_FILES_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* >= 0 while this process records into its run directory; -1 when recording is impossible.
 * Not a descriptor the tracker keeps open: each use opens the directory by its path. */
extern atomic_int memtrack_run_directory;
extern char memtrack_run_name[64];
/* Remembers the freshly created run directory (its path and identity); the caller closes fd. */
void memtrack_remember_run_directory(int fd);
/* The run directory for one use, opened by path and checked; -1 when unusable. Give it back
 * with memtrack_record_directory_done. */
int memtrack_record_directory(void);
/* A block record's target (readlinkat), with no descriptor in the program's table; -1 if none. */
ssize_t memtrack_read_record_link(const char *name, char *text, size_t size);
void memtrack_record_directory_done(int fd);

/* Record files, through the file thread; each returns 0 or an errno value. */
int memtrack_write_record_file(const char *name, const char *text, size_t length);   /* atomically */
int memtrack_remove_record_file(const char *name);
int memtrack_symlink_record_file(const char *name, const char *target, size_t length);
int memtrack_append_record_file(const char *name, const char *line, size_t length, int create);
int memtrack_overwrite_record_file(const char *name, const char *text, size_t length);
/* Writes name in directory under a temporary name, then renames it into place. 0 or errno. */
int memtrack_write_file_atomically(int directory, const char *name, const char *text, size_t length);

/* Gives the calling tracker thread a descriptor table of its own (the writer, the file thread). */
void memtrack_use_private_descriptors(void);
/* The thread that does every file operation of program threads. */
void memtrack_start_file_thread(void);
void memtrack_files_wake(void);
void memtrack_files_fork_prepare(void);
void memtrack_files_fork_parent(void);
void memtrack_files_fork_child(void);
/* The file thread's id and an address on its stack (the leak check never stops or scans it). */
extern atomic_int memtrack_file_thread;
extern atomic_uintptr_t memtrack_file_thread_stack_address;

#pragma GCC visibility pop

#endif
