/* Kafka 0.8.2's LZ4 frame (codec 3) over Debian's liblz4 block functions and libxxhash's XXH32.
   liblz4's own LZ4F API cannot be used as is: 0.8.2 computes the frame-header checksum over the magic
   number too (magic+FLG+BD instead of FLG+BD), so the frame header and block framing are written and
   read here; everything else is the libraries'. */
#include "ccompression.h"
#include <stdlib.h>
#include <string.h>
#include <lz4.h>
#include <xxhash.h>

#define LZ4F_MAGIC 0x184D2204U
#define KAFKA_BLOCK (64 * 1024)   /* BD 0x40 */
#define LZ4_WINDOW (64 * 1024)    /* back-references of linked blocks reach at most this far */

static inline uint32_t rd32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void wr32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

uint32_t kc_xxh32(const void *data, size_t len, uint32_t seed) {
    return (uint32_t)XXH32(data, len, seed);
}

int kc_lz4f_compress(const void *in, size_t in_len, void **out, size_t *out_len) {
    size_t nblocks = in_len / KAFKA_BLOCK + 1;
    size_t cap = 7 + nblocks * (4 + (size_t)LZ4_compressBound(KAFKA_BLOCK)) + 4;
    uint8_t *buf = malloc(cap);
    if (!buf) return -1;
    wr32le(buf, LZ4F_MAGIC);
    buf[4] = 0x60;   /* version 01, independent blocks, no checksums, no content size */
    buf[5] = 0x40;   /* 64 KiB blocks */
    /* Kafka 0.8.2 computes the header checksum over magic+FLG+BD (bytes 0..5): kept for compatibility. */
    buf[6] = (uint8_t)((XXH32(buf, 6, 0) >> 8) & 0xFF);
    size_t pos = 7;
    const char *src = (const char *)in;
    for (size_t done = 0; done < in_len; done += KAFKA_BLOCK) {
        int n = (int)(in_len - done < KAFKA_BLOCK ? in_len - done : KAFKA_BLOCK);
        int c = LZ4_compress_default(src + done, (char *)buf + pos + 4, n, (int)(cap - pos - 4));
        if (c <= 0 || c >= n) {   /* incompressible: stored block (high bit set) */
            wr32le(buf + pos, (uint32_t)n | 0x80000000U);
            memcpy(buf + pos + 4, src + done, (size_t)n);
            pos += 4 + (size_t)n;
        } else {
            wr32le(buf + pos, (uint32_t)c);
            pos += 4 + (size_t)c;
        }
    }
    wr32le(buf + pos, 0);
    pos += 4;
    *out = buf;
    *out_len = pos;
    return 0;
}

/* Accepts both header-checksum variants, independent or linked blocks, block checksums, a content size
   and a content checksum (checksums are skipped, not verified). */
int kc_lz4f_decompress(const void *in, size_t in_len, size_t max_out, void **out, size_t *out_len) {
    const uint8_t *p = (const uint8_t *)in;
    if (in_len < 7 || rd32le(p) != LZ4F_MAGIC) return -1;
    uint8_t flg = p[4], bd = p[5];
    if ((flg >> 6) != 1) return -1;
    int block_checksum = (flg >> 4) & 1;
    int content_size = (flg >> 3) & 1;
    int dict_id = flg & 1;
    int bidx = (bd >> 4) & 7;
    if (bidx < 4) return -1;
    size_t block_max = (size_t)1 << (8 + 2 * bidx);
    size_t hdr = 6 + (content_size ? 8 : 0) + (dict_id ? 4 : 0);
    if (in_len < hdr + 1) return -1;
    uint8_t hc = p[hdr];
    uint8_t standard = (uint8_t)((XXH32(p + 4, hdr - 4, 0) >> 8) & 0xFF);
    uint8_t kafka082 = (uint8_t)((XXH32(p, hdr, 0) >> 8) & 0xFF);
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
            /* The previous output (up to 64 KiB) is the dictionary, so linked blocks decode as well. */
            size_t dict = total < LZ4_WINDOW ? total : LZ4_WINDOW;
            int r = LZ4_decompress_safe_usingDict((const char *)p + pos, (char *)buf + total, (int)len,
                                                  (int)block_max, (const char *)buf + total - dict, (int)dict);
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
    if (!buf) { buf = malloc(1); if (!buf) return -1; }
    *out = buf;
    *out_len = total;
    return 0;
}
