/* journal.h: a plan's journal of changes beside its snapshot, in apps/sdk/journal.py's format.
 *
 * The snapshot is a JSON object written whole, whose "generation" member names its generation (absent: 0).
 * The journal's first line is {"generation": N}, naming the snapshot it belongs to; every later line is one
 * JSON change, appended and flushed to disk (fsync) before journal_append returns. A reader applies the
 * changes to the snapshot. A journal naming another generation (a save cut short between the two files)
 * holds nothing the snapshot lacks and is ignored; an unfinished last line (a process killed mid-append)
 * is cut off by journal_replay, whose caller is the journal's one writer.
 *
 * Functions returning int give 0 on success and -1 with errno set on a file error, unless said otherwise.
 */
#ifndef WASM_APPS_JOURNAL_H
#define WASM_APPS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "sbuf.h"

#define JOURNAL_GENERATION "generation"

/* The generation the journal's header names; 0 when there is no journal or no readable header. */
int64_t journal_generation(const char *path);
/* Replaces the journal with an empty one for `generation` (atomically). */
int journal_start(const char *path, int64_t generation);
/* Applies every complete change line of the journal of `generation` through `apply` (which returns 0
 * when it cannot, with what is wrong in `why`), cutting an unfinished last line off the file. Sets
 * `*current` to whether the journal belongs to `generation` (when not, nothing is applied). Returns 1,
 * or 0 with the reason in `why` (a file error, a line that is not JSON, or apply's refusal). */
int journal_replay(const char *path, int64_t generation, size_t max_bytes,
                   int (*apply)(void *context, const json_value *change, sbuf *why), void *context,
                   int *current, sbuf *why);
/* Appends `len` bytes of whole lines and flushes them to disk. */
int journal_append(const char *path, const char *lines, size_t len);

#endif
