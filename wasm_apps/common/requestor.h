/* requestor.h: the requestor-side operations every app shares, run on the app's plan through callbacks.
 *
 * A plan is the app's own struct, kept in one JSON file under /task, that begins with its slot_table (one
 * slot per subtask it can hand out). The shared operations do the protocol work: load the plan, find,
 * assign and release slots, save it, and write the replies; the app supplies what is its own: the plan's
 * other members, the parameters of a subtask, and the verification of a result.
 *
 * A plan with a journal (`journal_path`, journal.h) is written whole only by create_task (its snapshot and an
 * empty journal); every later call appends one line per change to the journal ["assign", index, subtask_id],
 * ["release", index], or the app's own, recorded through requestor_record) and writes nothing when it
 * changes nothing, so a call's writes do not grow with the plan. A call loads the snapshot and replays the
 * journal. A plan without one is rewritten whole by every call that may change it.
 *
 * Plan file errors are INTERNAL: "cannot read plan <path>: ...", "corrupt plan <path>: ...",
 * "cannot write plan <path>: ...".
 */
#ifndef WASM_APPS_REQUESTOR_H
#define WASM_APPS_REQUESTOR_H

#include <stddef.h>
#include <stdint.h>

#include "guest.h"
#include "slots.h"

typedef struct {
    const char *path;  /* the plan file, e.g. "/task/mandelbrot-plan.json" */
    size_t max_bytes;  /* the largest plan file read */
    size_t size;       /* sizeof the app's plan struct, whose first member is its slot_table */
    const char *unit;  /* what a slot is called in messages: "tile", "range" */
    int64_t min_memory_mib; /* what CreateTask says a provider needs: the descriptor's resources.min_memory_mib */
    /* create_task: checks the task parameters and fills a zeroed plan with at most `max_subtasks` slots
     * (>= 1); 0 after failing the call. The plan is then saved. */
    int (*create)(guest_call *call, void *plan, const json_value *params, int64_t max_subtasks);
    /* Fills a zeroed plan from the parsed file; 0 with what is wrong in `why` (after "corrupt plan <path>: "). */
    int (*decode)(void *plan, const json_value *root, sbuf *why);
    /* Writes the plan's members into the object being written. */
    void (*encode)(jsonw *w, const void *plan);
    void (*free_plan)(void *plan); /* frees what the plan holds, also after a failed decode */
    /* The slot to hand out next, or -1. NULL: the first pending slot. One that may change the plan (open more
     * slots) is given here, and has_pending_subtasks then saves the plan. */
    long (*next_pending)(void *plan);
    /* Writes the members of the subtask's "params" for slot `index`. */
    void (*write_params)(jsonw *w, const void *plan, size_t index);
    /* verify, for the assigned slot `index`: 1 if the result passes and was kept (slot done, recorded with requestor_record),
     * else 0 with the reason in `why` (the slot is then made pending again). May fail the call. */
    int (*accept)(guest_call *call, void *plan, size_t index, const char *subtask_id, sbuf *why);
    /* Optional: slot `index` was assigned or made pending: drop the app's data about its result. */
    void (*clear)(void *plan, size_t index);
    /* Optional: discard_subtasks or abort_subtask made slot `index` pending again (before the plan is saved;
     * what it changes in a plan with a journal is not journalled). */
    void (*forget)(guest_call *call, const void *plan, size_t index);
    /* Optional: discard_subtasks saved the plan. */
    void (*discarded)(guest_call *call, const void *plan);
    /* Optional: the plan's journal, e.g. "/task/tutorialapp-plan.journal". With one, next_pending must leave
     * the plan as it is, and accept records its change with requestor_record. */
    const char *journal_path;
    /* With a journal: applies one of the app's own change lines (any but "assign" and "release") to the
     * plan; 0 if it cannot. */
    int (*apply)(void *plan, const json_value *change);
} requestor_plan;

/* Saves the plan whole (create need not: the caller saves after create); with a journal, as a new snapshot
 * with an empty journal. 0 after failing the call. */
int requestor_save(guest_call *call, const requestor_plan *requestor, const void *plan);
/* Records a call's changes to the plan loaded by this call: the lines of `changes` (requestor_change_*)
 * appended to the journal and flushed to disk (none: nothing written); a plan without a journal is saved
 * whole instead. 0 after failing the call. accept calls it for the slot it made done. */
int requestor_record(guest_call *call, const requestor_plan *requestor, const void *plan, const jsonw *changes);
/* Writes a change line into `changes`: requestor_change_begin writes ["<kind>", <index>, then the caller
 * writes its further values, then requestor_change_end closes the line. */
void requestor_change_begin(jsonw *changes, const char *kind, size_t index);
void requestor_change_end(jsonw *changes);

/* "/task/subtask_outputs/<subtask_id>/<file>": where the node delivered a subtask's result file. */
void requestor_result_path(sbuf *out, const char *subtask_id, const char *file);

/* The requestor-side operations; call->context is the app's requestor_plan. */
void requestor_create_task(guest_call *call);
void requestor_next_subtask(guest_call *call);
void requestor_verify(guest_call *call);
/* Batches (docs/wasm-apps.md): next_subtask for each of the request's "asks" ([{"subtask_id",
 * "opaque_node_id"}, ...]), replying {"replies": [{"subtask": ...}, ...], "has_pending_subtasks": bool}, and
 * verify for each of its "subtask_ids", replying {"verdicts": [{"result", "reason"}, ...]}: the plan loaded
 * once and the batch's changes recorded once (one journal append), with the single calls' replies and
 * effects. A verify_batch that fails records nothing. */
void requestor_next_subtasks(guest_call *call);
void requestor_verify_batch(guest_call *call);
void requestor_discard_subtasks(guest_call *call);
void requestor_has_pending_subtasks(guest_call *call);
void requestor_abort_task(guest_call *call);
void requestor_abort_subtask(guest_call *call);

#endif
