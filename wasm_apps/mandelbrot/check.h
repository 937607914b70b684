/* check.h: verification of a returned tile by deterministic re-rendering.
 *
 * The file must be exactly the assigned band as a binary PPM. Small tiles (up to FULL_CHECK_PIXELS) are
 * re-rendered whole; larger ones on a stratified sample of min(rows, max(4, rows / 16)) rows plus
 * PIXEL_CHECKS single pixels spread over the tile, drawn from a generator seeded by the subtask id.
 * Every checked byte must equal the re-render.
 */
#ifndef WASM_APPS_MANDELBROT_CHECK_H
#define WASM_APPS_MANDELBROT_CHECK_H

#include <stdint.h>

#include "render.h"
#include "sbuf.h"

#define FULL_CHECK_PIXELS 65536
#define PIXEL_CHECKS 256

/* Returns 1 if the tile at `path` (rows [row_start, row_end)) passes, else 0 with `why`. */
int check_tile(const mandel_view *view, int64_t row_start, int64_t row_end, const char *path, const char *seed,
               sbuf *why);

#endif
