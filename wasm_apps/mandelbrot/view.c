/* view.c: rendering parameters with their limits and defaults (see view.h and descriptor.json). */
#include "view.h"

#include "params.h"

int view_read(guest_call *call, const json_value *params, const char *kind, mandel_view *view) {
    static const int64_t default_iter = 256;
    static const double default_cx = -0.5, default_cy = 0.0, default_zoom = 1.0;
    return params_int(call, params, kind, "width", 1, MAX_SIDE, NULL, &view->width) &&
           params_int(call, params, kind, "height", 1, MAX_SIDE, NULL, &view->height) &&
           params_int(call, params, kind, "max_iter", 1, MAX_ITER, &default_iter, &view->max_iter) &&
           params_number(call, params, kind, "center_x", -MAX_CENTER, MAX_CENTER, 0, &default_cx, &view->center_x) &&
           params_number(call, params, kind, "center_y", -MAX_CENTER, MAX_CENTER, 0, &default_cy, &view->center_y) &&
           params_number(call, params, kind, "zoom", 0.0, MAX_ZOOM, 1, &default_zoom, &view->zoom);
}

void view_write(jsonw *w, const mandel_view *view) {
    jsonw_key(w, "width");
    jsonw_int(w, view->width);
    jsonw_key(w, "height");
    jsonw_int(w, view->height);
    jsonw_key(w, "max_iter");
    jsonw_int(w, view->max_iter);
    jsonw_key(w, "center_x");
    jsonw_double(w, view->center_x);
    jsonw_key(w, "center_y");
    jsonw_double(w, view->center_y);
    jsonw_key(w, "zoom");
    jsonw_double(w, view->zoom);
}
