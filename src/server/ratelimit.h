/*
 * ratelimit.h - token buckets keyed by source address.
 *
 * Each key gets `burst` tokens refilled at `rate` per second. The table is
 * bounded (RATELIMIT_MAX_KEYS): when full, the stalest bucket is recycled,
 * so a flood of source addresses costs bounded memory. Loop thread only.
 */
#ifndef LXCM_RATELIMIT_H
#define LXCM_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_KEYS 4096

struct ratelimit;

struct ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(struct ratelimit *rl);
/*
 * Takes one token for key at time now_ms. Returns 0 when allowed, or the
 * number of whole seconds (>= 1) after which a token will be available.
 */
int ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_ms);

#endif
