/* check.c: tile verification by sampled re-rendering (see check.h). */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppm.h"
#include "sample.h"
#include "util.h"

/* Compares tile row `r` (image row row_start + r) with its re-render; 0 with `why` on a difference. */
static int check_row(const mandel_view *view, FILE *stream, long header_len, int64_t row_start, int64_t r,
                     uint8_t *expected, uint8_t *found, sbuf *why) {
    size_t row = (size_t)(3 * view->width);
    if (ppm_read_row(stream, header_len, view->width, r, found) != 0) {
        sbuf_printf(why, "cannot read row %lld of %s", (long long)(row_start + r), TILE_FILE);
        return 0;
    }
    render_row(view, row_start + r, expected);
    if (memcmp(expected, found, row) == 0) return 1;
    size_t i = 0;
    while (expected[i] == found[i]) i++;
    sbuf_printf(why, "row %lld differs from the re-render (first at pixel x=%zu)", (long long)(row_start + r), i / 3);
    return 0;
}

static int check_pixel(const mandel_view *view, FILE *stream, long header_len, int64_t row_start, uint64_t index,
                       sbuf *why) {
    int64_t r = (int64_t)(index / (uint64_t)view->width), x = (int64_t)(index % (uint64_t)view->width);
    uint8_t expected[3], found[3];
    if (fseek(stream, header_len + (long)(3 * index), SEEK_SET) != 0 || fread(found, 1, 3, stream) != 3) {
        sbuf_printf(why, "cannot read pixel (%lld, %lld) of %s", (long long)x, (long long)(row_start + r), TILE_FILE);
        return 0;
    }
    render_pixel(view, x, row_start + r, expected);
    if (memcmp(expected, found, 3) == 0) return 1;
    sbuf_printf(why, "pixel (%lld, %lld) differs from the re-render", (long long)x, (long long)(row_start + r));
    return 0;
}

int check_tile(const mandel_view *view, int64_t row_start, int64_t row_end, const char *path, const char *seed,
               sbuf *why) {
    int64_t rows = row_end - row_start;
    long header_len;
    FILE *stream = ppm_open(path, view->width, rows, &header_len, why);
    if (!stream) return 0;
    uint64_t pixels = (uint64_t)rows * (uint64_t)view->width;
    uint64_t k = (uint64_t)rows;
    if (pixels > FULL_CHECK_PIXELS) {
        k = (uint64_t)rows / 16 > 4 ? (uint64_t)rows / 16 : 4;
        if (k > (uint64_t)rows) k = (uint64_t)rows;
    }
    uint8_t *expected = xmalloc((size_t)(3 * view->width)), *found = xmalloc((size_t)(3 * view->width));
    sample_rng rng;
    sample_seed(&rng, seed, strlen(seed));
    int ok = 1;
    for (uint64_t j = 0; ok && j < k; j++) {
        int64_t r = k == (uint64_t)rows ? (int64_t)j : (int64_t)sample_stratum(&rng, (uint64_t)rows, k, j);
        ok = check_row(view, stream, header_len, row_start, r, expected, found, why);
    }
    if (ok && k < (uint64_t)rows) {
        uint64_t n = pixels < PIXEL_CHECKS ? pixels : PIXEL_CHECKS;
        for (uint64_t j = 0; ok && j < n; j++)
            ok = check_pixel(view, stream, header_len, row_start, sample_stratum(&rng, pixels, n, j), why);
    }
    free(expected);
    free(found);
    fclose(stream);
    return ok;
}
