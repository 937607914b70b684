/* plan.h: the requestor's plan of a Mandelbrot task: the view and one tile (a band of rows) per part.
 *
 * Tile i covers rows [i * height / parts, (i + 1) * height / parts). A verified tile is copied to
 * /task/mandelbrot-tiles/<i>.ppm; when every tile is verified they are merged into
 * /task/task_outputs/image.png. Persisted as /task/mandelbrot-plan.json:
 *   {"width", "height", "max_iter", "center_x", "center_y", "zoom", "parts",
 *    "tiles": [{"state": "pending"|"assigned"|"done", "subtask_id": str|null}, ...]}
 */
#ifndef WASM_APPS_MANDELBROT_PLAN_H
#define WASM_APPS_MANDELBROT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "render.h"
#include "sbuf.h"

#define PLAN_FILE "/task/mandelbrot-plan.json"
#define TILES_DIR "/task/mandelbrot-tiles"

typedef enum { TILE_PENDING, TILE_ASSIGNED, TILE_DONE } tile_state;

typedef struct {
    tile_state state;
    char *subtask_id; /* NULL when pending */
} tile;

typedef struct {
    mandel_view view;
    int64_t parts;
    tile *tiles; /* `parts` of them */
} mandel_plan;

void plan_new(mandel_plan *plan, const mandel_view *view, int64_t parts);
int plan_load(mandel_plan *plan, sbuf *error);
int plan_save(const mandel_plan *plan, sbuf *error);
void plan_free(mandel_plan *plan);

void plan_rows(const mandel_plan *plan, size_t index, int64_t *row_start, int64_t *row_end);
/* Where the verified copy of tile `index` is kept. */
void plan_tile_path(sbuf *out, size_t index);
long plan_next_pending(const mandel_plan *plan);
long plan_index_of(const mandel_plan *plan, const char *subtask_id);
int plan_all_done(const mandel_plan *plan);
void plan_assign(mandel_plan *plan, size_t index, const char *subtask_id);
/* Makes the subtask's tile pending again; returns its index, or -1 if it holds none. */
long plan_release(mandel_plan *plan, const char *subtask_id);

#endif
