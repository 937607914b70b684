/* plan.h: the requestor's plan of a proof-of-work task, the same as apps/tutorialapp/plan.py.
 *
 * There are `subtasks` ranges (at most max_subtasks_count), so a task needs exactly that many successful
 * subtasks whatever its input. Range i covers nonces [i * range_size, (i + 1) * range_size), except the
 * last, which is open-ended: [start, OPEN_END); it always holds a valid nonce (its provider searches until
 * it finds one). The answer is the nonce of the lowest range that held one, once every range below it is
 * verified empty: the smallest valid nonce >= 0, whatever the split.
 *
 * Persisted in the Python app's format (apps/tutorialapp/plan.py): a snapshot written at create_task,
 * /task/tutorialapp-plan.json:
 *   {"input": str, "difficulty": int, "subtasks": int, "range_size": int,
 *    "ranges": [{"state": "pending"|"assigned"|"done", "subtask_id": str|null, "nonce": int|null}, ...],
 *    "generation": int}
 * and the journal of the range changes since (common/journal.h), /task/tutorialapp-plan.journal: one line a
 * change, ["assign", index, subtask_id], ["done", index, nonce|null] or ["release", index].
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
#define JOURNAL_FILE "/task/tutorialapp-plan.journal"
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
    int64_t subtasks; /* ranges; the last is open-ended */
    int64_t range_size;
} pow_plan;

/* Where the last range ends: a bound no search reaches (exact as a JSON number everywhere). */
#define OPEN_END ((int64_t)1 << 62)

/* A fresh plan: `subtasks` pending ranges, range_size = max(1, ceil(2**d / subtasks)). */
void plan_new(pow_plan *plan, const char *input, size_t input_len, int64_t difficulty, int64_t subtasks);
/* The plan file's callbacks (requestor.h): `plan` is a pow_plan. */
int plan_decode(void *plan, const json_value *root, sbuf *why);
void plan_encode(jsonw *w, const void *plan);
void plan_free(void *plan);
/* Forgets what range `index` held (it was assigned anew or made pending). */
void plan_clear(void *plan, size_t index);
/* Range `index` was verified holding `result`: the plan's change, and its journal line ["done", index, nonce]. */
void plan_complete(pow_plan *plan, size_t index, range_result result);
void plan_write_done(jsonw *changes, const pow_plan *plan, size_t index);
/* Replays a journal line of plan_write_done's (requestor.h's apply); 0 if `change` is not one. */
int plan_apply(void *plan, const json_value *change);

void plan_bounds(const pow_plan *plan, size_t index, int64_t *start, int64_t *end);
/* Whether range `index` is the open-ended last one, which always holds a valid nonce. */
int plan_is_open(const pow_plan *plan, size_t index);
/* The smallest valid nonce once it is certain: returns 1 and stores it, else 0. */
int plan_answer(const pow_plan *plan, int64_t *nonce);
/* Index of the lowest range worth computing now (none above a range known to hold a nonce), or -1. */
long plan_next_pending(void *plan);

#endif
