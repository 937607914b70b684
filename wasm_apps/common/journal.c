/* journal.c: a plan's journal of changes beside its snapshot (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

#define HEADER_MAX 64

/* The header line naming `generation`, without its newline: json.dumps({"generation": N}). */
static void header_of(int64_t generation, char *out) {
    snprintf(out, HEADER_MAX, "{\"" JOURNAL_GENERATION "\": %lld}", (long long)generation);
}

int64_t journal_generation(const char *path) {
    FILE *stream = fopen(path, "rb");
    if (!stream) return 0;
    char line[HEADER_MAX];
    int64_t generation = 0;
    if (fgets(line, sizeof line, stream)) {
        char error[100];
        json_value *header = json_parse(line, strcspn(line, "\n"), error, sizeof error);
        const json_value *value = header ? json_get(header, JOURNAL_GENERATION) : NULL;
        if (json_is_int(value)) generation = value->u.integer;
        json_free(header);
    }
    fclose(stream);
    return generation;
}

int journal_start(const char *path, int64_t generation) {
    char line[HEADER_MAX + 1];
    header_of(generation, line);
    strcat(line, "\n");
    return file_write_atomic(path, line, strlen(line));
}

/* Cuts the file at `length` (an unfinished last line). */
static int cut(const char *path, size_t length) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    int rc = ftruncate(fd, (off_t)length);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int journal_replay(const char *path, int64_t generation, size_t max_bytes,
                   int (*apply)(void *context, const json_value *change, sbuf *why), void *context,
                   int *current, sbuf *why) {
    *current = 0;
    char *text;
    size_t len;
    if (file_read_all(path, max_bytes, &text, &len) != 0) {
        if (errno == ENOENT) return 1;
        sbuf_printf(why, "cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    char header[HEADER_MAX];
    header_of(generation, header);
    size_t header_len = strlen(header);
    if (len <= header_len || memcmp(text, header, header_len) != 0 || text[header_len] != '\n') {
        free(text);
        return 1;
    }
    *current = 1;
    int ok = 1;
    size_t start = header_len + 1;
    for (char *end; ok && (end = memchr(text + start, '\n', len - start)) != NULL; start = (size_t)(end - text) + 1) {
        char error[200];
        json_value *change = json_parse(text + start, (size_t)(end - text) - start, error, sizeof error);
        if (!change) sbuf_printf(why, "%s has a line that is not JSON: %s", path, error);
        ok = change && apply(context, change, why);
        json_free(change);
    }
    if (ok && start < len && cut(path, start) != 0) {
        sbuf_printf(why, "cannot cut the unfinished last line off %s: %s", path, strerror(errno));
        ok = 0;
    }
    free(text);
    return ok;
}

int journal_append(const char *path, const char *lines, size_t len) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) return -1;
    size_t written = 0;
    while (written < len) {
        ssize_t n = write(fd, lines + written, len - written);
        if (n < 0) break;
        written += (size_t)n;
    }
    int rc = written == len && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
