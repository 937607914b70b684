/* jsonw.h: a JSON writer that formats exactly like Python's json.dumps() with default arguments:
 * separators ", " and ": ", non-ASCII escaped as \uXXXX (surrogate pairs above U+FFFF), floats as
 * Python's repr(). Commas are placed automatically; the caller only opens, closes and writes values.
 */
#ifndef WASM_APPS_JSONW_H
#define WASM_APPS_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "sbuf.h"

typedef struct {
    sbuf out;
    int depth;
    unsigned char first[JSON_MAX_DEPTH + 1]; /* no value written yet at this level */
    int after_key;                           /* the next value belongs to a key just written */
} jsonw;

void jsonw_init(jsonw *w);
void jsonw_free(jsonw *w);
void jsonw_object_begin(jsonw *w);
void jsonw_object_end(jsonw *w);
void jsonw_array_begin(jsonw *w);
void jsonw_array_end(jsonw *w);
void jsonw_key(jsonw *w, const char *key);
void jsonw_string(jsonw *w, const char *text);
void jsonw_string_n(jsonw *w, const char *text, size_t len);
void jsonw_int(jsonw *w, int64_t value);
/* Shortest text that reads back as the same double, like Python's repr ("1.0", "1e-07", "1e+16"). */
void jsonw_double(jsonw *w, double value);
void jsonw_bool(jsonw *w, int value);
void jsonw_null(jsonw *w);
/* Writes a parsed value (object members in their original order). */
void jsonw_value(jsonw *w, const json_value *value);

/* Appends the JSON text of a string (with quotes) to `out`: for messages that quote a value. */
void json_quote(sbuf *out, const char *text, size_t len);
/* Appends a double as Python's repr() writes it ("0.1", "1e-07", "inf"). */
void json_format_double(sbuf *out, double value);

#endif
