/* XNOR-popcount kernels of bnn-study (notebook 50_xnor explains them; bnn_study/xnor.py calls them through ctypes).
 *
 * Bit layout: a value +1 is the bit 0, a value -1 the bit 1 (so sign(0) = -1 is the bit 1, as in the simulation).
 * Activations are NHWC: [N][H][W][CW] 64-bit words, channel c is bit c % 64 of word c / 64, unused bits are 0.
 * A product of two +-1 values is +1 exactly where their bits agree, so over K bits
 *     dot = K - 2 * popcount(x XOR w).
 * A convolution gathers, for one output pixel and one group, the taps' channel bits into one bit stream (the patch:
 * tap-major, channel-minor, KB words) and a mask stream that is 1 on taps inside the image. Taps on the zero
 * padding get mask 0, so they add nothing, exactly as the simulation's zero padding does:
 *     dot = (valid taps) * Cg - 2 * popcount((x XOR w) AND mask).
 * Weights are [G][KB][Op]: for word k of the patch, the words of Op (Og rounded up to 8) output channels side by
 * side, so that one 512-bit load holds word k of 8 output channels and no horizontal sum is ever needed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <immintrin.h>

typedef uint64_t u64;
typedef int64_t i64;
enum { K_PORTABLE = 0, K_AVX2 = 1, K_AVX512 = 2 };
#define PB 4  /* output pixels per micro-kernel call */

typedef struct {
    i64 N, H, W, CW;                 /* input bits [N][H][W][CW] */
    i64 G, Cg, Og, Op, KB;           /* groups, input and output channels per group, Og rounded up to 8, patch words */
    i64 KH, KW, sh, sw, ph, pw, dh, dw, Ho, Wo;
    i64 mode, OW;                    /* 0: int32 dots [N][Ho][Wo][G*Og]; 1: bits [N][Ho][Wo][OW] by thresholds */
    i64 kernel, nthreads;
} conv_desc;

int bnn_cpu_has(int k) {
    __builtin_cpu_init();
    if (k == K_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
    if (k == K_AVX2) return __builtin_cpu_supports("avx2");
    return 1;
}

int bnn_desc_size(void) { return (int)sizeof(conv_desc); }

/* ---- the patch: gather one output pixel's taps ---- */
static inline u64 get_bits(const u64 *src, i64 pos, i64 n) {  /* bits [pos, pos + n) of src, n <= 64 */
    i64 w = pos >> 6, s = pos & 63;
    u64 v = src[w] >> s;
    if (s && s + n > 64) v |= src[w + 1] << (64 - s);
    return n == 64 ? v : v & ((1ULL << n) - 1);
}
static inline void put_bits(u64 *dst, i64 pos, u64 v, i64 n) {  /* OR the n low bits of v into dst at pos */
    i64 w = pos >> 6, s = pos & 63;
    dst[w] |= v << s;
    if (s && s + n > 64) dst[w + 1] |= v >> (64 - s);
}

static i64 build_patch(const conv_desc *d, const u64 *x, i64 pix, i64 g, u64 *xs, u64 *ms) {
    i64 ox = pix % d->Wo, oy = (pix / d->Wo) % d->Ho, n = pix / (d->Wo * d->Ho);
    i64 valid = 0, pos = 0, c0 = g * d->Cg;
    int aligned = (c0 % 64 == 0) && (d->Cg % 64 == 0);
    i64 y0 = oy * d->sh - d->ph, x0 = ox * d->sw - d->pw;
    if (aligned && y0 >= 0 && x0 >= 0 && y0 + (d->KH - 1) * d->dh < d->H && x0 + (d->KW - 1) * d->dw < d->W) {
        /* an inner pixel of a layer with whole words per group: copy the taps' words, the mask is all ones */
        i64 cw = d->Cg / 64, k = 0;
        for (i64 kh = 0; kh < d->KH; kh++)
            for (i64 kw = 0; kw < d->KW; kw++) {
                const u64 *px = x + ((n * d->H + y0 + kh * d->dh) * d->W + x0 + kw * d->dw) * d->CW + c0 / 64;
                for (i64 i = 0; i < cw; i++, k++) { xs[k] = px[i]; ms[k] = ~0ULL; }
            }
        return d->KH * d->KW;
    }
    memset(xs, 0, d->KB * 8);
    memset(ms, 0, d->KB * 8);
    for (i64 kh = 0; kh < d->KH; kh++) {
        i64 iy = oy * d->sh - d->ph + kh * d->dh;
        for (i64 kw = 0; kw < d->KW; kw++, pos += d->Cg) {
            i64 ix = ox * d->sw - d->pw + kw * d->dw;
            if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;  /* zero padding: mask stays 0 */
            const u64 *px = x + ((n * d->H + iy) * d->W + ix) * d->CW;
            valid++;
            if (aligned) {
                memcpy(xs + pos / 64, px + c0 / 64, d->Cg / 8);
                memset(ms + pos / 64, 0xff, d->Cg / 8);
                continue;
            }
            for (i64 c = 0; c < d->Cg; c += 64) {
                i64 m = d->Cg - c < 64 ? d->Cg - c : 64;
                put_bits(xs, pos + c, get_bits(px, c0 + c, m), m);
                put_bits(ms, pos + c, m == 64 ? ~0ULL : (1ULL << m) - 1, m);
            }
        }
    }
    return valid;
}

/* ---- micro-kernels: dots of PB patches against the Op output channels of one group, into db[PB][Op] ---- */
static void mk_portable(const u64 *xs, const u64 *ms, const i64 *kv, i64 KB, const u64 *w, i64 Op, i64 *db) {
    for (i64 p = 0; p < PB; p++)
        for (i64 o = 0; o < Op; o++) {
            i64 s = 0;
            for (i64 k = 0; k < KB; k++) s += __builtin_popcountll((xs[p * KB + k] ^ w[k * Op + o]) & ms[p * KB + k]);
            db[p * Op + o] = kv[p] - 2 * s;
        }
}

__attribute__((target("avx2"))) static inline __m256i pop8_256(__m256i v) {  /* popcount of each byte */
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

__attribute__((target("avx2"))) static void mk_avx2_2(const u64 *xs, const u64 *ms, const i64 *kv, i64 KB, const u64 *w,
                                                      i64 Op, i64 *db) {  /* 2 pixels x 8 channels: fits AVX2's 16 registers */
    const __m256i zero = _mm256_setzero_si256();
    for (i64 v = 0; v < Op; v += 8) {
        __m256i acc[2][2] = {{zero, zero}, {zero, zero}};
        for (i64 k0 = 0; k0 < KB; k0 += 31) {  /* byte counters hold at most 31 words of 8 bits each */
            i64 k1 = k0 + 31 < KB ? k0 + 31 : KB;
            __m256i b00 = zero, b01 = zero, b10 = zero, b11 = zero;
            for (i64 k = k0; k < k1; k++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + k * Op + v));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + k * Op + v + 4));
                __m256i x0 = _mm256_set1_epi64x((long long)xs[k]), m0 = _mm256_set1_epi64x((long long)ms[k]);
                __m256i x1 = _mm256_set1_epi64x((long long)xs[KB + k]), m1 = _mm256_set1_epi64x((long long)ms[KB + k]);
                b00 = _mm256_add_epi8(b00, pop8_256(_mm256_and_si256(_mm256_xor_si256(x0, w0), m0)));
                b01 = _mm256_add_epi8(b01, pop8_256(_mm256_and_si256(_mm256_xor_si256(x0, w1), m0)));
                b10 = _mm256_add_epi8(b10, pop8_256(_mm256_and_si256(_mm256_xor_si256(x1, w0), m1)));
                b11 = _mm256_add_epi8(b11, pop8_256(_mm256_and_si256(_mm256_xor_si256(x1, w1), m1)));
            }
            acc[0][0] = _mm256_add_epi64(acc[0][0], _mm256_sad_epu8(b00, zero));
            acc[0][1] = _mm256_add_epi64(acc[0][1], _mm256_sad_epu8(b01, zero));
            acc[1][0] = _mm256_add_epi64(acc[1][0], _mm256_sad_epu8(b10, zero));
            acc[1][1] = _mm256_add_epi64(acc[1][1], _mm256_sad_epu8(b11, zero));
        }
        for (int p = 0; p < 2; p++) {
            __m256i k2 = _mm256_set1_epi64x(kv[p]);
            _mm256_storeu_si256((__m256i *)(db + p * Op + v), _mm256_sub_epi64(k2, _mm256_add_epi64(acc[p][0], acc[p][0])));
            _mm256_storeu_si256((__m256i *)(db + p * Op + v + 4), _mm256_sub_epi64(k2, _mm256_add_epi64(acc[p][1], acc[p][1])));
        }
    }
}

static void mk_avx2(const u64 *xs, const u64 *ms, const i64 *kv, i64 KB, const u64 *w, i64 Op, i64 *db) {
    for (int p = 0; p < PB; p += 2) mk_avx2_2(xs + p * KB, ms + p * KB, kv + p, KB, w, Op, db + p * Op);
}

#define T512 __attribute__((target("avx512f,avx512vpopcntdq")))
#define XAM 0x28  /* vpternlogq truth table of (a XOR b) AND c */
T512 static inline void mk512_block(const u64 *xs, const u64 *ms, const i64 *kv, i64 KB, const u64 *w, i64 Op,
                                    i64 *db, i64 v, const int nv) {
    __m512i acc[PB][4];
    for (int p = 0; p < PB; p++)
        for (int j = 0; j < 4; j++) acc[p][j] = _mm512_setzero_si512();
    for (i64 k = 0; k < KB; k++) {
        const u64 *wk = w + k * Op + v;
        __m512i wv[4];
        for (int j = 0; j < nv; j++) wv[j] = _mm512_loadu_si512(wk + 8 * j);
        for (int p = 0; p < PB; p++) {
            __m512i bx = _mm512_set1_epi64((long long)xs[p * KB + k]);
            __m512i bm = _mm512_set1_epi64((long long)ms[p * KB + k]);
            for (int j = 0; j < nv; j++)
                acc[p][j] = _mm512_add_epi64(acc[p][j], _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(bx, wv[j], bm, XAM)));
        }
    }
    for (int p = 0; p < PB; p++) {
        __m512i k2 = _mm512_set1_epi64(kv[p]);
        for (int j = 0; j < nv; j++)
            _mm512_storeu_si512(db + p * Op + v + 8 * j, _mm512_sub_epi64(k2, _mm512_slli_epi64(acc[p][j], 1)));
    }
}

T512 static void mk_avx512(const u64 *xs, const u64 *ms, const i64 *kv, i64 KB, const u64 *w, i64 Op, i64 *db) {
    i64 v = 0;
    for (; v + 32 <= Op; v += 32) mk512_block(xs, ms, kv, KB, w, Op, db, v, 4);  /* 4 x 8 channels, unrolled */
    for (; v < Op; v += 8) mk512_block(xs, ms, kv, KB, w, Op, db, v, 1);
}

/* ---- epilogue: dots to int32, or to output bits (-1 where not lo <= dot <= hi) ---- */
T512 static void bits_avx512(const i64 *db, const i64 *lo, const i64 *hi, i64 Og, u64 *outp, i64 o0) {
    for (i64 j = 0; j < Og; j += 8) {  /* Og % 8 == 0 and o0 % 8 == 0: each 8 channels are one byte */
        __m512i d = _mm512_loadu_si512(db + j);
        __mmask8 plus = _mm512_cmp_epi64_mask(d, _mm512_loadu_si512(lo + j), _MM_CMPINT_NLT)
                      & _mm512_cmp_epi64_mask(d, _mm512_loadu_si512(hi + j), _MM_CMPINT_LE);
        ((uint8_t *)outp)[(o0 + j) / 8] = (uint8_t)~plus;
    }
}

static void epilogue(const conv_desc *d, const i64 *db, const i64 *lo, const i64 *hi, void *out, i64 pix, i64 g) {
    i64 O = d->G * d->Og, o0 = g * d->Og;
    if (d->mode == 0) {
        int32_t *o = (int32_t *)out + pix * O + o0;
        for (i64 j = 0; j < d->Og; j++) o[j] = (int32_t)db[j];
        return;
    }
    u64 *ow = (u64 *)out + pix * d->OW;
    if (d->kernel == K_AVX512 && d->Og % 8 == 0 && o0 % 8 == 0) { bits_avx512(db, lo + g * d->Op, hi + g * d->Op, d->Og, ow, o0); return; }
    for (i64 j = 0; j < d->Og; j++) {
        i64 o = o0 + j, v = db[j];
        if (!(lo[g * d->Op + j] <= v && v <= hi[g * d->Op + j])) ow[o >> 6] |= 1ULL << (o & 63);
    }
}

/* ---- the convolution, its pixels split between threads ---- */
typedef struct { const conv_desc *d; const u64 *x, *w; const i64 *lo, *hi; void *out; i64 p0, p1; } job;

static void *conv_range(void *arg) {
    job *j = (job *)arg;
    const conv_desc *d = j->d;
    i64 KB = d->KB, Op = d->Op;
    u64 *xs = aligned_alloc(64, ((PB * KB * 8 + 63) / 64) * 64), *ms = aligned_alloc(64, ((PB * KB * 8 + 63) / 64) * 64);
    i64 *db = aligned_alloc(64, ((PB * Op * 8 + 63) / 64) * 64);
    for (i64 p = j->p0; p < j->p1; p += PB) {
        i64 np = j->p1 - p < PB ? j->p1 - p : PB;
        for (i64 g = 0; g < d->G; g++) {
            i64 kv[PB];
            for (i64 q = 0; q < PB; q++) {
                if (q < np) kv[q] = build_patch(d, j->x, p + q, g, xs + q * KB, ms + q * KB) * d->Cg;
                else { memset(xs + q * KB, 0, KB * 8); memset(ms + q * KB, 0, KB * 8); kv[q] = 0; }
            }
            const u64 *wg = j->w + g * KB * Op;
            if (d->kernel == K_AVX512) mk_avx512(xs, ms, kv, KB, wg, Op, db);
            else if (d->kernel == K_AVX2) mk_avx2(xs, ms, kv, KB, wg, Op, db);
            else mk_portable(xs, ms, kv, KB, wg, Op, db);
            for (i64 q = 0; q < np; q++) epilogue(d, db + q * Op, j->lo, j->hi, j->out, p + q, g);
        }
    }
    free(xs);
    free(ms);
    free(db);
    return NULL;
}

/* A thread costs tens of microseconds to start and join: small layers run on fewer threads than asked, at least
 * MIN_WORK units of work (64-bit words) each. */
#define MIN_WORK (1 << 17)
static int threads_for(i64 asked, i64 work) {
    i64 n = asked < 1 ? 1 : asked > 64 ? 64 : asked, most = work / MIN_WORK;
    return (int)(n < most ? n : most < 1 ? 1 : most);
}

static void run_jobs(job *jobs, int n) {
    pthread_t th[64];
    for (int t = 1; t < n; t++) pthread_create(&th[t], NULL, conv_range, &jobs[t]);
    conv_range(&jobs[0]);
    for (int t = 1; t < n; t++) pthread_join(th[t], NULL);
}

int bnn_conv(const conv_desc *d, const u64 *x, const u64 *w, const i64 *lo, const i64 *hi, void *out) {
    if (d->kernel == K_AVX512 && !bnn_cpu_has(K_AVX512)) return -1;
    if (d->kernel == K_AVX2 && !bnn_cpu_has(K_AVX2)) return -1;
    i64 P = d->N * d->Ho * d->Wo;
    int n = threads_for(d->nthreads, P * d->G * (d->KB * d->Op + 8 * d->KB));  /* popcount words, plus the patch gathering */
    if (P < (i64)n * PB) n = (int)((P + PB - 1) / PB);
    if (n < 1) n = 1;
    job jobs[64];
    i64 per = ((P + n - 1) / n + PB - 1) / PB * PB;
    for (int t = 0; t < n; t++) {
        i64 p0 = t * per < P ? t * per : P, p1 = (t + 1) * per < P ? (t + 1) * per : P;
        jobs[t] = (job){d, x, w, lo, hi, out, p0, p1};
    }
    run_jobs(jobs, n);
    return 0;
}

/* ---- depthwise (one input and one output channel per group), AVX-512BW: 64 channels per register, one byte each ----
 * For each tap, the 64-bit word of 64 channels' agreements ~(x XOR w) is a mask that adds 1 to those channels' bytes;
 * dot = 2 * agreements - valid taps, compared with the bounds as signed bytes; the comparison's mask is the output word. */
#define T512BW __attribute__((target("avx512f,avx512bw")))
int bnn_has_avx512bw(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512bw"); }

typedef struct { const conv_desc *d; const u64 *x, *w; const int8_t *lo, *hi; u64 *out; i64 p0, p1; } dwjob;

T512BW static void *dw_range(void *arg) {
    dwjob *j = (dwjob *)arg;
    const conv_desc *d = j->d;
    const __m512i one = _mm512_set1_epi8(1);
    i64 CW = d->CW, C = d->G;
    for (i64 pix = j->p0; pix < j->p1; pix++) {
        i64 ox = pix % d->Wo, oy = (pix / d->Wo) % d->Ho, n = pix / (d->Wo * d->Ho);
        const u64 *taps[64];
        i64 tw[64], nv = 0;
        for (i64 kh = 0; kh < d->KH; kh++) {
            i64 iy = oy * d->sh - d->ph + kh * d->dh;
            for (i64 kw = 0; kw < d->KW; kw++) {
                i64 ix = ox * d->sw - d->pw + kw * d->dw;
                if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;  /* zero padding adds nothing */
                taps[nv] = j->x + ((n * d->H + iy) * d->W + ix) * CW;
                tw[nv++] = (kh * d->KW + kw) * CW;
            }
        }
        const __m512i nvv = _mm512_set1_epi8((char)nv);
        for (i64 wd = 0; wd < CW; wd++) {
            __m512i agree = _mm512_setzero_si512();
            for (i64 t = 0; t < nv; t++)
                agree = _mm512_mask_add_epi8(agree, (__mmask64)~(taps[t][wd] ^ j->w[tw[t] + wd]), agree, one);
            __m512i dot = _mm512_sub_epi8(_mm512_add_epi8(agree, agree), nvv);
            __mmask64 plus = _mm512_cmp_epi8_mask(dot, _mm512_loadu_si512(j->lo + wd * 64), _MM_CMPINT_NLT)
                           & _mm512_cmp_epi8_mask(dot, _mm512_loadu_si512(j->hi + wd * 64), _MM_CMPINT_LE);
            i64 left = C - wd * 64;
            u64 valid = left >= 64 ? ~0ULL : (1ULL << left) - 1;
            j->out[pix * d->OW + wd] = ~(u64)plus & valid;
        }
    }
    return NULL;
}

/* x: [N][H][W][CW]; w: [KH*KW][CW] (bit c of word j at tap t: channel 64j + c's weight at t); lo, hi: int8 [CW * 64] */
int bnn_dwconv(const conv_desc *d, const u64 *x, const u64 *w, const int8_t *lo, const int8_t *hi, u64 *out) {
    if (!bnn_cpu_has(K_AVX512) || !bnn_has_avx512bw() || d->KH * d->KW > 63) return -1;
    i64 P = d->N * d->Ho * d->Wo;
    int n = threads_for(d->nthreads, P * d->CW * d->KH * d->KW * 8);
    if (P < n) n = (int)P;
    if (n < 1) n = 1;
    dwjob jobs[64];
    pthread_t th[64];
    i64 per = (P + n - 1) / n;
    for (int t = 0; t < n; t++) {
        i64 p0 = t * per < P ? t * per : P, p1 = (t + 1) * per < P ? (t + 1) * per : P;
        jobs[t] = (dwjob){d, x, w, lo, hi, out, p0, p1};
    }
    for (int t = 1; t < n; t++) pthread_create(&th[t], NULL, dw_range, &jobs[t]);
    dw_range(&jobs[0]);
    for (int t = 1; t < n; t++) pthread_join(th[t], NULL);
    return 0;
}

/* ---- packing floats to bits and back ---- */
T512 static void pack_avx512(const float *x, i64 C, i64 CW, u64 *out) {
    for (i64 wd = 0; wd < CW; wd++) {
        u64 b = 0;
        for (i64 i = 0; i < 64; i += 16) {
            i64 c = wd * 64 + i, m = C - c;
            if (m <= 0) break;
            __mmask16 ld = m >= 16 ? 0xffff : (__mmask16)((1u << m) - 1);
            __mmask16 pos = _mm512_mask_cmp_ps_mask(ld, _mm512_maskz_loadu_ps(ld, x + c), _mm512_setzero_ps(), _CMP_GT_OQ);
            b |= (u64)(uint16_t)(ld & ~pos) << i;
        }
        out[wd] = b;
    }
}

void bnn_pack_signs(const float *x, i64 rows, i64 C, i64 CW, u64 *out, int kernel) {
    for (i64 r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        u64 *o = out + r * CW;
        if (kernel == K_AVX512 && bnn_cpu_has(K_AVX512)) { pack_avx512(xr, C, CW, o); continue; }
        for (i64 wd = 0; wd < CW; wd++) {
            u64 b = 0;
            for (i64 i = 0; i < 64 && wd * 64 + i < C; i++) b |= (u64)!(xr[wd * 64 + i] > 0.0f) << i;
            o[wd] = b;
        }
    }
}

void bnn_unpack_signs(const u64 *bits, i64 rows, i64 C, i64 CW, float *out) {
    for (i64 r = 0; r < rows; r++)
        for (i64 c = 0; c < C; c++) out[r * C + c] = (bits[r * CW + (c >> 6)] >> (c & 63)) & 1 ? -1.0f : 1.0f;
}
