/* pyrepr.h: Python's repr() of a parsed JSON value, so messages quote values as the Python apps do:
 * None, True, False, 'text' (Python's quoting and escapes), [1, 2], {'a': 0.5}. Which non-ASCII
 * characters count as printable is approximated (controls, separators, format and private-use
 * characters are escaped); everything ASCII is exact.
 */
#ifndef WASM_APPS_PYREPR_H
#define WASM_APPS_PYREPR_H

#include <stddef.h>

#include "json.h"
#include "sbuf.h"

/* Appends repr(value), cut to at most `max` bytes (then "..."); a NULL value reads as None. */
void py_repr(sbuf *out, const json_value *value, size_t max);
/* Appends repr(str) of `len` bytes of UTF-8. */
void py_repr_string(sbuf *out, const char *text, size_t len);

#endif
