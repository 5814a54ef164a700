/*
 * fault_shim.c: an LD_PRELOAD library that makes a broker's fsync and file writes fail on demand.
 *
 * Built by the fault harness (KafkaTestSupport/Faults) or by hand:
 *     gcc -shared -fPIC -O2 -o fault_shim.so Tests/faults/fault_shim.c -ldl
 * and loaded with
 *     LD_PRELOAD=/path/fault_shim.so FAULT_SHIM_CONTROL=/path/control FAULT_SHIM_PREFIX=/path/log-dir kafka-server ...
 *
 * FAULT_SHIM_CONTROL names a file of (at least) 2 bytes that the shim maps shared, so that the
 * harness switches faults by writing a byte, and the broker pays one memory read per call:
 *     byte 0 == '1'  fsync / fdatasync / msync fail with EIO
 *     byte 1 == '1'  write / pwrite / pwritev / writev to a regular file under FAULT_SHIM_PREFIX
 *                    fail with EIO ('2': with ENOSPC)
 * Sockets, pipes and files outside the prefix are never touched. Without FAULT_SHIM_CONTROL the
 * shim only forwards.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile const char *control;   /* mapped control bytes, or NULL */
static char prefix[4096];
static size_t prefix_len;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);

static void init(void) {
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_msync = dlsym(RTLD_NEXT, "msync");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    const char *path = getenv("FAULT_SHIM_CONTROL");
    const char *pre = getenv("FAULT_SHIM_PREFIX");
    if (pre) {
        strncpy(prefix, pre, sizeof prefix - 1);
        prefix_len = strlen(prefix);
    }
    if (!path) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) control = p;
}

static inline char flag(int i) {
    pthread_once(&once, init);
    return control ? control[i] : 0;
}

/* True when fd is a regular file under the prefix (only asked while a write fault is on). */
static int in_scope(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (prefix_len == 0) return 1;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return strncmp(target, prefix, prefix_len) == 0;
}

static int write_fault(int fd) {
    char f = flag(1);
    if (f != '1' && f != '2') return 0;
    if (!in_scope(fd)) return 0;
    errno = f == '2' ? ENOSPC : EIO;
    return 1;
}

int fsync(int fd) {
    if (flag(0) == '1') { errno = EIO; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    if (flag(0) == '1') { errno = EIO; return -1; }
    return real_fdatasync(fd);
}

int msync(void *addr, size_t len, int flags) {
    if (flag(0) == '1') { errno = EIO; return -1; }
    return real_msync(addr, len, flags);
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (write_fault(fd)) return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (write_fault(fd)) return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    if (write_fault(fd)) return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    if (write_fault(fd)) return -1;
    return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    if (write_fault(fd)) return -1;
    return real_pwritev(fd, iov, cnt, off);
}
