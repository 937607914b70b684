/* params.h: validation of task and subtask parameters, with messages naming the bad parameter.
 *
 * `kind` is the word used in messages ("task parameter", "subtask parameter"). Each reader returns 1 with
 * the value stored, or 0 after failing the call with INVALID_ARGUMENT, e.g.
 *   task parameter 'difficulty' must be an integer in [0, 40], got '7'
 * (values quoted with Python's repr, as apps/tutorialapp words them). An absent parameter takes
 * `*fallback` when one is given, else is an error ("got None").
 */
#ifndef WASM_APPS_PARAMS_H
#define WASM_APPS_PARAMS_H

#include <stdint.h>

#include "guest.h"
#include "json.h"

/* Fails with "unknown <kind>s: [...]" (sorted) if `params` has a key not in `known` (NULL-terminated). */
int params_only(guest_call *call, const json_value *params, const char *kind, const char *const *known);
int params_int(guest_call *call, const json_value *params, const char *kind, const char *name, int64_t low,
               int64_t high, const int64_t *fallback, int64_t *out);
/* A finite number (int or float) in [low, high]; with `low_open` the low end is excluded. */
int params_number(guest_call *call, const json_value *params, const char *kind, const char *name, double low,
                  double high, int low_open, const double *fallback, double *out);
int params_string(guest_call *call, const json_value *params, const char *kind, const char *name,
                  const json_value **out);

#endif
