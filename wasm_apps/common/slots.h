/* slots.h: a requestor's table of subtask slots (a tile, a nonce range, ...): each is pending, assigned to
 * one subtask, or done (its result verified). Persisted in the plan file as an array of objects with the
 * members {"state": "pending"|"assigned"|"done", "subtask_id": str|null}, next to the app's own members.
 */
#ifndef WASM_APPS_SLOTS_H
#define WASM_APPS_SLOTS_H

#include <stddef.h>

#include "json.h"
#include "jsonw.h"

typedef enum { SLOT_PENDING, SLOT_ASSIGNED, SLOT_DONE } slot_state;

typedef struct {
    slot_state state;
    char *subtask_id; /* NULL when pending */
} slot;

typedef struct {
    slot *items;
    size_t count;
} slot_table;

/* Adds `more` pending slots at the end (a fresh table is all zeros). */
void slots_grow(slot_table *table, size_t more);
void slots_free(slot_table *table);

/* Index of the slot held by `subtask_id`, or -1. */
long slots_index_of(const slot_table *table, const char *subtask_id);
/* Index of the first slot below `end` in `state`, or -1. */
long slots_find(const slot_table *table, slot_state state, size_t end);
int slots_all_done(const slot_table *table);
void slots_assign(slot_table *table, size_t index, const char *subtask_id);
/* Makes slot `index` pending again. */
void slots_release_at(slot_table *table, size_t index);

/* Reads the "state" and "subtask_id" members of one array item; 0 if either is bad. */
int slot_read(const json_value *item, slot *out);
/* Writes the same two members into the object being written. */
void slot_write(jsonw *w, const slot *in);

#endif
