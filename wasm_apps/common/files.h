/* files.h: whole-file reads and crash-safe writes inside the WASI preopens.
 *
 * Every function returns 0 on success and -1 with errno set on failure (use strerror(errno)).
 * Writes go to "<path>.tmp" first and are renamed over `path`, so a reader never sees half a file.
 */
#ifndef WASM_APPS_FILES_H
#define WASM_APPS_FILES_H

#include <stddef.h>
#include <stdio.h>

/* Reads all of `path` (at most `max` bytes, else EFBIG) into a NUL-terminated malloc'd buffer. */
int file_read_all(const char *path, size_t max, char **data, size_t *len);
/* Reads all of an open stream the same way (used for stdin). */
int stream_read_all(FILE *stream, size_t max, char **data, size_t *len);
int file_write_atomic(const char *path, const void *data, size_t len);
/* Copies `src` to `dst` (atomically replacing dst). */
int file_copy(const char *src, const char *dst);
/* Removes a file; a file that is not there is not an error. */
int file_remove(const char *path);
/* Creates a directory; one that exists already is not an error. */
int dir_make(const char *path);
/* Size of a regular file. */
int file_size(const char *path, long long *size);
/* Opens "<path>.tmp" for writing; file_commit closes it and renames it to `path` (-1 if any write failed). */
FILE *file_begin(const char *path);
int file_commit(FILE *stream, const char *path);
/* Closes a stream from file_begin and deletes "<path>.tmp", leaving `path` as it was. */
void file_abandon(FILE *stream, const char *path);

#endif
