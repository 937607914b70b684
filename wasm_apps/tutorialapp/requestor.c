/* requestor.c: tutorialapp's requestor side (apps/tutorialapp/requestor.py in C): splits the nonce space
 * into ranges, verifies claims by recomputation and spot checks, and writes /task/task_outputs/result.json
 * once the smallest valid nonce is certain. The other operations are the shared ones of common/requestor.c.
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
#define DEFAULT_SUBTASKS 8 /* descriptor.json's default for `subtasks` */
#define RESULT_MAX_BYTES (1u << 20)
#define ANSWER_FILE "/task/task_outputs/" RESULT_FILE
#define MIN_MEMORY_MIB 64 /* descriptor.json resources.min_memory_mib (a test keeps them equal) */

/* create_task: `subtasks` ranges (at most max_subtasks), the last open-ended. */
static int create_plan(guest_call *call, void *plan, const json_value *params, int64_t max_subtasks) {
    static const char *const known[] = {"input", "difficulty", "subtasks", NULL};
    static const char *const kind = "task parameter";
    const json_value *input;
    static const int64_t default_subtasks = DEFAULT_SUBTASKS;
    int64_t difficulty, subtasks;
    if (!params_only(call, params, kind, known) || !params_string(call, params, kind, "input", &input) ||
        !params_int(call, params, kind, "difficulty", 0, MAX_DIFFICULTY, NULL, &difficulty) ||
        !params_int(call, params, kind, "subtasks", 1, MAX_SUBTASKS, &default_subtasks, &subtasks))
        return 0;
    plan_new(plan, input->u.string.data, input->u.string.len, difficulty,
             subtasks < max_subtasks ? subtasks : max_subtasks);
    return 1;
}

/* A range's subtask parameters: the input, the difficulty and its nonces. */
static void write_params(jsonw *w, const void *plan, size_t index) {
    const pow_plan *p = plan;
    int64_t start, end;
    plan_bounds(p, index, &start, &end);
    jsonw_key(w, "input");
    jsonw_string_n(w, p->input, p->input_len);
    jsonw_key(w, "difficulty");
    jsonw_int(w, p->difficulty);
    jsonw_key(w, "start");
    jsonw_int(w, start);
    jsonw_key(w, "end");
    jsonw_int(w, end);
}

/* Writes the answer file once the answer is certain; removes it if a discard undid that. */
static void write_answer(guest_call *call, const void *answered) {
    const pow_plan *plan = answered;
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

/* Reads and checks the subtask's result file; 1 if it passes, else 0 with `why`. */
static int check_result(const pow_plan *plan, size_t index, const char *subtask_id, int *has_nonce,
                        int64_t *nonce, sbuf *why) {
    sbuf path;
    sbuf_init(&path);
    requestor_result_path(&path, subtask_id, RESULT_FILE);
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

/* Checks the claimed result; keeps what the range held and writes the answer if it is now certain. */
static int accept_range(guest_call *call, void *plan, size_t index, const char *subtask_id, sbuf *why) {
    pow_plan *p = plan;
    range_result result = {0, 0};
    if (!check_result(p, index, subtask_id, &result.has_nonce, &result.nonce, why)) return 0;
    plan_complete(p, index, result);
    jsonw changes;
    jsonw_init(&changes);
    plan_write_done(&changes, p, index);
    if (requestor_record(call, &TUTORIALAPP.plan, p, &changes)) write_answer(call, p);
    jsonw_free(&changes);
    return 1;
}

const gwasm_app TUTORIALAPP = {
    .compute = op_compute,
    .benchmark = op_benchmark,
    .plan = {.path = PLAN_FILE, .max_bytes = PLAN_MAX_BYTES, .size = sizeof(pow_plan), .unit = "range", .min_memory_mib = MIN_MEMORY_MIB,
             .create = create_plan, .decode = plan_decode, .encode = plan_encode, .free_plan = plan_free,
             .next_pending = plan_next_pending, .clear = plan_clear, .write_params = write_params,
             .accept = accept_range, .discarded = write_answer,
             .journal_path = JOURNAL_FILE, .apply = plan_apply},
};
