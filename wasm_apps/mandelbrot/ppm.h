/* ppm.h: the tile file a provider returns: binary PPM, "P6\n<width> <height>\n255\n" then the rows of
 * RGB bytes, top to bottom. Any image viewer opens it, and its header is checked byte for byte.
 */
#ifndef WASM_APPS_MANDELBROT_PPM_H
#define WASM_APPS_MANDELBROT_PPM_H

#include <stdint.h>
#include <stdio.h>

#include "sbuf.h"

#define TILE_FILE "tile.ppm"

/* The canonical header for a width x height image. */
void ppm_header(sbuf *out, int64_t width, int64_t height);
/* Opens `path` and checks it is exactly a width x height PPM; returns the stream positioned after the
 * header (with its length in `header_len`), or NULL with the reason in `why`. */
FILE *ppm_open(const char *path, int64_t width, int64_t height, long *header_len, sbuf *why);
/* Reads row `y` (3 * width bytes) of an open PPM whose header is `header_len` bytes long. */
int ppm_read_row(FILE *stream, long header_len, int64_t width, int64_t y, uint8_t *rgb);

#endif
