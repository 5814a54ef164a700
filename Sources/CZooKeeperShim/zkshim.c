#include "zkshim.h"
#ifndef THREADED
#define THREADED 1
#endif
#include <zookeeper/zookeeper.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct zks_handle {
    zhandle_t *zh;
    zks_event_cb event_cb;
    void *event_ctx;
};

/* ---------------------------------------------------------------- logging */

static zks_log_cb g_log_cb = NULL; /* accessed with __atomic builtins */

static zks_log_level level_of_line(const char *line) {
    /* The C client formats "<time>:<pid>(0x<tid>):ZOO_<LEVEL>@<func>@<line>: <msg>". */
    const char *p = strstr(line, "ZOO_");
    if (p == NULL) return ZKS_LOG_INFO;
    p += 4;
    if (strncmp(p, "ERROR", 5) == 0) return ZKS_LOG_ERROR;
    if (strncmp(p, "WARN", 4) == 0) return ZKS_LOG_WARN;
    if (strncmp(p, "DEBUG", 5) == 0) return ZKS_LOG_DEBUG;
    return ZKS_LOG_INFO;
}

static void log_trampoline(const char *message) {
    zks_log_cb cb = __atomic_load_n(&g_log_cb, __ATOMIC_ACQUIRE);
    if (cb == NULL || message == NULL) return;
    char buf[1024];
    size_t n = strlen(message);
    if (n >= sizeof(buf)) n = sizeof(buf) - 1;
    memcpy(buf, message, n);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    cb(level_of_line(buf), buf);
}

void zks_set_log(zks_log_cb cb, zks_log_level max_level) {
    __atomic_store_n(&g_log_cb, cb, __ATOMIC_RELEASE);
    ZooLogLevel level = ZOO_LOG_LEVEL_ERROR;
    switch (max_level) {
    case ZKS_LOG_ERROR: level = ZOO_LOG_LEVEL_ERROR; break;
    case ZKS_LOG_WARN: level = ZOO_LOG_LEVEL_WARN; break;
    case ZKS_LOG_INFO: level = ZOO_LOG_LEVEL_INFO; break;
    case ZKS_LOG_DEBUG: level = ZOO_LOG_LEVEL_DEBUG; break;
    }
    zoo_set_debug_level(level);
}

/* ---------------------------------------------------------- translations */

static zks_state translate_state(int state) {
    if (state == 0) return ZKS_STATE_CLOSED;
    if (state == ZOO_CONNECTING_STATE) return ZKS_STATE_CONNECTING;
    if (state == ZOO_ASSOCIATING_STATE) return ZKS_STATE_ASSOCIATING;
    if (state == ZOO_CONNECTED_STATE) return ZKS_STATE_CONNECTED;
    if (state == ZOO_READONLY_STATE) return ZKS_STATE_READONLY;
    if (state == ZOO_EXPIRED_SESSION_STATE) return ZKS_STATE_EXPIRED;
    if (state == ZOO_AUTH_FAILED_STATE) return ZKS_STATE_AUTH_FAILED;
    if (state == ZOO_NOTCONNECTED_STATE) return ZKS_STATE_NOTCONNECTED;
    return ZKS_STATE_UNKNOWN;
}

static zks_event_type translate_type(int type) {
    if (type == ZOO_CREATED_EVENT) return ZKS_EVENT_CREATED;
    if (type == ZOO_DELETED_EVENT) return ZKS_EVENT_DELETED;
    if (type == ZOO_CHANGED_EVENT) return ZKS_EVENT_CHANGED;
    if (type == ZOO_CHILD_EVENT) return ZKS_EVENT_CHILD;
    if (type == ZOO_SESSION_EVENT) return ZKS_EVENT_SESSION;
    if (type == ZOO_NOTWATCHING_EVENT) return ZKS_EVENT_NOTWATCHING;
    return ZKS_EVENT_UNKNOWN;
}

static void copy_stat(zks_stat *out, const struct Stat *in) {
    out->czxid = in->czxid;
    out->mzxid = in->mzxid;
    out->ctime = in->ctime;
    out->mtime = in->mtime;
    out->version = in->version;
    out->cversion = in->cversion;
    out->aversion = in->aversion;
    out->ephemeral_owner = in->ephemeralOwner;
    out->data_length = in->dataLength;
    out->num_children = in->numChildren;
    out->pzxid = in->pzxid;
}

/* ------------------------------------------------------------- handles */

static void watcher_trampoline(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    struct zks_handle *h = (struct zks_handle *)ctx;
    if (h == NULL || h->event_cb == NULL) return;
    h->event_cb(h->event_ctx, translate_type(type), translate_state(state), path ? path : "");
}

zks_handle *zks_init(const char *host, int session_timeout_ms, const zks_session *session,
                     zks_event_cb event_cb, void *event_ctx) {
    struct zks_handle *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    h->event_cb = event_cb;
    h->event_ctx = event_ctx;
    clientid_t cid;
    const clientid_t *cidp = NULL;
    if (session != NULL && session->session_id != 0) {
        memset(&cid, 0, sizeof(cid));
        cid.client_id = session->session_id;
        memcpy(cid.passwd, session->password, sizeof(cid.passwd));
        cidp = &cid;
    }
    log_callback_fn logfn = __atomic_load_n(&g_log_cb, __ATOMIC_ACQUIRE) ? log_trampoline : NULL;
    zhandle_t *zh = zookeeper_init2(host, watcher_trampoline, session_timeout_ms, cidp, h, 0, logfn);
    if (zh == NULL) {
        int saved = errno;
        free(h);
        errno = saved;
        return NULL;
    }
    /* Published to other threads only through the caller (under its own lock). */
    h->zh = zh;
    return h;
}

struct close_job {
    struct zks_handle *h;
    zks_done_cb done;
    void *done_ctx;
};

static void run_close(struct close_job *job) {
    zookeeper_close(job->h->zh);
    free(job->h);
    if (job->done) job->done(job->done_ctx);
    free(job);
}

static void *close_thread(void *arg) {
    run_close((struct close_job *)arg);
    return NULL;
}

int zks_close_async(zks_handle *h, zks_done_cb done, void *done_ctx) {
    struct close_job *job = malloc(sizeof(*job));
    if (job == NULL) {
        zookeeper_close(h->zh);
        free(h);
        if (done) done(done_ctx);
        return ZKS_SYSTEMERROR;
    }
    job->h = h;
    job->done = done;
    job->done_ctx = done_ctx;
    pthread_attr_t attr;
    pthread_t tid;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&tid, &attr, close_thread, job) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!ok) {
        run_close(job);
        return ZKS_SYSTEMERROR;
    }
    return ZKS_OK;
}

zks_state zks_get_state(zks_handle *h) {
    return translate_state(zoo_state(h->zh));
}

void zks_get_session(zks_handle *h, zks_session *out) {
    memset(out, 0, sizeof(*out));
    const clientid_t *cid = zoo_client_id(h->zh);
    if (cid == NULL) return;
    out->session_id = cid->client_id;
    memcpy(out->password, cid->passwd, sizeof(out->password));
}

int zks_session_timeout(zks_handle *h) {
    return zoo_recv_timeout(h->zh);
}

/* ---------------------------------------------------------- operations */

struct op_ctx {
    zks_result_cb result_cb;
    zks_strings_cb strings_cb;
    void *ctx;
};

static struct op_ctx *new_result_op(zks_result_cb cb, void *ctx) {
    struct op_ctx *op = calloc(1, sizeof(*op));
    if (op) {
        op->result_cb = cb;
        op->ctx = ctx;
    }
    return op;
}

static struct op_ctx *new_strings_op(zks_strings_cb cb, void *ctx) {
    struct op_ctx *op = calloc(1, sizeof(*op));
    if (op) {
        op->strings_cb = cb;
        op->ctx = ctx;
    }
    return op;
}

static void data_done(int rc, const char *value, int value_len, const struct Stat *stat, const void *data) {
    struct op_ctx *op = (struct op_ctx *)data;
    zks_stat s;
    const zks_stat *sp = NULL;
    if (rc == ZOK && stat != NULL) {
        copy_stat(&s, stat);
        sp = &s;
    }
    if (rc != ZOK || value == NULL) {
        value = NULL;
        value_len = -1;
    }
    op->result_cb(op->ctx, rc, value, value_len, sp);
    free(op);
}

static void stat_done(int rc, const struct Stat *stat, const void *data) {
    struct op_ctx *op = (struct op_ctx *)data;
    zks_stat s;
    const zks_stat *sp = NULL;
    if (rc == ZOK && stat != NULL) {
        copy_stat(&s, stat);
        sp = &s;
    }
    op->result_cb(op->ctx, rc, NULL, -1, sp);
    free(op);
}

static void void_done(int rc, const void *data) {
    struct op_ctx *op = (struct op_ctx *)data;
    op->result_cb(op->ctx, rc, NULL, -1, NULL);
    free(op);
}

static void string_done(int rc, const char *value, const void *data) {
    struct op_ctx *op = (struct op_ctx *)data;
    if (rc == ZOK && value != NULL) {
        const char *one[1] = { value };
        op->strings_cb(op->ctx, rc, one, 1);
    } else {
        op->strings_cb(op->ctx, rc, NULL, 0);
    }
    free(op);
}

static void strings_done(int rc, const struct String_vector *strings, const void *data) {
    struct op_ctx *op = (struct op_ctx *)data;
    if (rc == ZOK && strings != NULL) {
        op->strings_cb(op->ctx, rc, (const char *const *)strings->data, strings->count);
    } else {
        op->strings_cb(op->ctx, rc, NULL, 0);
    }
    free(op);
}

static int finish_submit(int rc, struct op_ctx *op) {
    if (rc != ZOK) free(op);
    return rc;
}

int zks_create(zks_handle *h, const char *path, const char *data, int data_len,
               zks_create_mode mode, zks_strings_cb cb, void *ctx) {
    int flags = 0;
    switch (mode) {
    case ZKS_CREATE_PERSISTENT: flags = 0; break;
    case ZKS_CREATE_EPHEMERAL: flags = ZOO_EPHEMERAL; break;
    case ZKS_CREATE_PERSISTENT_SEQUENTIAL: flags = ZOO_SEQUENCE; break;
    case ZKS_CREATE_EPHEMERAL_SEQUENTIAL: flags = ZOO_EPHEMERAL | ZOO_SEQUENCE; break;
    }
    struct op_ctx *op = new_strings_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    /* The open ACL is only read by the client; it is never modified. */
    int rc = zoo_acreate(h->zh, path, data, data ? data_len : -1, &ZOO_OPEN_ACL_UNSAFE, flags,
                         string_done, op);
    return finish_submit(rc, op);
}

int zks_get(zks_handle *h, const char *path, int watch, zks_result_cb cb, void *ctx) {
    struct op_ctx *op = new_result_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    return finish_submit(zoo_aget(h->zh, path, watch, data_done, op), op);
}

int zks_set(zks_handle *h, const char *path, const char *data, int data_len, int version,
            zks_result_cb cb, void *ctx) {
    struct op_ctx *op = new_result_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    return finish_submit(zoo_aset(h->zh, path, data, data ? data_len : -1, version, stat_done, op), op);
}

int zks_exists(zks_handle *h, const char *path, int watch, zks_result_cb cb, void *ctx) {
    struct op_ctx *op = new_result_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    return finish_submit(zoo_aexists(h->zh, path, watch, stat_done, op), op);
}

int zks_get_children(zks_handle *h, const char *path, int watch, zks_strings_cb cb, void *ctx) {
    struct op_ctx *op = new_strings_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    return finish_submit(zoo_aget_children(h->zh, path, watch, strings_done, op), op);
}

int zks_delete(zks_handle *h, const char *path, int version, zks_result_cb cb, void *ctx) {
    struct op_ctx *op = new_result_op(cb, ctx);
    if (op == NULL) return ZKS_SYSTEMERROR;
    return finish_submit(zoo_adelete(h->zh, path, version, void_done, op), op);
}

const char *zks_error_text(int rc) {
    return zerror(rc);
}
