/* render.c: Mandelbrot escape-time rendering with smooth colouring (see render.h). */
#include "render.h"

#include <math.h>

#define BAILOUT_SQUARED 65536.0 /* |z| > 256: large enough for smooth colouring */
#define TWO_PI 6.283185307179586

/* Inside the main cardioid or the period-2 bulb: certainly in the set, no need to iterate. */
static int in_main_bulbs(double cr, double ci) {
    double xq = cr - 0.25, q = xq * xq + ci * ci;
    if (q * (q + xq) <= 0.25 * ci * ci) return 1;
    double xb = cr + 1.0;
    return xb * xb + ci * ci <= 0.0625;
}

static uint8_t channel(double t, double phase) {
    double v = 0.5 + 0.5 * cos(TWO_PI * (t + phase));
    return (uint8_t)(v * 255.0 + 0.5);
}

void render_pixel(const mandel_view *view, int64_t x, int64_t y, uint8_t rgb[3]) {
    double side = (double)(view->width < view->height ? view->width : view->height);
    double scale = 3.0 / (view->zoom * side);
    double cr = view->center_x + ((double)x + 0.5 - (double)view->width / 2.0) * scale;
    double ci = view->center_y - ((double)y + 0.5 - (double)view->height / 2.0) * scale;
    rgb[0] = rgb[1] = rgb[2] = 0;
    if (in_main_bulbs(cr, ci)) return;
    double zr = 0.0, zi = 0.0, zr2 = 0.0, zi2 = 0.0;
    int64_t i;
    for (i = 0; i < view->max_iter && zr2 + zi2 <= BAILOUT_SQUARED; i++) {
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        zr2 = zr * zr;
        zi2 = zi * zi;
    }
    if (zr2 + zi2 <= BAILOUT_SQUARED) return; /* did not escape */
    double smooth = (double)i + 1.0 - log2(log(zr2 + zi2) * 0.5);
    double t = 0.15 * log2(1.0 + smooth); /* slow fast-escaping points: deep blue to gold and back */
    rgb[0] = channel(t, 0.50);
    rgb[1] = channel(t, 0.60);
    rgb[2] = channel(t, 0.75);
}

void render_row(const mandel_view *view, int64_t y, uint8_t *rgb) {
    for (int64_t x = 0; x < view->width; x++) render_pixel(view, x, y, rgb + 3 * x);
}
