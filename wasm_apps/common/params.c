/* params.c: parameter validation with messages naming the parameter (see params.h). */
#include "params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyrepr.h"
#include "sbuf.h"

static int compare_members(const void *a, const void *b) {
    const json_member *x = *(const json_member *const *)a, *y = *(const json_member *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int is_known(const json_member *m, const char *const *known) {
    for (; *known; known++)
        if (strlen(*known) == m->key_len && memcmp(*known, m->key, m->key_len) == 0) return 1;
    return 0;
}

int params_only(guest_call *call, const json_value *params, const char *kind, const char *const *known) {
    size_t count = params->u.object.count, unknown = 0;
    const json_member **bad = calloc(count ? count : 1, sizeof *bad);
    for (size_t i = 0; i < count; i++)
        if (!is_known(&params->u.object.members[i], known)) bad[unknown++] = &params->u.object.members[i];
    if (unknown) {
        qsort(bad, unknown, sizeof *bad, compare_members);
        sbuf list;
        sbuf_init(&list);
        for (size_t i = 0; i < unknown; i++) {
            if (i && compare_members(&bad[i], &bad[i - 1]) == 0) continue; /* a repeated key */
            if (list.len) sbuf_puts(&list, ", ");
            py_repr_string(&list, bad[i]->key, bad[i]->key_len);
        }
        guest_fail(call, GUEST_INVALID_ARGUMENT, "unknown %ss: [%s]", kind, list.data);
        sbuf_free(&list);
    }
    free(bad);
    return unknown == 0;
}

#define REPR_MAX 1000

static void fail_value(guest_call *call, const char *kind, const char *name, const char *what,
                       const json_value *value) {
    sbuf got;
    sbuf_init(&got);
    py_repr(&got, value, REPR_MAX); /* a missing parameter reads as None, as in Python's params.get() */
    guest_fail(call, GUEST_INVALID_ARGUMENT, "%s '%s' must be %s, got %s", kind, name, what, got.data);
    sbuf_free(&got);
}

int params_int(guest_call *call, const json_value *params, const char *kind, const char *name, int64_t low,
               int64_t high, const int64_t *fallback, int64_t *out) {
    const json_value *value = json_get(params, name);
    if (!value && fallback) {
        *out = *fallback;
        return 1;
    }
    if (json_is_int(value) && value->u.integer >= low && value->u.integer <= high) {
        *out = value->u.integer;
        return 1;
    }
    sbuf what;
    sbuf_init(&what);
    sbuf_printf(&what, "an integer in [%lld, %lld]", (long long)low, (long long)high);
    fail_value(call, kind, name, what.data, value);
    sbuf_free(&what);
    return 0;
}

int params_number(guest_call *call, const json_value *params, const char *kind, const char *name, double low,
                  double high, int low_open, const double *fallback, double *out) {
    const json_value *value = json_get(params, name);
    if (!value && fallback) {
        *out = *fallback;
        return 1;
    }
    if (json_is_number(value)) {
        double v = json_number(value);
        if (isfinite(v) && (low_open ? v > low : v >= low) && v <= high) {
            *out = v;
            return 1;
        }
    }
    sbuf what;
    sbuf_init(&what);
    sbuf_printf(&what, "a number in %c%g, %g]", low_open ? '(' : '[', low, high);
    fail_value(call, kind, name, what.data, value);
    sbuf_free(&what);
    return 0;
}

int params_string(guest_call *call, const json_value *params, const char *kind, const char *name,
                  const json_value **out) {
    const json_value *value = json_get(params, name);
    if (value && value->type == JSON_STRING) {
        *out = value;
        return 1;
    }
    fail_value(call, kind, name, "a string", value);
    return 0;
}
