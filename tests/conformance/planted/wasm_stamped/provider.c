/* provider.c of the planted-bug wasm app (tests/conformance): tutorialapp's provider, except that every
 * result carries "computed_in", the inode number of the output folder, "for debugging". The requestor
 * ignores the field, so results still verify; but two runs of one subtask in fresh folders no longer give
 * the same bytes. (Inode numbers are what the deterministic profile leaves real; it pins file times, so a
 * stamp of the folder's mtime would be deterministic.) Caught by: wasm_compute_deterministic.
 */
#include "tutorialapp.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "jsonw.h"
#include "pow.h"
#include "pyrepr.h"

#define BENCHMARK_HASHES 200000

/* Reads the subtask parameters as apps/tutorialapp/provider.py does (same messages). */
static int read_params(guest_call *call, const json_value *params, const json_value **text, int64_t values[3]) {
    static const char *const names[] = {"input", "difficulty", "start", "end"};
    for (int i = 0; i < 4; i++) {
        if (!json_get(params, names[i])) {
            guest_fail(call, GUEST_INVALID_ARGUMENT, "subtask parameter '%s' is missing", names[i]);
            return 0;
        }
    }
    *text = json_get(params, "input");
    const json_value *numbers[3] = {json_get(params, "difficulty"), json_get(params, "start"),
                                    json_get(params, "end")};
    int ok = (*text)->type == JSON_STRING;
    for (int i = 0; i < 3 && ok; i++) {
        ok = json_is_int(numbers[i]);
        if (ok) values[i] = numbers[i]->u.integer;
    }
    if (!ok || values[1] > values[2]) {
        sbuf got;
        sbuf_init(&got);
        py_repr(&got, params, 1000);
        guest_fail(call, GUEST_INVALID_ARGUMENT, "bad subtask parameters: %s", got.data);
        sbuf_free(&got);
        return 0;
    }
    return 1;
}

void op_compute(guest_call *call) {
    const json_value *params = guest_request_object(call, "params");
    const json_value *input;
    int64_t values[3]; /* difficulty, start, end */
    if (guest_failed(call) || !read_params(call, params, &input, values)) return;
    pow_text text;
    pow_prepare(&text, input->u.string.data, input->u.string.len);
    int64_t nonce;
    int found = pow_search(&text, values[0], values[1], values[2], &nonce);

    jsonw w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key(&w, "start");
    jsonw_int(&w, values[1]);
    jsonw_key(&w, "end");
    jsonw_int(&w, values[2]);
    jsonw_key(&w, "nonce");
    if (found) jsonw_int(&w, nonce);
    else jsonw_null(&w);
    jsonw_key(&w, "hash");
    if (found) {
        uint8_t digest[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        pow_digest(&text, nonce, digest);
        sha256_hex(digest, hex);
        jsonw_string(&w, hex);
    } else {
        jsonw_null(&w);
    }
    struct stat folder;
    jsonw_key(&w, "computed_in"); /* the bug: a host file identity in the result */
    if (stat("/output", &folder) == 0)
        jsonw_int(&w, (int64_t)folder.st_ino);
    else
        jsonw_null(&w);
    jsonw_object_end(&w);
    if (file_write_atomic("/output/" RESULT_FILE, w.out.data, w.out.len) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot write /output/%s: %s", RESULT_FILE, strerror(errno));
    } else {
        jsonw_key(call->reply, "output");
        jsonw_string(call->reply, RESULT_FILE);
    }
    jsonw_free(&w);
}

void op_benchmark(guest_call *call) {
    /* A fixed amount of hashing; the node measures its fuel and time. The score is the work done. */
    pow_text text;
    int64_t unused;
    pow_prepare(&text, "benchmark", strlen("benchmark"));
    pow_search(&text, 256, 0, BENCHMARK_HASHES, &unused);
    jsonw_key(call->reply, "score");
    jsonw_double(call->reply, (double)BENCHMARK_HASHES);
}
