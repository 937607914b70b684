/* guest.h: the request/reply plumbing of the gWASM guest contract (docs/wasm-apps.md).
 *
 * guest_main(argc, argv, OPERATIONS, context) reads the request (one JSON object) from stdin, runs the
 * handler named by argv[1] (with `context` in call->context), and writes the reply object to stdout:
 * the members the handler wrote, or {"error": {"code", "message"}} if it called guest_fail. The exit code
 * is 0 whenever a reply was written; an unknown operation or a failed write exits non-zero.
 */
#ifndef WASM_APPS_GUEST_H
#define WASM_APPS_GUEST_H

#include <stdint.h>

#include "json.h"
#include "jsonw.h"
#include "sbuf.h"

#define GUEST_MAX_REQUEST (16u << 20) /* bytes of stdin read at most */

typedef enum {
    GUEST_OK,
    GUEST_INVALID_ARGUMENT,
    GUEST_NOT_FOUND,
    GUEST_FAILED_PRECONDITION,
    GUEST_INTERNAL,
} guest_code;

typedef struct {
    const char *operation;
    const json_value *request; /* always a JSON object */
    jsonw *reply;              /* inside the reply object: write keys and values */
    guest_code code;           /* GUEST_OK until guest_fail */
    sbuf message;
    const void *context;       /* what guest_main was given (app.c: the app's requestor_plan) */
} guest_call;

typedef void (*guest_handler)(guest_call *call);

typedef struct {
    const char *name;
    guest_handler handler;
} guest_operation;

/* Runs one invocation; `operations` ends with {NULL, NULL}. */
int guest_main(int argc, char **argv, const guest_operation *operations, const void *context);

/* Refuses the call with `code` and a message for the gRPC caller. The first failure wins. */
void guest_fail(guest_call *call, guest_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int guest_failed(const guest_call *call);

/* Request fields; on a missing or mistyped field they fail the call with INVALID_ARGUMENT (naming it). */
const char *guest_request_string(guest_call *call, const char *name);
int64_t guest_request_int(guest_call *call, const char *name);
/* The request member `name` if it is a JSON object, else fails the call. */
const json_value *guest_request_object(guest_call *call, const char *name);

#endif
