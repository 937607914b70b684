/* view.h: reading and writing the rendering parameters (image size, iterations, centre, zoom) as JSON. */
#ifndef WASM_APPS_MANDELBROT_VIEW_H
#define WASM_APPS_MANDELBROT_VIEW_H

#include "guest.h"
#include "jsonw.h"
#include "render.h"

#define MAX_SIDE 16384
#define MAX_ITER 1000000
#define MAX_CENTER 4.0
#define MAX_ZOOM 1e15

/* Reads width, height, max_iter, center_x, center_y, zoom from `params` (`kind` names them in errors). */
int view_read(guest_call *call, const json_value *params, const char *kind, mandel_view *view);
/* Writes the same six members into the object being written. */
void view_write(jsonw *w, const mandel_view *view);

#endif
