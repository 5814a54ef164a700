#include "ccompression.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <snappy-c.h>
#include <isa-l/crc.h>

/* The message CRC (CRC-32 IEEE, as java.util.zip.CRC32 and zlib's crc32 compute it) through
 * ISA-L, which folds with carry-less multiplication: about 8x zlib's speed on 100-byte messages,
 * where the CRC check was the largest cost of a produce. Same values and chaining as zlib. */
uint32_t kc_crc32(uint32_t crc, const void *data, size_t length) {
    return crc32_gzip_refl(crc, (const unsigned char *)data, (uint64_t)length);
}

void kc_free(void *p) { free(p); }

int kc_gzip_compress(const void *in, size_t in_len, int level, void **out, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 15 + 16: gzip wrapper, as java.util.zip.GZIPOutputStream writes. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t cap = deflateBound(&zs, (uLong)in_len) + 32;
    unsigned char *buf = malloc(cap);
    if (!buf) { deflateEnd(&zs); return -1; }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END) { deflateEnd(&zs); free(buf); return -1; }
    *out_len = zs.total_out;
    *out = buf;
    deflateEnd(&zs);
    return 0;
}

int kc_gzip_decompress(const void *in, size_t in_len, size_t max_out, void **out, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: detect gzip or zlib header automatically. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return -1;
    size_t cap = in_len * 4 + 64;
    if (cap > max_out && max_out > 0) cap = max_out;
    if (cap < 64) cap = 64;
    unsigned char *buf = malloc(cap);
    if (!buf) { inflateEnd(&zs); return -1; }
    size_t total = 0;
    const unsigned char *src = (const unsigned char *)in;
    size_t remaining = in_len;
    zs.next_in = (Bytef *)src;
    zs.avail_in = (uInt)remaining;
    for (;;) {
        if (total == cap) {
            if (cap >= max_out) { inflateEnd(&zs); free(buf); return -2; }
            size_t ncap = cap * 2;
            if (ncap > max_out) ncap = max_out;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) { inflateEnd(&zs); free(buf); return -1; }
            buf = nb; cap = ncap;
        }
        zs.next_out = buf + total;
        zs.avail_out = (uInt)(cap - total);
        int rc = inflate(&zs, Z_NO_FLUSH);
        total = cap - zs.avail_out;
        if (rc == Z_STREAM_END) {
            /* concatenated members: restart if input remains */
            if (zs.avail_in > 0) {
                if (inflateReset(&zs) != Z_OK) { inflateEnd(&zs); free(buf); return -1; }
                continue;
            }
            break;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) { inflateEnd(&zs); free(buf); return -1; }
        if (rc != Z_OK && rc != Z_BUF_ERROR) { inflateEnd(&zs); free(buf); return -1; }
    }
    inflateEnd(&zs);
    *out = buf;
    *out_len = total;
    return 0;
}

size_t kc_snappy_max_compressed_length(size_t in_len) { return snappy_max_compressed_length(in_len); }

int kc_snappy_compress(const void *in, size_t in_len, void *out, size_t *out_len) {
    return snappy_compress((const char *)in, in_len, (char *)out, out_len) == SNAPPY_OK ? 0 : -1;
}

int kc_snappy_uncompressed_length(const void *in, size_t in_len, size_t *result) {
    return snappy_uncompressed_length((const char *)in, in_len, result) == SNAPPY_OK ? 0 : -1;
}

int kc_snappy_uncompress(const void *in, size_t in_len, void *out, size_t *out_len) {
    return snappy_uncompress((const char *)in, in_len, (char *)out, out_len) == SNAPPY_OK ? 0 : -1;
}
