/* memtrack: public header of the interposer. Programs never include it; it exists so that
 * SwiftPM has a module to build. Everything the interposer exports is a libc allocation
 * entry point (malloc, free, ...) or a wrapper of exit, exec, fork and signal functions. */
#ifndef MEMTRACK_H
#define MEMTRACK_H
#define MEMTRACK_RECORD_VERSION 1
#endif
