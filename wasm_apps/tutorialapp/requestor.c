/* requestor.c: tutorialapp's requestor-side operations (apps/tutorialapp/requestor.py in C).
 * Splits the nonce space into ranges, verifies claims by recomputation and spot checks, and writes
 * /task/task_outputs/result.json once the smallest valid nonce is certain.
 */
#include "tutorialapp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "files.h"
#include "jsonw.h"
#include "params.h"
#include "plan.h"
#include "pow.h"
#include "sbuf.h"

#define MAX_DIFFICULTY 40
#define MAX_SUBTASKS 10000
#define RESULT_MAX_BYTES (1u << 20)
#define ANSWER_FILE "/task/task_outputs/" RESULT_FILE

static int load(guest_call *call, pow_plan *plan) {
    sbuf error;
    sbuf_init(&error);
    int ok = plan_load(plan, &error);
    if (!ok) guest_fail(call, GUEST_INTERNAL, "%s", error.data);
    sbuf_free(&error);
    return ok;
}

static int save(guest_call *call, const pow_plan *plan) {
    sbuf error;
    sbuf_init(&error);
    int ok = plan_save(plan, &error);
    if (!ok) guest_fail(call, GUEST_INTERNAL, "%s", error.data);
    sbuf_free(&error);
    return ok;
}

/* Writes the answer file once the answer is certain; removes it if a discard undid that. */
static void write_answer(guest_call *call, const pow_plan *plan) {
    int64_t nonce;
    if (!plan_answer(plan, &nonce)) {
        if (file_remove(ANSWER_FILE) != 0)
            guest_fail(call, GUEST_INTERNAL, "cannot remove %s: %s", ANSWER_FILE, strerror(errno));
        return;
    }
    pow_text text;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    pow_prepare(&text, plan->input, plan->input_len);
    pow_digest(&text, nonce, digest);
    sha256_hex(digest, hex);
    jsonw w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key(&w, "nonce");
    jsonw_int(&w, nonce);
    jsonw_key(&w, "hash");
    jsonw_string(&w, hex);
    jsonw_object_end(&w);
    sbuf_putc(&w.out, '\n');
    if (file_write_atomic(ANSWER_FILE, w.out.data, w.out.len) != 0)
        guest_fail(call, GUEST_INTERNAL, "cannot write %s: %s", ANSWER_FILE, strerror(errno));
    jsonw_free(&w);
}

void op_create_task(guest_call *call) {
    static const char *const known[] = {"input", "difficulty", "subtasks", NULL};
    static const char *const kind = "task parameter";
    int64_t max_subtasks = guest_request_int(call, "max_subtasks_count");
    const json_value *params = guest_request_object(call, "params");
    if (guest_failed(call)) return;
    if (max_subtasks < 1) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "max_subtasks_count must be >= 1, got %lld", (long long)max_subtasks);
        return;
    }
    const json_value *input;
    int64_t difficulty, subtasks;
    if (!params_only(call, params, kind, known) || !params_string(call, params, kind, "input", &input) ||
        !params_int(call, params, kind, "difficulty", 0, MAX_DIFFICULTY, NULL, &difficulty) ||
        !params_int(call, params, kind, "subtasks", 1, MAX_SUBTASKS, NULL, &subtasks))
        return;
    pow_plan plan;
    plan_new(&plan, input->u.string.data, input->u.string.len, difficulty,
             subtasks < max_subtasks ? subtasks : max_subtasks);
    save(call, &plan);
    plan_free(&plan);
}

static void write_subtask(jsonw *w, const pow_plan *plan, size_t index) {
    int64_t start, end;
    plan_bounds(plan, index, &start, &end);
    jsonw_object_begin(w);
    jsonw_key(w, "params");
    jsonw_object_begin(w);
    jsonw_key(w, "input");
    jsonw_string_n(w, plan->input, plan->input_len);
    jsonw_key(w, "difficulty");
    jsonw_int(w, plan->difficulty);
    jsonw_key(w, "start");
    jsonw_int(w, start);
    jsonw_key(w, "end");
    jsonw_int(w, end);
    jsonw_object_end(w);
    jsonw_key(w, "resources");
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_object_end(w);
}

void op_next_subtask(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    pow_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    long index = plan_next_pending(&plan);
    if (index >= 0) plan_assign(&plan, (size_t)index, subtask_id);
    if (save(call, &plan)) {
        jsonw_key(call->reply, "subtask");
        if (index >= 0) write_subtask(call->reply, &plan, (size_t)index);
        else jsonw_null(call->reply);
    }
    plan_free(&plan);
}

static void reply_verdict(guest_call *call, const char *result, const char *reason) {
    jsonw_key(call->reply, "result");
    jsonw_string(call->reply, result);
    jsonw_key(call->reply, "reason");
    jsonw_string(call->reply, reason);
}

/* Reads and checks the subtask's result file; 1 if it passes, else 0 with `why`. */
static int check_result(const pow_plan *plan, size_t index, const char *subtask_id, int *has_nonce,
                        int64_t *nonce, sbuf *why) {
    sbuf path;
    sbuf_init(&path);
    sbuf_printf(&path, "/task/subtask_outputs/%s/%s", subtask_id, RESULT_FILE);
    char *text;
    size_t len;
    int ok = 0;
    if (file_read_all(path.data, RESULT_MAX_BYTES, &text, &len) != 0) {
        sbuf_printf(why, "unreadable %s: %s", RESULT_FILE, strerror(errno));
    } else {
        char error[200];
        json_value *claim = json_parse(text, len, error, sizeof error);
        free(text);
        if (!claim) sbuf_printf(why, "unreadable %s: %s", RESULT_FILE, error);
        else ok = claim_check(plan, index, claim, subtask_id, has_nonce, nonce, why);
        json_free(claim);
    }
    sbuf_free(&path);
    return ok;
}

void op_verify(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    pow_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    long index = plan_index_of(&plan, subtask_id);
    sbuf why;
    sbuf_init(&why);
    if (index < 0 || plan.ranges[index].state != RANGE_ASSIGNED) {
        sbuf_printf(&why, "subtask %s holds no assigned range", subtask_id);
        reply_verdict(call, "FAILURE", why.data);
    } else {
        int has_nonce = 0;
        int64_t nonce = 0;
        if (!check_result(&plan, (size_t)index, subtask_id, &has_nonce, &nonce, &why)) {
            plan_release(&plan, subtask_id);
            if (save(call, &plan)) reply_verdict(call, "FAILURE", why.data);
        } else {
            nonce_range *range = &plan.ranges[index];
            range->state = RANGE_DONE;
            range->has_nonce = has_nonce;
            range->nonce = nonce;
            if (save(call, &plan)) write_answer(call, &plan);
            reply_verdict(call, "SUCCESS", "");
        }
    }
    sbuf_free(&why);
    plan_free(&plan);
}

void op_discard_subtasks(guest_call *call) {
    const json_value *ids = json_get(call->request, "subtask_ids");
    if (!ids || ids->type != JSON_ARRAY) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "request field 'subtask_ids' must be a list of strings");
        return;
    }
    pow_plan plan;
    if (!load(call, &plan)) return;
    jsonw_key(call->reply, "discarded_subtask_ids");
    jsonw_array_begin(call->reply);
    for (size_t i = 0; i < ids->u.array.count; i++) {
        const char *id = json_string(ids->u.array.items[i]);
        if (id && plan_release(&plan, id)) jsonw_string(call->reply, id);
    }
    jsonw_array_end(call->reply);
    if (save(call, &plan)) write_answer(call, &plan);
    plan_free(&plan);
}

void op_has_pending_subtasks(guest_call *call) {
    pow_plan plan;
    if (!load(call, &plan)) return;
    long index = plan_next_pending(&plan);
    if (save(call, &plan)) {
        jsonw_key(call->reply, "has_pending_subtasks");
        jsonw_bool(call->reply, index >= 0);
    }
    plan_free(&plan);
}

void op_abort_task(guest_call *call) {
    (void)call; /* nothing to undo: the node stops all further calls on the task */
}

void op_abort_subtask(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    pow_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    plan_release(&plan, subtask_id);
    save(call, &plan);
    plan_free(&plan);
}
