/* json.c: recursive-descent JSON reader (see json.h). */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"
#include "util.h"

typedef struct {
    const char *text;
    size_t len;
    size_t pos;
    int depth;
    char *error;
    size_t error_size;
    int failed;
} parser;

static void fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(parser *p, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = 1;
    char what[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    snprintf(p->error, p->error_size, "%s at offset %zu", what, p->pos);
}

static void skip_space(parser *p) {
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->text[p->pos] : -1; }

static json_value *new_value(json_type type) {
    json_value *value = xcalloc(1, sizeof *value);
    value->type = type;
    return value;
}

static json_value *parse_value(parser *p);

static int literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) {
        fail(p, "invalid literal");
        return 0;
    }
    p->pos += n;
    return 1;
}

static int hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4) {
        fail(p, "truncated \\u escape");
        return 0;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else {
            fail(p, "bad hex digit in \\u escape");
            return 0;
        }
    }
    *out = v;
    return 1;
}

static void put_utf8(sbuf *out, unsigned cp) {
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sbuf_append(out, b, n);
}

/* Length of the valid UTF-8 sequence starting at s (at most `avail` bytes), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

/* Parses a string at p->pos (which is at the opening quote) into `out`. */
static int parse_string_into(parser *p, sbuf *out) {
    p->pos++; /* opening quote */
    for (;;) {
        if (p->pos >= p->len) {
            fail(p, "unterminated string");
            return 0;
        }
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c == '"') {
            p->pos++;
            return 1;
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            return 0;
        }
        if (c != '\\') {
            size_t n = utf8_sequence((const unsigned char *)p->text + p->pos, p->len - p->pos);
            if (!n) {
                fail(p, "invalid UTF-8 in string");
                return 0;
            }
            sbuf_append(out, p->text + p->pos, n);
            p->pos += n;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            fail(p, "unterminated escape");
            return 0;
        }
        char e = p->text[p->pos++];
        switch (e) {
        case '"': sbuf_putc(out, '"'); break;
        case '\\': sbuf_putc(out, '\\'); break;
        case '/': sbuf_putc(out, '/'); break;
        case 'b': sbuf_putc(out, '\b'); break;
        case 'f': sbuf_putc(out, '\f'); break;
        case 'n': sbuf_putc(out, '\n'); break;
        case 'r': sbuf_putc(out, '\r'); break;
        case 't': sbuf_putc(out, '\t'); break;
        case 'u': {
            unsigned cp;
            if (!hex4(p, &cp)) return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned low;
                if (p->len - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u') {
                    fail(p, "lone surrogate in \\u escape");
                    return 0;
                }
                p->pos += 2;
                if (!hex4(p, &low)) return 0;
                if (low < 0xDC00 || low > 0xDFFF) {
                    fail(p, "lone surrogate in \\u escape");
                    return 0;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, "lone surrogate in \\u escape");
                return 0;
            }
            put_utf8(out, cp);
            break;
        }
        default: fail(p, "bad escape \\%c", e); return 0;
        }
    }
}

static json_value *parse_string(parser *p) {
    sbuf text;
    sbuf_init(&text);
    if (!parse_string_into(p, &text)) {
        sbuf_free(&text);
        return NULL;
    }
    json_value *value = new_value(JSON_STRING);
    value->u.string.len = text.len;
    value->u.string.data = sbuf_take(&text);
    sbuf_free(&text);
    return value;
}

static json_value *parse_number(parser *p) {
    size_t start = p->pos;
    int is_int = 1;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    } else {
        fail(p, "invalid number");
        return NULL;
    }
    if (peek(p) == '.') {
        is_int = 0;
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) {
            fail(p, "invalid number");
            return NULL;
        }
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        is_int = 0;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) {
            fail(p, "invalid number");
            return NULL;
        }
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    char *copy = xmemdup(p->text + start, p->pos - start);
    json_value *value = NULL;
    if (is_int) {
        errno = 0;
        long long v = strtoll(copy, NULL, 10);
        if (errno == 0) {
            value = new_value(JSON_INT);
            value->u.integer = v;
        }
    }
    if (!value) { /* a fraction, an exponent, or an integer beyond int64 */
        value = new_value(JSON_DOUBLE);
        value->u.number = strtod(copy, NULL);
    }
    free(copy);
    return value;
}

static json_value *parse_array(parser *p) {
    json_value *value = new_value(JSON_ARRAY);
    size_t cap = 0;
    p->pos++; /* [ */
    skip_space(p);
    if (peek(p) == ']') {
        p->pos++;
        return value;
    }
    for (;;) {
        json_value *item = parse_value(p);
        if (!item) break;
        if (value->u.array.count == cap) {
            cap = cap ? cap * 2 : 4;
            value->u.array.items = xrealloc(value->u.array.items, cap * sizeof *value->u.array.items);
        }
        value->u.array.items[value->u.array.count++] = item;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) == ']') {
            p->pos++;
            return value;
        }
        fail(p, "expected ',' or ']' in array");
        break;
    }
    json_free(value);
    return NULL;
}

static json_value *parse_object(parser *p) {
    json_value *value = new_value(JSON_OBJECT);
    size_t cap = 0;
    p->pos++; /* { */
    skip_space(p);
    if (peek(p) == '}') {
        p->pos++;
        return value;
    }
    for (;;) {
        skip_space(p);
        if (peek(p) != '"') {
            fail(p, "expected a string key in object");
            break;
        }
        sbuf key;
        sbuf_init(&key);
        if (!parse_string_into(p, &key)) {
            sbuf_free(&key);
            break;
        }
        skip_space(p);
        if (peek(p) != ':') {
            sbuf_free(&key);
            fail(p, "expected ':' in object");
            break;
        }
        p->pos++;
        json_value *member = parse_value(p);
        if (!member) {
            sbuf_free(&key);
            break;
        }
        if (value->u.object.count == cap) {
            cap = cap ? cap * 2 : 4;
            value->u.object.members = xrealloc(value->u.object.members, cap * sizeof *value->u.object.members);
        }
        json_member *slot = &value->u.object.members[value->u.object.count++];
        slot->key_len = key.len;
        slot->key = sbuf_take(&key);
        sbuf_free(&key);
        slot->value = member;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) == '}') {
            p->pos++;
            return value;
        }
        fail(p, "expected ',' or '}' in object");
        break;
    }
    json_free(value);
    return NULL;
}

static json_value *parse_value(parser *p) {
    skip_space(p);
    json_value *value = NULL;
    int c = peek(p);
    if (c == '{' || c == '[') {
        if (++p->depth > JSON_MAX_DEPTH) {
            fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
            return NULL;
        }
        value = c == '{' ? parse_object(p) : parse_array(p);
        p->depth--;
    } else if (c == '"') {
        value = parse_string(p);
    } else if (c == 'N' || c == 'I' || (c == '-' && p->pos + 1 < p->len && p->text[p->pos + 1] == 'I')) {
        /* Python's json module reads and writes these for non-finite floats */
        const char *word = c == 'N' ? "NaN" : c == 'I' ? "Infinity" : "-Infinity";
        if (literal(p, word)) {
            value = new_value(JSON_DOUBLE);
            value->u.number = c == 'N' ? NAN : c == 'I' ? INFINITY : -INFINITY;
        }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        value = parse_number(p);
    } else if (c == 't' || c == 'f') {
        if (literal(p, c == 't' ? "true" : "false")) {
            value = new_value(JSON_BOOL);
            value->u.boolean = c == 't';
        }
    } else if (c == 'n') {
        if (literal(p, "null")) value = new_value(JSON_NULL);
    } else {
        fail(p, c < 0 ? "unexpected end of input" : "unexpected character");
    }
    return value;
}

json_value *json_parse(const char *text, size_t len, char *error, size_t error_size) {
    parser p = {text, len, 0, 0, error, error_size, 0};
    if (error_size) error[0] = '\0';
    json_value *root = parse_value(&p);
    if (root) {
        skip_space(&p);
        if (p.pos != p.len) {
            fail(&p, "trailing data after the JSON value");
            json_free(root);
            root = NULL;
        }
    }
    return root;
}

void json_free(json_value *value) {
    if (!value) return;
    switch (value->type) {
    case JSON_STRING: free(value->u.string.data); break;
    case JSON_ARRAY:
        for (size_t i = 0; i < value->u.array.count; i++) json_free(value->u.array.items[i]);
        free(value->u.array.items);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < value->u.object.count; i++) {
            free(value->u.object.members[i].key);
            json_free(value->u.object.members[i].value);
        }
        free(value->u.object.members);
        break;
    default: break;
    }
    free(value);
}

const json_value *json_get(const json_value *object, const char *key) {
    if (!object || object->type != JSON_OBJECT) return NULL;
    size_t key_len = strlen(key);
    for (size_t i = object->u.object.count; i-- > 0;) {
        const json_member *m = &object->u.object.members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) return m->value;
    }
    return NULL;
}

const char *json_string(const json_value *value) {
    return value && value->type == JSON_STRING ? value->u.string.data : NULL;
}

int json_is_int(const json_value *value) { return value && value->type == JSON_INT; }

int json_is_number(const json_value *value) {
    return value && (value->type == JSON_INT || value->type == JSON_DOUBLE);
}

double json_number(const json_value *value) {
    return value->type == JSON_INT ? (double)value->u.integer : value->u.number;
}

int json_number_equals(const json_value *value, int64_t expected) {
    if (json_is_int(value)) return value->u.integer == expected;
    if (value && value->type == JSON_DOUBLE) {
        double d = value->u.number;
        /* |d| < 2**63 keeps the conversion defined; then compare exactly. */
        return isfinite(d) && fabs(d) < 9.2233720368547758e18 && d == floor(d) && (int64_t)d == expected;
    }
    return 0;
}

const char *json_type_name(json_type type) {
    static const char *const names[] = {"null", "bool", "int", "float", "str", "list", "dict"};
    return names[type];
}
