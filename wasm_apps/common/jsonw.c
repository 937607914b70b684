/* jsonw.c: JSON writer in Python json.dumps style (see jsonw.h). */
#include "jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void jsonw_init(jsonw *w) {
    sbuf_init(&w->out);
    w->depth = 0;
    w->first[0] = 1;
    w->after_key = 0;
}

void jsonw_free(jsonw *w) { sbuf_free(&w->out); }

/* Writes the separator that must come before a value or key at the current level. */
static void separate(jsonw *w) {
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (!w->first[w->depth]) sbuf_puts(&w->out, ", ");
    w->first[w->depth] = 0;
}

static void open_level(jsonw *w, char c) {
    separate(w);
    if (w->depth >= JSON_MAX_DEPTH) die("JSON writer nested deeper than %d", JSON_MAX_DEPTH);
    sbuf_putc(&w->out, c);
    w->first[++w->depth] = 1;
}

static void close_level(jsonw *w, char c) {
    if (w->depth == 0) die("JSON writer: unbalanced close");
    w->depth--;
    sbuf_putc(&w->out, c);
}

void jsonw_object_begin(jsonw *w) { open_level(w, '{'); }
void jsonw_object_end(jsonw *w) { close_level(w, '}'); }
void jsonw_array_begin(jsonw *w) { open_level(w, '['); }
void jsonw_array_end(jsonw *w) { close_level(w, ']'); }

/* Decodes one UTF-8 sequence (input already validated by the reader; invalid bytes map to U+FFFD). */
static unsigned next_codepoint(const unsigned char *s, size_t len, size_t *used) {
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n > len || (c >= 0x80 && c < 0xC0)) {
        *used = 1;
        return 0xFFFD;
    }
    unsigned cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3F);
    *used = n;
    return cp;
}

void json_quote(sbuf *out, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    sbuf_putc(out, '"');
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        switch (c) {
        case '"': sbuf_puts(out, "\\\""); i++; continue;
        case '\\': sbuf_puts(out, "\\\\"); i++; continue;
        case '\n': sbuf_puts(out, "\\n"); i++; continue;
        case '\r': sbuf_puts(out, "\\r"); i++; continue;
        case '\t': sbuf_puts(out, "\\t"); i++; continue;
        case '\b': sbuf_puts(out, "\\b"); i++; continue;
        case '\f': sbuf_puts(out, "\\f"); i++; continue;
        default: break;
        }
        if (c >= 0x20 && c < 0x7F) {
            sbuf_putc(out, (char)c);
            i++;
            continue;
        }
        size_t used;
        unsigned cp = next_codepoint(s + i, len - i, &used);
        i += used;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            sbuf_printf(out, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else {
            sbuf_printf(out, "\\u%04x", cp);
        }
    }
    sbuf_putc(out, '"');
}

void jsonw_key(jsonw *w, const char *key) {
    separate(w);
    json_quote(&w->out, key, strlen(key));
    sbuf_puts(&w->out, ": ");
    w->after_key = 1;
}

void jsonw_string_n(jsonw *w, const char *text, size_t len) {
    separate(w);
    json_quote(&w->out, text, len);
}

void jsonw_string(jsonw *w, const char *text) { jsonw_string_n(w, text, strlen(text)); }

void jsonw_int(jsonw *w, int64_t value) {
    separate(w);
    sbuf_printf(&w->out, "%" PRId64, value);
}

/* Python's float repr: the shortest round-tripping digits, in exponent form when the decimal exponent
 * is < -4 or >= 16, with ".0" added to integral values in positional form. */
void json_format_double(sbuf *out, double value) {
    if (isnan(value)) {
        sbuf_puts(out, "nan");
        return;
    }
    if (isinf(value)) {
        sbuf_puts(out, value > 0 ? "inf" : "-inf");
        return;
    }
    char digits[40];
    int precision;
    for (precision = 1; precision <= 17; precision++) {
        snprintf(digits, sizeof digits, "%.*e", precision - 1, value);
        if (strtod(digits, NULL) == value) break;
    }
    /* digits is "[-]D[.DDD]e[+-]XX": split into sign, mantissa digits and exponent. */
    const char *p = digits;
    int negative = *p == '-';
    if (negative) p++;
    char mantissa[20];
    size_t n = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mantissa[n++] = *p;
    mantissa[n] = '\0';
    int exponent = atoi(p + 1);
    if (negative) sbuf_putc(out, '-');
    if (exponent < -4 || exponent >= 16) {
        sbuf_putc(out, mantissa[0]);
        if (n > 1) {
            sbuf_putc(out, '.');
            sbuf_append(out, mantissa + 1, n - 1);
        }
        sbuf_printf(out, "e%c%02d", exponent < 0 ? '-' : '+', abs(exponent));
    } else if (exponent < 0) {
        sbuf_puts(out, "0.");
        for (int i = -1; i > exponent; i--) sbuf_putc(out, '0');
        sbuf_append(out, mantissa, n);
    } else {
        size_t int_digits = (size_t)exponent + 1;
        for (size_t i = 0; i < int_digits; i++) sbuf_putc(out, i < n ? mantissa[i] : '0');
        sbuf_putc(out, '.');
        if (n > int_digits) sbuf_append(out, mantissa + int_digits, n - int_digits);
        else sbuf_putc(out, '0');
    }
}

void jsonw_double(jsonw *w, double value) {
    separate(w);
    if (isnan(value)) sbuf_puts(&w->out, "NaN"); /* what json.dumps writes for these */
    else if (isinf(value)) sbuf_puts(&w->out, value > 0 ? "Infinity" : "-Infinity");
    else json_format_double(&w->out, value);
}

void jsonw_bool(jsonw *w, int value) {
    separate(w);
    sbuf_puts(&w->out, value ? "true" : "false");
}

void jsonw_null(jsonw *w) {
    separate(w);
    sbuf_puts(&w->out, "null");
}

void jsonw_value(jsonw *w, const json_value *value) {
    switch (value->type) {
    case JSON_NULL: jsonw_null(w); break;
    case JSON_BOOL: jsonw_bool(w, value->u.boolean); break;
    case JSON_INT: jsonw_int(w, value->u.integer); break;
    case JSON_DOUBLE: jsonw_double(w, value->u.number); break;
    case JSON_STRING: jsonw_string_n(w, value->u.string.data, value->u.string.len); break;
    case JSON_ARRAY:
        jsonw_array_begin(w);
        for (size_t i = 0; i < value->u.array.count; i++) jsonw_value(w, value->u.array.items[i]);
        jsonw_array_end(w);
        break;
    case JSON_OBJECT:
        jsonw_object_begin(w);
        for (size_t i = 0; i < value->u.object.count; i++) {
            const json_member *m = &value->u.object.members[i];
            separate(w);
            json_quote(&w->out, m->key, m->key_len);
            sbuf_puts(&w->out, ": ");
            w->after_key = 1;
            jsonw_value(w, m->value);
        }
        jsonw_object_end(w);
        break;
    }
}
