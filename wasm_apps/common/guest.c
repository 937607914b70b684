/* guest.c: stdin request, dispatch on argv[1], stdout reply (see guest.h). */
#include "guest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

static const char *code_name(guest_code code) {
    switch (code) {
    case GUEST_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case GUEST_NOT_FOUND: return "NOT_FOUND";
    case GUEST_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    default: return "INTERNAL";
    }
}

void guest_fail(guest_call *call, guest_code code, const char *fmt, ...) {
    if (call->code != GUEST_OK) return;
    call->code = code;
    va_list args;
    va_start(args, fmt);
    sbuf_vprintf(&call->message, fmt, args);
    va_end(args);
}

int guest_failed(const guest_call *call) { return call->code != GUEST_OK; }

static const json_value *field(guest_call *call, const char *name, json_type type, const char *what) {
    const json_value *value = json_get(call->request, name);
    if (!value || value->type != type) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "request field '%s' must be %s", name, what);
        return NULL;
    }
    return value;
}

const char *guest_request_string(guest_call *call, const char *name) {
    const json_value *value = field(call, name, JSON_STRING, "a string");
    return value ? value->u.string.data : NULL;
}

int64_t guest_request_int(guest_call *call, const char *name) {
    const json_value *value = field(call, name, JSON_INT, "an integer");
    return value ? value->u.integer : 0;
}

const json_value *guest_request_object(guest_call *call, const char *name) {
    return field(call, name, JSON_OBJECT, "a JSON object");
}

static void write_error(jsonw *w, guest_code code, const char *message) {
    jsonw_object_begin(w);
    jsonw_key(w, "error");
    jsonw_object_begin(w);
    jsonw_key(w, "code");
    jsonw_string(w, code_name(code));
    jsonw_key(w, "message");
    jsonw_string(w, message);
    jsonw_object_end(w);
    jsonw_object_end(w);
}

static int emit(const jsonw *w) {
    if (fwrite(w->out.data, 1, w->out.len, stdout) != w->out.len || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        fprintf(stderr, "cannot write the reply: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static void usage(const guest_operation *operations) {
    fputs("usage: app OPERATION < request.json\noperations:", stderr);
    for (const guest_operation *op = operations; op->name; op++) fprintf(stderr, " %s", op->name);
    fputc('\n', stderr);
}

int guest_main(int argc, char **argv, const guest_operation *operations, const void *context) {
    if (argc < 2) {
        usage(operations);
        return 2;
    }
    const guest_operation *op = operations;
    while (op->name && strcmp(op->name, argv[1]) != 0) op++;
    if (!op->name) {
        fprintf(stderr, "unknown operation '%s'\n", argv[1]);
        usage(operations);
        return 2;
    }

    jsonw reply;
    jsonw_init(&reply);
    char *text;
    size_t len;
    if (stream_read_all(stdin, GUEST_MAX_REQUEST, &text, &len) != 0) {
        fprintf(stderr, "cannot read the request from stdin: %s\n", strerror(errno));
        return 1;
    }
    char error[200];
    json_value *request = json_parse(text, len, error, sizeof error);
    free(text);
    if (!request || request->type != JSON_OBJECT) {
        sbuf message;
        sbuf_init(&message);
        if (request) sbuf_printf(&message, "request must be a JSON object, got %s", json_type_name(request->type));
        else sbuf_printf(&message, "request is not valid JSON: %s", error);
        write_error(&reply, GUEST_INVALID_ARGUMENT, message.data);
        sbuf_free(&message);
        json_free(request);
        int rc = emit(&reply);
        jsonw_free(&reply);
        return rc;
    }

    guest_call call = {argv[1], request, &reply, GUEST_OK, {0}, context};
    sbuf_init(&call.message);
    jsonw_object_begin(&reply);
    op->handler(&call);
    if (call.code != GUEST_OK) {
        jsonw_free(&reply);
        jsonw_init(&reply);
        write_error(&reply, call.code, call.message.data);
    } else {
        jsonw_object_end(&reply);
    }
    int rc = emit(&reply);
    sbuf_free(&call.message);
    jsonw_free(&reply);
    json_free(request);
    return rc;
}
