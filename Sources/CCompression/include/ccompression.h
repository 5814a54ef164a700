#ifndef CCOMPRESSION_H
#define CCOMPRESSION_H
#include <stddef.h>
#include <stdint.h>

/* Thin, non-variadic, macro-free wrappers over zlib, snappy, liblz4 and libxxhash so Swift can call them. */

/* CRC-32 (zlib / java.util.zip polynomial), as Kafka messages use it. */
uint32_t kc_crc32(uint32_t crc, const void *data, size_t length);

/* gzip: compress `in` into a freshly malloc'd gzip stream. Returns 0 on success;
   *out must be released with kc_free. */
int kc_gzip_compress(const void *in, size_t in_len, int level, void **out, size_t *out_len);
/* Inflate gzip or zlib data (concatenated gzip members accepted). Output capped at max_out
   bytes (returns -2 if exceeded), -1 on corrupt input. */
int kc_gzip_decompress(const void *in, size_t in_len, size_t max_out, void **out, size_t *out_len);

/* Raw snappy block. */
size_t kc_snappy_max_compressed_length(size_t in_len);
int kc_snappy_compress(const void *in, size_t in_len, void *out, size_t *out_len);
int kc_snappy_uncompressed_length(const void *in, size_t in_len, size_t *result);
int kc_snappy_uncompress(const void *in, size_t in_len, void *out, size_t *out_len);

/* xxHash32 (libxxhash's XXH32). */
uint32_t kc_xxh32(const void *data, size_t len, uint32_t seed);

/* Kafka 0.8.2 LZ4 frame (KafkaLZ4BlockOutputStream layout; header checksum over magic+FLG+BD as 0.8.2
   computes it) over liblz4's block functions. Decompress accepts both header-checksum variants and
   linked blocks. 0 ok, -1 corrupt, -2 over max_out. */
int kc_lz4f_compress(const void *in, size_t in_len, void **out, size_t *out_len);
int kc_lz4f_decompress(const void *in, size_t in_len, size_t max_out, void **out, size_t *out_len);

void kc_free(void *p);
#endif
