/*
 * rdkafka-bench: a benchmark client on librdkafka for Kafka 0.8 brokers (this project's broker or
 * Apache Kafka 0.8.2.2), so the broker is measured by an independent client.
 *
 *   rdkafka-bench --mode latency --bootstrap H:P --topic T [--rate 10000] [--seconds 60] [--warmup 5]
 *   rdkafka-bench --mode produce --bootstrap H:P --topic T [--messages N] [--size 100] [--partitions P]
 *   rdkafka-bench --mode consume --bootstrap H:P --topic T [--messages N] [--partitions P]
 *   common: [--acks 1] [--batch 10000] [--linger-ms L] [--broker-pids PID,PID...] [-X key=value]...
 *
 * latency: one producer sends --size byte messages to partition 0 at a fixed rate (message i is due
 *   at i/rate s; every wake-up sends all messages due), queue.buffering.max.ms (linger) 0, with the
 *   CLOCK_MONOTONIC send time and a sequence number in the payload. A consumer in the same process
 *   reads partition 0 from the log end (legacy simple-consumer API, RD_KAFKA_OFFSET_END) and records
 *   receive time - send time of every message sent after the warm-up, in a log-linear histogram
 *   (values below 256 ns exact, above that 128 sub-buckets per power of two: <= 0.8 % relative error).
 * produce: N messages of --size bytes, in runs of 100 per partition over partitions 0..P-1, batch.num.messages
 *   --batch, linger --linger-ms (default 5), acks --acks; timed from the first produce call until
 *   every message is acknowledged (rd_kafka_flush).
 * consume: N messages from partitions 0..P-1 from their beginning (one queue for all partitions),
 *   timed from the consume start until the Nth message.
 *
 * Output: one line of key=value pairs per result on stdout (diagnostics on stderr). Client CPU is
 * getrusage(RUSAGE_SELF) user+sys over the timed part; with --broker-pids, broker CPU is utime+stime
 * from /proc/<pid>/stat summed over those processes over the same interval, and broker RSS is the
 * sum of their VmRSS at the end.
 *
 * librdkafka is configured for 0.8 brokers: api.version.request=false, broker.version.fallback=0.8.2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

/* ---------------------------------------------------------------------------------------------- */
/* options                                                                                        */

static const char *opt_mode = NULL;
static const char *opt_bootstrap = "127.0.0.1:9092";
static const char *opt_topic = NULL;
static double opt_rate = 10000;
static double opt_seconds = 60;
static double opt_warmup = 5;
static const char *opt_acks = "1";
static int opt_size = 100;
static long long opt_messages = 1000000;
static int opt_partitions = 0; /* 0: all partitions of the topic */
static int opt_batch = 10000;
static double opt_linger = -1; /* -1: mode default */
static char opt_broker_pids[512] = "";
static char *opt_extra[64];
static int opt_extra_n = 0;
static int opt_verbose = 0;

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rdkafka-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_self_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* ---------------------------------------------------------------------------------------------- */
/* broker processes: CPU (utime+stime) and RSS from /proc                                         */

static int broker_pid_list(int *pids, int max) {
    int n = 0;
    char buf[sizeof opt_broker_pids];
    strcpy(buf, opt_broker_pids);
    for (char *tok = strtok(buf, ", "); tok && n < max; tok = strtok(NULL, ", "))
        pids[n++] = atoi(tok);
    return n;
}

/* Sum of utime+stime of the broker processes in ns; -1 when none is given or one cannot be read. */
static double broker_cpu_ns(void) {
    int pids[64], n = broker_pid_list(pids, 64);
    if (n == 0) return -1;
    double total = 0, tick = (double)sysconf(_SC_CLK_TCK);
    for (int i = 0; i < n; i++) {
        char path[64], line[4096];
        snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) return -1;
        size_t len = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[len] = 0;
        char *p = strrchr(line, ')'); /* comm may hold spaces: fields count from after it */
        if (!p) return -1;
        unsigned long long ut = 0, st = 0;
        /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
        total += (double)(ut + st) / tick * 1e9;
    }
    return total;
}

static double broker_rss_mb(void) {
    int pids[64], n = broker_pid_list(pids, 64);
    if (n == 0) return -1;
    double kb = 0;
    for (int i = 0; i < n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) return -1;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "VmRSS:", 6) == 0) kb += atof(line + 6);
        fclose(f);
    }
    return kb / 1024.0;
}

/* ---------------------------------------------------------------------------------------------- */
/* log-linear histogram of nanoseconds: exact below 256, then 128 sub-buckets per power of two     */

#define HSUB_BITS 7
#define HSUB (1 << HSUB_BITS)
#define HBUCKETS (2 * HSUB + (64 - HSUB_BITS - 1) * HSUB)

typedef struct {
    uint64_t counts[HBUCKETS];
    uint64_t total, max, min;
} histogram;

static int hist_index(uint64_t v) {
    if (v < 2 * HSUB) return (int)v;
    int e = 63 - __builtin_clzll(v); /* 2^e <= v < 2^(e+1), e >= 8 */
    int sub = (int)((v >> (e - HSUB_BITS)) & (HSUB - 1));
    return 2 * HSUB + (e - HSUB_BITS - 1) * HSUB + sub;
}

/* Midpoint of bucket i's value range. */
static double hist_value(int i) {
    if (i < 2 * HSUB) return i;
    int e = (i - 2 * HSUB) / HSUB + HSUB_BITS + 1, sub = (i - 2 * HSUB) % HSUB;
    double width = (double)(1ull << (e - HSUB_BITS));
    double lo = (double)(1ull << e) + sub * width;
    return lo + width / 2;
}

static void hist_record(histogram *h, uint64_t v) {
    h->counts[hist_index(v)]++;
    if (h->total == 0 || v < h->min) h->min = v;
    if (v > h->max) h->max = v;
    h->total++;
}

/* Value at quantile q (0..1): the bucket holding the ceil(q * total)-th smallest value, capped at max. */
static double hist_quantile(const histogram *h, double q) {
    if (h->total == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ---------------------------------------------------------------------------------------------- */
/* librdkafka setup                                                                                */

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die("config %s=%s: %s", k, v, err);
}

static rd_kafka_conf_t *base_conf(void) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", opt_bootstrap);
    conf_set(conf, "api.version.request", "false");
    conf_set(conf, "broker.version.fallback", "0.8.2");
    conf_set(conf, "client.id", "rdkafka-bench");
    return conf;
}

static void conf_extra(rd_kafka_conf_t *conf) {
    for (int i = 0; i < opt_extra_n; i++) {
        char kv[1024];
        snprintf(kv, sizeof kv, "%s", opt_extra[i]);
        char *eq = strchr(kv, '=');
        if (!eq) die("-X %s: expected key=value", opt_extra[i]);
        *eq = 0;
        conf_set(conf, kv, eq + 1);
    }
}

static rd_kafka_t *new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new: %s", err);
    return rk;
}

/* Partition count of the topic (waits up to 30 s for it to have leaders for all partitions). */
static int topic_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt) {
    uint64_t deadline = now_ns() + 30000000000ull;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0 &&
            md->topics[0].partition_cnt > 0) {
            int n = md->topics[0].partition_cnt, led = 0;
            for (int i = 0; i < n; i++)
                if (md->topics[0].partitions[i].leader >= 0) led++;
            rd_kafka_metadata_destroy(md);
            if (led == n) return n;
        } else if (md) {
            rd_kafka_metadata_destroy(md);
        }
        if (now_ns() > deadline) die("topic %s: no metadata with a leader for every partition within 30 s", rd_kafka_topic_name(rkt));
        usleep(200000);
    }
}

static void fill_payload(char *buf, int size) {
    uint32_t x = 2463534242u;
    for (int i = 0; i < size; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (char)('a' + x % 26);
    }
}

/* Delivery reports: count failures; in latency mode (ack_hist set) also record ack time - send time. */
static atomic_llong delivered = 0, delivery_errors = 0;
static char first_delivery_error[256] = "";
static histogram *ack_hist = NULL;
static atomic_llong ack_window_lo = LLONG_MAX;
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    if (ack_hist && !m->err && m->len >= 16) {
        uint64_t sent, seq;
        memcpy(&sent, m->payload, 8);
        memcpy(&seq, (char *)m->payload + 8, 8);
        if ((long long)seq >= atomic_load(&ack_window_lo)) hist_record(ack_hist, now_ns() - sent);
    }
    if (m->err) {
        if (atomic_fetch_add(&delivery_errors, 1) == 0)
            snprintf(first_delivery_error, sizeof first_delivery_error, "%s", rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add(&delivered, 1);
    }
}

static void print_common_tail(double secs, long long msgs, double cpu_client, double cpu_broker) {
    printf(" client_cpu_ns_msg=%.0f", msgs > 0 ? cpu_client / msgs : 0);
    if (cpu_broker >= 0) printf(" broker_cpu_ns_msg=%.0f broker_cpu_pct=%.0f", msgs > 0 ? cpu_broker / msgs : 0, cpu_broker / (secs * 1e9) * 100);
    double rss = broker_rss_mb();
    if (rss >= 0) printf(" broker_rss_mb=%.1f", rss);
    printf("\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------- */
/* latency                                                                                         */

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    histogram hist;
    uint8_t *seen;          /* one byte per sequence number in the measured window */
    atomic_llong window_lo; /* first measured sequence number (set when the warm-up ends) */
    atomic_llong window_hi; /* one past the last (set when the measured part ends) */
    atomic_llong received;  /* distinct messages of the window received */
    atomic_llong duplicates, foreign, consumed_total;
    atomic_int stop;
    char first_error[256];
} lat_state;

/* One message from the consumer: record receive time - send time when it belongs to the window. */
static void latency_on_message(rd_kafka_message_t *m, void *opaque) {
    lat_state *s = opaque;
    uint64_t t = now_ns();
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !s->first_error[0])
            snprintf(s->first_error, sizeof s->first_error, "%s", rd_kafka_message_errstr(m));
        return;
    }
    if (m->len < 16) {
        atomic_fetch_add(&s->foreign, 1);
        return;
    }
    uint64_t sent, seq;
    memcpy(&sent, m->payload, 8);
    memcpy(&seq, (char *)m->payload + 8, 8);
    atomic_fetch_add(&s->consumed_total, 1);
    long long lo = atomic_load(&s->window_lo), hi = atomic_load(&s->window_hi);
    if ((long long)seq >= lo && (long long)seq < hi) {
        if (s->seen[seq - lo]) {
            atomic_fetch_add(&s->duplicates, 1);
        } else {
            s->seen[seq - lo] = 1;
            hist_record(&s->hist, t - sent);
            atomic_fetch_add(&s->received, 1);
        }
    }
}

/* rd_kafka_consume_callback hands over every message already fetched and returns (it waits up to
 * the timeout only when none is there); rd_kafka_consume_batch would wait to fill its array. */
static void *latency_consumer(void *arg) {
    lat_state *s = arg;
    while (!atomic_load(&s->stop))
        rd_kafka_consume_callback(s->rkt, 0, 100, latency_on_message, s);
    return NULL;
}

/* The producer of both modes: acks --acks, batch.num.messages --batch, the given linger, queues
 * large enough never to be the limit, Nagle off, delivery reports counted by on_delivery. */
static rd_kafka_conf_t *producer_conf(double linger) {
    char v[64];
    rd_kafka_conf_t *conf = base_conf();
    conf_set(conf, "acks", opt_acks);
    snprintf(v, sizeof v, "%d", opt_batch);
    conf_set(conf, "batch.num.messages", v);
    snprintf(v, sizeof v, "%g", linger);
    conf_set(conf, "queue.buffering.max.ms", v);
    conf_set(conf, "queue.buffering.max.messages", "2000000");
    conf_set(conf, "queue.buffering.max.kbytes", "2097151");
    conf_set(conf, "socket.nagle.disable", "true");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    conf_extra(conf);
    return conf;
}

static int run_latency(void) {
    if (opt_size < 16) die("--size must be at least 16 for latency (send time + sequence number)");
    double linger = opt_linger < 0 ? 0 : opt_linger;

    rd_kafka_t *prk = new_handle(RD_KAFKA_PRODUCER, producer_conf(linger));
    rd_kafka_topic_t *prkt = rd_kafka_topic_new(prk, opt_topic, NULL);
    topic_partitions(prk, prkt);

    rd_kafka_conf_t *cc = base_conf();
    conf_set(cc, "fetch.wait.max.ms", "100");
    conf_set(cc, "fetch.min.bytes", "1");
    conf_set(cc, "socket.nagle.disable", "true");
    conf_set(cc, "enable.partition.eof", "false");
    conf_extra(cc);
    rd_kafka_t *crk = new_handle(RD_KAFKA_CONSUMER, cc);
    rd_kafka_topic_conf_t *ctc = rd_kafka_topic_conf_new();
    char err[256];
    if (rd_kafka_topic_conf_set(ctc, "auto.commit.enable", "false", err, sizeof err) != RD_KAFKA_CONF_OK) die("%s", err);
    rd_kafka_topic_t *crkt = rd_kafka_topic_new(crk, opt_topic, ctc);

    ack_hist = calloc(1, sizeof *ack_hist);
    lat_state *s = calloc(1, sizeof *s);
    long long measured = (long long)(opt_rate * opt_seconds + 0.5);
    s->seen = calloc((size_t)measured + 1, 1);
    if (!s || !s->seen) die("out of memory");
    atomic_store(&s->window_lo, LLONG_MAX);
    atomic_store(&s->window_hi, LLONG_MAX);
    s->rk = crk;
    s->rkt = crkt;
    if (rd_kafka_consume_start(crkt, 0, RD_KAFKA_OFFSET_END) == -1)
        die("consume_start: %s", rd_kafka_err2str(rd_kafka_last_error()));
    pthread_t th;
    pthread_create(&th, NULL, latency_consumer, s);
    usleep(500000); /* let the consumer resolve the log end before the first message */

    char *payload = malloc((size_t)opt_size);
    fill_payload(payload, opt_size);
    long long warm_msgs = (long long)(opt_rate * opt_warmup + 0.5);
    long long total = warm_msgs + measured;
    double period_ns = 1e9 / opt_rate;
    uint64_t t0 = now_ns(), max_behind = 0, tm0 = 0, tm1 = 0;
    double cpu0 = 0, bcpu0 = 0;
    long long seq = 0, queue_full = 0;
    while (seq < total && !interrupted) {
        uint64_t now = now_ns();
        long long due = (long long)((double)(now - t0) / period_ns) + 1;
        if (due > total) due = total;
        for (; seq < due; seq++) {
            if (seq == warm_msgs) {
                atomic_store(&s->window_lo, seq);
                atomic_store(&s->window_hi, total);
                atomic_store(&ack_window_lo, seq);
                tm0 = now_ns();
                cpu0 = cpu_self_ns();
                bcpu0 = broker_cpu_ns();
            }
            uint64_t sched = t0 + (uint64_t)(seq * period_ns);
            uint64_t sent = now_ns();
            if (sent > sched && sent - sched > max_behind && seq >= warm_msgs) max_behind = sent - sched;
            memcpy(payload, &sent, 8);
            uint64_t sq = (uint64_t)seq;
            memcpy(payload + 8, &sq, 8);
            while (rd_kafka_produce(prkt, 0, RD_KAFKA_MSG_F_COPY, payload, (size_t)opt_size, NULL, 0, NULL) == -1) {
                if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
                queue_full++;
                rd_kafka_poll(prk, 1);
            }
        }
        rd_kafka_poll(prk, 0);
        if (seq >= total) break;
        uint64_t next = t0 + (uint64_t)(seq * period_ns);
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    tm1 = now_ns();
    double cpu1 = cpu_self_ns(), bcpu1 = broker_cpu_ns();
    long long produced = seq;
    /* Wait (up to 10 s) for the window's messages to arrive. */
    uint64_t drain_deadline = now_ns() + 10000000000ull;
    while (atomic_load(&s->received) < produced - warm_msgs && now_ns() < drain_deadline && !interrupted) {
        rd_kafka_poll(prk, 10);
    }
    rd_kafka_flush(prk, 5000);
    atomic_store(&s->stop, 1);
    pthread_join(th, NULL);
    rd_kafka_consume_stop(crkt, 0);

    long long window = produced > warm_msgs ? produced - warm_msgs : 0;
    double secs = (double)(tm1 - tm0) / 1e9;
    long long recv = atomic_load(&s->received);
    printf("mode=latency rate=%.0f achieved=%.0f seconds=%.1f warmup=%.1f acks=%s size=%d sent=%lld received=%lld lost=%lld dup=%lld delivery_errors=%lld"
           " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f min_ms=%.3f producer_behind_max_ms=%.3f",
           opt_rate, secs > 0 ? window / secs : 0, secs, opt_warmup, opt_acks, opt_size, window, recv, window - recv,
           (long long)atomic_load(&s->duplicates), (long long)atomic_load(&delivery_errors),
           hist_quantile(&s->hist, 0.50) / 1e6, hist_quantile(&s->hist, 0.90) / 1e6, hist_quantile(&s->hist, 0.99) / 1e6,
           hist_quantile(&s->hist, 0.999) / 1e6, (double)s->hist.max / 1e6, (double)s->hist.min / 1e6, (double)max_behind / 1e6);
    printf(" ack_p50_ms=%.3f ack_p99_ms=%.3f ack_max_ms=%.3f", hist_quantile(ack_hist, 0.50) / 1e6,
           hist_quantile(ack_hist, 0.99) / 1e6, (double)ack_hist->max / 1e6);
    print_common_tail(secs, window, cpu1 - cpu0, (bcpu0 >= 0 && bcpu1 >= 0) ? bcpu1 - bcpu0 : -1);
    if (s->first_error[0]) fprintf(stderr, "rdkafka-bench: consumer error: %s\n", s->first_error);
    if (first_delivery_error[0]) fprintf(stderr, "rdkafka-bench: first delivery error: %s\n", first_delivery_error);

    rd_kafka_topic_destroy(crkt);
    rd_kafka_destroy(crk);
    rd_kafka_topic_destroy(prkt);
    rd_kafka_destroy(prk);
    return (recv == window && window > 0 && !interrupted) ? 0 : 2;
}

/* ---------------------------------------------------------------------------------------------- */
/* throughput: produce                                                                             */

static int run_produce(void) {
    double linger = opt_linger < 0 ? 5 : opt_linger;
    rd_kafka_t *rk = new_handle(RD_KAFKA_PRODUCER, producer_conf(linger));
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, opt_topic, NULL);
    int have = topic_partitions(rk, rkt);
    int parts = opt_partitions > 0 ? opt_partitions : have;
    if (parts > have) die("topic %s has %d partitions, --partitions %d", opt_topic, have, parts);

    /* One message per partition first, so every leader's connection is up before the clock starts. */
    char *payload = malloc((size_t)opt_size);
    fill_payload(payload, opt_size);
    for (int p = 0; p < parts; p++)
        if (rd_kafka_produce(rkt, p, 0, payload, (size_t)opt_size, NULL, 0, NULL) == -1) die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
    if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("warm-up flush timed out");
    if (atomic_load(&delivery_errors)) die("warm-up delivery failed: %s", first_delivery_error);
    atomic_store(&delivered, 0);

    double cpu0 = cpu_self_ns(), bcpu0 = broker_cpu_ns();
    uint64_t t0 = now_ns();
    long long full = 0;
    int p = 0;
    /* Runs of PRODUCE_RUN messages per partition, each enqueued by one rd_kafka_produce_batch call
     * (one queue lock per run, not per message), partitions taken in turn: the partitions still
     * share the messages evenly, and the client's per-message cost does not grow with their count
     * (per-message round-robin over 100 partitions cost the client 60 % more CPU per message). */
    enum { PRODUCE_RUN = 100 };
    rd_kafka_message_t run[PRODUCE_RUN];
    for (long long i = 0; i < opt_messages && !interrupted;) {
        int n = opt_messages - i < PRODUCE_RUN ? (int)(opt_messages - i) : PRODUCE_RUN;
        memset(run, 0, sizeof run);
        for (int k = 0; k < n; k++) { run[k].payload = payload; run[k].len = (size_t)opt_size; }
        int left = n;
        while (left > 0 && !interrupted) {
            /* Flags 0: librdkafka neither copies nor frees the payload (it is one static buffer). */
            int sent = rd_kafka_produce_batch(rkt, p, 0, run, left);
            if (sent == left) break;
            int kept = 0; /* the messages it refused go again, after a poll */
            for (int k = 0; k < left; k++) {
                if (!run[k].err) continue;
                if (run[k].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(run[k].err));
                run[kept] = run[k];
                run[kept].err = 0;
                kept++;
            }
            left = kept;
            full++;
            rd_kafka_poll(rk, 1);
        }
        i += n;
        if (++p == parts) p = 0;
        if ((i & 4095) < PRODUCE_RUN) rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0 && !interrupted) rd_kafka_poll(rk, 5);
    uint64_t t1 = now_ns();
    double cpu1 = cpu_self_ns(), bcpu1 = broker_cpu_ns();
    double secs = (double)(t1 - t0) / 1e9;
    long long ok = atomic_load(&delivered), errs = atomic_load(&delivery_errors);
    printf("mode=produce topic=%s partitions=%d acks=%s size=%d batch=%d linger_ms=%g messages=%lld delivered=%lld errors=%lld seconds=%.3f msg_s=%.0f mb_s=%.1f",
           opt_topic, parts, opt_acks, opt_size, opt_batch, linger, opt_messages, ok, errs, secs, ok / secs,
           (double)ok * opt_size / secs / 1048576.0);
    print_common_tail(secs, ok, cpu1 - cpu0, (bcpu0 >= 0 && bcpu1 >= 0) ? bcpu1 - bcpu0 : -1);
    if (errs) fprintf(stderr, "rdkafka-bench: %lld delivery errors, first: %s\n", errs, first_delivery_error);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return (errs == 0 && ok == opt_messages) ? 0 : 2;
}

/* ---------------------------------------------------------------------------------------------- */
/* throughput: consume                                                                             */

static int run_consume(void) {
    rd_kafka_conf_t *conf = base_conf();
    conf_set(conf, "enable.partition.eof", "false");
    /* A v0 Fetch response carries up to fetch.message.max.bytes (1 MiB) per partition: 100
     * partitions exceed librdkafka's default 100 MB response limit, and it then drops the
     * connection. Allow the largest response (librdkafka allocates only what arrives). */
    conf_set(conf, "receive.message.max.bytes", "2147483647");
    conf_extra(conf);
    rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf);
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    char err[256];
    if (rd_kafka_topic_conf_set(tc, "auto.commit.enable", "false", err, sizeof err) != RD_KAFKA_CONF_OK) die("%s", err);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, opt_topic, tc);
    int have = topic_partitions(rk, rkt);
    int parts = opt_partitions > 0 ? opt_partitions : have;
    if (parts > have) die("topic %s has %d partitions, --partitions %d", opt_topic, have, parts);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);

    double cpu0 = cpu_self_ns(), bcpu0 = broker_cpu_ns();
    uint64_t t0 = now_ns();
    for (int p = 0; p < parts; p++)
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1)
            die("consume_start_queue %d: %s", p, rd_kafka_err2str(rd_kafka_last_error()));
    long long count = 0, bytes = 0;
    uint64_t last_progress = now_ns();
    rd_kafka_message_t *batch[10000];
    char first_err[256] = "";
    while (count < opt_messages && !interrupted) {
        long long want = opt_messages - count < 10000 ? opt_messages - count : 10000;
        ssize_t n = rd_kafka_consume_batch_queue(q, 200, batch, (size_t)want);
        for (ssize_t i = 0; i < n; i++) {
            if (batch[i]->err) {
                if (batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !first_err[0])
                    snprintf(first_err, sizeof first_err, "%s", rd_kafka_message_errstr(batch[i]));
            } else {
                count++;
                bytes += (long long)batch[i]->len;
            }
            rd_kafka_message_destroy(batch[i]);
        }
        if (n > 0) last_progress = now_ns();
        else if (now_ns() - last_progress > 10000000000ull) break; /* nothing for 10 s: the topic holds fewer */
    }
    uint64_t t1 = count >= opt_messages ? now_ns() : last_progress;
    double cpu1 = cpu_self_ns(), bcpu1 = broker_cpu_ns();
    double secs = (double)(t1 - t0) / 1e9;
    printf("mode=consume topic=%s partitions=%d messages=%lld consumed=%lld seconds=%.3f msg_s=%.0f mb_s=%.1f",
           opt_topic, parts, opt_messages, count, secs, count / secs, (double)bytes / secs / 1048576.0);
    print_common_tail(secs, count, cpu1 - cpu0, (bcpu0 >= 0 && bcpu1 >= 0) ? bcpu1 - bcpu0 : -1);
    if (first_err[0]) fprintf(stderr, "rdkafka-bench: consumer error: %s\n", first_err);
    for (int p = 0; p < parts; p++) rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return count >= opt_messages ? 0 : 2;
}

/* ---------------------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: rdkafka-bench --mode latency|produce|consume --topic T [options]\n"
            "  --bootstrap H:P      broker(s) (default 127.0.0.1:9092)\n"
            "  --acks A             request.required.acks (default 1)\n"
            "  --size S             payload bytes (default 100)\n"
            "  --rate R             latency: messages per second (default 10000)\n"
            "  --seconds D          latency: measured seconds (default 60)\n"
            "  --warmup W           latency: seconds sent before the measured part (default 5)\n"
            "  --messages N         produce/consume: messages (default 1000000)\n"
            "  --partitions P       produce/consume: partitions 0..P-1 (default: all of the topic)\n"
            "  --batch B            batch.num.messages (default 10000)\n"
            "  --linger-ms L        queue.buffering.max.ms (default 0 for latency, 5 for produce)\n"
            "  --broker-pids LIST   comma-separated broker pids: report broker CPU ns/msg and RSS\n"
            "  -X key=value         any librdkafka property (repeatable)\n"
            "Prints one line of key=value pairs.\n");
}

int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"mode", required_argument, 0, 'm'},      {"bootstrap", required_argument, 0, 'b'},
        {"topic", required_argument, 0, 't'},     {"rate", required_argument, 0, 'r'},
        {"seconds", required_argument, 0, 'd'},   {"warmup", required_argument, 0, 'w'},
        {"acks", required_argument, 0, 'a'},      {"size", required_argument, 0, 's'},
        {"messages", required_argument, 0, 'n'},  {"partitions", required_argument, 0, 'p'},
        {"batch", required_argument, 0, 'B'},     {"linger-ms", required_argument, 0, 'l'},
        {"broker-pids", required_argument, 0, 'P'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:b:t:r:d:w:a:s:n:p:B:l:P:X:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': opt_mode = optarg; break;
        case 'b': opt_bootstrap = optarg; break;
        case 't': opt_topic = optarg; break;
        case 'r': opt_rate = atof(optarg); break;
        case 'd': opt_seconds = atof(optarg); break;
        case 'w': opt_warmup = atof(optarg); break;
        case 'a': opt_acks = optarg; break;
        case 's': opt_size = atoi(optarg); break;
        case 'n': opt_messages = atoll(optarg); break;
        case 'p': opt_partitions = atoi(optarg); break;
        case 'B': opt_batch = atoi(optarg); break;
        case 'l': opt_linger = atof(optarg); break;
        case 'P': snprintf(opt_broker_pids, sizeof opt_broker_pids, "%s", optarg); break;
        case 'X':
            if (opt_extra_n == 64) die("too many -X");
            opt_extra[opt_extra_n++] = optarg;
            break;
        case 'v': opt_verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (!opt_mode || !opt_topic) { usage(stderr); return 1; }
    if (opt_size < 1 || opt_rate <= 0 || opt_seconds <= 0 || opt_warmup < 0 || opt_messages < 1) die("bad numeric option");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (strcmp(opt_mode, "latency") == 0) return run_latency();
    if (strcmp(opt_mode, "produce") == 0) return run_produce();
    if (strcmp(opt_mode, "consume") == 0) return run_consume();
    die("unknown --mode %s", opt_mode);
}
