/* provider.c: mandelbrot's provider-side operations: render one band into /output/tile.ppm; benchmark. */
#include "mandelbrot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "params.h"
#include "ppm.h"
#include "render.h"
#include "util.h"
#include "view.h"

#define BENCHMARK_SIDE 128

void op_compute(guest_call *call) {
    static const char *const known[] = {"width",    "height", "max_iter",  "center_x",
                                        "center_y", "zoom",   "row_start", "row_end", NULL};
    static const char *const kind = "subtask parameter";
    const json_value *params = guest_request_object(call, "params");
    mandel_view view;
    int64_t row_start, row_end;
    if (guest_failed(call) || !params_only(call, params, kind, known) || !view_read(call, params, kind, &view) ||
        !params_int(call, params, kind, "row_start", 0, view.height - 1, NULL, &row_start) ||
        !params_int(call, params, kind, "row_end", row_start + 1, view.height, NULL, &row_end))
        return;
    const char *path = "/output/" TILE_FILE;
    FILE *out = file_begin(path);
    if (!out) {
        guest_fail(call, GUEST_INTERNAL, "cannot write %s: %s", path, strerror(errno));
        return;
    }
    sbuf header;
    sbuf_init(&header);
    ppm_header(&header, view.width, row_end - row_start);
    fwrite(header.data, 1, header.len, out);
    sbuf_free(&header);
    uint8_t *row = xmalloc((size_t)(3 * view.width));
    for (int64_t y = row_start; y < row_end; y++) {
        render_row(&view, y, row);
        fwrite(row, 1, (size_t)(3 * view.width), out);
    }
    free(row);
    if (file_commit(out, path) != 0) {
        guest_fail(call, GUEST_INTERNAL, "cannot write %s: %s", path, strerror(errno));
        return;
    }
    jsonw_key(call->reply, "output");
    jsonw_string(call->reply, TILE_FILE);
}

void op_benchmark(guest_call *call) {
    /* A fixed render; the node measures its fuel and time. The score is the pixels rendered. */
    mandel_view view = {BENCHMARK_SIDE, BENCHMARK_SIDE, 256, -0.5, 0.0, 1.0};
    uint8_t row[3 * BENCHMARK_SIDE];
    for (int64_t y = 0; y < view.height; y++) render_row(&view, y, row);
    jsonw_key(call->reply, "score");
    jsonw_double(call->reply, (double)(BENCHMARK_SIDE * BENCHMARK_SIDE));
}
