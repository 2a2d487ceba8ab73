/* nmp_rng.c: seeded random streams: xoshiro256** for the solvers, MT19937 for NumPy's legacy stream */
#include "nmp_internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* s = splitmix64 stream of seed (never all zero: splitmix64 is a bijection of a counter) */
void nmp_rng_seed(nmp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int k = 0; k < 4; k++)
        r->s[k] = splitmix64(&x);
}

/* xoshiro256** (Blackman & Vigna 2018) */
uint64_t nmp_rng_next(nmp_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nmp_rng_uniform(nmp_rng *r)
{
    return (double)(nmp_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Rejection keeps it unbiased: draws below 2^64 mod n are discarded. */
uint64_t nmp_rng_below(nmp_rng *r, uint64_t n)
{
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
        const uint64_t x = nmp_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

/* Marsaglia's polar method, returning one of the pair and dropping the other so that the
 * generator has no hidden state. Uses only sqrt (exact in IEEE 754) and log. */
double nmp_rng_normal(nmp_rng *r)
{
    double u, v, q;
    do {
        u = 2.0 * nmp_rng_uniform(r) - 1.0;
        v = 2.0 * nmp_rng_uniform(r) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    return u * sqrt(-2.0 * log(q) / q);
}

/* Fisher-Yates from the top */
void nmp_perm_random(int32_t *perm, int64_t n, nmp_rng *r)
{
    nmp_perm_identity(perm, n);
    for (int64_t k = n - 1; k > 0; k--) {
        const int64_t t = (int64_t)nmp_rng_below(r, (uint64_t)k + 1);
        const int32_t x = perm[k];
        perm[k] = perm[t];
        perm[t] = x;
    }
}

/* MT19937 (Matsumoto & Nishimura 1998) with the classic init_genrand seeding, which is what
 * NumPy's RandomState.seed(int) uses. */
void nmp_mt19937_seed(nmp_mt19937 *g, uint32_t seed)
{
    g->mt[0] = seed;
    for (int k = 1; k < 624; k++)
        g->mt[k] = 1812433253u * (g->mt[k - 1] ^ (g->mt[k - 1] >> 30)) + (uint32_t)k;
    g->index = 624;
}

static void mt_twist(nmp_mt19937 *g)
{
    uint32_t *mt = g->mt;
    for (int k = 0; k < 624; k++) {
        const uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % 624] & 0x7fffffffu);
        mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    g->index = 0;
}

uint32_t nmp_mt19937_next(nmp_mt19937 *g)
{
    if (g->index >= 624)
        mt_twist(g);
    uint32_t y = g->mt[g->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* NumPy's random_sample: (a >> 5) * 2^26 + (b >> 6), divided by 2^53 */
double nmp_mt19937_uniform(nmp_mt19937 *g)
{
    const uint32_t a = nmp_mt19937_next(g) >> 5;
    const uint32_t b = nmp_mt19937_next(g) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}
