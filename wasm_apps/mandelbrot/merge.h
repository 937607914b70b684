/* merge.h: joining the verified tiles of a plan into /task/task_outputs/image.png. */
#ifndef WASM_APPS_MANDELBROT_MERGE_H
#define WASM_APPS_MANDELBROT_MERGE_H

#include "plan.h"
#include "sbuf.h"

#define IMAGE_FILE "/task/task_outputs/image.png"

/* Writes the image from every tile's verified copy; 0 with `why` on failure. */
int merge_tiles(const mandel_plan *plan, sbuf *why);

#endif
