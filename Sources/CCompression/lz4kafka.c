/* LZ4 block codec, xxHash32 and Kafka 0.8.2's LZ4 frame (codec 3), written for this project from the
   published format descriptions (LZ4 block format, LZ4 frame format 1.4.1, xxHash32 specification). */
#include "ccompression.h"
#include <stdlib.h>
#include <string.h>

#define P1 2654435761U
#define P2 2246822519U
#define P3 3266489917U
#define P4 668265263U
#define P5 374761393U

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static inline uint32_t rd32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void wr32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t xxround(uint32_t acc, uint32_t input) {
    acc += input * P2;
    acc = rotl32(acc, 13);
    return acc * P1;
}

uint32_t kc_xxh32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *b = (const uint8_t *)data;
    const uint8_t *end = b + len;
    uint32_t h;
    if (len >= 16) {
        uint32_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 16;
        do {
            v1 = xxround(v1, rd32le(b)); b += 4;
            v2 = xxround(v2, rd32le(b)); b += 4;
            v3 = xxround(v3, rd32le(b)); b += 4;
            v4 = xxround(v4, rd32le(b)); b += 4;
        } while (b <= limit);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = seed + P5;
    }
    h += (uint32_t)len;
    while (b + 4 <= end) { h += rd32le(b) * P3; h = rotl32(h, 17) * P4; b += 4; }
    while (b < end) { h += (*b) * P5; h = rotl32(h, 11) * P1; b++; }
    h ^= h >> 15; h *= P2; h ^= h >> 13; h *= P3; h ^= h >> 16;
    return h;
}

/* ---- block format ---- */
#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define HASH_LOG 12

size_t kc_lz4_block_bound(size_t n) { return n + n / 255 + 16; }

static uint8_t *emit_literals_len(uint8_t *op, size_t len) {
    len -= 15;
    while (len >= 255) { *op++ = 255; len -= 255; }
    *op++ = (uint8_t)len;
    return op;
}

size_t kc_lz4_compress_block(const void *in, size_t n, void *out) {
    const uint8_t *src = (const uint8_t *)in;
    const uint8_t *ip = src, *anchor = src, *end = src + n;
    uint8_t *op = (uint8_t *)out;
    if (n > MFLIMIT) {
        uint32_t table[1 << HASH_LOG];
        memset(table, 0xff, sizeof(table));
        const uint8_t *mflimit = end - MFLIMIT;
        const uint8_t *matchlimit = end - LASTLITERALS;
        while (ip < mflimit) {
            uint32_t seq;
            memcpy(&seq, ip, 4);
            uint32_t h = (seq * 2654435761U) >> (32 - HASH_LOG);
            uint32_t ref = table[h];
            table[h] = (uint32_t)(ip - src);
            uint32_t mseq;
            if (ref != 0xffffffffU && (size_t)(ip - src) - ref <= 65535 &&
                (memcpy(&mseq, src + ref, 4), mseq == seq)) {
                const uint8_t *m = src + ref;
                size_t len = MINMATCH;
                while (ip + len < matchlimit && ip[len] == m[len]) len++;
                size_t lit = (size_t)(ip - anchor);
                uint8_t *token = op++;
                if (lit >= 15) { *token = 15 << 4; op = emit_literals_len(op, lit); } else { *token = (uint8_t)(lit << 4); }
                memcpy(op, anchor, lit); op += lit;
                size_t off = (size_t)(ip - m);
                *op++ = (uint8_t)off; *op++ = (uint8_t)(off >> 8);
                size_t ml = len - MINMATCH;
                if (ml >= 15) { *token |= 15; op = emit_literals_len(op, ml); } else { *token |= (uint8_t)ml; }
                ip += len;
                anchor = ip;
            } else {
                ip++;
            }
        }
    }
    size_t lit = (size_t)(end - anchor);
    uint8_t *token = op++;
    if (lit >= 15) { *token = 15 << 4; op = emit_literals_len(op, lit); } else { *token = (uint8_t)(lit << 4); }
    memcpy(op, anchor, lit); op += lit;
    return (size_t)(op - (uint8_t *)out);
}

/* Decodes one block into base[prefix..cap); back-references may reach into base[0..prefix).
   Returns bytes written, -1 corrupt, -2 output capacity exceeded. */
long kc_lz4_decompress_block(const void *in, size_t n, void *base_, size_t prefix, size_t cap) {
    const uint8_t *ip = (const uint8_t *)in, *iend = ip + n;
    uint8_t *base = (uint8_t *)base_;
    uint8_t *op = base + prefix, *oend = base + cap;
    if (n == 0) return -1;
    while (ip < iend) {
        unsigned token = *ip++;
        size_t lit = token >> 4;
        if (lit == 15) {
            unsigned b;
            do { if (ip >= iend) return -1; b = *ip++; lit += b; } while (b == 255);
        }
        if ((size_t)(iend - ip) < lit) return -1;
        if ((size_t)(oend - op) < lit) return -2;
        memcpy(op, ip, lit); op += lit; ip += lit;
        if (ip >= iend) break;
        if (iend - ip < 2) return -1;
        size_t off = (size_t)ip[0] | ((size_t)ip[1] << 8);
        ip += 2;
        if (off == 0 || off > (size_t)(op - base)) return -1;
        size_t ml = token & 15;
        if (ml == 15) {
            unsigned b;
            do { if (ip >= iend) return -1; b = *ip++; ml += b; } while (b == 255);
        }
        ml += MINMATCH;
        if ((size_t)(oend - op) < ml) return -2;
        const uint8_t *m = op - off;
        if (off >= ml) { memcpy(op, m, ml); op += ml; }
        else { for (size_t i = 0; i < ml; i++) op[i] = m[i]; op += ml; }
    }
    return (long)(op - (base + prefix));
}

/* ---- Kafka 0.8.2 frame ---- */
#define LZ4F_MAGIC 0x184D2204U

int kc_lz4f_compress(const void *in, size_t in_len, void **out, size_t *out_len) {
    const size_t block = 64 * 1024;
    size_t nblocks = in_len / block + 1;
    size_t cap = 7 + nblocks * (4 + kc_lz4_block_bound(block)) + 4;
    uint8_t *buf = malloc(cap);
    if (!buf) return -1;
    wr32le(buf, LZ4F_MAGIC);
    buf[4] = 0x60;   /* version 01, independent blocks, no checksums, no content size */
    buf[5] = 0x40;   /* 64 KiB blocks */
    /* Kafka 0.8.2 computes the header checksum over magic+FLG+BD (bytes 0..5): kept for compatibility. */
    buf[6] = (uint8_t)((kc_xxh32(buf, 6, 0) >> 8) & 0xFF);
    size_t pos = 7;
    const uint8_t *src = (const uint8_t *)in;
    for (size_t done = 0; done < in_len; done += block) {
        size_t n = in_len - done < block ? in_len - done : block;
        size_t c = kc_lz4_compress_block(src + done, n, buf + pos + 4);
        if (c >= n) {
            wr32le(buf + pos, (uint32_t)n | 0x80000000U);
            memcpy(buf + pos + 4, src + done, n);
            pos += 4 + n;
        } else {
            wr32le(buf + pos, (uint32_t)c);
            pos += 4 + c;
        }
    }
    wr32le(buf + pos, 0);
    pos += 4;
    *out = buf;
    *out_len = pos;
    return 0;
}

int kc_lz4f_decompress(const void *in, size_t in_len, size_t max_out, void **out, size_t *out_len) {
    const uint8_t *p = (const uint8_t *)in;
    if (in_len < 7 || rd32le(p) != LZ4F_MAGIC) return -1;
    uint8_t flg = p[4], bd = p[5];
    if ((flg >> 6) != 1) return -1;
    int block_checksum = (flg >> 4) & 1;
    int content_size = (flg >> 3) & 1;
    int content_checksum = (flg >> 2) & 1;
    int dict_id = flg & 1;
    int bidx = (bd >> 4) & 7;
    if (bidx < 4) return -1;
    size_t block_max = (size_t)1 << (8 + 2 * bidx);
    size_t hdr = 6 + (content_size ? 8 : 0) + (dict_id ? 4 : 0);
    if (in_len < hdr + 1) return -1;
    uint8_t hc = p[hdr];
    uint8_t standard = (uint8_t)((kc_xxh32(p + 4, hdr - 4, 0) >> 8) & 0xFF);
    uint8_t kafka082 = (uint8_t)((kc_xxh32(p, hdr, 0) >> 8) & 0xFF);
    if (hc != standard && hc != kafka082) return -1;
    size_t pos = hdr + 1;
    size_t cap = 0, total = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (in_len - pos < 4) break;   /* missing end mark: accept what was read */
        uint32_t bs = rd32le(p + pos);
        pos += 4;
        if (bs == 0) break;
        int raw = (bs & 0x80000000U) != 0;
        size_t len = bs & 0x7fffffffU;
        if (len > block_max || len > in_len - pos) { free(buf); return -1; }
        size_t need = total + block_max;
        if (need > cap) {
            size_t ncap = cap ? cap * 2 : block_max;
            while (ncap < need) ncap *= 2;
            if (ncap > max_out + block_max) ncap = max_out + block_max;
            if (ncap < need) ncap = need;
            uint8_t *nb = realloc(buf, ncap ? ncap : 1);
            if (!nb) { free(buf); return -1; }
            buf = nb; cap = ncap;
        }
        if (raw) {
            memcpy(buf + total, p + pos, len);
            total += len;
        } else {
            long r = kc_lz4_decompress_block(p + pos, len, buf, total, total + block_max);
            if (r < 0) { free(buf); return -1; }
            total += (size_t)r;
        }
        if (total > max_out) { free(buf); return -2; }
        pos += len;
        if (block_checksum) {
            if (in_len - pos < 4) { free(buf); return -1; }
            pos += 4;
        }
    }
    (void)content_checksum;
    if (!buf) { buf = malloc(1); if (!buf) return -1; }
    *out = buf;
    *out_len = total;
    return 0;
}
