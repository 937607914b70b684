/* mandelbrot.h: the operations of the mandelbrot gWASM module, a tiled Mandelbrot renderer that lets
 * providers without a GPU take rendering work: bands of rows rendered as PPM tiles, verified by
 * deterministic re-rendering, merged into task_outputs/image.png.
 */
#ifndef WASM_APPS_MANDELBROT_H
#define WASM_APPS_MANDELBROT_H

#include "guest.h"

void op_create_task(guest_call *call);
void op_next_subtask(guest_call *call);
void op_verify(guest_call *call);
void op_discard_subtasks(guest_call *call);
void op_has_pending_subtasks(guest_call *call);
void op_abort_task(guest_call *call);
void op_abort_subtask(guest_call *call);
void op_compute(guest_call *call);
void op_benchmark(guest_call *call);

#endif
