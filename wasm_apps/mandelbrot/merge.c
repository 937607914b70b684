/* merge.c: streams the verified tiles, row by row, into one PNG (see merge.h). */
#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "png.h"
#include "ppm.h"
#include "util.h"

static int append_tile(png_writer *png, const mandel_plan *plan, size_t index, uint8_t *row, sbuf *why) {
    int64_t row_start, row_end;
    plan_rows(plan, index, &row_start, &row_end);
    sbuf path;
    sbuf_init(&path);
    plan_tile_path(&path, index);
    long header_len;
    FILE *stream = ppm_open(path.data, plan->view.width, row_end - row_start, &header_len, why);
    int ok = stream != NULL;
    for (int64_t r = 0; ok && r < row_end - row_start; r++) {
        ok = ppm_read_row(stream, header_len, plan->view.width, r, row) == 0;
        if (ok) png_row(png, row);
        else sbuf_printf(why, "cannot read %s: %s", path.data, strerror(errno));
    }
    if (stream) fclose(stream);
    sbuf_free(&path);
    return ok;
}

int merge_tiles(const mandel_plan *plan, sbuf *why) {
    FILE *out = file_begin(IMAGE_FILE);
    if (!out) {
        sbuf_printf(why, "cannot write %s: %s", IMAGE_FILE, strerror(errno));
        return 0;
    }
    png_writer *png = xmalloc(sizeof *png);
    uint8_t *row = xmalloc((size_t)(3 * plan->view.width));
    png_begin(png, out, plan->view.width, plan->view.height);
    int ok = 1;
    for (size_t i = 0; ok && i < plan->tiles.count; i++) ok = append_tile(png, plan, i, row, why);
    if (ok) png_end(png);
    free(row);
    free(png);
    if (!ok) {
        file_abandon(out, IMAGE_FILE);
        return 0;
    }
    if (file_commit(out, IMAGE_FILE) != 0) {
        sbuf_printf(why, "cannot write %s: %s", IMAGE_FILE, strerror(errno));
        return 0;
    }
    return 1;
}
