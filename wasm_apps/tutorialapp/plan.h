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

#include "sbuf.h"

#define PLAN_FILE "/task/tutorialapp-plan.json"

typedef enum { RANGE_PENDING, RANGE_ASSIGNED, RANGE_DONE } range_state;

typedef struct {
    range_state state;
    char *subtask_id; /* NULL when pending */
    int has_nonce;
    int64_t nonce;
} nonce_range;

typedef struct {
    char *input; /* UTF-8, `input_len` bytes */
    size_t input_len;
    int64_t difficulty;
    int64_t subtasks; /* ranges per round */
    int64_t range_size;
    int64_t open_rounds;
    nonce_range *ranges;
    size_t count;
} pow_plan;

/* A fresh plan: one open round of `subtasks` pending ranges, range_size = max(1, ceil(2**d / subtasks)). */
void plan_new(pow_plan *plan, const char *input, size_t input_len, int64_t difficulty, int64_t subtasks);
/* Loads the plan; on failure returns 0 with the reason in `error`. */
int plan_load(pow_plan *plan, sbuf *error);
/* Saves the plan; on failure returns 0 with the reason in `error`. */
int plan_save(const pow_plan *plan, sbuf *error);
void plan_free(pow_plan *plan);

void plan_bounds(const pow_plan *plan, size_t index, int64_t *start, int64_t *end);
/* The smallest valid nonce once it is certain: returns 1 and stores it, else 0. */
int plan_answer(const pow_plan *plan, int64_t *nonce);
/* Index of the lowest range worth computing now (opening a round when the last came up empty), or -1. */
long plan_next_pending(pow_plan *plan);
/* Index of the range assigned to `subtask_id`, or -1. */
long plan_index_of(const pow_plan *plan, const char *subtask_id);
void plan_assign(pow_plan *plan, size_t index, const char *subtask_id);
/* Makes the subtask's range pending again (forgetting its result); 0 if it holds none. */
int plan_release(pow_plan *plan, const char *subtask_id);

#endif
