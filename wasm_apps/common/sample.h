/* sample.h: deterministic pseudo-random sampling for verification spot checks.
 *
 * The generator is splitmix64 seeded with the first 8 bytes (big-endian) of sha256(seed text), so a
 * requestor re-checking the same subtask id checks the same places. Sampling is stratified: the span
 * is cut into k strata of near-equal size (the first span % k strata are one larger) and one point is
 * drawn uniformly from each, which gives k distinct points spread over the whole span without memory,
 * and every point when k == span.
 */
#ifndef WASM_APPS_SAMPLE_H
#define WASM_APPS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state;
} sample_rng;

void sample_seed(sample_rng *rng, const char *seed, size_t len);
uint64_t sample_next(sample_rng *rng);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t sample_below(sample_rng *rng, uint64_t n);
/* The point drawn from stratum j (0 <= j < k <= span) of [0, span). */
uint64_t sample_stratum(sample_rng *rng, uint64_t span, uint64_t k, uint64_t j);

#endif
