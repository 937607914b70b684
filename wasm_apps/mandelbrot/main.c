/* main.c: entry point of mandelbrot.wasm: `app <operation>` with the request on stdin. */
#include "mandelbrot.h"

static const guest_operation OPERATIONS[] = {
    {"create_task", op_create_task},
    {"next_subtask", op_next_subtask},
    {"verify", op_verify},
    {"discard_subtasks", op_discard_subtasks},
    {"has_pending_subtasks", op_has_pending_subtasks},
    {"abort_task", op_abort_task},
    {"abort_subtask", op_abort_subtask},
    {"benchmark", op_benchmark},
    {"compute", op_compute},
    {NULL, NULL},
};

int main(int argc, char **argv) { return guest_main(argc, argv, OPERATIONS); }
