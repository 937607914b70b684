/* tutorialapp.h: the operations of the tutorialapp gWASM module (proof of work, like apps/tutorialapp). */
#ifndef WASM_APPS_TUTORIALAPP_H
#define WASM_APPS_TUTORIALAPP_H

#include "guest.h"

#define RESULT_FILE "result.json"

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
