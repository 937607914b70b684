/* pow.h: the proof-of-work kernel of tutorialapp, the same as apps/tutorialapp/pow.py:
 * digest(text, n) = sha256(UTF-8 text followed by the decimal digits of n), and a nonce meets a difficulty
 * d when the digest has at least d leading zero bits.
 *
 * The text's whole 64-byte blocks are hashed once (pow_prepare); every nonce then fills in and compresses
 * only the last one or two blocks, built directly as big-endian words, and pow_search steps the decimal
 * digits instead of reformatting each nonce.
 */
#ifndef WASM_APPS_POW_H
#define WASM_APPS_POW_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

typedef struct {
    uint32_t state[8];      /* SHA-256 state after the text's whole blocks */
    uint32_t tail_words[16]; /* the text's remaining bytes as big-endian words, zero after them */
    size_t tail_len;        /* bytes in tail_words, < 64 */
    uint64_t text_len;      /* bytes of text */
} pow_text;

void pow_prepare(pow_text *text, const char *data, size_t len);
void pow_digest(const pow_text *text, int64_t nonce, uint8_t digest[SHA256_DIGEST_SIZE]);
/* 256 for an all-zero digest. */
int pow_leading_zero_bits(const uint8_t digest[SHA256_DIGEST_SIZE]);
int pow_meets(const pow_text *text, int64_t nonce, int64_t difficulty);
/* The smallest nonce in [start, end) that meets `difficulty`: returns 1 and stores it, or 0 if none. */
int pow_search(const pow_text *text, int64_t difficulty, int64_t start, int64_t end, int64_t *found);

#endif
