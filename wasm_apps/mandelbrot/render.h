/* render.h: the Mandelbrot renderer. Every pixel is computed from its absolute image coordinates only, so
 * a tile renders to the same bytes whatever the split, and a re-render is bit-identical (IEEE doubles,
 * no fused multiply-add in wasm, libm compiled into the module).
 *
 * Pixel (x, y) samples c = center + ((x + 0.5 - width/2) * s, -(y + 0.5 - height/2) * s) with
 * s = 3 / (zoom * min(width, height)): at zoom 1 the shorter side spans 3 units. Points that stay within
 * |z| <= 256 for max_iter iterations are black; the others get a smooth-iteration cosine palette.
 */
#ifndef WASM_APPS_MANDELBROT_RENDER_H
#define WASM_APPS_MANDELBROT_RENDER_H

#include <stdint.h>

typedef struct {
    int64_t width, height, max_iter;
    double center_x, center_y, zoom;
} mandel_view;

void render_pixel(const mandel_view *view, int64_t x, int64_t y, uint8_t rgb[3]);
/* Renders row y into rgb (3 * width bytes). */
void render_row(const mandel_view *view, int64_t y, uint8_t *rgb);

#endif
