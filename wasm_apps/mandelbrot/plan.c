/* plan.c: Mandelbrot tile plan and its JSON members (see plan.h). */
#include "plan.h"

#include <string.h>

#include "guest.h"
#include "view.h"

void plan_new(mandel_plan *plan, const mandel_view *view, int64_t parts) {
    memset(plan, 0, sizeof *plan);
    plan->view = *view;
    slots_grow(&plan->tiles, (size_t)parts);
}

void plan_free(void *plan) {
    mandel_plan *p = plan;
    slots_free(&p->tiles);
    memset(p, 0, sizeof *p);
}

/* Reads the view back through the same validation as task parameters (messages land in `why`). */
static int load_view(const json_value *root, mandel_plan *plan, sbuf *why) {
    guest_call check = {"load", root, NULL, GUEST_OK, {0}, NULL};
    sbuf_init(&check.message);
    int ok = view_read(&check, root, "plan field", &plan->view);
    if (!ok) sbuf_puts(why, check.message.data);
    sbuf_free(&check.message);
    return ok;
}

int plan_decode(void *out, const json_value *root, sbuf *why) {
    mandel_plan *plan = out;
    const json_value *tiles = json_get(root, "tiles");
    if (!tiles || tiles->type != JSON_ARRAY || tiles->u.array.count == 0) {
        sbuf_puts(why, "bad 'tiles'");
        return 0;
    }
    if (!load_view(root, plan, why)) return 0;
    slots_grow(&plan->tiles, tiles->u.array.count);
    for (size_t i = 0; i < plan->tiles.count; i++) {
        if (!slot_read(tiles->u.array.items[i], &plan->tiles.items[i])) {
            sbuf_puts(why, "bad tile entry");
            return 0;
        }
    }
    return 1;
}

void plan_encode(jsonw *w, const void *in) {
    const mandel_plan *plan = in;
    view_write(w, &plan->view);
    jsonw_key(w, "parts");
    jsonw_int(w, (int64_t)plan->tiles.count);
    jsonw_key(w, "tiles");
    jsonw_array_begin(w);
    for (size_t i = 0; i < plan->tiles.count; i++) {
        jsonw_object_begin(w);
        slot_write(w, &plan->tiles.items[i]);
        jsonw_object_end(w);
    }
    jsonw_array_end(w);
}

void plan_rows(const mandel_plan *plan, size_t index, int64_t *row_start, int64_t *row_end) {
    int64_t parts = (int64_t)plan->tiles.count;
    *row_start = (int64_t)index * plan->view.height / parts;
    *row_end = ((int64_t)index + 1) * plan->view.height / parts;
}

void plan_tile_path(sbuf *out, size_t index) { sbuf_printf(out, "%s/%zu.ppm", TILES_DIR, index); }
