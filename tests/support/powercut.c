/*
 * powercut.so: what a power cut would leave of a directory.
 *
 * Loaded with LD_PRELOAD into the switch by tests/power_loss.rs. It watches
 * every file under $POWERCUT_DIR and keeps, under $POWERCUT_STATE, the part
 * of it that is durable: what was written to a file before an fsync or
 * fdatasync of that file, and the names of a directory as they were at its
 * last fsync. sync_file_range makes nothing durable (it flushes neither the
 * disk's write cache nor the file's metadata), and neither does a rename or
 * a create until its directory is synced. When the switch is killed, the
 * harness builds the power cut's image from that state and from the real
 * files: the durable content, plus none, all or a random subset (4 KiB
 * pages) of what was written since.
 *
 * State directory:
 *   inodes/<ino>.<gen>  the durable content of each watched file, by
 *                  inode and generation (an inode number freed by a
 *                  removal and given to a new file starts a new generation)
 *   names          the durable names: "D <path>" for a directory, "F
 *                  <ino>.<gen> <path>" for a file, paths relative to
 *                  $POWERCUT_DIR; replaced whole (temporary file and
 *                  rename) on each change
 *   live           "<ino>.<gen>" of every watched inode, as they are now;
 *                  replaced whole when a generation starts
 *
 * Everything present when the library loads is durable. Writes are marked
 * dirty after they return, under one lock; an fsync copies the dirty pages
 * to the state under that lock, so a page written while it copies stays
 * dirty for the next one. The library's own file operations call the real
 * functions and are never watched. Memory maps that could write a watched
 * file are refused, so nothing reaches it unseen.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_FDS 65536
#define MAX_INODES 8192
#define MAX_NAMES 16384

/* The real functions. */
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_rename)(const char *, const char *);

struct inode {
    ino_t ino;
    unsigned gen;
    uint64_t *dirty; /* one bit per page written since the last sync */
    size_t words;
    int size_dirty; /* truncated or extended without a write */
};

struct name {
    int is_dir;
    ino_t ino;
    unsigned gen;
    char *path; /* relative to the watched directory */
};

static void save_live(void);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char watched[PATH_MAX];
static size_t watched_len;
static char state[PATH_MAX];
static int active;

/* Per descriptor: 0 not watched, else 1 + index into inodes (files) or -1
 * for a watched directory. */
static int fd_inode[MAX_FDS];
static struct inode inodes[MAX_INODES];
static int n_inodes;
static struct name names[MAX_NAMES];
static int n_names;

static void die(const char *what) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "powercut: %s: %s\n", what, strerror(errno));
    if (n > 0) {
        ssize_t ignored = real_write(2, msg, (size_t)n);
        (void)ignored;
    }
    abort();
}

#define RESOLVE(name) \
    do { \
        *(void **)&real_##name = dlsym(RTLD_NEXT, #name); \
        if (!real_##name) { \
            errno = ENOSYS; \
            die("dlsym " #name); \
        } \
    } while (0)

static struct inode *inode_of(ino_t ino) {
    for (int i = 0; i < n_inodes; i++)
        if (inodes[i].ino == ino)
            return &inodes[i];
    if (n_inodes == MAX_INODES) {
        errno = ENOSPC;
        die("too many inodes");
    }
    struct inode *n = &inodes[n_inodes++];
    memset(n, 0, sizeof *n);
    n->ino = ino;
    return n;
}

/* `ino` was just given to a new, empty file. */
static struct inode *created(ino_t ino) {
    for (int i = 0; i < n_inodes; i++) {
        if (inodes[i].ino == ino) {
            struct inode *n = &inodes[i];
            n->gen++;
            if (n->dirty)
                memset(n->dirty, 0, n->words * sizeof *n->dirty);
            n->size_dirty = 0;
            save_live();
            return n;
        }
    }
    struct inode *n = inode_of(ino);
    save_live();
    return n;
}

static void mark(struct inode *n, off_t off, size_t len) {
    if (len == 0)
        return;
    size_t first = (size_t)off / PAGE, last = ((size_t)off + len - 1) / PAGE;
    size_t need = last / 64 + 1;
    if (need > n->words) {
        size_t words = need * 2;
        uint64_t *d = realloc(n->dirty, words * sizeof *d);
        if (!d)
            die("realloc");
        memset(d + n->words, 0, (words - n->words) * sizeof *d);
        n->dirty = d;
        n->words = words;
    }
    for (size_t p = first; p <= last; p++)
        n->dirty[p / 64] |= (uint64_t)1 << (p % 64);
}

/* The path of `fd` relative to the watched directory, or NULL if it is
 * not inside it. */
static const char *relative(int fd, char *buf) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, PATH_MAX - 1);
    if (n < 0)
        return NULL;
    buf[n] = 0;
    if (strncmp(buf, watched, watched_len) != 0)
        return NULL;
    if (buf[watched_len] == 0)
        return buf + watched_len;
    if (buf[watched_len] != '/')
        return NULL;
    return buf + watched_len + 1;
}

static void shadow_path(char *out, const struct inode *n) {
    snprintf(out, PATH_MAX, "%s/inodes/%lu.%u", state, (unsigned long)n->ino, n->gen);
}

/* Replaces the state file `name` with `len` bytes of `text`. */
static void save(const char *name, const char *text, size_t len) {
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", state, name);
    snprintf(path, sizeof path, "%s/%s", state, name);
    int fd = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open state file");
    size_t done = 0;
    while (done < len) {
        ssize_t n = real_write(fd, text + done, len - done);
        if (n <= 0)
            die("write state file");
        done += (size_t)n;
    }
    real_close(fd);
    if (real_rename(tmp, path) != 0)
        die("rename state file");
}

/* A growing text buffer. */
struct text {
    char *buf;
    size_t len, cap;
};

static void append(struct text *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = realloc(t->buf, t->cap);
        if (!t->buf)
            die("realloc");
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static void save_live(void) {
    struct text t = {0};
    append(&t, "");
    for (int i = 0; i < n_inodes; i++) {
        char line[64];
        snprintf(line, sizeof line, "%lu.%u\n", (unsigned long)inodes[i].ino, inodes[i].gen);
        append(&t, line);
    }
    save("live", t.buf, t.len);
    free(t.buf);
}

/* Writes the durable names to the state, replacing the file whole. */
static void save_names(void) {
    struct text t = {0};
    append(&t, "");
    for (int i = 0; i < n_names; i++) {
        char line[PATH_MAX + 64];
        if (names[i].is_dir)
            snprintf(line, sizeof line, "D %s\n", names[i].path);
        else
            snprintf(line, sizeof line, "F %lu.%u %s\n", (unsigned long)names[i].ino,
                     names[i].gen, names[i].path);
        append(&t, line);
    }
    save("names", t.buf, t.len);
    free(t.buf);
}

static void add_name(int is_dir, const struct inode *n, const char *path) {
    if (n_names == MAX_NAMES) {
        errno = ENOSPC;
        die("too many names");
    }
    names[n_names].is_dir = is_dir;
    names[n_names].ino = n ? n->ino : 0;
    names[n_names].gen = n ? n->gen : 0;
    names[n_names].path = strdup(path);
    n_names++;
}

/* Copies the whole file at `path` into the state as the durable content of
 * its inode. */
static void copy_whole(const char *path, const struct inode *n) {
    char dst[PATH_MAX];
    shadow_path(dst, n);
    int in = real_open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        die(path);
    int out = real_open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        die(dst);
    char buf[1 << 16];
    off_t off = 0;
    for (;;) {
        ssize_t n = real_pread(in, buf, sizeof buf, off);
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        if (real_pwrite(out, buf, (size_t)n, off) != n)
            die("write");
        off += n;
    }
    real_close(in);
    real_close(out);
}

/* At load: everything already there is durable. */
static void snapshot(const char *rel) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", watched, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[PATH_MAX], full[PATH_MAX];
        snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", watched, child);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            add_name(1, NULL, child);
            snapshot(child);
        } else if (S_ISREG(st.st_mode)) {
            struct inode *n = inode_of(st.st_ino);
            add_name(0, n, child);
            copy_whole(full, n);
        }
    }
    closedir(d);
}

__attribute__((constructor)) static void init(void) {
    RESOLVE(open);
    RESOLVE(openat);
    RESOLVE(close);
    RESOLVE(write);
    RESOLVE(pwrite);
    RESOLVE(writev);
    RESOLVE(pwritev);
    RESOLVE(pwritev2);
    RESOLVE(pread);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(syncfs);
    RESOLVE(sync);
    RESOLVE(ftruncate);
    RESOLVE(truncate);
    RESOLVE(fallocate);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(fcntl);
    RESOLVE(mmap);
    RESOLVE(rename);
    const char *dir = getenv("POWERCUT_DIR"), *st = getenv("POWERCUT_STATE");
    if (!dir || !st)
        return;
    if (!realpath(dir, watched))
        die("POWERCUT_DIR");
    watched_len = strlen(watched);
    snprintf(state, sizeof state, "%s", st);
    char inodes_dir[PATH_MAX];
    snprintf(inodes_dir, sizeof inodes_dir, "%s/inodes", state);
    if (mkdir(state, 0755) != 0 && errno != EEXIST)
        die("mkdir state");
    if (mkdir(inodes_dir, 0755) != 0 && errno != EEXIST)
        die("mkdir state/inodes");
    snapshot("");
    save_names();
    save_live();
    active = 1;
}

/* Starts watching `fd` if it is a file or directory under the watched
 * directory. */
static void opened(int fd, int flags, int existed) {
    if (!active || fd < 0 || fd >= MAX_FDS)
        return;
    char buf[PATH_MAX];
    const char *rel = relative(fd, buf);
    struct stat st;
    pthread_mutex_lock(&lock);
    fd_inode[fd] = 0;
    if (rel && fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fd_inode[fd] = -1;
        } else if (S_ISREG(st.st_mode)) {
            struct inode *n = existed ? inode_of(st.st_ino) : created(st.st_ino);
            fd_inode[fd] = 1 + (int)(n - inodes);
            if (flags & O_TRUNC)
                n->size_dirty = 1;
        }
    }
    pthread_mutex_unlock(&lock);
}

static struct inode *watched_file(int fd) {
    if (!active || fd < 0 || fd >= MAX_FDS || fd_inode[fd] <= 0)
        return NULL;
    return &inodes[fd_inode[fd] - 1];
}

static void wrote(int fd, off_t off, ssize_t n) {
    if (n <= 0 || !active)
        return;
    pthread_mutex_lock(&lock);
    struct inode *i = watched_file(fd);
    if (i)
        mark(i, off, (size_t)n);
    pthread_mutex_unlock(&lock);
}

/* The offset a plain write at `fd` goes to. */
static off_t write_offset(int fd) {
    if (!active || fd < 0 || fd >= MAX_FDS || fd_inode[fd] <= 0)
        return 0;
    int fl = real_fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) == 0 ? st.st_size : 0;
    }
    off_t o = lseek(fd, 0, SEEK_CUR);
    return o < 0 ? 0 : o;
}

/* fsync or fdatasync of a watched file: its dirty pages, and its size,
 * become durable. */
static void synced_file(int fd, struct inode *n) {
    char self[64], dst[PATH_MAX];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int in = real_open(self, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        die("reopen for sync");
    shadow_path(dst, n);
    int out = real_open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0)
        die(dst);
    char buf[PAGE];
    for (size_t w = 0; w < n->words; w++) {
        if (!n->dirty[w])
            continue;
        for (int b = 0; b < 64; b++) {
            if (!(n->dirty[w] & ((uint64_t)1 << b)))
                continue;
            off_t off = (off_t)(w * 64 + (size_t)b) * PAGE;
            ssize_t got = real_pread(in, buf, PAGE, off);
            if (got < 0)
                die("read for sync");
            if (got > 0 && real_pwrite(out, buf, (size_t)got, off) != got)
                die("write state");
        }
        n->dirty[w] = 0;
    }
    struct stat st;
    if (fstat(in, &st) != 0 || real_ftruncate(out, st.st_size) != 0)
        die("size for sync");
    n->size_dirty = 0;
    real_close(in);
    real_close(out);
}

/* fsync of a watched directory: its entries as they are now become its
 * durable entries. A new file's content is what was synced of it (nothing,
 * if it never was); a new subdirectory is there, empty until synced. */
static void synced_dir(int fd) {
    char buf[PATH_MAX];
    const char *rel = relative(fd, buf);
    if (!rel)
        return;
    char dir_rel[PATH_MAX];
    snprintf(dir_rel, sizeof dir_rel, "%s", rel);
    size_t prefix = strlen(dir_rel);
    /* Drop the durable entries directly in this directory. */
    int kept = 0;
    for (int i = 0; i < n_names; i++) {
        const char *p = names[i].path;
        int direct;
        if (prefix == 0)
            direct = strchr(p, '/') == NULL;
        else
            direct = strncmp(p, dir_rel, prefix) == 0 && p[prefix] == '/' &&
                     strchr(p + prefix + 1, '/') == NULL;
        if (direct)
            free(names[i].path);
        else
            names[kept++] = names[i];
    }
    n_names = kept;
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s%s%s", watched, prefix ? "/" : "", dir_rel);
    DIR *d = opendir(full);
    if (!d)
        die("opendir for sync");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[PATH_MAX], path[PATH_MAX];
        snprintf(child, sizeof child, "%s%s%s", dir_rel, prefix ? "/" : "", e->d_name);
        snprintf(path, sizeof path, "%s/%s", watched, child);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            add_name(1, NULL, child);
        } else if (S_ISREG(st.st_mode)) {
            struct inode *n = inode_of(st.st_ino);
            char shadow[PATH_MAX];
            shadow_path(shadow, n);
            if (access(shadow, F_OK) != 0) {
                /* Named, but never synced: nothing of it is durable. */
                int out = real_open(shadow, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (out < 0)
                    die(shadow);
                real_close(out);
                if (st.st_size > 0)
                    mark(n, 0, (size_t)st.st_size);
            }
            add_name(0, n, child);
        }
    }
    closedir(d);
    save_names();
}

static void synced(int fd) {
    if (!active || fd < 0 || fd >= MAX_FDS)
        return;
    pthread_mutex_lock(&lock);
    struct inode *n = watched_file(fd);
    if (n)
        synced_file(fd, n);
    else if (fd_inode[fd] == -1)
        synced_dir(fd);
    pthread_mutex_unlock(&lock);
}

/* sync() and syncfs(): everything watched becomes durable. */
static void synced_all(void) {
    if (!active)
        return;
    pthread_mutex_lock(&lock);
    for (int fd = 0; fd < MAX_FDS; fd++) {
        struct inode *n = watched_file(fd);
        if (n)
            synced_file(fd, n);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- the interposed functions ---- */

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* Whether `path` (relative to `dirfd`) names something before an open
 * that may create it. */
static int exists_at(int dirfd, const char *path, int flags) {
    if (!active || !(flags & O_CREAT))
        return 1;
    struct stat st;
    return fstatat(dirfd, path, &st, 0) == 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int existed = exists_at(AT_FDCWD, path, flags);
    int fd = real_open(path, flags, mode);
    opened(fd, flags, existed);
    return fd;
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int existed = exists_at(dirfd, path, flags);
    int fd = real_openat(dirfd, path, flags, mode);
    opened(fd, flags, existed);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }

int creat(const char *path, mode_t mode) { return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

int close(int fd) {
    if (active && fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&lock);
        fd_inode[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

static int duplicated(int from, int to) {
    if (active && to >= 0 && to < MAX_FDS && from >= 0 && from < MAX_FDS) {
        pthread_mutex_lock(&lock);
        fd_inode[to] = fd_inode[from];
        pthread_mutex_unlock(&lock);
    }
    return to;
}
int dup(int fd) { return duplicated(fd, real_dup(fd)); }
int dup2(int fd, int to) { return duplicated(fd, real_dup2(fd, to)); }
int dup3(int fd, int to, int flags) { return duplicated(fd, real_dup3(fd, to, flags)); }

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        duplicated(fd, r);
    return r;
}
int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

ssize_t write(int fd, const void *buf, size_t len) {
    off_t off = write_offset(fd);
    ssize_t n = real_write(fd, buf, len);
    wrote(fd, off, n);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
    ssize_t n = real_pwrite(fd, buf, len, off);
    wrote(fd, off, n);
    return n;
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    off_t off = write_offset(fd);
    ssize_t n = real_writev(fd, iov, cnt);
    wrote(fd, off, n);
    return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    ssize_t n = real_pwritev(fd, iov, cnt, off);
    wrote(fd, off, n);
    return n;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
    __attribute__((alias("pwritev")));

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
    off_t at = off == -1 ? write_offset(fd) : off;
    ssize_t n = real_pwritev2(fd, iov, cnt, off, flags);
    wrote(fd, at, n);
    /* RWF_DSYNC / RWF_SYNC make the write itself durable. */
    if (n > 0 && (flags & (RWF_DSYNC | RWF_SYNC)))
        synced(fd);
    return n;
}
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
    __attribute__((alias("pwritev2")));

int fsync(int fd) {
    int r = real_fsync(fd);
    if (r == 0)
        synced(fd);
    return r;
}

int fdatasync(int fd) {
    int r = real_fdatasync(fd);
    if (r == 0)
        synced(fd);
    return r;
}

int syncfs(int fd) {
    int r = real_syncfs(fd);
    if (r == 0)
        synced_all();
    return r;
}

void sync(void) {
    real_sync();
    synced_all();
}

static void resized(int fd) {
    if (!active)
        return;
    pthread_mutex_lock(&lock);
    struct inode *n = watched_file(fd);
    if (n)
        n->size_dirty = 1;
    pthread_mutex_unlock(&lock);
}

int ftruncate(int fd, off_t len) {
    int r = real_ftruncate(fd, len);
    if (r == 0)
        resized(fd);
    return r;
}
int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int truncate(const char *path, off_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return real_truncate(path, len);
    int r = ftruncate(fd, len);
    close(fd);
    return r;
}
int truncate64(const char *path, off_t len) __attribute__((alias("truncate")));

int fallocate(int fd, int mode, off_t off, off_t len) {
    int r = real_fallocate(fd, mode, off, len);
    if (r == 0) {
        resized(fd);
        /* Punching or zeroing a range changes its content. */
        if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
                    FALLOC_FL_INSERT_RANGE))
            wrote(fd, off, (ssize_t)len);
    }
    return r;
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

static ssize_t (*real_copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned);
ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                        unsigned flags) {
    if (!real_copy_file_range)
        RESOLVE(copy_file_range);
    off_t at = out_off ? *out_off : write_offset(out);
    ssize_t n = real_copy_file_range(in, in_off, out, out_off, len, flags);
    wrote(out, at, n);
    return n;
}

static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
ssize_t sendfile(int out, int in, off_t *off, size_t len) {
    if (!real_sendfile)
        RESOLVE(sendfile);
    off_t at = write_offset(out);
    ssize_t n = real_sendfile(out, in, off, len);
    wrote(out, at, n);
    return n;
}
ssize_t sendfile64(int out, int in, off_t *off, size_t len) __attribute__((alias("sendfile")));

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if ((prot & PROT_WRITE) && (flags & MAP_SHARED) && watched_file(fd)) {
        errno = ENOTSUP;
        die("a shared writable map of a watched file would write unseen");
    }
    return real_mmap(addr, len, prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));
