/* pow.c: the proof-of-work kernel (see pow.h). Also built natively by bench/pow_native_vs_wasm.py. */
#include "pow.h"

#include <string.h>

#define MAX_DIGITS 20 /* "-9223372036854775808" */

/* Sets byte `pos` of a big-endian word array (which is zero there). */
static inline void put_byte(uint32_t *words, size_t pos, uint8_t byte) {
    words[pos / 4] |= (uint32_t)byte << (24 - 8 * (pos % 4));
}

void pow_prepare(pow_text *text, const char *data, size_t len) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data, len - len % 64); /* whole blocks only: nothing stays buffered */
    memcpy(text->state, ctx.state, sizeof text->state);
    text->tail_len = len % 64;
    text->text_len = len;
    memset(text->tail_words, 0, sizeof text->tail_words);
    const uint8_t *tail = (const uint8_t *)data + (len - text->tail_len);
    for (size_t i = 0; i < text->tail_len; i++) put_byte(text->tail_words, i, tail[i]);
}

/* Writes the decimal digits of n (as Python's str(int)) into buf; returns their count. */
static size_t decimal(int64_t n, char buf[MAX_DIGITS]) {
    char tmp[MAX_DIGITS];
    size_t len = 0, out = 0;
    uint64_t magnitude = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    do {
        tmp[len++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (n < 0) buf[out++] = '-';
    while (len) buf[out++] = tmp[--len];
    return out;
}

/* Adds one to a non-negative decimal number in place. */
static void increment(char digits[MAX_DIGITS], size_t *len) {
    size_t i = *len;
    while (i > 0 && digits[i - 1] == '9') digits[--i] = '0';
    if (i > 0) {
        digits[i - 1]++;
    } else {
        memmove(digits + 1, digits, *len);
        digits[0] = '1';
        (*len)++;
    }
}

/* The final SHA-256 state of text + digits: the text's tail, the digits and the padding in one or two
 * blocks of big-endian words. */
static void hash_digits(const pow_text *text, const char *digits, size_t len, uint32_t state[8]) {
    uint32_t words[32];
    memcpy(words, text->tail_words, sizeof text->tail_words);
    memset(words + 16, 0, 16 * sizeof *words);
    size_t pos = text->tail_len;
    for (size_t i = 0; i < len; i++) put_byte(words, pos + i, (uint8_t)digits[i]);
    put_byte(words, pos + len, 0x80);
    size_t count = pos + len + 9 <= 64 ? 16 : 32;
    uint64_t bits = (text->text_len + len) * 8;
    words[count - 2] = (uint32_t)(bits >> 32);
    words[count - 1] = (uint32_t)bits;
    memcpy(state, text->state, 8 * sizeof *state);
    sha256_compress_words(state, words);
    if (count == 32) sha256_compress_words(state, words + 16);
}

static int state_leading_zero_bits(const uint32_t state[8]) {
    for (int i = 0; i < 8; i++)
        if (state[i]) return 32 * i + __builtin_clz(state[i]);
    return 256;
}

void pow_digest(const pow_text *text, int64_t nonce, uint8_t digest[SHA256_DIGEST_SIZE]) {
    char digits[MAX_DIGITS];
    uint32_t state[8];
    hash_digits(text, digits, decimal(nonce, digits), state);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)state[i];
    }
}

int pow_leading_zero_bits(const uint8_t digest[SHA256_DIGEST_SIZE]) {
    int bits = 0;
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        if (digest[i] == 0) {
            bits += 8;
            continue;
        }
        for (unsigned mask = 0x80; !(digest[i] & mask); mask >>= 1) bits++;
        break;
    }
    return bits;
}

int pow_meets(const pow_text *text, int64_t nonce, int64_t difficulty) {
    char digits[MAX_DIGITS];
    uint32_t state[8];
    hash_digits(text, digits, decimal(nonce, digits), state);
    return state_leading_zero_bits(state) >= difficulty;
}

int pow_search(const pow_text *text, int64_t difficulty, int64_t start, int64_t end, int64_t *found) {
    char digits[MAX_DIGITS];
    size_t len = start < end ? decimal(start, digits) : 0;
    uint32_t state[8];
    for (int64_t nonce = start; nonce < end; nonce++) {
        if (nonce <= 0) len = decimal(nonce, digits); /* negatives count up towards zero: reformat */
        hash_digits(text, digits, len, state);
        if (state_leading_zero_bits(state) >= difficulty) {
            *found = nonce;
            return 1;
        }
        if (nonce >= 0) increment(digits, &len);
    }
    return 0;
}
