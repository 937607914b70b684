/* sbuf.h: a growable byte buffer, always NUL-terminated, used to build replies, messages and paths. */
#ifndef WASM_APPS_SBUF_H
#define WASM_APPS_SBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated; never NULL after sbuf_init */
    size_t len;
    size_t cap;
} sbuf;

void sbuf_init(sbuf *buf);
void sbuf_free(sbuf *buf);
void sbuf_clear(sbuf *buf);
void sbuf_append(sbuf *buf, const void *data, size_t len);
void sbuf_puts(sbuf *buf, const char *text);
void sbuf_putc(sbuf *buf, char c);
void sbuf_printf(sbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_vprintf(sbuf *buf, const char *fmt, va_list args);
/* Hand the contents over to the caller (free() it) and leave the buffer empty. */
char *sbuf_take(sbuf *buf);

#endif
