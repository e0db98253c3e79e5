/* ratelimit.c - bounded table of token buckets. */
#include "server/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RL_KEY_MAX 64

struct rl_bucket {
	char key[RL_KEY_MAX];
	double tokens;
	uint64_t last_ms;
	int used;
};

struct ratelimit {
	double rate;
	double burst;
	struct rl_bucket b[RATELIMIT_MAX_KEYS];
};

struct ratelimit *ratelimit_new(double rate, double burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->rate = rate > 0 ? rate : 1;
	rl->burst = burst >= 1 ? burst : 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

static uint32_t rl_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* Open addressing over a short probe window; the stalest slot is recycled. */
static struct rl_bucket *rl_find(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
	uint32_t h = rl_hash(key);
	struct rl_bucket *victim = NULL;
	unsigned i;

	for (i = 0; i < 16; i++) {
		struct rl_bucket *b = &rl->b[(h + i) % RATELIMIT_MAX_KEYS];

		if (b->used && strncmp(b->key, key, RL_KEY_MAX) == 0)
			return b;
		if (!b->used) {
			victim = b;
			break;
		}
		if (victim == NULL || b->last_ms < victim->last_ms)
			victim = b;
	}
	memset(victim, 0, sizeof(*victim));
	strncpy(victim->key, key, RL_KEY_MAX - 1);
	victim->used = 1;
	victim->tokens = rl->burst;
	victim->last_ms = now_ms;
	return victim;
}

int ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
	struct rl_bucket *b = rl_find(rl, key, now_ms);
	double wait;

	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * rl->rate;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last_ms = now_ms;
	}
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	wait = ceil((1 - b->tokens) / rl->rate);
	return wait < 1 ? 1 : (int)wait;
}
