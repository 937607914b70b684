/* mandelbrot.h: the mandelbrot gWASM module, a tiled Mandelbrot renderer that lets providers without a GPU
 * take rendering work: bands of rows rendered as PPM tiles, verified by deterministic re-rendering, merged
 * into task_outputs/image.png.
 */
#ifndef WASM_APPS_MANDELBROT_H
#define WASM_APPS_MANDELBROT_H

#include "app.h"

/* The app: the plan's callbacks in requestor.c, compute and benchmark in provider.c. */
extern const gwasm_app MANDELBROT;

void op_compute(guest_call *call);
void op_benchmark(guest_call *call);

#endif
