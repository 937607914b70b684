/* json.h: a minimal JSON reader producing a tree of json_value.
 *
 * Accepts RFC 8259 JSON: objects, arrays, strings (all escapes, \u surrogate pairs, UTF-8 validated),
 * numbers, true, false, null, and (like Python's json module) NaN, Infinity and -Infinity. A number without fraction or exponent that fits int64 is JSON_INT (as
 * Python's json gives an int); every other number is JSON_DOUBLE. Strings keep their length, so they may
 * contain NUL. For duplicate object keys the last one wins (as in Python). Nesting is limited to
 * JSON_MAX_DEPTH levels.
 */
#ifndef WASM_APPS_JSON_H
#define WASM_APPS_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_INT, JSON_DOUBLE, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_type type;
    union {
        int boolean;
        int64_t integer;
        double number;
        struct {
            char *data; /* NUL-terminated, `len` bytes of UTF-8 */
            size_t len;
        } string;
        struct {
            json_value **items;
            size_t count;
        } array;
        struct {
            json_member *members;
            size_t count;
        } object;
    } u;
};

struct json_member {
    char *key;
    size_t key_len;
    json_value *value;
};

/* Parse `len` bytes. Returns the root, or NULL with a message ("... at offset N") in `error`. */
json_value *json_parse(const char *text, size_t len, char *error, size_t error_size);
void json_free(json_value *value);

/* The value of `key` in an object (the last one if repeated), or NULL (also when `object` is no object). */
const json_value *json_get(const json_value *object, const char *key);
/* Typed views: NULL unless the value exists and has that type. */
const char *json_string(const json_value *value);
int json_is_int(const json_value *value);
/* True for JSON_INT and JSON_DOUBLE. */
int json_is_number(const json_value *value);
/* The numeric value of a JSON_INT or JSON_DOUBLE as double. */
double json_number(const json_value *value);
/* True when `value` is a number equal to `expected` (an int, or a double with that exact value). */
int json_number_equals(const json_value *value, int64_t expected);
const char *json_type_name(json_type type);

#endif
