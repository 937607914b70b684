/* plan.c: Mandelbrot tile plan and its JSON file (see plan.h). */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "json.h"
#include "jsonw.h"
#include "util.h"
#include "view.h"

#define PLAN_MAX_BYTES (16u << 20)

static const char *const STATE_NAMES[] = {"pending", "assigned", "done"};

void plan_new(mandel_plan *plan, const mandel_view *view, int64_t parts) {
    plan->view = *view;
    plan->parts = parts;
    plan->tiles = xcalloc((size_t)parts, sizeof *plan->tiles);
}

void plan_free(mandel_plan *plan) {
    for (int64_t i = 0; i < plan->parts; i++) free(plan->tiles[i].subtask_id);
    free(plan->tiles);
    memset(plan, 0, sizeof *plan);
}

/* Reads the view back through the same validation as task parameters (messages land in `error`). */
static int load_view(const json_value *root, mandel_plan *plan, sbuf *error) {
    guest_call check = {"load", root, NULL, GUEST_OK, {0}};
    sbuf_init(&check.message);
    int ok = view_read(&check, root, "plan field", &plan->view);
    if (!ok) sbuf_printf(error, "corrupt plan %s: %s", PLAN_FILE, check.message.data);
    sbuf_free(&check.message);
    return ok;
}

static int load_tile(const json_value *item, tile *t) {
    const char *state = json_string(json_get(item, "state"));
    const json_value *id = json_get(item, "subtask_id");
    int s;
    for (s = 0; s < 3 && !(state && strcmp(state, STATE_NAMES[s]) == 0); s++) {}
    if (s == 3 || !id || (id->type != JSON_NULL && id->type != JSON_STRING)) return 0;
    t->state = (tile_state)s;
    t->subtask_id = id->type == JSON_STRING ? xstrdup(id->u.string.data) : NULL;
    return 1;
}

int plan_load(mandel_plan *plan, sbuf *error) {
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
    const json_value *tiles = json_get(root, "tiles");
    int ok = 0;
    if (!root) {
        sbuf_printf(error, "corrupt plan %s: %s", PLAN_FILE, why);
    } else if (!tiles || tiles->type != JSON_ARRAY || tiles->u.array.count == 0) {
        sbuf_printf(error, "corrupt plan %s: bad 'tiles'", PLAN_FILE);
    } else if (load_view(root, plan, error)) {
        plan->parts = (int64_t)tiles->u.array.count;
        plan->tiles = xcalloc(tiles->u.array.count, sizeof *plan->tiles);
        ok = 1;
        for (size_t i = 0; ok && i < tiles->u.array.count; i++) ok = load_tile(tiles->u.array.items[i], &plan->tiles[i]);
        if (!ok) sbuf_printf(error, "corrupt plan %s: bad tile entry", PLAN_FILE);
    }
    json_free(root);
    if (!ok && plan->tiles) plan_free(plan);
    return ok;
}

int plan_save(const mandel_plan *plan, sbuf *error) {
    jsonw w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    view_write(&w, &plan->view);
    jsonw_key(&w, "parts");
    jsonw_int(&w, plan->parts);
    jsonw_key(&w, "tiles");
    jsonw_array_begin(&w);
    for (int64_t i = 0; i < plan->parts; i++) {
        jsonw_object_begin(&w);
        jsonw_key(&w, "state");
        jsonw_string(&w, STATE_NAMES[plan->tiles[i].state]);
        jsonw_key(&w, "subtask_id");
        if (plan->tiles[i].subtask_id) jsonw_string(&w, plan->tiles[i].subtask_id);
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

void plan_rows(const mandel_plan *plan, size_t index, int64_t *row_start, int64_t *row_end) {
    *row_start = (int64_t)index * plan->view.height / plan->parts;
    *row_end = ((int64_t)index + 1) * plan->view.height / plan->parts;
}

void plan_tile_path(sbuf *out, size_t index) { sbuf_printf(out, "%s/%zu.ppm", TILES_DIR, index); }

long plan_next_pending(const mandel_plan *plan) {
    for (int64_t i = 0; i < plan->parts; i++)
        if (plan->tiles[i].state == TILE_PENDING) return (long)i;
    return -1;
}

long plan_index_of(const mandel_plan *plan, const char *subtask_id) {
    for (int64_t i = 0; i < plan->parts; i++)
        if (plan->tiles[i].subtask_id && strcmp(plan->tiles[i].subtask_id, subtask_id) == 0) return (long)i;
    return -1;
}

int plan_all_done(const mandel_plan *plan) {
    for (int64_t i = 0; i < plan->parts; i++)
        if (plan->tiles[i].state != TILE_DONE) return 0;
    return 1;
}

void plan_assign(mandel_plan *plan, size_t index, const char *subtask_id) {
    free(plan->tiles[index].subtask_id);
    plan->tiles[index].state = TILE_ASSIGNED;
    plan->tiles[index].subtask_id = xstrdup(subtask_id);
}

long plan_release(mandel_plan *plan, const char *subtask_id) {
    long index = plan_index_of(plan, subtask_id);
    if (index >= 0) {
        free(plan->tiles[index].subtask_id);
        plan->tiles[index].subtask_id = NULL;
        plan->tiles[index].state = TILE_PENDING;
    }
    return index;
}
