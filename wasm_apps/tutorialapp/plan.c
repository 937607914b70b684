/* plan.c: tutorialapp's range plan and its JSON members (see plan.h). */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "requestor.h"
#include "util.h"

void plan_new(pow_plan *plan, const char *input, size_t input_len, int64_t difficulty, int64_t subtasks) {
    memset(plan, 0, sizeof *plan);
    plan->input = xmemdup(input, input_len);
    plan->input_len = input_len;
    plan->difficulty = difficulty;
    plan->subtasks = subtasks;
    int64_t space = (int64_t)1 << difficulty; /* difficulty <= 40 */
    plan->range_size = (space + subtasks - 1) / subtasks;
    if (plan->range_size < 1) plan->range_size = 1;
    slots_grow(&plan->ranges, (size_t)subtasks);
    plan->results = xcalloc((size_t)subtasks, sizeof *plan->results);
}

void plan_free(void *plan) {
    pow_plan *p = plan;
    slots_free(&p->ranges);
    free(p->results);
    free(p->input);
    memset(p, 0, sizeof *p);
}

void plan_clear(void *plan, size_t index) {
    pow_plan *p = plan;
    memset(&p->results[index], 0, sizeof p->results[index]);
}

void plan_complete(pow_plan *plan, size_t index, range_result result) {
    plan->ranges.items[index].state = SLOT_DONE;
    plan->results[index] = result;
}

void plan_write_done(jsonw *changes, const pow_plan *plan, size_t index) {
    const range_result *result = &plan->results[index];
    requestor_change_begin(changes, "done", index);
    if (result->has_nonce) jsonw_int(changes, result->nonce);
    else jsonw_null(changes);
    requestor_change_end(changes);
}

int plan_apply(void *plan, const json_value *change) {
    /* requestor.c checked it is a list whose second item is a range's index */
    const char *kind = json_string(change->u.array.items[0]);
    if (change->u.array.count != 3 || strcmp(kind, "done") != 0) return 0;
    const json_value *index = change->u.array.items[1];
    const json_value *nonce = change->u.array.items[2];
    if (nonce->type != JSON_NULL && nonce->type != JSON_INT) return 0;
    range_result result = {nonce->type == JSON_INT, nonce->type == JSON_INT ? nonce->u.integer : 0};
    plan_complete(plan, (size_t)index->u.integer, result);
    return 1;
}

static int load_int(const json_value *root, const char *name, int64_t low, int64_t *out, sbuf *why) {
    const json_value *value = json_get(root, name);
    if (!json_is_int(value) || value->u.integer < low) {
        sbuf_printf(why, "bad '%s'", name);
        return 0;
    }
    *out = value->u.integer;
    return 1;
}

static int load_range(const json_value *item, slot *range, range_result *result) {
    const json_value *nonce = json_get(item, "nonce");
    if (!nonce || (nonce->type != JSON_NULL && nonce->type != JSON_INT) || !slot_read(item, range)) return 0;
    result->has_nonce = nonce->type == JSON_INT;
    result->nonce = result->has_nonce ? nonce->u.integer : 0;
    return 1;
}

int plan_decode(void *out, const json_value *root, sbuf *why) {
    pow_plan *plan = out;
    const json_value *input = json_get(root, "input");
    const json_value *ranges = json_get(root, "ranges");
    if (!input || input->type != JSON_STRING || !ranges || ranges->type != JSON_ARRAY) {
        sbuf_puts(why, "bad 'input' or 'ranges'");
        return 0;
    }
    if (!load_int(root, "difficulty", 0, &plan->difficulty, why) ||
        !load_int(root, "subtasks", 1, &plan->subtasks, why) ||
        !load_int(root, "range_size", 1, &plan->range_size, why))
        return 0;
    plan->input = xmemdup(input->u.string.data, input->u.string.len);
    plan->input_len = input->u.string.len;
    size_t count = ranges->u.array.count;
    slots_grow(&plan->ranges, count);
    plan->results = xcalloc(count, sizeof *plan->results);
    for (size_t i = 0; i < count; i++) {
        if (!load_range(ranges->u.array.items[i], &plan->ranges.items[i], &plan->results[i])) {
            sbuf_puts(why, "bad range entry");
            return 0;
        }
    }
    return 1;
}

void plan_encode(jsonw *w, const void *in) {
    const pow_plan *plan = in;
    jsonw_key(w, "input");
    jsonw_string_n(w, plan->input, plan->input_len);
    jsonw_key(w, "difficulty");
    jsonw_int(w, plan->difficulty);
    jsonw_key(w, "subtasks");
    jsonw_int(w, plan->subtasks);
    jsonw_key(w, "range_size");
    jsonw_int(w, plan->range_size);
    jsonw_key(w, "ranges");
    jsonw_array_begin(w);
    for (size_t i = 0; i < plan->ranges.count; i++) {
        const range_result *result = &plan->results[i];
        jsonw_object_begin(w);
        slot_write(w, &plan->ranges.items[i]);
        jsonw_key(w, "nonce");
        if (result->has_nonce) jsonw_int(w, result->nonce);
        else jsonw_null(w);
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
}

void plan_bounds(const pow_plan *plan, size_t index, int64_t *start, int64_t *end) {
    *start = (int64_t)index * plan->range_size;
    *end = plan_is_open(plan, index) ? OPEN_END : *start + plan->range_size;
}

int plan_is_open(const pow_plan *plan, size_t index) {
    return (int64_t)index == plan->subtasks - 1;
}

int plan_answer(const pow_plan *plan, int64_t *nonce) {
    for (size_t i = 0; i < plan->ranges.count; i++) {
        if (plan->ranges.items[i].state != SLOT_DONE) return 0;
        if (plan->results[i].has_nonce) {
            *nonce = plan->results[i].nonce;
            return 1;
        }
    }
    return 0;
}

/* Whether range `i` was verified and held a valid nonce. */
static int is_hit(const pow_plan *plan, size_t i) {
    return plan->ranges.items[i].state == SLOT_DONE && plan->results[i].has_nonce;
}

long plan_next_pending(void *plan) {
    pow_plan *p = plan;
    int64_t unused;
    if (plan_answer(p, &unused)) return -1;
    size_t lowest_hit = p->ranges.count;
    for (size_t i = 0; i < p->ranges.count; i++) {
        if (is_hit(p, i)) {
            lowest_hit = i;
            break;
        }
    }
    long pending = slots_find(&p->ranges, SLOT_PENDING, lowest_hit);
    /* The open-ended last range waits until every range below it is done: it is searched until a nonce
     * turns up, wasted work whenever a range below holds one. */
    if (pending >= 0 && plan_is_open(p, (size_t)pending)) {
        for (long i = 0; i < pending; i++) {
            if (p->ranges.items[i].state != SLOT_DONE) return -1;
        }
    }
    return pending;
}
