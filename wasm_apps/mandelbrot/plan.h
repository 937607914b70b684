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

#include "json.h"
#include "jsonw.h"
#include "render.h"
#include "sbuf.h"
#include "slots.h"

#define PLAN_FILE "/task/mandelbrot-plan.json"
#define PLAN_MAX_BYTES (16u << 20)
#define TILES_DIR "/task/mandelbrot-tiles"

typedef struct {
    slot_table tiles; /* first (requestor.h): one per part */
    mandel_view view;
} mandel_plan;

void plan_new(mandel_plan *plan, const mandel_view *view, int64_t parts);
/* The plan file's callbacks (requestor.h): `plan` is a mandel_plan. */
int plan_decode(void *plan, const json_value *root, sbuf *why);
void plan_encode(jsonw *w, const void *plan);
void plan_free(void *plan);

void plan_rows(const mandel_plan *plan, size_t index, int64_t *row_start, int64_t *row_end);
/* Where the verified copy of tile `index` is kept. */
void plan_tile_path(sbuf *out, size_t index);

#endif
