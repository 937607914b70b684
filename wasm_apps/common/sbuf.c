/* sbuf.c: growable NUL-terminated byte buffer (see sbuf.h). */
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void reserve(sbuf *buf, size_t extra) {
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap) return;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need) cap *= 2;
    buf->data = xrealloc(buf->data, cap);
    buf->cap = cap;
}

void sbuf_init(sbuf *buf) {
    buf->data = NULL;
    buf->len = buf->cap = 0;
    reserve(buf, 0);
    buf->data[0] = '\0';
}

void sbuf_free(sbuf *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

void sbuf_clear(sbuf *buf) {
    buf->len = 0;
    buf->data[0] = '\0';
}

void sbuf_append(sbuf *buf, const void *data, size_t len) {
    reserve(buf, len);
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void sbuf_puts(sbuf *buf, const char *text) { sbuf_append(buf, text, strlen(text)); }

void sbuf_putc(sbuf *buf, char c) { sbuf_append(buf, &c, 1); }

void sbuf_vprintf(sbuf *buf, const char *fmt, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int need = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (need < 0) die("bad format string %s", fmt);
    reserve(buf, (size_t)need);
    vsnprintf(buf->data + buf->len, (size_t)need + 1, fmt, args);
    buf->len += (size_t)need;
}

void sbuf_printf(sbuf *buf, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    sbuf_vprintf(buf, fmt, args);
    va_end(args);
}

char *sbuf_take(sbuf *buf) {
    char *data = buf->data;
    sbuf_init(buf);
    return data;
}
