#ifndef ZKSHIM_H
#define ZKSHIM_H

/*
 * A small C layer over the ZooKeeper multi-threaded C client.
 *
 * Swift never sees <zookeeper/zookeeper.h>: that header exposes event types and
 * states as `extern const int`, a mutable global ACL, varargs and one callback
 * signature per operation. Here everything is a real enum, every callback has
 * a `void *ctx` first argument, and there are only three callback shapes:
 *
 *   zks_event_cb    session and watch events (one per handle, on the client's
 *                   completion thread, in order)
 *   zks_result_cb   result of create-less single operations: get / set /
 *                   exists / delete (data and stat optional)
 *   zks_strings_cb  result of get_children (all names) and create (one name:
 *                   the created path, with the sequential suffix)
 *
 * Every asynchronous operation returns ZKS_OK when it was submitted; only then
 * will its callback run, exactly once (possibly with an error code, e.g.
 * ZKS_CONNECTIONLOSS, ZKS_SESSIONEXPIRED or ZKS_CLOSING). Any other return
 * value means the callback will never run.
 *
 * Callbacks run on the C client's own threads: copy strings before returning.
 */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zks_handle zks_handle;

typedef enum {
    ZKS_EVENT_CREATED = 1,
    ZKS_EVENT_DELETED = 2,
    ZKS_EVENT_CHANGED = 3,
    ZKS_EVENT_CHILD = 4,
    ZKS_EVENT_SESSION = 5,
    ZKS_EVENT_NOTWATCHING = 6,
    ZKS_EVENT_UNKNOWN = 99
} zks_event_type;

typedef enum {
    ZKS_STATE_CLOSED = 0,          /* handle closed or not yet started */
    ZKS_STATE_CONNECTING = 1,
    ZKS_STATE_ASSOCIATING = 2,
    ZKS_STATE_CONNECTED = 3,
    ZKS_STATE_READONLY = 4,
    ZKS_STATE_EXPIRED = 5,
    ZKS_STATE_AUTH_FAILED = 6,
    ZKS_STATE_NOTCONNECTED = 7,
    ZKS_STATE_UNKNOWN = 99
} zks_state;

typedef enum {
    ZKS_CREATE_PERSISTENT = 0,
    ZKS_CREATE_EPHEMERAL = 1,
    ZKS_CREATE_PERSISTENT_SEQUENTIAL = 2,
    ZKS_CREATE_EPHEMERAL_SEQUENTIAL = 3
} zks_create_mode;

/* Same numeric values as the C client's ZOO_ERRORS. */
typedef enum {
    ZKS_OK = 0,
    ZKS_SYSTEMERROR = -1,
    ZKS_RUNTIMEINCONSISTENCY = -2,
    ZKS_DATAINCONSISTENCY = -3,
    ZKS_CONNECTIONLOSS = -4,
    ZKS_MARSHALLINGERROR = -5,
    ZKS_UNIMPLEMENTED = -6,
    ZKS_OPERATIONTIMEOUT = -7,
    ZKS_BADARGUMENTS = -8,
    ZKS_INVALIDSTATE = -9,
    ZKS_APIERROR = -100,
    ZKS_NONODE = -101,
    ZKS_NOAUTH = -102,
    ZKS_BADVERSION = -103,
    ZKS_NOCHILDRENFOREPHEMERALS = -108,
    ZKS_NODEEXISTS = -110,
    ZKS_NOTEMPTY = -111,
    ZKS_SESSIONEXPIRED = -112,
    ZKS_INVALIDCALLBACK = -113,
    ZKS_INVALIDACL = -114,
    ZKS_AUTHFAILED = -115,
    ZKS_CLOSING = -116,
    ZKS_NOTHING = -117,
    ZKS_SESSIONMOVED = -118
} zks_error;

typedef enum {
    ZKS_LOG_ERROR = 1,
    ZKS_LOG_WARN = 2,
    ZKS_LOG_INFO = 3,
    ZKS_LOG_DEBUG = 4
} zks_log_level;

typedef struct {
    int64_t czxid;
    int64_t mzxid;
    int64_t ctime;
    int64_t mtime;
    int32_t version;
    int32_t cversion;
    int32_t aversion;
    int64_t ephemeral_owner;
    int32_t data_length;
    int32_t num_children;
    int64_t pzxid;
} zks_stat;

typedef struct {
    int64_t session_id;
    char password[16];
} zks_session;

/* type, state, path (never NULL; "" for session events). */
typedef void (*zks_event_cb)(void *ctx, zks_event_type type, zks_state state, const char *path);
/* rc; data is NULL with data_len -1 for a node without data (or no data in this result);
   stat is NULL when the result carries none (delete, or an error). */
typedef void (*zks_result_cb)(void *ctx, int rc, const char *data, int data_len, const zks_stat *stat);
/* rc; count strings (count 0 and strings NULL on error). */
typedef void (*zks_strings_cb)(void *ctx, int rc, const char *const *strings, int count);
/* called once a close has finished (all client threads joined). */
typedef void (*zks_done_cb)(void *ctx);
/* level, a formatted log line without trailing newline. */
typedef void (*zks_log_cb)(zks_log_level level, const char *message);

/*
 * Routes the C client's log output (for all handles opened afterwards) to cb,
 * and sets the global level; messages above max_level are not even formatted.
 * Passing cb NULL sends them to stderr (the C client's default).
 */
void zks_set_log(zks_log_cb cb, zks_log_level max_level);

/*
 * Opens a handle. host: "h1:p1,h2:p2[/chroot]". The event callback is installed
 * before the connection starts (the first event can arrive before this returns).
 * session: NULL for a new session, else a session to resume.
 * Returns NULL on failure (errno is set: EINVAL for a bad connect string).
 */
zks_handle *zks_init(const char *host, int session_timeout_ms, const zks_session *session,
                     zks_event_cb event_cb, void *event_ctx);

/*
 * Closes the handle on a new detached thread (zookeeper_close blocks: it may send
 * a close request and it joins the client's threads), then calls done(done_ctx) on
 * that thread. After zks_close_async returns, the handle must not be used again.
 * No event or result callback of this handle runs after done is called.
 * Returns ZKS_OK, or ZKS_SYSTEMERROR if no thread could be started (then the handle
 * was closed synchronously on the calling thread before returning, and done has run).
 */
int zks_close_async(zks_handle *h, zks_done_cb done, void *done_ctx);

zks_state zks_get_state(zks_handle *h);
/* Fills *out with the current session id and password (id 0 before the first connection). */
void zks_get_session(zks_handle *h, zks_session *out);
/* Negotiated session timeout in ms (the requested one before the first connection). */
int zks_session_timeout(zks_handle *h);

/* data NULL means a node without data (stored as null); data_len is ignored then. */
int zks_create(zks_handle *h, const char *path, const char *data, int data_len,
               zks_create_mode mode, zks_strings_cb cb, void *ctx);
int zks_get(zks_handle *h, const char *path, int watch, zks_result_cb cb, void *ctx);
int zks_set(zks_handle *h, const char *path, const char *data, int data_len, int version,
            zks_result_cb cb, void *ctx);
/* ZKS_NONODE in the callback means "does not exist" (the watch, if asked for, is still set). */
int zks_exists(zks_handle *h, const char *path, int watch, zks_result_cb cb, void *ctx);
int zks_get_children(zks_handle *h, const char *path, int watch, zks_strings_cb cb, void *ctx);
int zks_delete(zks_handle *h, const char *path, int version, zks_result_cb cb, void *ctx);

/* Human-readable text for a zks_error / C client error code. */
const char *zks_error_text(int rc);

#ifdef __cplusplus
}
#endif

#endif
