/* plan.c: tutorialapp's range plan and its JSON file (see plan.h). */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "json.h"
#include "jsonw.h"
#include "util.h"

#define PLAN_MAX_BYTES (256u << 20)

static const char *const STATE_NAMES[] = {"pending", "assigned", "done"};

static void add_round(pow_plan *plan) {
    size_t more = (size_t)plan->subtasks;
    plan->ranges = xrealloc(plan->ranges, (plan->count + more) * sizeof *plan->ranges);
    memset(plan->ranges + plan->count, 0, more * sizeof *plan->ranges);
    plan->count += more;
}

void plan_new(pow_plan *plan, const char *input, size_t input_len, int64_t difficulty, int64_t subtasks) {
    memset(plan, 0, sizeof *plan);
    plan->input = xmemdup(input, input_len);
    plan->input_len = input_len;
    plan->difficulty = difficulty;
    plan->subtasks = subtasks;
    int64_t space = (int64_t)1 << difficulty; /* difficulty <= 40 */
    plan->range_size = (space + subtasks - 1) / subtasks;
    if (plan->range_size < 1) plan->range_size = 1;
    plan->open_rounds = 1;
    add_round(plan);
}

void plan_free(pow_plan *plan) {
    for (size_t i = 0; i < plan->count; i++) free(plan->ranges[i].subtask_id);
    free(plan->ranges);
    free(plan->input);
    memset(plan, 0, sizeof *plan);
}

static int load_int(const json_value *root, const char *name, int64_t low, int64_t *out, sbuf *error) {
    const json_value *value = json_get(root, name);
    if (!json_is_int(value) || value->u.integer < low) {
        sbuf_printf(error, "corrupt plan %s: bad '%s'", PLAN_FILE, name);
        return 0;
    }
    *out = value->u.integer;
    return 1;
}

static int load_range(const json_value *item, nonce_range *range) {
    const char *state = json_string(json_get(item, "state"));
    const json_value *id = json_get(item, "subtask_id");
    const json_value *nonce = json_get(item, "nonce");
    int s;
    for (s = 0; s < 3 && !(state && strcmp(state, STATE_NAMES[s]) == 0); s++) {}
    if (s == 3 || !id || !nonce || (id->type != JSON_NULL && id->type != JSON_STRING) ||
        (nonce->type != JSON_NULL && nonce->type != JSON_INT))
        return 0;
    range->state = (range_state)s;
    range->subtask_id = id->type == JSON_STRING ? xstrdup(id->u.string.data) : NULL;
    range->has_nonce = nonce->type == JSON_INT;
    range->nonce = range->has_nonce ? nonce->u.integer : 0;
    return 1;
}

int plan_load(pow_plan *plan, sbuf *error) {
    memset(plan, 0, sizeof *plan);
    char *text;
    size_t len;
    if (file_read_all(PLAN_FILE, PLAN_MAX_BYTES, &text, &len) != 0) {
        sbuf_printf(error, "cannot read plan %s: %s", PLAN_FILE, strerror(errno));
        return 0;
    }
    char why[200];
    json_value *root = json_parse(text, len, why, sizeof why);
    free(text);
    int ok = 0;
    const json_value *input = json_get(root, "input");
    const json_value *ranges = json_get(root, "ranges");
    if (!root) {
        sbuf_printf(error, "corrupt plan %s: %s", PLAN_FILE, why);
    } else if (!input || input->type != JSON_STRING || !ranges || ranges->type != JSON_ARRAY) {
        sbuf_printf(error, "corrupt plan %s: bad 'input' or 'ranges'", PLAN_FILE);
    } else if (load_int(root, "difficulty", 0, &plan->difficulty, error) &&
               load_int(root, "subtasks", 1, &plan->subtasks, error) &&
               load_int(root, "range_size", 1, &plan->range_size, error) &&
               load_int(root, "open_rounds", 1, &plan->open_rounds, error)) {
        plan->input = xmemdup(input->u.string.data, input->u.string.len);
        plan->input_len = input->u.string.len;
        plan->ranges = xcalloc(ranges->u.array.count, sizeof *plan->ranges);
        plan->count = ranges->u.array.count;
        ok = 1;
        for (size_t i = 0; ok && i < plan->count; i++) ok = load_range(ranges->u.array.items[i], &plan->ranges[i]);
        if (!ok) sbuf_printf(error, "corrupt plan %s: bad range entry", PLAN_FILE);
    }
    json_free(root);
    if (!ok) plan_free(plan);
    return ok;
}

int plan_save(const pow_plan *plan, sbuf *error) {
    jsonw w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key(&w, "input");
    jsonw_string_n(&w, plan->input, plan->input_len);
    jsonw_key(&w, "difficulty");
    jsonw_int(&w, plan->difficulty);
    jsonw_key(&w, "subtasks");
    jsonw_int(&w, plan->subtasks);
    jsonw_key(&w, "range_size");
    jsonw_int(&w, plan->range_size);
    jsonw_key(&w, "open_rounds");
    jsonw_int(&w, plan->open_rounds);
    jsonw_key(&w, "ranges");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < plan->count; i++) {
        const nonce_range *r = &plan->ranges[i];
        jsonw_object_begin(&w);
        jsonw_key(&w, "state");
        jsonw_string(&w, STATE_NAMES[r->state]);
        jsonw_key(&w, "subtask_id");
        if (r->subtask_id) jsonw_string(&w, r->subtask_id);
        else jsonw_null(&w);
        jsonw_key(&w, "nonce");
        if (r->has_nonce) jsonw_int(&w, r->nonce);
        else jsonw_null(&w);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    jsonw_object_end(&w);
    int ok = file_write_atomic(PLAN_FILE, w.out.data, w.out.len) == 0;
    if (!ok) sbuf_printf(error, "cannot write plan %s: %s", PLAN_FILE, strerror(errno));
    jsonw_free(&w);
    return ok;
}

void plan_bounds(const pow_plan *plan, size_t index, int64_t *start, int64_t *end) {
    *start = (int64_t)index * plan->range_size;
    *end = *start + plan->range_size;
}

int plan_answer(const pow_plan *plan, int64_t *nonce) {
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->ranges[i].state != RANGE_DONE) return 0;
        if (plan->ranges[i].has_nonce) {
            *nonce = plan->ranges[i].nonce;
            return 1;
        }
    }
    return 0;
}

long plan_next_pending(pow_plan *plan) {
    int64_t unused;
    if (plan_answer(plan, &unused)) return -1;
    int all_empty = 1;
    for (size_t i = 0; i < plan->count && all_empty; i++)
        all_empty = plan->ranges[i].state == RANGE_DONE && !plan->ranges[i].has_nonce;
    if (all_empty) {
        plan->open_rounds++;
        add_round(plan);
    }
    size_t lowest_hit = plan->count;
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->ranges[i].state == RANGE_DONE && plan->ranges[i].has_nonce) {
            lowest_hit = i;
            break;
        }
    }
    for (size_t i = 0; i < lowest_hit; i++)
        if (plan->ranges[i].state == RANGE_PENDING) return (long)i;
    return -1;
}

long plan_index_of(const pow_plan *plan, const char *subtask_id) {
    for (size_t i = 0; i < plan->count; i++)
        if (plan->ranges[i].subtask_id && strcmp(plan->ranges[i].subtask_id, subtask_id) == 0) return (long)i;
    return -1;
}

void plan_assign(pow_plan *plan, size_t index, const char *subtask_id) {
    nonce_range *r = &plan->ranges[index];
    free(r->subtask_id);
    r->state = RANGE_ASSIGNED;
    r->subtask_id = xstrdup(subtask_id);
    r->has_nonce = 0;
    r->nonce = 0;
}

int plan_release(pow_plan *plan, const char *subtask_id) {
    long index = plan_index_of(plan, subtask_id);
    if (index < 0) return 0;
    nonce_range *r = &plan->ranges[index];
    free(r->subtask_id);
    memset(r, 0, sizeof *r);
    return 1;
}
