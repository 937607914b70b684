/* pyrepr.c: Python-style repr() of JSON values for messages (see pyrepr.h). */
#include "pyrepr.h"

#include <inttypes.h>
#include <string.h>

#include "jsonw.h"

/* A non-ASCII code point Python's str.isprintable() would call printable (approximately). */
static int printable(unsigned cp) {
    if (cp <= 0xA0 || cp == 0xAD) return 0;
    if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F))
        return 0;
    if (cp == 0x3000 || cp == 0xFEFF || (cp >= 0xE000 && cp <= 0xF8FF) || (cp >= 0xFFF9 && cp <= 0xFFFB))
        return 0;
    return cp < 0xF0000;
}

static unsigned decode(const unsigned char *s, size_t len, size_t *used) {
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n > len) n = len;
    unsigned cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3F);
    *used = n;
    return cp;
}

void py_repr_string(sbuf *out, const char *text, size_t len) {
    char quote = memchr(text, '\'', len) && !memchr(text, '"', len) ? '"' : '\'';
    sbuf_putc(out, quote);
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            if (c == quote || c == '\\') {
                sbuf_putc(out, '\\');
                sbuf_putc(out, (char)c);
            } else if (c == '\t') sbuf_puts(out, "\\t");
            else if (c == '\n') sbuf_puts(out, "\\n");
            else if (c == '\r') sbuf_puts(out, "\\r");
            else if (c < 0x20 || c == 0x7F) sbuf_printf(out, "\\x%02x", c);
            else sbuf_putc(out, (char)c);
            continue;
        }
        size_t used;
        unsigned cp = decode(s + i, len - i, &used);
        if (printable(cp)) sbuf_append(out, s + i, used);
        else if (cp <= 0xFF) sbuf_printf(out, "\\x%02x", cp);
        else if (cp <= 0xFFFF) sbuf_printf(out, "\\u%04x", cp);
        else sbuf_printf(out, "\\U%08x", cp);
        i += used;
    }
    sbuf_putc(out, quote);
}

static void repr(sbuf *out, const json_value *value) {
    switch (value->type) {
    case JSON_NULL: sbuf_puts(out, "None"); break;
    case JSON_BOOL: sbuf_puts(out, value->u.boolean ? "True" : "False"); break;
    case JSON_INT: sbuf_printf(out, "%" PRId64, value->u.integer); break;
    case JSON_DOUBLE: json_format_double(out, value->u.number); break;
    case JSON_STRING: py_repr_string(out, value->u.string.data, value->u.string.len); break;
    case JSON_ARRAY:
        sbuf_putc(out, '[');
        for (size_t i = 0; i < value->u.array.count; i++) {
            if (i) sbuf_puts(out, ", ");
            repr(out, value->u.array.items[i]);
        }
        sbuf_putc(out, ']');
        break;
    case JSON_OBJECT:
        sbuf_putc(out, '{');
        for (size_t i = 0; i < value->u.object.count; i++) {
            const json_member *m = &value->u.object.members[i];
            if (i) sbuf_puts(out, ", ");
            py_repr_string(out, m->key, m->key_len);
            sbuf_puts(out, ": ");
            repr(out, m->value);
        }
        sbuf_putc(out, '}');
        break;
    }
}

void py_repr(sbuf *out, const json_value *value, size_t max) {
    if (!value) {
        sbuf_puts(out, "None");
        return;
    }
    sbuf text;
    sbuf_init(&text);
    repr(&text, value);
    if (text.len > max) {
        sbuf_append(out, text.data, max);
        sbuf_puts(out, "...");
    } else {
        sbuf_append(out, text.data, text.len);
    }
    sbuf_free(&text);
}
