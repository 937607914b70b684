/* requestor.c: mandelbrot's requestor side: plan bands, write a band's subtask parameters, verify returned
 * tiles by re-rendering, and merge the verified tiles into task_outputs/image.png. The other operations
 * are the shared ones of common/requestor.c.
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
#define MIN_MEMORY_MIB 64 /* descriptor.json resources.min_memory_mib (a test keeps them equal) */

/* create_task: one tile per part, at most max_subtasks of them. */
static int create_plan(guest_call *call, void *plan, const json_value *params, int64_t max_subtasks) {
    static const char *const known[] = {"width", "height", "parts", "max_iter", "center_x", "center_y", "zoom", NULL};
    static const char *const kind = "task parameter";
    static const int64_t default_parts = 4;
    mandel_view view;
    int64_t parts;
    if (!params_only(call, params, kind, known) || !view_read(call, params, kind, &view) ||
        !params_int(call, params, kind, "parts", 1, MAX_PARTS, &default_parts, &parts))
        return 0;
    if (parts > view.height) {
        guest_fail(call, GUEST_INVALID_ARGUMENT, "task parameter 'parts' must be at most 'height' (%lld), got %lld",
                   (long long)view.height, (long long)parts);
        return 0;
    }
    if (dir_make(TILES_DIR) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot create %s: %s", TILES_DIR, strerror(errno));
        return 0;
    }
    plan_new(plan, &view, parts < max_subtasks ? parts : max_subtasks);
    return 1;
}

/* A band's subtask parameters: the view and its rows. */
static void write_params(jsonw *w, const void *plan, size_t index) {
    const mandel_plan *p = plan;
    int64_t row_start, row_end;
    plan_rows(p, index, &row_start, &row_end);
    view_write(w, &p->view);
    jsonw_key(w, "row_start");
    jsonw_int(w, row_start);
    jsonw_key(w, "row_end");
    jsonw_int(w, row_end);
}

/* Forgets tile `index`'s verified copy and the merged image (a discard or abort made it pending again). */
static void forget_tile(guest_call *call, const void *plan, size_t index) {
    (void)plan;
    sbuf path;
    sbuf_init(&path);
    plan_tile_path(&path, index);
    if (file_remove(path.data) != 0 || file_remove(IMAGE_FILE) != 0)
        guest_fail(call, GUEST_INTERNAL, "cannot remove a stale tile or image: %s", strerror(errno));
    sbuf_free(&path);
}

/* Keeps a verified tile, and merges the image once every tile is verified. */
static void keep_tile(guest_call *call, mandel_plan *plan, size_t index, const char *result_path) {
    sbuf copy, why;
    sbuf_init(&copy);
    sbuf_init(&why);
    plan_tile_path(&copy, index);
    if (file_copy(result_path, copy.data) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot keep the verified tile as %s: %s", copy.data, strerror(errno));
    } else {
        plan->tiles.items[index].state = SLOT_DONE;
        if (requestor_save(call, &MANDELBROT.plan, plan) && slots_all_done(&plan->tiles) && !merge_tiles(plan, &why))
            guest_fail(call, GUEST_INTERNAL, "%s", why.data);
    }
    sbuf_free(&copy);
    sbuf_free(&why);
}

/* Checks the returned tile by re-rendering; keeps it if it passes. */
static int accept_tile(guest_call *call, void *plan, size_t index, const char *subtask_id, sbuf *why) {
    mandel_plan *p = plan;
    int64_t row_start, row_end;
    plan_rows(p, index, &row_start, &row_end);
    sbuf path;
    sbuf_init(&path);
    requestor_result_path(&path, subtask_id, TILE_FILE);
    int ok = check_tile(&p->view, row_start, row_end, path.data, subtask_id, why);
    if (ok) keep_tile(call, p, index, path.data);
    sbuf_free(&path);
    return ok;
}

const gwasm_app MANDELBROT = {
    .compute = op_compute,
    .benchmark = op_benchmark,
    .plan = {.path = PLAN_FILE, .max_bytes = PLAN_MAX_BYTES, .size = sizeof(mandel_plan), .unit = "tile", .min_memory_mib = MIN_MEMORY_MIB,
             .create = create_plan, .decode = plan_decode, .encode = plan_encode, .free_plan = plan_free,
             .write_params = write_params, .accept = accept_tile, .forget = forget_tile},
};
