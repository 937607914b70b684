/* slots.c: the table of subtask slots and its JSON members (see slots.h). */
#include "slots.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const STATE_NAMES[] = {"pending", "assigned", "done"};

void slots_grow(slot_table *table, size_t more) {
    table->items = xrealloc(table->items, (table->count + more) * sizeof *table->items);
    memset(table->items + table->count, 0, more * sizeof *table->items);
    table->count += more;
}

void slots_free(slot_table *table) {
    for (size_t i = 0; i < table->count; i++) free(table->items[i].subtask_id);
    free(table->items);
    memset(table, 0, sizeof *table);
}

long slots_index_of(const slot_table *table, const char *subtask_id) {
    for (size_t i = 0; i < table->count; i++)
        if (table->items[i].subtask_id && strcmp(table->items[i].subtask_id, subtask_id) == 0) return (long)i;
    return -1;
}

long slots_find(const slot_table *table, slot_state state, size_t end) {
    for (size_t i = 0; i < end && i < table->count; i++)
        if (table->items[i].state == state) return (long)i;
    return -1;
}

int slots_all_done(const slot_table *table) {
    for (size_t i = 0; i < table->count; i++)
        if (table->items[i].state != SLOT_DONE) return 0;
    return 1;
}

void slots_assign(slot_table *table, size_t index, const char *subtask_id) {
    slot *s = &table->items[index];
    free(s->subtask_id);
    s->state = SLOT_ASSIGNED;
    s->subtask_id = xstrdup(subtask_id);
}

void slots_release_at(slot_table *table, size_t index) {
    slot *s = &table->items[index];
    free(s->subtask_id);
    s->subtask_id = NULL;
    s->state = SLOT_PENDING;
}


int slot_read(const json_value *item, slot *out) {
    const char *state = json_string(json_get(item, "state"));
    const json_value *id = json_get(item, "subtask_id");
    int s;
    for (s = 0; s < 3 && !(state && strcmp(state, STATE_NAMES[s]) == 0); s++) {}
    if (s == 3 || !id || (id->type != JSON_NULL && id->type != JSON_STRING)) return 0;
    out->state = (slot_state)s;
    out->subtask_id = id->type == JSON_STRING ? xstrdup(id->u.string.data) : NULL;
    return 1;
}

void slot_write(jsonw *w, const slot *in) {
    jsonw_key(w, "state");
    jsonw_string(w, STATE_NAMES[in->state]);
    jsonw_key(w, "subtask_id");
    if (in->subtask_id) jsonw_string(w, in->subtask_id);
    else jsonw_null(w);
}
