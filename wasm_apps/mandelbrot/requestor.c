/* requestor.c: mandelbrot's requestor-side operations: plan bands, hand them out, verify returned tiles by
 * re-rendering, and merge the verified tiles into task_outputs/image.png.
 */
#include "mandelbrot.h"

#include <errno.h>
#include <string.h>

#include "check.h"
#include "files.h"
#include "merge.h"
#include "params.h"
#include "plan.h"
#include "ppm.h"
#include "view.h"

#define MAX_PARTS 1024

static int load(guest_call *call, mandel_plan *plan) {
    sbuf error;
    sbuf_init(&error);
    int ok = plan_load(plan, &error);
    if (!ok) guest_fail(call, GUEST_INTERNAL, "%s", error.data);
    sbuf_free(&error);
    return ok;
}

static int save(guest_call *call, const mandel_plan *plan) {
    sbuf error;
    sbuf_init(&error);
    int ok = plan_save(plan, &error);
    if (!ok) guest_fail(call, GUEST_INTERNAL, "%s", error.data);
    sbuf_free(&error);
    return ok;
}

void op_create_task(guest_call *call) {
    static const char *const known[] = {"width", "height", "parts", "max_iter", "center_x", "center_y", "zoom", NULL};
    static const char *const kind = "task parameter";
    static const int64_t default_parts = 4;
    int64_t max_subtasks = guest_request_int(call, "max_subtasks_count");
    const json_value *params = guest_request_object(call, "params");
    if (guest_failed(call)) return;
    if (max_subtasks < 1) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "max_subtasks_count must be >= 1, got %lld", (long long)max_subtasks);
        return;
    }
    mandel_view view;
    int64_t parts;
    if (!params_only(call, params, kind, known) || !view_read(call, params, kind, &view) ||
        !params_int(call, params, kind, "parts", 1, MAX_PARTS, &default_parts, &parts))
        return;
    if (parts > view.height) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "task parameter 'parts' must be at most 'height' (%lld), got %lld",
                   (long long)view.height, (long long)parts);
        return;
    }
    if (dir_make(TILES_DIR) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot create %s: %s", TILES_DIR, strerror(errno));
        return;
    }
    mandel_plan plan;
    plan_new(&plan, &view, parts < max_subtasks ? parts : max_subtasks);
    save(call, &plan);
    plan_free(&plan);
}

void op_next_subtask(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    mandel_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    long index = plan_next_pending(&plan);
    if (index >= 0) plan_assign(&plan, (size_t)index, subtask_id);
    if (save(call, &plan)) {
        jsonw *w = call->reply;
        jsonw_key(w, "subtask");
        if (index < 0) {
            jsonw_null(w);
        } else {
            int64_t row_start, row_end;
            plan_rows(&plan, (size_t)index, &row_start, &row_end);
            jsonw_object_begin(w);
            jsonw_key(w, "params");
            jsonw_object_begin(w);
            view_write(w, &plan.view);
            jsonw_key(w, "row_start");
            jsonw_int(w, row_start);
            jsonw_key(w, "row_end");
            jsonw_int(w, row_end);
            jsonw_object_end(w);
            jsonw_key(w, "resources");
            jsonw_array_begin(w);
            jsonw_array_end(w);
            jsonw_object_end(w);
        }
    }
    plan_free(&plan);
}

static void reply_verdict(guest_call *call, const char *result, const char *reason) {
    jsonw_key(call->reply, "result");
    jsonw_string(call->reply, result);
    jsonw_key(call->reply, "reason");
    jsonw_string(call->reply, reason);
}

/* Forgets tile `index`'s verified copy and the merged image (a discard or abort made it pending again). */
static void forget_tile(guest_call *call, size_t index) {
    sbuf path;
    sbuf_init(&path);
    plan_tile_path(&path, index);
    if (file_remove(path.data) != 0 || file_remove(IMAGE_FILE) != 0)
        guest_fail(call, GUEST_INTERNAL, "cannot remove a stale tile or image: %s", strerror(errno));
    sbuf_free(&path);
}

/* Keeps a verified tile, and merges the image once every tile is verified. */
static void accept_tile(guest_call *call, mandel_plan *plan, size_t index, const char *result_path) {
    sbuf copy, why;
    sbuf_init(&copy);
    sbuf_init(&why);
    plan_tile_path(&copy, index);
    if (file_copy(result_path, copy.data) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot keep the verified tile as %s: %s", copy.data, strerror(errno));
    } else {
        plan->tiles[index].state = TILE_DONE;
        if (save(call, plan) && plan_all_done(plan) && !merge_tiles(plan, &why))
            guest_fail(call, GUEST_INTERNAL, "%s", why.data);
    }
    sbuf_free(&copy);
    sbuf_free(&why);
}

void op_verify(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    mandel_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    long index = plan_index_of(&plan, subtask_id);
    sbuf why, path;
    sbuf_init(&why);
    sbuf_init(&path);
    if (index < 0 || plan.tiles[index].state != TILE_ASSIGNED) {
        sbuf_printf(&why, "subtask %s holds no assigned tile", subtask_id);
        reply_verdict(call, "FAILURE", why.data);
    } else {
        int64_t row_start, row_end;
        plan_rows(&plan, (size_t)index, &row_start, &row_end);
        sbuf_printf(&path, "/task/subtask_outputs/%s/%s", subtask_id, TILE_FILE);
        if (check_tile(&plan.view, row_start, row_end, path.data, subtask_id, &why)) {
            accept_tile(call, &plan, (size_t)index, path.data);
            reply_verdict(call, "SUCCESS", "");
        } else {
            plan_release(&plan, subtask_id);
            if (save(call, &plan)) reply_verdict(call, "FAILURE", why.data);
        }
    }
    sbuf_free(&why);
    sbuf_free(&path);
    plan_free(&plan);
}

void op_discard_subtasks(guest_call *call) {
    const json_value *ids = json_get(call->request, "subtask_ids");
    if (!ids || ids->type != JSON_ARRAY) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "request field 'subtask_ids' must be a list of strings");
        return;
    }
    mandel_plan plan;
    if (!load(call, &plan)) return;
    jsonw_key(call->reply, "discarded_subtask_ids");
    jsonw_array_begin(call->reply);
    for (size_t i = 0; i < ids->u.array.count; i++) {
        const char *id = json_string(ids->u.array.items[i]);
        long index = id ? plan_release(&plan, id) : -1;
        if (index < 0) continue;
        jsonw_string(call->reply, id);
        forget_tile(call, (size_t)index);
    }
    jsonw_array_end(call->reply);
    save(call, &plan);
    plan_free(&plan);
}

void op_has_pending_subtasks(guest_call *call) {
    mandel_plan plan;
    if (!load(call, &plan)) return;
    jsonw_key(call->reply, "has_pending_subtasks");
    jsonw_bool(call->reply, plan_next_pending(&plan) >= 0);
    plan_free(&plan);
}

void op_abort_task(guest_call *call) {
    (void)call; /* nothing to undo: the node stops all further calls on the task */
}

void op_abort_subtask(guest_call *call) {
    const char *subtask_id = guest_request_string(call, "subtask_id");
    mandel_plan plan;
    if (guest_failed(call) || !load(call, &plan)) return;
    long index = plan_release(&plan, subtask_id);
    if (index >= 0) forget_tile(call, (size_t)index);
    save(call, &plan);
    plan_free(&plan);
}
