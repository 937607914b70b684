/* util.h: allocation that cannot fail silently, and fatal errors.
 *
 * A guest invocation is a short-lived process: running out of memory is an app failure, reported on stderr
 * with a non-zero exit code (the node turns it into INTERNAL with stderr's tail).
 */
#ifndef WASM_APPS_UTIL_H
#define WASM_APPS_UTIL_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* A NUL-terminated copy of `len` bytes (which may contain NULs themselves). */
char *xmemdup(const char *data, size_t len);
char *xstrdup(const char *text);

/* Print "fatal: <message>" to stderr and exit with status 70 (EX_SOFTWARE). */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
