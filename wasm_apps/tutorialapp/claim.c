/* claim.c: verification of a claimed nonce-range result by recomputation and spot checks (see claim.h). */
#include "claim.h"

#include <string.h>

#include "pow.h"
#include "pyrepr.h"
#include "sample.h"
#include "sha256.h"

/* Spot-checks [start, end): 0 with `why` if some sampled nonce meets the difficulty. */
static int spot_check(const pow_text *text, int64_t difficulty, int64_t start, int64_t end, const char *seed,
                      sbuf *why) {
    uint64_t span = (uint64_t)(end - start);
    uint64_t k = span / 16 > 64 ? span / 16 : 64;
    if (k > MAX_SPOT_CHECKS) k = MAX_SPOT_CHECKS;
    if (k > span) k = span;
    sample_rng rng;
    sample_seed(&rng, seed, strlen(seed));
    for (uint64_t j = 0; j < k; j++) {
        int64_t candidate = start + (int64_t)sample_stratum(&rng, span, k, j);
        if (pow_meets(text, candidate, difficulty)) {
            sbuf_printf(why, "spot check found valid nonce %lld that the result missed", (long long)candidate);
            return 0;
        }
    }
    return 1;
}

int claim_check(const pow_plan *plan, size_t index, const json_value *claim, const char *seed, int *has_nonce,
                int64_t *nonce, sbuf *why) {
    int64_t start, end;
    plan_bounds(plan, index, &start, &end);
    if (!claim || claim->type != JSON_OBJECT || !json_number_equals(json_get(claim, "start"), start) ||
        !json_number_equals(json_get(claim, "end"), end)) {
        sbuf_printf(why, "result does not describe the assigned range [%lld, %lld)", (long long)start,
                    (long long)end);
        return 0;
    }
    pow_text text;
    pow_prepare(&text, plan->input, plan->input_len);
    const json_value *claimed = json_get(claim, "nonce");
    int64_t checked_end = end;
    *has_nonce = claimed && claimed->type != JSON_NULL;
    if (!*has_nonce && plan_is_open(plan, index)) {
        sbuf_printf(why, "the open-ended range [%lld, ...) always holds a valid nonce; the result names none",
                    (long long)start);
        return 0;
    }
    if (*has_nonce) {
        if (!json_is_int(claimed) || claimed->u.integer < start || claimed->u.integer >= end) {
            sbuf_puts(why, "claimed nonce ");
            py_repr(why, claimed, 100);
            sbuf_printf(why, " is not in [%lld, %lld)", (long long)start, (long long)end);
            return 0;
        }
        *nonce = claimed->u.integer;
        uint8_t digest[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        pow_digest(&text, *nonce, digest);
        sha256_hex(digest, hex);
        const json_value *hash = json_get(claim, "hash");
        if (!hash || hash->type != JSON_STRING || hash->u.string.len != 64 || memcmp(hash->u.string.data, hex, 64)) {
            sbuf_printf(why, "claimed hash does not match sha256 of nonce %lld", (long long)*nonce);
            return 0;
        }
        if (pow_leading_zero_bits(digest) < plan->difficulty) {
            sbuf_printf(why, "nonce %lld has fewer than %lld leading zero bits", (long long)*nonce,
                        (long long)plan->difficulty);
            return 0;
        }
        checked_end = *nonce;
    }
    return spot_check(&text, plan->difficulty, start, checked_end, seed, why);
}
