/* nmp_half.c: IEEE binary16 and bfloat16 <-> binary32 conversions (bit exact, round to nearest even) */
#include "nmp_internal.h"

#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals are m * 2^-24 */
float nmp_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) /* inf or nan, keeping the payload */
        return float_of(sign | 0x7f800000u | (man << 13));
    if (exp != 0)
        return float_of(sign | ((exp + 112u) << 23) | (man << 13));
    const float mag = (float)man * 0x1p-24f; /* exact: man < 2^10 */
    return sign ? -mag : mag;
}

/* Round to nearest even; overflow to inf; nan stays nan (quiet). */
uint16_t nmp_f32_to_f16(float f)
{
    const uint32_t u = bits_of(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf, nan */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below 2^-14: subnormal or zero; scale so rounding is exact */
        const float mag = float_of(abs) * 0x1p24f; /* value in units of 2^-24 */
        const uint32_t q = (uint32_t)mag;
        const float rest = mag - (float)q;
        uint32_t r = q + (rest > 0.5f || (rest == 0.5f && (q & 1u)));
        return (uint16_t)(sign | r); /* r may reach 0x400, the smallest normal: still right */
    }
    const uint32_t exp = (abs >> 23) - 112u, man = abs & 0x7fffffu;
    uint32_t h = (exp << 10) | (man >> 13);
    const uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is the right result */
    return (uint16_t)(sign | h);
}

float nmp_bf16_to_f32(uint16_t b)
{
    return float_of((uint32_t)b << 16);
}

uint16_t nmp_f32_to_bf16(float f)
{
    const uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* nan: keep it a (quiet) nan */
        return (uint16_t)((u >> 16) | 0x40u);
    const uint32_t lsb = (u >> 16) & 1u;
    return (uint16_t)((u + 0x7fffu + lsb) >> 16);
}
