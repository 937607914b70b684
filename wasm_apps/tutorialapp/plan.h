/* plan.h: the requestor's plan of a proof-of-work task, the same as apps/tutorialapp/plan.py.
 *
 * Range i covers nonces [i * range_size, (i + 1) * range_size). A round is `subtasks` consecutive ranges;
 * the first round is open from the start and a further round opens only when every open range was
 * verified and none held a valid nonce. The answer is the nonce of the lowest range that held one, once
 * every range below it is verified empty: the smallest valid nonce >= 0, whatever the split.
 *
 * Persisted as /task/tutorialapp-plan.json in the Python app's format:
 *   {"input": str, "difficulty": int, "subtasks": int, "range_size": int, "open_rounds": int,
 *    "ranges": [{"state": "pending"|"assigned"|"done", "subtask_id": str|null, "nonce": int|null}, ...]}
 */
#ifndef WASM_APPS_TUTORIAL_PLAN_H
#define WASM_APPS_TUTORIAL_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "jsonw.h"
#include "sbuf.h"
#include "slots.h"

#define PLAN_FILE "/task/tutorialapp-plan.json"
#define PLAN_MAX_BYTES (256u << 20)

/* What a verified range held. */
typedef struct {
    int has_nonce;
    int64_t nonce;
} range_result;

typedef struct {
    slot_table ranges;     /* first (requestor.h) */
    range_result *results; /* one per range; cleared whenever the range is assigned or made pending */
    char *input;           /* UTF-8, `input_len` bytes */
    size_t input_len;
    int64_t difficulty;
    int64_t subtasks; /* ranges per round */
    int64_t range_size;
    int64_t open_rounds;
} pow_plan;

/* A fresh plan: one open round of `subtasks` pending ranges, range_size = max(1, ceil(2**d / subtasks)). */
void plan_new(pow_plan *plan, const char *input, size_t input_len, int64_t difficulty, int64_t subtasks);
/* The plan file's callbacks (requestor.h): `plan` is a pow_plan. */
int plan_decode(void *plan, const json_value *root, sbuf *why);
void plan_encode(jsonw *w, const void *plan);
void plan_free(void *plan);
/* Forgets what range `index` held (it was assigned anew or made pending). */
void plan_clear(void *plan, size_t index);

void plan_bounds(const pow_plan *plan, size_t index, int64_t *start, int64_t *end);
/* The smallest valid nonce once it is certain: returns 1 and stores it, else 0. */
int plan_answer(const pow_plan *plan, int64_t *nonce);
/* Index of the lowest range worth computing now (opening a round when the last came up empty), or -1. */
long plan_next_pending(void *plan);

#endif
