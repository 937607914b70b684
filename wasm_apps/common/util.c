/* util.c: checked allocation and fatal errors (see util.h). */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void die(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("fatal: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(70);
}

void *xmalloc(size_t size) {
    void *ptr = malloc(size ? size : 1);
    if (!ptr) die("out of memory (%zu bytes)", size);
    return ptr;
}

void *xcalloc(size_t count, size_t size) {
    void *ptr = calloc(count ? count : 1, size ? size : 1);
    if (!ptr) die("out of memory (%zu x %zu bytes)", count, size);
    return ptr;
}

void *xrealloc(void *ptr, size_t size) {
    void *grown = realloc(ptr, size ? size : 1);
    if (!grown) die("out of memory (%zu bytes)", size);
    return grown;
}

char *xmemdup(const char *data, size_t len) {
    char *copy = xmalloc(len + 1);
    memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

char *xstrdup(const char *text) { return xmemdup(text, strlen(text)); }
