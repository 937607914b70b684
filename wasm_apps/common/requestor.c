/* requestor.c: the shared requestor-side operations and the plan file (see requestor.h). */
#include "requestor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "journal.h"
#include "util.h"

/* The journal of the plan this call loaded (a module run serves one call): its snapshot's generation, and
 * whether the journal on disk belongs to that snapshot (else it is started afresh before an append). */
static int64_t plan_generation;
static int journal_current;

/* While a batch runs (verify_batch), requestor_record keeps the changes here, written once at its end. */
static int batching;
static sbuf batch_lines;
static int batch_changed;

typedef struct {
    const requestor_plan *requestor;
    void *plan;
} replay_target;

static void assign(const requestor_plan *requestor, void *plan, size_t index, const char *subtask_id);
static void release_at(const requestor_plan *requestor, void *plan, size_t index);

/* Applies one journal line to the plan being loaded (journal.h's apply). */
static int apply_change(void *context, const json_value *change, sbuf *why) {
    const replay_target *target = context;
    const requestor_plan *requestor = target->requestor;
    json_value *const *items = change->type == JSON_ARRAY ? change->u.array.items : NULL;
    size_t count = items ? change->u.array.count : 0;
    const char *kind = count >= 2 ? json_string(items[0]) : NULL;
    size_t slots = ((const slot_table *)target->plan)->count;
    int in_range =
        kind && json_is_int(items[1]) && items[1]->u.integer >= 0 && (uint64_t)items[1]->u.integer < slots;
    size_t index = in_range ? (size_t)items[1]->u.integer : 0;
    int ok = 0;
    if (in_range && strcmp(kind, "assign") == 0 && count == 3 && json_string(items[2])) {
        assign(requestor, target->plan, index, json_string(items[2]));
        ok = 1;
    } else if (in_range && strcmp(kind, "release") == 0 && count == 2) {
        release_at(requestor, target->plan, index);
        ok = 1;
    } else if (in_range && requestor->apply) {
        ok = requestor->apply(target->plan, change);
    }
    if (!ok) sbuf_printf(why, "%s holds a change this plan cannot apply", requestor->journal_path);
    return ok;
}

/* Loads the plan into `plan` (requestor->size bytes), its journal replayed; 0 after failing the call. */
static int read_plan(guest_call *call, const requestor_plan *requestor, void *plan) {
    memset(plan, 0, requestor->size);
    char *text;
    size_t len;
    if (file_read_all(requestor->path, requestor->max_bytes, &text, &len) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot read plan %s: %s", requestor->path, strerror(errno));
        return 0;
    }
    char error[200];
    json_value *root = json_parse(text, len, error, sizeof error);
    free(text);
    sbuf why;
    sbuf_init(&why);
    int ok = 0;
    if (!root) sbuf_puts(&why, error);
    else ok = requestor->decode(plan, root, &why);
    if (ok && requestor->journal_path) {
        const json_value *generation = json_get(root, JOURNAL_GENERATION);
        plan_generation = json_is_int(generation) ? generation->u.integer : 0;
        replay_target target = {requestor, plan};
        ok = journal_replay(requestor->journal_path, plan_generation, requestor->max_bytes, apply_change, &target,
                            &journal_current, &why);
    }
    if (!ok) {
        guest_fail(call, GUEST_INTERNAL, "corrupt plan %s: %s", requestor->path, why.data);
        requestor->free_plan(plan);
    }
    sbuf_free(&why);
    json_free(root);
    return ok;
}

int requestor_save(guest_call *call, const requestor_plan *requestor, const void *plan) {
    int64_t generation = 0;
    if (requestor->journal_path) {
        int64_t journalled = journal_generation(requestor->journal_path);
        generation = (journalled > plan_generation ? journalled : plan_generation) + 1;
    }
    jsonw w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    requestor->encode(&w, plan);
    if (requestor->journal_path) {
        jsonw_key(&w, JOURNAL_GENERATION);
        jsonw_int(&w, generation);
    }
    jsonw_object_end(&w);
    int ok = file_write_atomic(requestor->path, w.out.data, w.out.len) == 0;
    if (!ok) guest_fail(call, GUEST_INTERNAL, "cannot write plan %s: %s", requestor->path, strerror(errno));
    jsonw_free(&w);
    if (ok && requestor->journal_path) {
        ok = journal_start(requestor->journal_path, generation) == 0;
        if (!ok) guest_fail(call, GUEST_INTERNAL, "cannot write plan %s: %s", requestor->journal_path, strerror(errno));
        plan_generation = generation;
        journal_current = ok;
    }
    return ok;
}

/* Writes a call's change lines (or, without a journal, the whole plan); 0 after failing the call. */
static int write_changes(guest_call *call, const requestor_plan *requestor, const void *plan, const sbuf *lines) {
    if (!requestor->journal_path) return requestor_save(call, requestor, plan);
    if (lines->len == 0) return 1;
    if ((!journal_current && journal_start(requestor->journal_path, plan_generation) != 0) ||
        journal_append(requestor->journal_path, lines->data, lines->len) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot write plan %s: %s", requestor->journal_path, strerror(errno));
        return 0;
    }
    journal_current = 1;
    return 1;
}

int requestor_record(guest_call *call, const requestor_plan *requestor, const void *plan, const jsonw *changes) {
    if (!batching) return write_changes(call, requestor, plan, &changes->out);
    sbuf_append(&batch_lines, changes->out.data, changes->out.len);
    batch_changed = 1;
    return 1;
}

void requestor_change_begin(jsonw *changes, const char *kind, size_t index) {
    jsonw_array_begin(changes);
    jsonw_string(changes, kind);
    jsonw_int(changes, (int64_t)index);
}

void requestor_change_end(jsonw *changes) {
    jsonw_array_end(changes);
    sbuf_putc(&changes->out, '\n');
    changes->first[0] = 1; /* the next line is a value of its own, not a list item */
}

void requestor_result_path(sbuf *out, const char *subtask_id, const char *file) {
    sbuf_printf(out, "/task/subtask_outputs/%s/%s", subtask_id, file);
}

/* The plan struct of call->context's app, loaded; NULL after failing the call (or if it failed already). */
static void *load(guest_call *call) {
    const requestor_plan *requestor = call->context;
    void *plan = xmalloc(requestor->size);
    if (guest_failed(call) || !read_plan(call, requestor, plan)) {
        free(plan);
        return NULL;
    }
    return plan;
}

static int save(guest_call *call, const void *plan) { return requestor_save(call, call->context, plan); }

/* Records the call's changes (requestor_record). */
static int record(guest_call *call, const void *plan, const jsonw *changes) {
    return requestor_record(call, call->context, plan, changes);
}

static void close_plan(guest_call *call, void *plan) {
    const requestor_plan *requestor = call->context;
    requestor->free_plan(plan);
    free(plan);
}

/* The plan's slots: its first member. */
static slot_table *slots_of(void *plan) { return plan; }

static long next_pending(const requestor_plan *requestor, void *plan) {
    if (requestor->next_pending) return requestor->next_pending(plan);
    return slots_find(slots_of(plan), SLOT_PENDING, slots_of(plan)->count);
}

static void release_at(const requestor_plan *requestor, void *plan, size_t index) {
    slots_release_at(slots_of(plan), index);
    if (requestor->clear) requestor->clear(plan, index);
}

/* Makes the subtask's slot pending again, the change written into `changes`; its index, or -1. */
static long release(const requestor_plan *requestor, void *plan, const char *subtask_id, jsonw *changes) {
    long index = slots_index_of(slots_of(plan), subtask_id);
    if (index < 0) return -1;
    release_at(requestor, plan, (size_t)index);
    requestor_change_begin(changes, "release", (size_t)index);
    requestor_change_end(changes);
    return index;
}

static void assign(const requestor_plan *requestor, void *plan, size_t index, const char *subtask_id) {
    slots_assign(slots_of(plan), index, subtask_id);
    if (requestor->clear) requestor->clear(plan, index);
}

/* next_subtask's reply: "subtask": null when index < 0, else {"params": {...}, "resources": []}. */
static void reply_subtask(guest_call *call, const void *plan, long index) {
    const requestor_plan *requestor = call->context;
    jsonw *w = call->reply;
    jsonw_key(w, "subtask");
    if (index < 0) {
        jsonw_null(w);
        return;
    }
    jsonw_object_begin(w);
    jsonw_key(w, "params");
    jsonw_object_begin(w);
    requestor->write_params(w, plan, (size_t)index);
    jsonw_object_end(w);
    jsonw_key(w, "resources");
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_object_end(w);
}

static void reply_verdict(guest_call *call, const char *result, const char *reason) {
    jsonw_key(call->reply, "result");
    jsonw_string(call->reply, result);
    jsonw_key(call->reply, "reason");
    jsonw_string(call->reply, reason);
}

void requestor_create_task(guest_call *call) {
    const requestor_plan *requestor = call->context;
    int64_t max_subtasks = guest_request_int(call, "max_subtasks_count");
    const json_value *params = guest_request_object(call, "params");
    if (guest_failed(call)) return;
    if (max_subtasks < 1) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "max_subtasks_count must be >= 1, got %lld", (long long)max_subtasks);
        return;
    }
    void *plan = xcalloc(1, requestor->size);
    if (requestor->create(call, plan, params, max_subtasks) && save(call, plan)) {
        jsonw_key(call->reply, "min_memory_mib");
        jsonw_int(call->reply, requestor->min_memory_mib);
    }
    close_plan(call, plan);
}

/* Assigns the next pending slot, if any, to `subtask_id`, the change written into `changes`; its index, or -1. */
static long hand_out(const requestor_plan *requestor, void *plan, const char *subtask_id, jsonw *changes) {
    long index = next_pending(requestor, plan);
    if (index >= 0) {
        assign(requestor, plan, (size_t)index, subtask_id);
        requestor_change_begin(changes, "assign", (size_t)index);
        jsonw_string(changes, subtask_id);
        requestor_change_end(changes);
    }
    return index;
}

void requestor_next_subtask(guest_call *call) {
    const requestor_plan *requestor = call->context;
    const char *subtask_id = guest_request_string(call, "subtask_id");
    void *plan = load(call);
    if (!plan) return;
    jsonw changes;
    jsonw_init(&changes);
    long index = hand_out(requestor, plan, subtask_id, &changes);
    if (record(call, plan, &changes)) reply_subtask(call, plan, index);
    jsonw_free(&changes);
    close_plan(call, plan);
}

/* The request's list `name` of `count` items whose `key` member (or, with key NULL, the item itself) is a
 * string, as an array of those strings (free() it); NULL after failing the call. */
static const char **request_ids(guest_call *call, const char *name, const char *key, size_t *count) {
    const json_value *items = json_get(call->request, name);
    if (!items || items->type != JSON_ARRAY) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "request field '%s' must be a list", name);
        return NULL;
    }
    *count = items->u.array.count;
    const char **ids = xcalloc(*count + 1, sizeof *ids);
    for (size_t i = 0; i < *count; i++) {
        const json_value *item = items->u.array.items[i];
        ids[i] = json_string(key ? json_get(item, key) : item);
        if (!ids[i]) {
            if (key) guest_fail(call, GUEST_INVALID_ARGUMENT, "request field '%s[%zu].%s' must be a string", name, i, key);
            else guest_fail(call, GUEST_INVALID_ARGUMENT, "request field '%s[%zu]' must be a string", name, i);
            free(ids);
            return NULL;
        }
    }
    return ids;
}

void requestor_next_subtasks(guest_call *call) {
    const requestor_plan *requestor = call->context;
    size_t count;
    const char **ids = request_ids(call, "asks", "subtask_id", &count);
    if (!ids) return;
    void *plan = load(call);
    if (!plan) {
        free(ids);
        return;
    }
    jsonw changes;
    jsonw_init(&changes);
    jsonw_key(call->reply, "replies");
    jsonw_array_begin(call->reply);
    for (size_t i = 0; i < count; i++) {
        long index = hand_out(requestor, plan, ids[i], &changes);
        jsonw_object_begin(call->reply);
        reply_subtask(call, plan, index);
        jsonw_object_end(call->reply);
    }
    jsonw_array_end(call->reply);
    /* before recording: the app's own next_pending may open slots in a plan without a journal */
    long pending = next_pending(requestor, plan);
    if (record(call, plan, &changes)) {
        jsonw_key(call->reply, "has_pending_subtasks");
        jsonw_bool(call->reply, pending >= 0);
    }
    jsonw_free(&changes);
    close_plan(call, plan);
    free(ids);
}

/* Verifies one subtask of the loaded plan and writes its verdict into the reply object being written. */
static void verify_one(guest_call *call, void *plan, const char *subtask_id) {
    const requestor_plan *requestor = call->context;
    const slot_table *slots = slots_of(plan);
    long index = slots_index_of(slots, subtask_id);
    sbuf why;
    sbuf_init(&why);
    if (index < 0 || slots->items[index].state != SLOT_ASSIGNED) {
        sbuf_printf(&why, "subtask %s holds no assigned %s", subtask_id, requestor->unit);
        reply_verdict(call, "FAILURE", why.data);
    } else if (requestor->accept(call, plan, (size_t)index, subtask_id, &why)) {
        reply_verdict(call, "SUCCESS", "");
    } else {
        jsonw changes;
        jsonw_init(&changes);
        release(requestor, plan, subtask_id, &changes);
        if (record(call, plan, &changes)) reply_verdict(call, "FAILURE", why.data);
        jsonw_free(&changes);
    }
    sbuf_free(&why);
}

void requestor_verify(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    void *plan = load(call);
    if (!plan) return;
    verify_one(call, plan, subtask_id);
    close_plan(call, plan);
}

void requestor_verify_batch(guest_call *call) {
    size_t count;
    const char **ids = request_ids(call, "subtask_ids", NULL, &count);
    if (!ids) return;
    void *plan = load(call);
    if (!plan) {
        free(ids);
        return;
    }
    batching = 1;
    sbuf_init(&batch_lines);
    batch_changed = 0;
    jsonw_key(call->reply, "verdicts");
    jsonw_array_begin(call->reply);
    for (size_t i = 0; i < count && !guest_failed(call); i++) {
        jsonw_object_begin(call->reply);
        verify_one(call, plan, ids[i]);
        jsonw_object_end(call->reply);
    }
    jsonw_array_end(call->reply);
    batching = 0;
    if (!guest_failed(call) && batch_changed) write_changes(call, call->context, plan, &batch_lines);
    sbuf_free(&batch_lines);
    close_plan(call, plan);
    free(ids);
}

/* Releases the subtask's slot for discard_subtasks or abort_subtask; 1 if it held one. */
static int undo(guest_call *call, void *plan, const char *subtask_id, jsonw *changes) {
    const requestor_plan *requestor = call->context;
    long index = release(requestor, plan, subtask_id, changes);
    if (index >= 0 && requestor->forget) requestor->forget(call, plan, (size_t)index);
    return index >= 0;
}

void requestor_discard_subtasks(guest_call *call) {
    const requestor_plan *requestor = call->context;
    const json_value *ids = json_get(call->request, "subtask_ids");
    if (!ids || ids->type != JSON_ARRAY) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "request field 'subtask_ids' must be a list of strings");
        return;
    }
    void *plan = load(call);
    if (!plan) return;
    jsonw changes;
    jsonw_init(&changes);
    jsonw_key(call->reply, "discarded_subtask_ids");
    jsonw_array_begin(call->reply);
    for (size_t i = 0; i < ids->u.array.count; i++) {
        const char *id = json_string(ids->u.array.items[i]);
        if (id && undo(call, plan, id, &changes)) jsonw_string(call->reply, id);
    }
    jsonw_array_end(call->reply);
    if (record(call, plan, &changes) && requestor->discarded) requestor->discarded(call, plan);
    jsonw_free(&changes);
    close_plan(call, plan);
}

void requestor_has_pending_subtasks(guest_call *call) {
    const requestor_plan *requestor = call->context;
    void *plan = load(call);
    if (!plan) return;
    long index = next_pending(requestor, plan);
    /* the app's own next_pending may have opened more slots (not in a plan with a journal) */
    if (!requestor->next_pending || requestor->journal_path || save(call, plan)) {
        jsonw_key(call->reply, "has_pending_subtasks");
        jsonw_bool(call->reply, index >= 0);
    }
    close_plan(call, plan);
}

void requestor_abort_task(guest_call *call) {
    (void)call; /* nothing to undo: the node stops all further calls on the task */
}

void requestor_abort_subtask(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    void *plan = load(call);
    if (!plan) return;
    jsonw changes;
    jsonw_init(&changes);
    undo(call, plan, subtask_id, &changes);
    record(call, plan, &changes);
    jsonw_free(&changes);
    close_plan(call, plan);
}
